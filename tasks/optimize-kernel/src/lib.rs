//! The optimize-kernel scorer (RE-Bench's "Optimize a Kernel"), cpu and gpu variants.
//!
//! Scoring builds a timing driver (out of the agent's reach: `driver/main.rs` for the cpu
//! variant, `driver/gpu.rs` for the gpu one) against a snapshot of the solution, runs it in a
//! child process, and then re-verifies every timed trial here, in the scorer's own process: the
//! inputs are regenerated from the hidden seed, the ground truth recomputed, and its digest
//! compared with the one the driver reported. The solution shares the driver's process and
//! could subvert checks made there; it cannot reach this one.
//!
//! The gpu variant needs the `cuda` feature (cudarc, loaded at run time) and a CUDA device; its
//! driver also measures the floor (a device-to-device copy of the same bytes) in every run, and
//! a median below what that floor allows is invalid.

pub mod checks;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device_trials;
pub mod spec;

/// The cudarc `cuda.rs` names as `crate::cudarc` (in the GPU driver: the solution's).
#[cfg(feature = "cuda")]
pub use cudarc;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use rebench_scoring::driver::{self, BuildPlan, DriverRun, DriverSource};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::measure::{Fingerprint, Stats};
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{self, BenchReport, Phases, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::{Value, json};

const MANIFEST: &str = include_str!("../task.toml");
const DRIVER_MAIN: &str = include_str!("../driver/main.rs");
const DRIVER_COMMON: &str = include_str!("../driver/common.rs");
const SPEC: &str = include_str!("spec.rs");
const CHECKS: &str = include_str!("checks.rs");
const GPU_DRIVER_MAIN: &str = include_str!("../driver/gpu.rs");
const GPU_DRIVER_KERNELS: &str = include_str!("../driver/gpu_kernels.cu");
const DEVICE_TRIALS: &str = include_str!("device_trials.rs");
const CUDA: &str = include_str!("cuda.rs");
const DRIVER: DriverSource<'static> = DriverSource {
    files: &[("src/main.rs", DRIVER_MAIN), ("src/common.rs", DRIVER_COMMON), ("src/spec.rs", SPEC), ("src/checks.rs", CHECKS)],
};
const GPU_DRIVER: DriverSource<'static> = DriverSource {
    files: &[
        ("src/main.rs", GPU_DRIVER_MAIN),
        ("src/gpu_kernels.cu", GPU_DRIVER_KERNELS),
        ("src/common.rs", DRIVER_COMMON),
        ("src/spec.rs", SPEC),
        ("src/checks.rs", CHECKS),
        ("src/device_trials.rs", DEVICE_TRIALS),
        ("src/cuda.rs", CUDA),
    ],
};

/// Where a variant's solution runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Cpu,
    /// On the CUDA device 0, with the solution's `cuda` feature; the device described.
    Gpu,
}

impl Target {
    fn driver(self) -> DriverSource<'static> {
        match self {
            Target::Cpu => DRIVER,
            Target::Gpu => GPU_DRIVER,
        }
    }

    fn solution_features(self) -> &'static [&'static str] {
        match self {
            Target::Cpu => &[],
            Target::Gpu => &["cuda"],
        }
    }
}

