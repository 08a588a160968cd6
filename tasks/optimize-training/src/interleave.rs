//! Interleaved timing: the solution, the starting pipeline and the reference pipeline timed in
//! alternation on the same data sets, so that the endpoints of normalization are measured under
//! the same load as the solution.
//!
//! Why: a calibration cached per machine was taken under whatever load the machine had then.
//! On a shared machine the load moves between that calibration and a later scoring, and the
//! three pipelines do not slow down alike (the reference leans on every core, the starting
//! pipeline much less), so the normalized score drifted (a cached calibration gave the
//! reference 1.63 once the load had dropped). Timed round by round in one scoring, all three see
//! the same load, and the ln-normalized score compares them under it.
//!
//! Round `r` runs every contestant once on data set `r`, in [`order`]: rotated one place per
//! round, so that no contestant always goes first (after a pause in which the page cache or the
//! CPU's clock may have changed) or always right after another's heavy run.

use rebench_scoring::manifest::Transform;
use rebench_scoring::{Calibration, CalibrationSource};
use serde_json::{Value, json};

/// Who is timed in a scoring: the solution, and when the scoring calibrates, the task's own
/// starting and reference pipelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contestant {
    Solution,
    Starting,
    Reference,
}

impl Contestant {
    pub fn name(self) -> &'static str {
        match self {
            Contestant::Solution => "solution",
            Contestant::Starting => "starting",
            Contestant::Reference => "reference",
        }
    }
}

/// The order of round `round`: `contestants` rotated left by `round` places. With as many rounds
/// as contestants every contestant runs once in every position (a Latin square).
pub fn order(contestants: &[Contestant], round: usize) -> Vec<Contestant> {
    let mut order = contestants.to_vec();
    if !order.is_empty() {
        let k = round % order.len();
        order.rotate_left(k);
    }
    order
}

/// One round's seconds of the three contestants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundTimes {
    /// 0-based.
    pub round: usize,
    pub solution: f64,
    pub starting: f64,
    pub reference: f64,
}

/// The seconds of every timed run, by round, in the order they ran.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub rounds: Vec<Vec<(Contestant, f64)>>,
}

impl Timings {
    /// `who`'s seconds, round by round.
    pub fn of(&self, who: Contestant) -> Vec<f64> {
        self.rounds.iter().flat_map(|round| round.iter().filter(|(c, _)| *c == who).map(|(_, s)| *s)).collect()
    }

    /// `who`'s fastest run (`crate::fastest` says why the fastest), or `None` if it never ran.
    pub fn fastest(&self, who: Contestant) -> Option<f64> {
        let times = self.of(who);
        (!times.is_empty()).then(|| crate::fastest(&times))
    }

