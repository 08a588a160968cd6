//! The scorer of the `demo-gpu` task: builds the agent's `solution` package together with the
//! driver (`driver/main.rs`), runs it on a hidden list drawn from the request's seed, and turns
//! its report into the raw metric: the fraction of positions that match the sorted list.
//!
//! TODO: this is the example task of `cargo xtask new-task` (sorting). Replace it with the real
//! task's scoring and keep its shape: everything a solution does wrong becomes an invalid
//! outcome with its reason; `Err` is for faults of the scorer itself (DESIGN.md, invariant 3).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rebench_scoring::driver::{self, BuildPlan, DriverRun, DriverSource};
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{Phases, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::{Value, json};

/// The manifest, embedded so that the scorer and the harness read the same one.
const MANIFEST: &str = include_str!("../task.toml");

/// The driver's source; the scorer builds it against a snapshot of the solution, out of the
/// agent's reach.
const DRIVER: &str = include_str!("../driver/main.rs");

const GIB: f64 = (1u64 << 30) as f64;

/// The scorer of `demo-gpu`.
pub struct Scorer {
    manifest: Manifest,
}

impl Scorer {
    pub fn new() -> Scorer {
        // The embedded manifest is checked by this crate's tests, so this cannot fail at run time.
        let manifest = Manifest::parse(MANIFEST, Path::new("task.toml")).expect("the embedded task.toml is valid");
        Scorer { manifest }
    }
}

impl Default for Scorer {
    fn default() -> Scorer {
        Scorer::new()
    }
}

impl Task for Scorer {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    // TODO: a task with hidden assets (held-out data, ground truth) writes them here, into
    // `request.store`, deterministically: `fn prepare(&self, request: &PrepareRequest)`.

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let started = Instant::now();
        let variant = self
            .manifest
            .variant(&request.variant)
            .with_context(|| format!("task `demo-gpu` has no variant `{}`", request.variant))?;
        if variant.features.iter().any(|f| f == "cuda") {
            return gpu::score(request);
        }
        let n = request.param_u64("n")?;
        anyhow::ensure!(n > 0, "parameter `n` must be at least 1");
        let timeout = self.manifest.scoring.timeout;
        let mut phases = Phases::default();

        let plan = BuildPlan {
            scratch: request.env.scratch.join("build"),
            solution: request.solution.clone(),
            target_dir: request.env.target_dir.clone(),
            timeout,
        };
        let source = DriverSource { files: &[("src/main.rs", DRIVER)] };
        let binary = match phases.time("build", || driver::build(&plan, source))? {
            Ok(binary) => binary,
            Err(reason) => return Ok(scored(Outcome::invalid(reason, Value::Null), phases)),
        };

        // The run gets what is left of the scoring's time limit (unless the request sets its
        // own), and the variant's memory.
        let run_timeout = match request.solution_timeout_secs {
            Some(secs) => Duration::try_from_secs_f64(secs)
                .with_context(|| format!("`solution_timeout_secs` must be a number of seconds, got {secs}"))?,
            None => timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1)),
        };
        let address_space = Some((variant.resources.memory_gib * GIB) as u64);
        let limits = Limits { timeout: Some(run_timeout), address_space };
        let args = [request.seed.to_string(), n.to_string()];
        let outcome = match phases.time("run", || driver::run(&binary, &args, &limits))? {
            DriverRun::Failed { reason, .. } => Outcome::invalid(reason, Value::Null),
            DriverRun::Report { report, .. } => metric(&report, n),
        };
        Ok(scored(outcome, phases))
    }
}

fn scored(outcome: Outcome, phases: Phases) -> Scored {
    // The calibration is pinned in task.toml: nothing is measured live.
    Scored { outcome, calibration: None, phases: phases.0 }
}

/// The raw metric from the driver's report, `{"n": N, "wrong": W}`.
///
/// The solution ran in the driver's process, so the report is checked like any untrusted input.
/// TODO: where a solution could gain by forging the report, re-check its result out of process
/// (tasks/optimize-kernel compares digests of the outputs).
fn metric(report: &Value, n: u64) -> Outcome {
    let (Some(reported_n), Some(wrong)) = (report["n"].as_u64(), report["wrong"].as_u64()) else {
        return Outcome::invalid(format!("the driver's report is malformed: {report}"), report.clone());
    };
    if reported_n != n || wrong > n {
        return Outcome::invalid(
            format!("the driver's report does not match the hidden list of {n} values: {report}"),
            report.clone(),
        );
    }
    // The fraction of positions that match the sorted list: about 0 for the starting solution
    // (a random list is out of order almost everywhere), 1 for a correct sort.
    let raw = (n - wrong) as f64 / n as f64;
    Outcome::valid(raw, format!("{wrong} of {n} positions wrong after sorting"), json!({ "n": n, "wrong": wrong }))
}

/// The gpu variant: the agent's CUDA kernel, `solution/kernels/solve.cu`, launched as
/// instructions.md says.
///
/// Only a scorer built with the `cuda` feature scores it, so default builds need no GPU toolchain.
mod gpu {
    use rebench_scoring::task::{ScoreRequest, Scored};

    /// TODO: compile the kernel with NVRTC, launch it on a hidden list of `n` values, copy the
    /// output back and compute the same metric as the cpu variant (`super::metric`).
    #[cfg(feature = "cuda")]
    pub fn score(request: &ScoreRequest) -> anyhow::Result<Scored> {
        anyhow::bail!(
            "gpu variant not implemented yet: TODO compile and launch {}",
            request.solution.join("kernels/solve.cu").display()
        )
    }

    #[cfg(not(feature = "cuda"))]
    pub fn score(request: &ScoreRequest) -> anyhow::Result<Scored> {
        anyhow::bail!("the `{}` variant needs the scorer built with `--features cuda`", request.variant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_is_valid_and_names_this_crate() {
        assert_eq!(Scorer::new().manifest().task.id, env!("CARGO_PKG_NAME"));
    }

    #[test]
    fn reports_are_checked() {
        let good = metric(&json!({ "n": 4, "wrong": 1 }), 4);
        assert!(good.is_valid(), "{good:?}");
        for bad in [json!({ "n": 4 }), json!({ "n": 3, "wrong": 1 }), json!({ "n": 4, "wrong": 5 }), json!("junk")] {
            let outcome = metric(&bad, 4);
            assert!(!outcome.is_valid() && outcome.message().contains("the driver's report"), "{bad}: {outcome:?}");
        }
    }
}