/// The device the gpu variant runs on, described; its absence is an infrastructure fault.
pub fn gpu_device() -> anyhow::Result<String> {
    #[cfg(feature = "cuda")]
    {
        cuda::probe().map(|d| d.describe()).map_err(|why| anyhow::anyhow!("the gpu variant needs a CUDA device: {why}"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        bail!("the gpu variant needs the scorer built with `--features cuda` (the harness does so from the variant's `features`)")
    }
}

#[derive(Debug)]
pub struct OptimizeKernel {
    manifest: Manifest,
    /// Drivers built ahead of time, for `gpu-check` on a machine without cargo; the scorer
    /// binary never sets it, so scoring always builds the driver from source.
    prebuilt: Option<PathBuf>,
}

impl Default for OptimizeKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl OptimizeKernel {
    pub fn new() -> OptimizeKernel {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        OptimizeKernel { manifest, prebuilt: None }
    }

    /// A scorer that runs drivers from `dir` instead of building them: only the solutions
    /// whose driver [`OptimizeKernel::build_prebuilt_driver`] put there (the same driver
    /// sources, the same solution files) can be measured. For `gpu-check` on a GPU machine
    /// with no Rust toolchain; the scorer binary (`src/main.rs`) never uses it.
    pub fn with_prebuilt_drivers(dir: PathBuf) -> OptimizeKernel {
        OptimizeKernel { prebuilt: Some(dir), ..OptimizeKernel::new() }
    }

    /// Builds `variant`'s driver against `solution`, exactly as a scoring would, and copies it
    /// into `dir` under the name [`OptimizeKernel::with_prebuilt_drivers`] looks for.
    pub fn build_prebuilt_driver(&self, variant: &str, solution: &Path, scratch: &Path, target_dir: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
        let built = self.build_driver(variant, solution, scratch, target_dir)?.map_err(|why| anyhow::anyhow!("{why}"))?;
        let dest = dir.join(prebuilt_name(self.target(variant)?, solution)?);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::copy(&built, &dest).with_context(|| format!("cannot copy {} to {}", built.display(), dest.display()))?;
        Ok(dest)
    }
}

/// The file name of a prebuilt driver: a hash of the driver's sources, the solution features
/// and the solution's files, so a driver built from other sources is never picked up.
fn prebuilt_name(target: Target, solution: &Path) -> anyhow::Result<String> {
    let tree = fsutil::hash_tree(solution).with_context(|| format!("cannot read {}", solution.display()))?;
    let mut key = String::new();
    for (rel, text) in target.driver().files {
        key.push_str(&format!("{rel}\0{}\0{text}\0", text.len()));
    }
    key.push_str(&format!("{:?}\0{tree}", target.solution_features()));
    Ok(format!("driver-{}", &fsutil::hash_bytes(key.as_bytes())[..16]))
}

/// What one measurement is asked to do.
struct Plan {
    target: Target,
    n: usize,
    warmup: u64,
    trials: u64,
    seed: u64,
}

impl Plan {
    fn from_request(target: Target, request: &ScoreRequest, seed: u64) -> anyhow::Result<Plan> {
        let trials = request.param_u64("trials")?;
        anyhow::ensure!(trials >= 1, "parameter `trials` must be at least 1");
        Ok(Plan {
            target,
            n: usize::try_from(request.param_u64("n")?).context("parameter `n` is too large")?,
            warmup: request.param_u64("warmup")?,
            trials,
            seed,
        })
    }

    fn args(&self, mode: &str) -> Vec<String> {
        [mode, "--seed", &self.seed.to_string(), "--n", &self.n.to_string()]
            .into_iter()
            .map(str::to_owned)
            .chain(["--warmup".into(), self.warmup.to_string(), "--trials".into(), self.trials.to_string()])
            .collect()
    }
}

impl OptimizeKernel {
    /// Builds `variant`'s driver against `solution` (snapshotted into `scratch`), as a scoring
    /// would, and returns the binary, or why the solution does not build. Needs no device:
    /// tests use it to build the GPU driver on machines without one.
    pub fn build_driver(&self, variant: &str, solution: &Path, scratch: &Path, target_dir: &Path) -> anyhow::Result<Result<PathBuf, String>> {
        let target = self.target(variant)?;
        let plan = BuildPlan { scratch: scratch.to_owned(), solution: solution.to_owned(), target_dir: target_dir.to_owned(), timeout: self.manifest.scoring.timeout };
        driver::build_with_features(&plan, target.driver(), target.solution_features())
    }

    /// Where `variant` runs: on the GPU when it needs the `cuda` feature.
    fn target(&self, variant: &str) -> anyhow::Result<Target> {
        let variant = self.manifest.variant(variant).with_context(|| format!("no variant `{variant}`"))?;
        Ok(if variant.features.iter().any(|f| f == "cuda") { Target::Gpu } else { Target::Cpu })
    }

    fn limits(&self, request: &ScoreRequest, target: Target) -> anyhow::Result<Limits> {
        let variant = self.manifest.variant(&request.variant).with_context(|| format!("no variant `{}`", request.variant))?;
        let timeout = request.solution_timeout_secs.map_or(self.manifest.scoring.timeout, Duration::from_secs_f64);
        Ok(Limits {
            timeout: Some(timeout),
            // No address-space limit on the GPU: the CUDA driver reserves far more virtual
            // memory than it uses, and fails to initialise under one.
            address_space: (target == Target::Cpu).then_some((variant.resources.memory_gib * (1u64 << 30) as f64) as u64),
        })
    }

    /// Builds and runs the driver on `solution`; `Ok(Err(outcome))` when the solution failed.
    fn run_driver(
        &self,
        request: &ScoreRequest,
        solution: &Path,
        label: &str,
        plan: &Plan,
        mode: &str,
        phases: &mut Phases,
    ) -> anyhow::Result<Result<(Value, Duration), Outcome>> {
        let build = BuildPlan {
            scratch: request.env.scratch.join(label),
            solution: solution.to_owned(),
            target_dir: request.env.target_dir.clone(),
            timeout: self.manifest.scoring.timeout,
        };
        let target = plan.target;
        let binary = if let Some(dir) = &self.prebuilt {
            let binary = dir.join(prebuilt_name(target, solution)?);
            anyhow::ensure!(
                binary.is_file(),
                "no prebuilt driver for {} in {} (looked for {}): build them from the same sources with `gpu-check --build-drivers`",
                solution.display(),
                dir.display(),
                binary.display()
            );
            binary
        } else {
            match phases.time("build", || driver::build_with_features(&build, target.driver(), target.solution_features()))? {
                Ok(binary) => binary,
                Err(reason) => return Ok(Err(Outcome::invalid(reason, json!({"phase": "build"})))),
            }
        };
        let limits = self.limits(request, target)?;
        match phases.time("run", || driver::run(&binary, &plan.args(mode), &limits))? {
            // The GPU driver reports its own failures (no device, a CUDA error before the
            // solution ran) as `error`: those are not the solution's.
            DriverRun::Report { report, .. } if report.get("error").is_some() => {
                bail!("the GPU driver failed: {}", report["error"].as_str().unwrap_or("(no message)"))
            }
            DriverRun::Report { report, finished } => Ok(Ok((report, finished.wall))),
            DriverRun::Failed { reason, .. } => Ok(Err(Outcome::invalid(reason, json!({"phase": "run", "n": plan.n})))),
        }
    }

    /// Times `solution` and verifies every timed trial out of process. The raw score is the
    /// median time in milliseconds.
    fn measure(&self, request: &ScoreRequest, solution: &Path, label: &str, plan: &Plan, phases: &mut Phases) -> anyhow::Result<Outcome> {
        let (report, wall) = match self.run_driver(request, solution, label, plan, "run", phases)? {
            Ok(done) => done,
            Err(invalid) => return Ok(invalid),
        };
        let trials_ms: Option<Vec<f64>> =
            report["trials_ms"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect());
        let digests: Option<Vec<String>> =
            report["digests"].as_array().map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect());
        let (Some(trials_ms), Some(digests)) = (trials_ms, digests) else {
            return Ok(Outcome::invalid(format!("the driver's report is malformed: {report}"), json!({})));
        };
        if trials_ms.len() as u64 != plan.trials || digests.len() as u64 != plan.trials {
            return Ok(Outcome::invalid(
                format!("the driver reported {} times and {} digests for {} trials", trials_ms.len(), digests.len(), plan.trials),
                json!({}),
            ));
        }
        // Timed work cannot take longer than the process that did it.
        let reported: f64 = trials_ms.iter().sum();
        if reported > wall.as_secs_f64() * 1000.0 * 1.01 {
            return Ok(Outcome::invalid(
                format!("the reported trial times ({reported:.1} ms) exceed the driver's wall time ({:.1} ms)", wall.as_secs_f64() * 1000.0),
                json!({}),
            ));
        }
        let mismatch = phases.time("verify", || first_wrong_digest(plan, &digests));
        if let Some(k) = mismatch {
            return Ok(Outcome::invalid(
                format!(
                    "timed trial {k}: the output's digest does not match the scorer's own ground truth, although the driver's in-process checks passed (tampering with the driver?)"
                ),
                json!({"trial": k}),
            ));
        }
        // The task's own timed work: everything else in a scoring is overhead.
        *phases.0.entry("timed".into()).or_default() += reported / 1000.0;
        let Some(stats) = Stats::from_samples(&trials_ms) else {
            return Ok(Outcome::invalid("the driver reported non-finite times", json!({"trials_ms": trials_ms})));
        };
        if stats.median <= 0.0 {
            return Ok(Outcome::invalid(format!("a median time of {} ms is not a measurement", stats.median), json!({})));
        }
        let mut message = format!(
            "median {:.4} ms over {} trials (min {:.4}, max {:.4}) for n = {}",
            stats.median, stats.n, stats.min, stats.max, plan.n
        );
        let mut details = json!({"n": plan.n, "trials_ms": trials_ms, "stats": stats, "timed_ms": reported});
        if plan.target == Target::Gpu {
            let median_of = |key: &str| {
                let samples: Vec<f64> = report[key].as_array()?.iter().filter_map(Value::as_f64).collect();
                Some(Stats::from_samples(&samples)?.median)
            };
            let (Some(events_ms), Some(floor_ms)) = (median_of("events_ms"), median_of("floor_ms")) else {
                return Ok(Outcome::invalid(format!("the GPU driver's report is malformed: {report}"), json!({})));
            };
            let device = report["device"].as_str().unwrap_or("an unnamed device").to_owned();
            if let Err(reason) = checks::check_physically_possible(stats.median, floor_ms) {
                return Ok(Outcome::invalid(reason, json!({"trials_ms": details["trials_ms"], "floor_ms": floor_ms, "device": device})));
            }
            message.push_str(&format!(
                " (host clock; {events_ms:.4} ms by events on the driver's stream; the copy floor is {floor_ms:.4} ms, {:.2}x) on {device}",
                stats.median / floor_ms
            ));
            details["events_ms"] = json!(events_ms);
            details["floor_ms"] = json!(floor_ms);
            details["device"] = json!(device);
        }
        Ok(Outcome::valid(stats.median, message, details))
    }

    /// Materializes and times the task's own starting or reference solution.
    fn measure_own(&self, request: &ScoreRequest, dir: &Path, which: Solution, seed: u64, phases: &mut Phases) -> anyhow::Result<Outcome> {
        let plan = Plan::from_request(self.target(&request.variant)?, request, seed)?;
        self.measure(request, dir, &format!("own-{}", which.name()), &plan, phases)
    }
}

/// The first timed trial whose reported digest differs from the ground truth's, recomputed
/// here; trials are verified two at a time (each input takes 400 MB at full size).
fn first_wrong_digest(plan: &Plan, digests: &[String]) -> Option<u64> {
    let verify = |k: u64| {
        let input = spec::generate_input(spec::trial_seed(plan.seed, plan.warmup + k), plan.n);
        digests[k as usize] != format!("{:016x}", spec::reference_digest(&input))
    };
    let trials: Vec<u64> = (0..plan.trials).collect();
    trials.chunks(2).find_map(|pair| {
        let wrong: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = pair.iter().map(|&k| s.spawn(move || verify(k))).collect();
            handles.into_iter().map(|h| h.join().expect("verification does not panic")).collect()
        });
        pair.iter().zip(wrong).find_map(|(&k, w)| w.then_some(k))
    })
}

