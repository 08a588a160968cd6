//! What the scoring tests of both variants share: requests, fixtures, verdicts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rebench_scoring::Outcome;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest};
use serde_json::json;

pub fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where every test builds solutions (one target directory, so dependencies build once).
pub fn solutions_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("optimize-kernel-solutions")
}

/// A request to score `solution` on `variant` with `n` values, `warmup` and `trials` calls, and
/// `timeout` seconds per run of the solution.
pub fn request(variant: &str, scratch: &Path, solution: &Path, (n, warmup, trials): (u64, u64, u64), calibrate: bool, timeout: f64) -> ScoreRequest {
    let params: BTreeMap<String, serde_json::Value> =
        [("n".to_owned(), json!(n)), ("warmup".to_owned(), json!(warmup)), ("trials".to_owned(), json!(trials))].into();
    ScoreRequest {
        variant: variant.into(),
        solution: solution.to_owned(),
        env: Environment {
            task_dir: task_dir(),
            store: scratch.join("store"),
            scratch: scratch.join("scratch"),
            target_dir: solutions_target(),
            assets: scratch.join("assets"),
        },
        seed: 42,
        params,
        calibration_cache: None,
        calibrate,
        solution_timeout_secs: Some(timeout),
    }
}

/// The starting solution with `fixture`'s files overlaid; the starting solution's `naive`
/// file (its `src/lib.rs` or its `src/gpu.rs`) stays available to the fixture as `as`.
pub fn fixture(dir: &Path, name: &str, naive: &str, r#as: &str) -> PathBuf {
    let solution = dir.join(name);
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    std::fs::copy(solution.join(naive), solution.join(r#as)).unwrap();
    fsutil::copy_tree(&task_dir().join("tests/fixtures").join(name), &solution).unwrap();
    solution
}

pub fn invalid_reason<'a>(name: &str, outcome: &'a Outcome) -> &'a str {
    match outcome {
        Outcome::Invalid { reason, .. } => reason,
        Outcome::Valid { message, .. } => panic!("{name}: expected an invalid outcome, got a valid one: {message}"),
    }
}
