//! The task's own solutions scored in process through the `Task` trait: the starting solution
//! scores about 0, the reference about 1, and broken solutions are invalid with their reason.
//!
//! TODO: a bad solution for each way the real task can be got wrong.

use std::path::{Path, PathBuf};

use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest};
use rebench_scoring::{Calibration, Outcome, Task};

use %%crate_name%%::Scorer;

/// A request to score the solution in `work/solution` on `variant` with the manifest's
/// parameters; `solution_timeout_secs` overrides the manifest's time limit.
fn request(scorer: &Scorer, variant: &str, work: &Path, solution_timeout_secs: Option<f64>) -> ScoreRequest {
    let params = scorer.manifest().variants[variant]
        .params
        .iter()
        .map(|(key, value)| (key.clone(), serde_json::to_value(value).unwrap()))
        .collect();
    ScoreRequest {
        variant: variant.to_owned(),
        solution: work.join("solution"),
        env: Environment {
            task_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
            store: work.join("store"),
            scratch: work.join("scratch"),
            // Shared by every test and every run, so that solutions build incrementally.
            target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("solutions"),
            // Shared too: pretrained models and corpora are built once for all tests.
            assets: Path::new(env!("CARGO_TARGET_TMPDIR")).join("assets"),
        },
        seed: 7,
        params,
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs,
    }
}

/// Scores the solution in `work/solution` on the cpu variant.
fn score(scorer: &Scorer, work: &Path, solution_timeout_secs: Option<f64>) -> Outcome {
    let request = request(scorer, "cpu", work, solution_timeout_secs);
    scorer.score(&request).expect("scoring works").outcome
}

/// A scratch directory holding the task's `which` solution in `solution/`.
fn materialized(which: Solution) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    fsutil::materialize(Path::new(env!("CARGO_MANIFEST_DIR")), which, &work.path().join("solution")).unwrap();
    work
}

#[test]
fn starting_scores_about_0_and_reference_about_1() {
    let scorer = Scorer::new();
    let manifest = scorer.manifest();
    let calibration = Calibration::pinned(&manifest.calibration).expect("the calibration is pinned");
    for (which, expected) in [(Solution::Starting, 0.0), (Solution::Reference, 1.0)] {
        let work = materialized(which);
        let outcome = score(&scorer, work.path(), None);
        let raw = outcome.raw().unwrap_or_else(|| panic!("the {} solution is invalid: {outcome:?}", which.name()));
        let normalized = calibration.normalize(manifest.metric.transform, raw).unwrap();
        assert!(
            (normalized - expected).abs() <= manifest.scoring.tolerance,
            "the {} solution scores {normalized} (raw {raw}), expected {expected}",
            which.name()
        );
    }
}

#[test]
fn broken_solutions_are_invalid_with_their_reason() {
    let scorer = Scorer::new();
    let cases = [
        ("panics", "pub fn sort(_: &[i64]) -> Vec<i64> { panic!(\"deliberately broken\") }", "panicked"),
        ("never ends", "pub fn sort(v: &[i64]) -> Vec<i64> { loop { std::hint::black_box(v); } }", "did not finish"),
        ("drops values", "pub fn sort(values: &[i64]) -> Vec<i64> { values[1..].to_vec() }", "values for a list of"),
        ("does not build", "pub fn sort(values: &[i64]) -> Vec<i64> { values }", "does not build"),
    ];
    for (name, lib, expected) in cases {
        let work = materialized(Solution::Starting);
        std::fs::write(work.path().join("solution/src/lib.rs"), lib).unwrap();
        let outcome = score(&scorer, work.path(), Some(2.0));
        assert!(!outcome.is_valid(), "{name}: {outcome:?}");
        assert!(outcome.message().contains(expected), "{name}: {:?} does not contain {expected:?}", outcome.message());
    }
}
%%gpu_test%%