/// Calibration and benchmark measurements use seeds of their own, derived from the request's.
fn derived_seed(seed: u64, which: Solution) -> u64 {
    spec::trial_seed(seed ^ 0x5eed_ca11_b4a7_e000, which as u64 + 1)
}

impl Task for OptimizeKernel {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let mut phases = Phases::default();
        let target = self.target(&request.variant)?;
        // Without a device nothing can be measured: say so before building anything.
        let device = if target == Target::Gpu { gpu_device()? } else { String::new() };
        let plan = Plan::from_request(target, request, request.seed)?;
        let outcome = self.measure(request, &request.solution, "solution", &plan, &mut phases)?;
        // Cached per machine (the fingerprint), per driver source and, on the GPU, per card.
        let sources: String = target.driver().files.iter().map(|(_, text)| *text).collect();
        let key = fsutil::hash_bytes(format!("{sources}{device}").as_bytes());
        let calibration = task::calibrate_if_asked(request, &outcome, &key, &mut phases, |dir, which, own| {
            self.measure_own(request, dir, which, derived_seed(request.seed, which), own)
        })?;
        Ok(Scored { outcome, calibration, phases: phases.0 })
    }

    fn bench(&self, request: &ScoreRequest) -> anyhow::Result<BenchReport> {
        let target = self.target(&request.variant)?;
        if target == Target::Gpu {
            gpu_device()?;
        }
        let mut phases = Phases::default();
        let mut outcomes = Vec::new();
        for which in [Solution::Starting, Solution::Reference] {
            let dir = request.env.scratch.join("bench").join(which.name());
            fsutil::materialize(&request.env.task_dir, which, &dir)?;
            let outcome = self.measure_own(request, &dir, which, derived_seed(request.seed, which), &mut phases)?;
            outcome.raw().with_context(|| format!("the {} solution is invalid: {}", which.name(), outcome.message()))?;
            outcomes.push((which.name(), outcome));
        }
        let plan = Plan::from_request(target, request, request.seed)?;
        let title = format!("optimize-kernel [{}], n = {}, median of {} trials", request.variant, plan.n, plan.trials);
        match target {
            Target::Gpu => Ok(gpu_bench_report(title, plan.n, &outcomes)),
            Target::Cpu => {
                let times: Vec<(&str, f64)> = outcomes.iter().map(|(name, o)| (*name, o.raw().unwrap_or(f64::NAN))).collect();
                self.cpu_bench_report(request, title, &plan, &times, &mut phases)
            }
        }
    }
}