    /// The round that scores the solution: each round's solution run normalized (with
    /// `transform`) against that round's starting and reference runs, which ran beside it under
    /// the same load, and the round at the median of those scores (the lower median of an even
    /// count). A load that changes during a scoring then moves one round's score, not the score.
    /// Why not each contestant's fastest run: in a CI run whose other processes ended during
    /// the last of three rounds, the fastest runs paired the solution's run from the quiet end
    /// with endpoints from the busy start, and the reference scored 1.29 against itself; its
    /// rounds alone scored 1.03, 0.99 and 1.29. `None` when no round timed all three.
    pub fn median_round(&self, transform: Transform) -> Option<RoundTimes> {
        let mut scored: Vec<(f64, RoundTimes)> = self
            .rounds
            .iter()
            .enumerate()
            .filter_map(|(round, runs)| {
                let of = |who: Contestant| runs.iter().find(|(c, _)| *c == who).map(|(_, s)| *s);
                let times = RoundTimes { round, solution: of(Contestant::Solution)?, starting: of(Contestant::Starting)?, reference: of(Contestant::Reference)? };
                let endpoints = Calibration { starting: times.starting, reference: times.reference, source: CalibrationSource::Pinned };
                Some((endpoints.normalize(transform, times.solution).unwrap_or(f64::NEG_INFINITY), times))
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        scored.get(scored.len().checked_sub(1)? / 2).map(|(_, times)| *times)
    }

    /// Every round's order and seconds, each contestant's fastest, and the ratios between the
    /// fastest (how much faster the second named is than the first), for the score's details:
    /// a reader can see the load in the raw seconds and its effect in the ratios.
    pub fn details(&self) -> Value {
        let rounds: Vec<Value> = self
            .rounds
            .iter()
            .enumerate()
            .map(|(r, round)| {
                json!({
                    "data_set": r + 1,
                    "order": round.iter().map(|(c, _)| c.name()).collect::<Vec<_>>(),
                    "seconds": round.iter().map(|(c, s)| (c.name().to_owned(), json!(s))).collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let all = [Contestant::Solution, Contestant::Starting, Contestant::Reference];
        let fastest: serde_json::Map<String, Value> = all.iter().filter_map(|&c| Some((c.name().to_owned(), json!(self.fastest(c)?)))).collect();
        let mut ratios = serde_json::Map::new();
        for (slow, fast) in [(Contestant::Starting, Contestant::Solution), (Contestant::Solution, Contestant::Reference), (Contestant::Starting, Contestant::Reference)] {
            if let (Some(a), Some(b)) = (self.fastest(slow), self.fastest(fast)) {
                ratios.insert(format!("{}/{}", slow.name(), fast.name()), json!(a / b));
            }
        }
        json!({"rounds": rounds, "fastest": fastest, "ratios": ratios})
    }
}

#[cfg(test)]
mod tests {
    use super::Contestant::{Reference, Solution, Starting};
    use super::*;

    #[test]
    fn rounds_rotate_so_that_each_contestant_runs_once_in_every_position() {
        let all = [Solution, Starting, Reference];
        let rounds: Vec<Vec<Contestant>> = (0..3).map(|r| order(&all, r)).collect();
        assert_eq!(rounds[0], [Solution, Starting, Reference]);
        assert_eq!(rounds[1], [Starting, Reference, Solution]);
        assert_eq!(rounds[2], [Reference, Solution, Starting]);
        for position in 0..3 {
            let mut at: Vec<&str> = rounds.iter().map(|r| r[position].name()).collect();
            at.sort_unstable();
            assert_eq!(at, ["reference", "solution", "starting"], "position {position}");
        }
        // Round 3 starts the cycle again; each round holds every contestant once.
        assert_eq!(order(&all, 3), rounds[0]);
        // Without calibration only the solution runs.
        assert_eq!(order(&[Solution], 2), [Solution]);
    }

    #[test]
    fn each_contestant_is_scored_by_its_own_fastest_run() {
        let timings = Timings {
            rounds: vec![
                vec![(Solution, 10.0), (Starting, 30.0), (Reference, 6.0)],
                vec![(Starting, 24.0), (Reference, 9.0), (Solution, 8.0)],
                vec![(Reference, 7.5), (Solution, 12.0), (Starting, 40.0)],
            ],
        };
        assert_eq!(timings.of(Starting), [30.0, 24.0, 40.0]);
        assert_eq!(timings.fastest(Solution), Some(8.0));
        assert_eq!(timings.fastest(Starting), Some(24.0));
        assert_eq!(timings.fastest(Reference), Some(6.0));
        let d = timings.details();
        assert_eq!(d["rounds"][1]["order"], json!(["starting", "reference", "solution"]));
        assert_eq!(d["rounds"][2]["seconds"]["starting"], json!(40.0));
        assert_eq!(d["fastest"], json!({"solution": 8.0, "starting": 24.0, "reference": 6.0}));
        assert_eq!(d["ratios"]["starting/solution"], json!(3.0));
        assert_eq!(d["ratios"]["starting/reference"], json!(4.0));
        assert!((d["ratios"]["solution/reference"].as_f64().unwrap() - 8.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn the_median_round_pairs_the_solution_with_the_endpoints_timed_beside_it() {
        // The CI scoring of the reference against itself: the load ended during round 3.
        let timings = Timings {
            rounds: vec![
                vec![(Solution, 8.74), (Starting, 31.87), (Reference, 9.05)],
                vec![(Starting, 30.63), (Reference, 9.14), (Solution, 9.24)],
                vec![(Reference, 8.33), (Solution, 6.41), (Starting, 20.49)],
            ],
        };
        let median = timings.median_round(Transform::Ln).unwrap();
        assert_eq!(median, RoundTimes { round: 0, solution: 8.74, starting: 31.87, reference: 9.05 });
        let endpoints = Calibration { starting: median.starting, reference: median.reference, source: CalibrationSource::Pinned };
        let score = endpoints.normalize(Transform::Ln, median.solution).unwrap();
        assert!((score - 1.028).abs() < 1e-3, "{score}");
        // The fastest runs, each taken alone, give 1.29.
        let fastest = Calibration { starting: 20.49, reference: 8.33, source: CalibrationSource::Pinned };
        assert!((fastest.normalize(Transform::Ln, 6.41).unwrap() - 1.29).abs() < 5e-3);
        // Of two rounds, the lower; without endpoints, none.
        let two = Timings { rounds: timings.rounds[1..].to_vec() };
        assert_eq!(two.median_round(Transform::Ln).unwrap().round, 0);
        assert_eq!(Timings { rounds: vec![vec![(Solution, 5.0)]] }.median_round(Transform::Ln), None);
    }

    #[test]
    fn without_calibration_there_are_no_endpoints_or_ratios() {
        let timings = Timings { rounds: vec![vec![(Solution, 5.0)], vec![(Solution, 4.0)]] };
        assert_eq!(timings.fastest(Solution), Some(4.0));
        assert_eq!(timings.fastest(Starting), None);
        let d = timings.details();
        assert_eq!(d["fastest"], json!({"solution": 4.0}));
        assert_eq!(d["ratios"], json!({}));
    }
}
