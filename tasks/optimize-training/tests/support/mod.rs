//! What the tests share: requests for the tiny variant (or `OT_TEST_VARIANT`), prepared once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use optimize_training::OptimizeTraining;
use rebench_scoring::Outcome;
use rebench_scoring::Task;
use rebench_scoring::task::{Environment, PrepareRequest, ScoreRequest};

pub fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The variant the tests score: `tiny` (seconds) unless `OT_TEST_VARIANT` names another, for
/// measuring the calibration at full size.
pub fn variant() -> String {
    std::env::var("OT_TEST_VARIANT").unwrap_or_else(|_| "tiny".into())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("optimize-training")
}

/// The environment every test shares: one asset store, one task store, one target directory;
/// scratch space of the caller's own.
pub fn env(scratch: &Path) -> Environment {
    Environment {
        task_dir: task_dir(),
        store: root().join("store").join(variant()),
        scratch: scratch.to_owned(),
        // The harness's solutions target directory (`<target>/solutions`): the candle build
        // the scorings of `cargo xtask validate` need is the one the tests need.
        target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("solutions"),
        assets: root().join("assets"),
    }
}

/// Prepares the variant once per test binary.
pub fn prepared() -> &'static OptimizeTraining {
    static TASK: OnceLock<OptimizeTraining> = OnceLock::new();
    TASK.get_or_init(|| {
        let task = OptimizeTraining::new();
        let dir = tempfile::tempdir().unwrap();
        task.prepare(&PrepareRequest { variant: variant(), env: env(dir.path()) }).unwrap();
        task
    })
}

pub fn request(scratch: &Path, solution: &Path, seed: u64, calibrate: bool) -> ScoreRequest {
    let task = prepared();
    let params: BTreeMap<String, serde_json::Value> = task
        .manifest()
        .variant(&variant())
        .unwrap()
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap()))
        .collect();
    ScoreRequest {
        variant: variant(),
        solution: solution.to_owned(),
        env: env(scratch),
        seed,
        params,
        calibration_cache: None,
        calibrate,
        solution_timeout_secs: Some(600.0),
    }
}

pub fn invalid_reason<'a>(name: &str, outcome: &'a Outcome) -> &'a str {
    match outcome {
        Outcome::Invalid { reason, .. } => reason,
        Outcome::Valid { message, .. } => panic!("{name}: expected an invalid outcome, got a valid one: {message}"),
    }
}