impl OptimizeKernel {
    /// The cpu variant's table: the solutions against four ways of copying the same bytes.
    fn cpu_bench_report(&self, request: &ScoreRequest, title: String, plan: &Plan, times: &[(&str, f64)], phases: &mut Phases) -> anyhow::Result<BenchReport> {
        // The floor: the same bytes copied, linked against the starting solution (unused there).
        let starting_dir = request.env.scratch.join("bench").join("starting");
        let (floor, _) = self
            .run_driver(request, &starting_dir, "own-starting", plan, "floor", phases)?
            .map_err(|o| anyhow::anyhow!("the floor measurement failed: {}", o.message()))?;
        let median = |key: &str| -> anyhow::Result<f64> {
            let samples: Vec<f64> = floor[key].as_array().context("floor report")?.iter().filter_map(Value::as_f64).collect();
            Ok(Stats::from_samples(&samples).context("floor samples")?.median)
        };
        let floors = [
            ("floor: copy into a fresh Vec, 1 thread", median("fresh_ms")?),
            ("floor: copy into a fresh Vec, all threads", median("fresh_parallel_ms")?),
            ("floor: copy into a touched buffer, 1 thread", median("warm_ms")?),
            ("floor: copy into a touched buffer, all threads", median("warm_parallel_ms")?),
        ];
        let fresh_floor = floors[0].1.min(floors[1].1);
        let warm_floor = floors[2].1.min(floors[3].1);
        let mut rows: Vec<Vec<String>> =
            floors.iter().map(|(name, ms)| vec![(*name).to_owned(), format!("{ms:.2}"), format!("{:.2}", ms / fresh_floor), format!("{:.2}", ms / warm_floor)]).collect();
        for (name, ms) in times {
            rows.push(vec![format!("{name} solution"), format!("{ms:.2}"), format!("{:.2}", ms / fresh_floor), format!("{:.2}", ms / warm_floor)]);
        }
        Ok(BenchReport {
            title,
            header: vec!["what".into(), "ms".into(), "x fresh floor".into(), "x touched floor".into()],
            rows,
            notes: vec![
                format!("machine: {}", Fingerprint::current().describe()),
                format!("starting / reference: {:.2}x", times[0].1 / times[1].1),
                "the fresh floor (best of 1 thread and all threads) is the fair one: a solution must allocate its output too".into(),
            ],
        })
    }
}

