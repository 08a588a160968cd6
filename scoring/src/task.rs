//! The `Task` trait every scorer implements, its requests, and live calibration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil::{self, Solution};
use crate::log::now_rfc3339;
use crate::manifest::Manifest;
use crate::measure::{CalibrationCache, Fingerprint};
use crate::normalize::{Calibration, CalibrationSource};
use crate::outcome::Outcome;

/// A task's scorer. Object-safe, so the protocol server and tests can hold `&dyn Task`.
///
/// Contract: `score` returns `Ok` with an invalid outcome for anything the solution does wrong;
/// `Err` only when the scorer itself cannot work (a missing asset, a full disk).
pub trait Task {
    /// The task's manifest, embedded in the scorer so scorer and harness agree on it.
    fn manifest(&self) -> &Manifest;

    /// Produces the task's assets (public and protected) in `request.store`, deterministically.
    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let _ = request;
        Ok("nothing to prepare".to_owned())
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored>;

    /// A task-specific benchmark (e.g. the starting and reference solutions against a physical
    /// floor); the request's `solution` is ignored.
    fn bench(&self, request: &ScoreRequest) -> anyhow::Result<BenchReport> {
        let _ = request;
        anyhow::bail!("task `{}` has no benchmark", self.manifest().task.id)
    }
}

/// A benchmark's result: a small table and notes, printed by the harness and kept as JSON.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BenchReport {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl BenchReport {
    /// The title, an aligned table and the notes, as text.
    pub fn table(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.len());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> =
                cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))).collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.header));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

/// Directories and settings common to prepare and score.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The task crate's directory (holds starting/ and reference/).
    pub task_dir: PathBuf,
    /// This task's asset store: `public/` may reach an agent, `protected/` never does.
    pub store: PathBuf,
    /// Scratch space the scorer may clear and fill at will.
    pub scratch: PathBuf,
    /// Shared cargo target directory for building solutions.
    pub target_dir: PathBuf,
    /// The shared asset store (`$REBENCH_HOME/assets`): assets several tasks use (a corpus, a
    /// pretrained model), keyed by a hash of their inputs; never copied into a workdir (copy
    /// what an agent may see into `store/public/`).
    pub assets: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareRequest {
    pub variant: String,
    pub env: Environment,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub variant: String,
    /// The solution directory to score (a workdir's solution/ or a materialized one).
    pub solution: PathBuf,
    pub env: Environment,
    /// Seed for the scorer's hidden inputs; the agent never sees it.
    pub seed: u64,
    /// The variant's params with any overrides applied.
    pub params: BTreeMap<String, Value>,
    /// Where live calibrations are cached; `None` measures afresh every time.
    pub calibration_cache: Option<PathBuf>,
    /// Whether to calibrate live (the harness sets it for tasks whose calibration is live).
    pub calibrate: bool,
    /// Overrides the manifest's limit on one run of the solution, in seconds (tests use short
    /// ones to exercise solutions that never finish).
    #[serde(default)]
    pub solution_timeout_secs: Option<f64>,
}

impl ScoreRequest {
    /// A required unsigned integer parameter.
    pub fn param_u64(&self, key: &str) -> anyhow::Result<u64> {
        crate::params::u64(&self.params, key)
    }
}

/// What scoring returns: the outcome, the calibration it used when live, and where time went.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scored {
    pub outcome: Outcome,
    pub calibration: Option<Calibration>,
    /// Seconds per phase (`build`, `run`, `verify`, `calibrate`...), for overhead reports.
    /// By convention `timed` is the task's own timed work; the rest of a scoring is overhead.
    pub phases: BTreeMap<String, f64>,
}

/// A stopwatch that records named phases.
#[derive(Debug, Default)]
pub struct Phases(pub BTreeMap<String, f64>);

impl Phases {
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let value = f();
        *self.0.entry(name.to_owned()).or_default() += start.elapsed().as_secs_f64();
        value
    }
}

