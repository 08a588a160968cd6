//! Scores solution directories in process, for measuring without the harness:
//! `cargo run --release -p optimize-training --example score -- <variant> <solution-dir>...`
//! (`starting` and `reference` name the task's own). Uses `$REBENCH_HOME` (default
//! `~/.local/share/rebench`) for the shared assets and this task's store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use optimize_training::OptimizeTraining;
use rebench_scoring::Task;
use rebench_scoring::fsutil::Solution;
use rebench_scoring::task::{Environment, PrepareRequest, ScoreRequest};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let variant = args.first().cloned().unwrap_or_else(|| "cpu".into());
    let home = std::env::var_os("REBENCH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".local/share/rebench"));
    let task_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let env = Environment {
        task_dir: task_dir.clone(),
        store: home.join("store/optimize-training").join(&variant),
        scratch: home.join("scratch/optimize-training-example"),
        target_dir: task_dir.join("../../target/solutions"),
        assets: home.join("assets"),
    };
    let task = OptimizeTraining::new();
    println!("prepare: {}", task.prepare(&PrepareRequest { variant: variant.clone(), env: env.clone() })?);
    let params: BTreeMap<String, serde_json::Value> = task
        .manifest()
        .variant(&variant)
        .expect("variant")
        .params
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).expect("toml to json")))
        .collect();
    for name in &args[1..] {
        let solution = match name.as_str() {
            "starting" => optimize_training::own_solution(&env.scratch.join("own"), Solution::Starting)?,
            "reference" => optimize_training::own_solution(&env.scratch.join("own"), Solution::Reference)?,
            dir => PathBuf::from(dir),
        };
        let request = ScoreRequest {
            variant: variant.clone(),
            solution,
            env: env.clone(),
            seed: std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7),
            params: params.clone(),
            calibration_cache: None,
            calibrate: std::env::var_os("CALIBRATE").is_some(),
            solution_timeout_secs: None,
        };
        let scored = task.score(&request)?;
        println!("{name}: {}", serde_json::to_string_pretty(&scored)?);
    }
    Ok(())
}
