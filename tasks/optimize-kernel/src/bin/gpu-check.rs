//! `gpu-check`: the gpu variant end to end on this machine's GPU, in a few minutes.
//!
//! ```text
//! cargo run --release -p optimize-kernel --features cuda --bin gpu-check [-- --n N --trials T --no-write]
//! ```
//!
//! On a GPU machine without a Rust toolchain (scripts/device-gpu-check.sh): build the drivers
//! here, as a scoring would, with `gpu-check --build-drivers DIR` (needs cargo, no device);
//! there, run `gpu-check --drivers DIR --root REPO`, which uses them instead of building.
//! `--results-dir DIR` writes the results file there instead of `docs/gpu-results`.
//!
//! 1. Finds the CUDA device, or stops at once saying why there is none.
//! 2. Scores the starting and the reference solution on sizes around the kernels' block and
//!    tile sizes (0, 1, 7, 1023, 1025, 4095, 4097, 2^20 + 3, 10,000,019), one checked trial
//!    each: every value of every output is compared with the ground truth, as in a scoring.
//! 3. Times both at the variant's size (N = 10^8) against the floor, a device-to-device copy
//!    of the same bytes, through the task's own benchmark.
//! 4. Prints one table and writes it, with the date and the card, to
//!    `docs/gpu-results/<date>-<card>.md` (unless `--no-write`).
//!
//! Exit status 0 when every check passed, 1 otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use optimize_kernel::OptimizeKernel;
use rebench_scoring::Task;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest};
use serde_json::{Value, json};

const SIZES: [u64; 9] = [0, 1, 7, 1023, 1025, 4095, 4097, (1 << 20) + 3, 10_000_019];

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("gpu-check: {err:#}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    params: BTreeMap<String, Value>,
    write: bool,
    /// Build the drivers into this directory and stop.
    build_drivers: Option<PathBuf>,
    /// Run the drivers prebuilt in this directory.
    drivers: Option<PathBuf>,
    /// The repository's root (default: where this binary was built from).
    root: Option<PathBuf>,
    results_dir: Option<PathBuf>,
}

const USAGE: &str = "expected --n N, --trials T, --warmup W, --no-write, --build-drivers DIR, --drivers DIR, --root DIR, --results-dir DIR";

fn options() -> anyhow::Result<Options> {
    let mut options = Options { params: BTreeMap::new(), write: true, build_drivers: None, drivers: None, root: None, results_dir: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--n" | "--trials" | "--warmup" => {
                let number: u64 = value()?.parse().with_context(|| arg.clone())?;
                options.params.insert(arg.trim_start_matches("--").to_owned(), json!(number));
            }
            "--no-write" => options.write = false,
            "--build-drivers" => options.build_drivers = Some(value()?.into()),
            "--drivers" => options.drivers = Some(std::path::absolute(value()?)?),
            "--root" => options.root = Some(value()?.into()),
            "--results-dir" => options.results_dir = Some(value()?.into()),
            other => anyhow::bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    Ok(options)
}

/// Builds the GPU drivers of the starting and reference solutions into `dir`, as a scoring
/// would (needs cargo, not a device).
fn build_drivers(task_dir: &Path, work: &Path, dir: &Path) -> anyhow::Result<bool> {
    let task = OptimizeKernel::new();
    for which in [Solution::Starting, Solution::Reference] {
        let solution = work.join("solutions-src").join(which.name());
        fsutil::materialize(task_dir, which, &solution)?;
        let built = task.build_prebuilt_driver("gpu", &solution, &work.join("scratch").join(which.name()), &work.join("solutions"), dir)?;
        println!("gpu-check: {} solution's driver: {}", which.name(), built.display());
    }
    Ok(true)
}