/// The gpu variant's table: the solutions against a device-to-device copy of the same bytes,
/// which every run of the GPU driver measures too.
fn gpu_bench_report(title: String, n: usize, outcomes: &[(&str, Outcome)]) -> BenchReport {
    let detail = |o: &Outcome, key: &str| o.details()[key].as_f64().unwrap_or(f64::NAN);
    let floor = outcomes.iter().map(|(_, o)| detail(o, "floor_ms")).fold(f64::INFINITY, f64::min);
    let gb_per_s = |ms: f64| 8.0 * n as f64 / (ms * 1e6);
    let mut rows = vec![vec![
        "floor: device-to-device copy".to_owned(),
        format!("{floor:.4}"),
        format!("{floor:.4}"),
        "1.00".to_owned(),
        format!("{:.0}", gb_per_s(floor)),
    ]];
    for (name, outcome) in outcomes {
        let ms = outcome.raw().unwrap_or(f64::NAN);
        rows.push(vec![
            format!("{name} solution"),
            format!("{ms:.4}"),
            format!("{:.4}", detail(outcome, "events_ms")),
            format!("{:.2}", ms / floor),
            format!("{:.0}", gb_per_s(ms)),
        ]);
    }
    let device = outcomes.first().and_then(|(_, o)| o.details()["device"].as_str()).unwrap_or("an unnamed device").to_owned();
    let (starting, reference) = (outcomes[0].1.raw().unwrap_or(f64::NAN), outcomes[1].1.raw().unwrap_or(f64::NAN));
    BenchReport {
        title,
        header: vec!["what".into(), "ms (host)".into(), "ms (events)".into(), "x floor".into(), "GB/s".into()],
        rows,
        notes: vec![
            format!("device: {device}"),
            format!("machine: {}", Fingerprint::current().describe()),
            format!("starting / reference: {:.2}x", starting / reference),
            "ms (host): from the call to a synchronize of the whole device, the score; GB/s counts 4 bytes read and 4 written per value"
                .into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_matches_the_crate() {
        let task = OptimizeKernel::new();
        assert_eq!(task.manifest().task.id, env!("CARGO_PKG_NAME"));
        assert!(task.manifest().variant("cpu").is_some());
        assert_eq!(task.target("cpu").unwrap(), Target::Cpu);
        assert_eq!(task.target("gpu").unwrap(), Target::Gpu);
    }
}