/// [`calibrate_live`] when the request asks for calibration and the solution's `outcome` is
/// valid (an invalid score is not normalized, so nothing is measured for it). `measure` times its
/// phases on a stopwatch of its own, whose total `phases` gets as `calibrate`: the solution's
/// phases stay the solution's, and a cache hit adds none.
pub fn calibrate_if_asked(
    request: &ScoreRequest,
    outcome: &Outcome,
    extra_key: &str,
    phases: &mut Phases,
    mut measure: impl FnMut(&Path, Solution, &mut Phases) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Option<Calibration>> {
    if !request.calibrate || !outcome.is_valid() {
        return Ok(None);
    }
    let mut own = Phases::default();
    let calibration = calibrate_live(request, extra_key, |dir, which| measure(dir, which, &mut own))?;
    if !own.0.is_empty() {
        phases.0.insert("calibrate".into(), own.0.values().sum());
    }
    Ok(Some(calibration))
}

/// Live calibration: the raw scores of the task's own starting and reference solutions, measured
/// by `measure` on this machine, or taken from the cache when this machine, these parameters and
/// these solution sources were measured before.
///
/// `extra_key` names anything else that changes the measurement (the driver's source, say).
/// An invalid outcome for the task's own solutions is an infrastructure fault.
pub fn calibrate_live(
    request: &ScoreRequest,
    extra_key: &str,
    mut measure: impl FnMut(&Path, Solution) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Calibration> {
    let fingerprint = Fingerprint::current();
    let root = request.env.scratch.join("calibration");
    let mut dirs = Vec::new();
    let mut key = format!("{}|{}|{}|{extra_key}", fingerprint.key(), request.variant, serde_json::to_string(&request.params)?);
    for solution in [Solution::Starting, Solution::Reference] {
        let dir = root.join(solution.name());
        fsutil::materialize(&request.env.task_dir, solution, &dir)
            .with_context(|| format!("cannot materialize the {} solution", solution.name()))?;
        key.push('|');
        key.push_str(&fsutil::hash_tree(&dir)?);
        dirs.push((solution, dir));
    }
    let key = fsutil::hash_bytes(key.as_bytes());
    let cache = request.calibration_cache.as_deref().map(CalibrationCache::new);
    if let Some(hit) = cache.as_ref().and_then(|c| c.get(&key)) {
        return Ok(hit);
    }
    let mut raws = Vec::new();
    for (solution, dir) in &dirs {
        match measure(dir, *solution)? {
            Outcome::Valid { raw, .. } => raws.push(raw),
            Outcome::Invalid { reason, .. } => {
                bail!("calibration failed: the task's own {} solution is invalid: {reason}", solution.name())
            }
        }
    }
    let calibration = Calibration {
        starting: raws[0],
        reference: raws[1],
        source: CalibrationSource::Live { fingerprint: fingerprint.describe(), measured_at: now_rfc3339() },
    };
    if let Some(cache) = cache {
        cache.put(&key, &calibration).context("cannot write the calibration cache")?;
    }
    Ok(calibration)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// A request over a task folder with one-file starting and reference solutions.
    fn request(root: &Path, calibrate: bool) -> ScoreRequest {
        for (dir, text) in [("starting", "a"), ("reference", "b")] {
            fs::create_dir_all(root.join("task").join(dir)).unwrap();
            fs::write(root.join("task").join(dir).join("file"), text).unwrap();
        }
        ScoreRequest {
            variant: "cpu".into(),
            solution: root.join("task/starting"),
            env: Environment {
                task_dir: root.join("task"),
                store: root.join("store"),
                scratch: root.join("scratch"),
                target_dir: root.join("target"),
                assets: root.join("assets"),
            },
            seed: 1,
            params: BTreeMap::new(),
            calibration_cache: Some(root.join("cache")),
            calibrate,
            solution_timeout_secs: None,
        }
    }

    fn valid(raw: f64) -> Outcome {
        Outcome::Valid { raw, message: String::new(), details: Value::Null }
    }

    #[test]
    fn calibrates_only_when_asked_and_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let invalid = Outcome::Invalid { reason: "no".into(), details: Value::Null };
        for (calibrate, outcome) in [(false, valid(1.0)), (true, invalid)] {
            let mut phases = Phases::default();
            let got = calibrate_if_asked(&request(tmp.path(), calibrate), &outcome, "", &mut phases, |_, _, _| {
                panic!("measured without a reason to")
            });
            assert!(got.unwrap().is_none());
            assert!(phases.0.is_empty());
        }
    }

    #[test]
    fn measures_both_solutions_once_and_books_the_time_as_calibrate() {
        let tmp = tempfile::tempdir().unwrap();
        let request = request(tmp.path(), true);
        let mut phases = Phases::default();
        phases.0.insert("run".into(), 2.0);
        let mut seen = Vec::new();
        let mut measure = |dir: &Path, which: Solution, own: &mut Phases| {
            seen.push((which, fs::read_to_string(dir.join("file")).unwrap()));
            own.0.insert(which.name().into(), 0.5);
            Ok(valid(if which == Solution::Starting { 10.0 } else { 3.0 }))
        };
        let got = calibrate_if_asked(&request, &valid(5.0), "key", &mut phases, &mut measure).unwrap().unwrap();
        assert_eq!((got.starting, got.reference), (10.0, 3.0));
        assert_eq!(seen, [(Solution::Starting, "a".to_string()), (Solution::Reference, "b".to_string())]);
        assert_eq!(phases.0, BTreeMap::from([("calibrate".into(), 1.0), ("run".into(), 2.0)]));
        // The second time comes from the cache: nothing measured, no time booked.
        let mut again = Phases::default();
        let cached = calibrate_if_asked(&request, &valid(5.0), "key", &mut again, |_, _, _| panic!("not cached")).unwrap();
        assert_eq!(cached.map(|c| (c.starting, c.reference)), Some((10.0, 3.0)));
        assert!(again.0.is_empty());
    }
}