fn run() -> anyhow::Result<bool> {
    let options = options()?;
    let started = Instant::now();
    let root = match &options.root {
        Some(root) => root.canonicalize().with_context(|| format!("no repository at {}", root.display()))?,
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?,
    };
    let task_dir = root.join("tasks/optimize-kernel");
    let work = root.join("target/gpu-check");
    if let Some(dir) = &options.build_drivers {
        return build_drivers(&task_dir, &work, dir);
    }
    let device = optimize_kernel::gpu_device()?;
    println!("gpu-check: {device}");
    let task = match &options.drivers {
        Some(dir) => OptimizeKernel::with_prebuilt_drivers(dir.clone()),
        None => OptimizeKernel::new(),
    };
    let mut params = task.manifest().variant_params("gpu")?;
    params.extend(options.params);
    let request = |solution: &Path, params: BTreeMap<String, Value>, seed: u64| ScoreRequest {
        variant: "gpu".into(),
        solution: solution.to_owned(),
        env: Environment {
            task_dir: task_dir.clone(),
            store: work.join("store"),
            scratch: work.join("scratch"),
            target_dir: work.join("solutions"),
            assets: work.join("assets"),
        },
        seed,
        params,
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: None,
    };

    let mut all_right = true;
    let mut correctness = Vec::new();
    for which in [Solution::Starting, Solution::Reference] {
        let dir = work.join("solutions-src").join(which.name());
        fsutil::materialize(&task_dir, which, &dir)?;
        let mut wrong = Vec::new();
        for (k, &n) in SIZES.iter().enumerate() {
            let small: BTreeMap<String, Value> = [("n".to_owned(), json!(n)), ("warmup".to_owned(), json!(0)), ("trials".to_owned(), json!(1))].into();
            let scored = task.score(&request(&dir, small, 1000 + k as u64))?;
            if !scored.outcome.is_valid() {
                wrong.push(format!("n = {n}: {}", scored.outcome.message()));
            }
        }
        println!("gpu-check: {} solution, sizes {SIZES:?}: {}", which.name(), if wrong.is_empty() { "all exact" } else { "WRONG" });
        for line in &wrong {
            println!("  {line}");
        }
        all_right &= wrong.is_empty();
        correctness.push(format!("- {} solution, one checked trial per size: {}", which.name(), if wrong.is_empty() { "all exact".to_owned() } else { wrong.join("; ") }));
    }
    println!("gpu-check: correctness in {:.0} s; timing at n = {} ...", started.elapsed().as_secs_f64(), params["n"]);

    let report = task.bench(&request(&task_dir, params, 7))?;
    let table = report.table();
    print!("{table}");
    let date = rebench_scoring::log::now_rfc3339()[..10].to_owned();
    let command = match options.drivers {
        Some(_) => "`scripts/device-gpu-check.sh run`: the drivers built ahead with cargo, as a scoring builds them, and run here without it",
        None => "`cargo run --release -p optimize-kernel --features cuda --bin gpu-check`",
    };
    let text = format!(
        "# optimize-kernel gpu-check, {date}\n\nCard: {device}\n\n\
         Command: {command} ({:.0} s in all).\n\n\
         ```\n{table}```\n\nCorrectness (every value compared with the ground truth):\n\n{}\n",
        started.elapsed().as_secs_f64(),
        correctness.join("\n")
    );
    if options.write {
        let dir = options.results_dir.clone().unwrap_or_else(|| root.join("docs/gpu-results"));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{date}-{}.md", slug(&device)));
        std::fs::write(&path, text)?;
        println!("gpu-check: wrote {}", path.display());
    }
    println!("gpu-check: {} in {:.0} s", if all_right { "ok" } else { "FAILED" }, started.elapsed().as_secs_f64());
    Ok(all_right)
}

/// `NVIDIA H100 80GB HBM3 (sm_90, ...)` -> `nvidia-h100-80gb-hbm3`.
fn slug(device: &str) -> String {
    let name = device.split(" (").next().unwrap_or(device).to_lowercase();
    let dashed: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    dashed.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-")
}
