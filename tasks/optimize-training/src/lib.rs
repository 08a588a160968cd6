//! The optimize-training scorer (RE-Bench's "Optimize LLM Foundry").
//!
//! A scoring:
//! 1. reads what every run needs into memory: the pretrained checkpoint and the vocabulary
//!    (the public store), hidden finetuning data drawn from the scoring's seed (a data set of
//!    its own for every run), the default configuration and `option-checks` configurations
//!    with every option changed;
//! 2. builds the solution's pipeline (a driver, out of the agent's reach, that calls
//!    `solution::run` with the command line `src/main.rs` gets; not timed);
//! 3. runs it, untimed, with each option configuration: these runs check that the solution
//!    honours every option, and they are its warm-up (page cache, first-run effects);
//! 4. when the harness asks for calibration (it always does: `[calibration] mode = "live"`),
//!    builds the task's own starting and reference pipelines the same way;
//! 5. runs `timed-runs` rounds with the default configuration, round `r` on data set `r`: the
//!    solution, and when calibrating the starting and the reference pipelines, one after the
//!    other in an order rotated every round ([`interleave`] says why), timing each whole process;
//!    the raw score and the endpoints of normalization are the solution's and the two
//!    pipelines' seconds in the median round (`Timings::median_round`: each round's solution run
//!    normalized against the pipelines timed beside it), so no calibration is cached, since one
//!    taken under another load does not transfer; without endpoints (a scoring not asked to
//!    calibrate) the raw score is the solution's fastest run ([`fastest`] says why). The
//!    details keep every round's seconds and the ratios, so the load shows;
//! 6. after each round (and each option check) reads the weights every run wrote and only then
//!    computes the reference weights, in the scorer's own process, with the task's own
//!    reference pipeline compiled in (`pipeline`); every run's weights, the task's own
//!    pipelines' included, must agree within the variant's tolerance ([`compare`]).
//!
//! Why the reference weights never touch the disk: solutions run as the scorer's user, outside
//! any sandbox, so anything the scorer writes or caches a solution could read (RE-Bench's
//! agents copied the reference model). Here they exist only in the scorer's memory, computed
//! after the solution's process group has ended, from inputs the scorer holds in memory; fresh
//! data every round means a solution cannot reuse what an earlier run computed either.
//!
//! The `device` parameter (`cpu` unless a variant says otherwise; the gpu variant's `cuda`) is
//! where every pipeline trains, the scorer's own reference computation included.

pub mod compare;
pub mod hidden;
pub mod interleave;
pub mod pipeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use candle_core::Device;
use rebench_pretrained::PretrainSpec;
use rebench_scoring::driver::{self, BuildPlan, DriverRun, DriverSource};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::log::now_rfc3339;
use rebench_scoring::manifest::Transform;
use rebench_scoring::measure::{Fingerprint, Stats};
use rebench_scoring::params;
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Calibration, CalibrationSource, Manifest, Outcome, Task};
use serde_json::{Value, json};

use crate::compare::{Difference, MAX_RELATIVE_DIFF};
use crate::interleave::{Contestant, Timings};
use crate::pipeline::checkpoint::Checkpoint;
use crate::pipeline::config::Config;

const MANIFEST: &str = include_str!("../task.toml");
const DRIVER_MAIN: &str = include_str!("../driver/main.rs");
const DRIVER: DriverSource<'static> = DriverSource { files: &[("src/main.rs", DRIVER_MAIN)] };

/// The seed of the example data in the public store (hidden data uses the scoring's seed).
const PUBLIC_DATA_SEED: u64 = 0x0001_ab11c;

#[derive(Debug)]
pub struct OptimizeTraining {
    manifest: Manifest,
}

impl Default for OptimizeTraining {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything a run of a pipeline needs, held by the scorer.
struct Inputs {
    pretrained_bytes: Vec<u8>,
    pretrained: Checkpoint,
    vocab_text: String,
    vocab: Vec<String>,
    /// The `device` parameter: where every pipeline trains, and its name for their command line.
    device_name: String,
    device: Device,
    /// The largest accepted relative difference of the weights (`max-relative-diff`).
    tolerance: f64,
}

/// One run: its data and configuration, whether it is timed, and the reference weights once
/// computed.
struct Job {
    name: String,
    timed: bool,
    jsonl: String,
    config: Config,
    reference: Option<Checkpoint>,
}

/// A built pipeline taking part in a scoring, and the directory it runs in.
struct Entrant {
    who: Contestant,
    binary: PathBuf,
    run_dir: PathBuf,
}

/// What the runs so far gave: every timed run's seconds and every run's check.
#[derive(Default)]
struct Measured {
    timings: Timings,
    checks: Vec<Value>,
}

impl OptimizeTraining {
    pub fn new() -> OptimizeTraining {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        OptimizeTraining { manifest }
    }
}

/// Where a variant that names no `device` trains.
const DEFAULT_DEVICE: &str = "cpu";

/// The request's `device` parameter.
fn device_name(request: &ScoreRequest) -> anyhow::Result<&str> {
    params::str_or(&request.params, "device", DEFAULT_DEVICE)
}

/// A seed of its own for each use of the scoring's seed.
fn derive(seed: u64, k: u64) -> u64 {
    let mut rng = pipeline::rng::SplitMix64::new(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.next_u64()
}

impl OptimizeTraining {
    fn load_inputs(&self, request: &ScoreRequest) -> anyhow::Result<Inputs> {
        let public = request.env.store.join("public");
        let model = public.join("model.safetensors");
        let pretrained_bytes = std::fs::read(&model).with_context(|| format!("cannot read {} (run prepare)", model.display()))?;
        let pretrained = Checkpoint::from_bytes(&pretrained_bytes).with_context(|| format!("the pretrained model {}", model.display()))?;
        let vocab_text = std::fs::read_to_string(public.join("vocab.txt")).context("cannot read the public vocab.txt (run prepare)")?;
        let vocab = vocab_text.lines().map(str::to_owned).collect();
        let device_name = device_name(request)?.to_owned();
        let device = rebench_pretrained::device::by_name(&device_name)?;
        let tolerance = match request.params.get("max-relative-diff") {
            None => MAX_RELATIVE_DIFF,
            Some(v) => v.as_f64().filter(|t| *t > 0.0).context("parameter `max-relative-diff` must be a positive number")?,
        };
        Ok(Inputs { pretrained_bytes, pretrained, vocab_text, vocab, device_name, device, tolerance })
    }

    /// The option checks (run first, untimed: they are also the warm-up) and the timed runs
    /// (default options), each on data of its own drawn from `request`'s seed.
    fn jobs(&self, request: &ScoreRequest, inputs: &Inputs) -> anyhow::Result<Vec<Job>> {
        let spec = PretrainSpec::named(request.params.get("pretrained").and_then(Value::as_str).context("parameter `pretrained`")?)?;
        let lang = rebench_corpus::Language::new(spec.corpus.config.clone());
        let context = inputs.pretrained.config.context;
        let mut jobs = Vec::new();
        for k in 0..request.param_u64("option-checks")? {
            let config = hidden::sample_options(derive(request.seed, 100 + k), context);
            jobs.push(Job {
                name: format!("options check {}", k + 1),
                timed: false,
                jsonl: hidden::finetuning_data(&lang, derive(request.seed, 2 + k), params::usize(&request.params, "option-data-tokens")?, config.data.min_doc_tokens),
                config,
                reference: None,
            });
        }
        let runs = request.param_u64("timed-runs")?;
        anyhow::ensure!(runs >= 1, "parameter `timed-runs` must be at least 1");
        for r in 0..runs {
            let config = hidden::default_config(context);
            jobs.push(Job {
                name: format!("timed run {} of {runs}", r + 1),
                timed: true,
                jsonl: hidden::finetuning_data(&lang, derive(request.seed, 1000 + r), params::usize(&request.params, "data-tokens")?, config.data.min_doc_tokens),
                config,
                reference: None,
            });
        }
        Ok(jobs)
    }

    fn limits(&self, request: &ScoreRequest, inputs: &Inputs) -> anyhow::Result<Limits> {
        let variant = self.manifest.variant(&request.variant).with_context(|| format!("no variant `{}`", request.variant))?;
        let timeout = request.solution_timeout_secs.map_or(self.manifest.scoring.timeout, Duration::from_secs_f64);
        // CUDA reserves far more address space than it uses and cannot start under a limit
        // (optimize-kernel's gpu driver runs without one for the same reason): off the CPU,
        // host memory is bounded by the machine only.
        let address_space = inputs.device.is_cpu().then_some((variant.resources.memory_gib * (1u64 << 30) as f64) as u64);
        Ok(Limits { timeout: Some(timeout), address_space })
    }

    /// Runs the built pipeline on `job` in a fresh directory; the weights it wrote and the
    /// process's wall time, or why it failed.
    fn run_job(&self, request: &ScoreRequest, binary: &Path, dir: &Path, inputs: &Inputs, job: &Job) -> anyhow::Result<Result<(Vec<u8>, f64), String>> {
        fsutil::remove_tree(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        std::fs::create_dir_all(dir)?;
        let files = [
            ("data.jsonl", job.jsonl.as_bytes()),
            ("finetune.toml", &toml::to_string(&job.config)?.into_bytes()[..]),
            ("model.safetensors", &inputs.pretrained_bytes[..]),
            ("vocab.txt", inputs.vocab_text.as_bytes()),
        ]
        .map(|(name, bytes)| (name, bytes.to_vec()));
        let mut args = Vec::new();
        for ((name, bytes), flag) in files.iter().zip(["--data", "--config", "--model", "--vocab"]) {
            std::fs::write(dir.join(name), bytes).with_context(|| format!("cannot write {name}"))?;
            args.extend([flag.to_string(), dir.join(name).display().to_string()]);
        }
        let out = dir.join("out");
        args.extend(["--out".to_string(), out.display().to_string()]);
        // Only off the CPU: the cpu variants' command line stays the one their solutions know.
        if !inputs.device.is_cpu() {
            args.extend(["--device".to_string(), inputs.device_name.clone()]);
        }
        let result = match driver::run(binary, &args, &self.limits(request, inputs)?)? {
            DriverRun::Failed { reason, .. } => Err(reason),
            DriverRun::Report { finished, .. } => match std::fs::read(out.join("model.safetensors")) {
                Ok(bytes) => Ok((bytes, finished.wall.as_secs_f64())),
                Err(err) => Err(format!("the pipeline finished but wrote no readable <out>/model.safetensors ({err})")),
            },
        };
        fsutil::remove_tree(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        Ok(result)
    }

    /// Builds the driver of `solution` in `<scratch>/<label>` (cleared first), with the
    /// solution's `cuda` feature when the variant trains on a GPU: the binary, or why the
    /// solution does not build.
    pub fn build_solution(&self, request: &ScoreRequest, solution: &Path, label: &str) -> anyhow::Result<Result<PathBuf, String>> {
        let plan = BuildPlan {
            scratch: request.env.scratch.join(label),
            solution: solution.to_owned(),
            target_dir: request.env.target_dir.clone(),
            timeout: self.manifest.scoring.timeout,
        };
        let features: &[&str] = if device_name(request)? == "cpu" { &[] } else { &["cuda"] };
        driver::build_with_features(&plan, DRIVER, features)
    }

    /// Scores a driver built by [`OptimizeTraining::build_solution`] with the same `label`
    /// (alone, without calibration): what `score` does after building. Tests use it to run one
    /// build many times.
    pub fn score_built(&self, request: &ScoreRequest, binary: &Path, label: &str) -> anyhow::Result<Outcome> {
        let inputs = self.load_inputs(request)?;
        let mut jobs = self.jobs(request, &inputs)?;
        let solution = [Entrant { who: Contestant::Solution, binary: binary.to_owned(), run_dir: request.env.scratch.join(label).join("run") }];
        let mut measured = Measured::default();
        if let Some(invalid) = self.run_rounds(request, &solution, &inputs, &mut jobs, &mut measured, &mut Phases::default())? {
            return Ok(invalid);
        }
        Ok(outcome(&measured, inputs.tolerance, self.manifest.metric.transform))
    }

    /// Builds the task's own `which` pipeline into `<scratch>/own-<name>`.
    fn build_own(&self, request: &ScoreRequest, which: Solution, who: Contestant) -> anyhow::Result<Entrant> {
        let label = format!("own-{}", which.name());
        let source = request.env.scratch.join("own-sources").join(which.name());
        fsutil::materialize(&request.env.task_dir, which, &source).with_context(|| format!("cannot materialize the {} solution", which.name()))?;
        match self.build_solution(request, &source, &label)? {
            Ok(binary) => Ok(Entrant { who, binary, run_dir: request.env.scratch.join(&label).join("run") }),
            Err(reason) => bail!("calibration failed: the task's own {} pipeline does not build: {reason}", which.name()),
        }
    }

    /// Runs `entrants` on every job, timed jobs as rounds in [`interleave::order`], and checks
    /// each output against the job's reference weights, computed once the round's last
    /// process has ended. `Some(outcome)`: the solution is invalid (the task's own pipelines
    /// failing is an infrastructure fault, an `Err`).
    fn run_rounds(&self, request: &ScoreRequest, entrants: &[Entrant], inputs: &Inputs, jobs: &mut [Job], measured: &mut Measured, phases: &mut Phases) -> anyhow::Result<Option<Outcome>> {
        let contestants: Vec<Contestant> = entrants.iter().map(|e| e.who).collect();
        for job in jobs.iter_mut() {
            let order = if job.timed { interleave::order(&contestants, measured.timings.rounds.len()) } else { vec![Contestant::Solution] };
            let mut outputs = Vec::new();
            for who in order {
                let entrant = entrants.iter().find(|e| e.who == who).expect("every contestant has an entrant");
                let phase = match (who, job.timed) {
                    (Contestant::Solution, true) => "run",
                    (Contestant::Solution, false) => "options",
                    _ => "calibrate",
                };
                match phases.time(phase, || self.run_job(request, &entrant.binary, &entrant.run_dir, inputs, job))? {
                    Ok((bytes, wall)) => outputs.push((who, bytes, wall)),
                    Err(reason) if who == Contestant::Solution => {
                        return Ok(Some(Outcome::invalid(format!("{}: {reason}", job.name), json!({"run": job.name, "config": job.config}))));
                    }
                    Err(reason) => bail!("calibration failed: the task's own {} pipeline failed on the {}: {reason}", who.name(), job.name),
                }
            }
            if job.timed {
                measured.timings.rounds.push(outputs.iter().map(|(who, _, wall)| (*who, *wall)).collect());
            }
            if job.reference.is_none() {
                let reference = phases
                    .time("reference", || pipeline::finetune(&job.config, &job.jsonl, &inputs.pretrained, &inputs.vocab, &inputs.device))
                    .with_context(|| format!("the reference pipeline failed on the {}", job.name))?;
                job.reference = Some(reference);
            }
            let reference = job.reference.as_ref().expect("computed above");
            for (who, bytes, wall) in outputs {
                match verdict(&bytes, reference, &inputs.pretrained, inputs.tolerance) {
                    Ok(diff) => measured.checks.push(json!({
                        "run": job.name, "pipeline": who.name(), "seconds": wall,
                        "norm_diff_sum": diff.norm_diff_sum, "relative": diff.relative,
                    })),
                    Err((reason, diff)) if who == Contestant::Solution => {
                        let options = if job.timed { String::new() } else { format!(" (options: {})", toml::to_string(&job.config)?.replace('\n', "; ")) };
                        return Ok(Some(Outcome::invalid(
                            format!("{}{options}: {reason}", job.name),
                            json!({"run": job.name, "config": job.config, "difference": diff}),
                        )));
                    }
                    Err((reason, _)) => bail!("calibration failed: the task's own {} pipeline is invalid on the {}: {reason}", who.name(), job.name),
                }
            }
        }
        Ok(None)
    }
}

/// The solution's valid outcome from its measured runs: raw = its seconds in the median round
/// when the pipelines were timed beside it, else its fastest run.
fn outcome(measured: &Measured, tolerance: f64, transform: Transform) -> Outcome {
    let times = measured.timings.of(Contestant::Solution);
    let median = measured.timings.median_round(transform);
    let seconds = median.map_or_else(|| fastest(&times), |m| m.solution);
    let own: Vec<&Value> = measured.checks.iter().filter(|c| c["pipeline"] == Contestant::Solution.name()).collect();
    let worst = own.iter().filter_map(|c| c["relative"].as_f64()).fold(0.0, f64::max);
    let list = times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", ");
    let timing = match median {
        Some(m) => format!(
            "finetuning took {seconds:.2} s in round {} of {} (timed runs: {list} s), the median round when each is set against the task's own pipelines timed beside it on the same data: there the starting pipeline took {:.2} s and the reference {:.2} s (starting/solution {:.2}x, solution/reference {:.2}x)",
            m.round + 1,
            times.len(),
            m.starting,
            m.reference,
            m.starting / seconds,
            seconds / m.reference
        ),
        None => format!("finetuning took {seconds:.2} s (the fastest of {} timed runs: {list} s)", times.len()),
    };
    Outcome::valid(
        seconds,
        format!(
            "{timing}; the weights match the reference pipeline's in all {} runs (largest relative difference {worst:.2e}, tolerance {tolerance:.0e})",
            own.len()
        ),
        json!({
            "seconds": seconds,
            "timed_runs": times,
            "stats": Stats::from_samples(&times),
            "interleaved": measured.timings.details(),
            // 1-based, as `data_set` in the rounds; null without endpoints.
            "median_round": median.map(|m| m.round + 1),
            "checks": measured.checks,
        }),
    )
}

/// The normalization endpoints of a calibrating scoring: the starting and reference pipelines'
/// runs of the median round, the solution's raw score's round.
fn endpoints(timings: &Timings, transform: Transform) -> anyhow::Result<Calibration> {
    let median = timings.median_round(transform).context("no round timed the solution and both of the task's own pipelines")?;
    Ok(Calibration {
        starting: median.starting,
        reference: median.reference,
        source: CalibrationSource::Live { fingerprint: Fingerprint::current().describe(), measured_at: now_rfc3339() },
    })
}

/// The raw score of timed runs with no pipeline timed beside them (a scoring not asked to
/// calibrate): the fastest.
///
/// RE-Bench timed one run, on dedicated hardware. Here scoring shares the machine (other
/// trials, other sessions, a build), and that noise only ever adds time: a run cannot be faster
/// than the work the pipeline does, but any run can be slowed by a neighbour. So the minimum
/// is the estimate of the pipeline's own time that moves least with the load; the median
/// still moves when two runs of three are slowed. Every timed run has data of its own with the
/// same number of tokens (the same steps), and every run's weights are checked, so a solution
/// gains nothing from a fast wrong run or from caching one run's work for the next.
pub fn fastest(times: &[f64]) -> f64 {
    times.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The weights `bytes` against the reference: the difference, or why they do not pass.
fn verdict(bytes: &[u8], reference: &Checkpoint, pretrained: &Checkpoint, tolerance: f64) -> Result<Difference, (String, Option<Difference>)> {
    let diff = compare::compare(bytes, reference, pretrained).map_err(|reason| (reason, None))?;
    if diff.relative > tolerance || diff.relative.is_nan() {
        return Err((
            format!(
                "the weights differ from the reference pipeline's: relative difference {:.3e} > {tolerance:.0e} (sum over parameters of the norm of the difference {:.4e}, most in {}); the pipeline must compute the same thing up to float rounding",
                diff.relative, diff.norm_diff_sum, diff.worst_param
            ),
            Some(diff),
        ));
    }
    Ok(diff)
}

impl Task for OptimizeTraining {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let params = self.manifest.variant_params(&request.variant)?;
        let name = params::str(&params, "pretrained")?;
        let spec = PretrainSpec::named(name)?;
        let device_name = params::str_or(&params, "device", DEFAULT_DEVICE)?;
        let corpus = rebench_pretrained::synthetic_corpus(&request.env.assets, &spec.corpus)?;
        let model = rebench_pretrained::pretrained_on(&request.env.assets, &spec, &rebench_pretrained::device::by_name(device_name)?)?;
        let public = request.env.store.join("public");
        std::fs::create_dir_all(&public)?;
        std::fs::copy(model.checkpoint(), public.join("model.safetensors")).context("cannot copy the pretrained model")?;
        std::fs::copy(corpus.vocab_file(), public.join("vocab.txt")).context("cannot copy the vocabulary")?;
        std::fs::write(public.join("finetune.toml"), hidden::default_config_toml(spec.model.context))?;
        let tokens = params::usize(&params, "data-tokens")?;
        let min_doc_tokens = hidden::default_config(spec.model.context).data.min_doc_tokens;
        std::fs::write(public.join("train_data.jsonl"), hidden::finetuning_data(&corpus.language(), PUBLIC_DATA_SEED, tokens, min_doc_tokens))?;
        Ok(format!(
            "public: model.safetensors (pretrained `{name}` on {device_name}, validation loss {:.4}), vocab.txt, finetune.toml, train_data.jsonl (~{tokens} tokens)",
            model.validation_loss
        ))
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let mut phases = Phases::default();
        let inputs = phases.time("inputs", || self.load_inputs(request))?;
        let mut jobs = phases.time("inputs", || self.jobs(request, &inputs))?;
        let binary = match phases.time("build", || self.build_solution(request, &request.solution, "solution"))? {
            Ok(binary) => binary,
            Err(reason) => return Ok(Scored { outcome: Outcome::invalid(reason, json!({"phase": "build"})), calibration: None, phases: phases.0 }),
        };
        let mut entrants = vec![Entrant { who: Contestant::Solution, binary, run_dir: request.env.scratch.join("solution").join("run") }];
        let untimed = jobs.iter().take_while(|j| !j.timed).count();
        let (options, timed) = jobs.split_at_mut(untimed);
        let mut measured = Measured::default();
        // The option checks first, the solution alone: an invalid solution costs no own builds.
        if let Some(invalid) = self.run_rounds(request, &entrants, &inputs, options, &mut measured, &mut phases)? {
            return Ok(Scored { outcome: invalid, calibration: None, phases: phases.0 });
        }
        if request.calibrate {
            for (which, who) in [(Solution::Starting, Contestant::Starting), (Solution::Reference, Contestant::Reference)] {
                entrants.push(phases.time("calibrate", || self.build_own(request, which, who))?);
            }
        }
        if let Some(invalid) = self.run_rounds(request, &entrants, &inputs, timed, &mut measured, &mut phases)? {
            return Ok(Scored { outcome: invalid, calibration: None, phases: phases.0 });
        }
        let transform = self.manifest.metric.transform;
        let calibration = if request.calibrate { Some(endpoints(&measured.timings, transform)?) } else { None };
        Ok(Scored { outcome: outcome(&measured, inputs.tolerance, transform), calibration, phases: phases.0 })
    }
}

/// The task crate's own starting or reference solution, materialized under `dir`.
pub fn own_solution(dir: &Path, which: Solution) -> anyhow::Result<PathBuf> {
    let dest = dir.join(which.name());
    fsutil::materialize(Path::new(env!("CARGO_MANIFEST_DIR")), which, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_matches_the_crate() {
        let task = OptimizeTraining::new();
        assert_eq!(task.manifest().task.id, env!("CARGO_PKG_NAME"));
        for variant in ["cpu", "tiny", "gpu"] {
            let params = task.manifest().variant_params(variant).unwrap();
            PretrainSpec::named(params::str(&params, "pretrained").unwrap()).unwrap();
        }
    }

    #[test]
    fn every_data_set_of_a_size_makes_the_same_samples() {
        let spec = PretrainSpec::cpu_default();
        let lang = rebench_corpus::Language::new(spec.corpus.config.clone());
        for (seed, tokens, min) in [(1, 10_000, 16), (2, 10_000, 16), (3, 4_000, 0), (4, 4_000, 40), (5, 4_000, 120), (6, 200, 120)] {
            let jsonl = hidden::finetuning_data(&lang, seed, tokens, min);
            let stream = pipeline::fastdata::tokenize_jsonl(&jsonl, lang.words(), min).unwrap();
            assert_eq!(stream.len(), tokens, "seed {seed}, min_doc_tokens {min}");
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data.jsonl");
            std::fs::write(&data, &jsonl).unwrap();
            let shard = pipeline::data::convert(&data, dir.path()).unwrap();
            let starting = pipeline::data::tokenize(&shard, lang.words(), min).unwrap();
            assert_eq!(starting.iter().map(Vec::len).sum::<usize>(), tokens, "the starting pipeline's tokenizer, seed {seed}");
        }
    }

    #[test]
    fn the_raw_score_is_the_fastest_timed_run() {
        assert_eq!(fastest(&[12.5, 9.75, 30.0]), 9.75);
        assert_eq!(fastest(&[4.0]), 4.0);
    }

    #[test]
    fn the_raw_score_and_the_endpoints_come_from_the_same_rounds() {
        use Contestant::{Reference, Solution, Starting};
        let timings = Timings {
            rounds: vec![
                vec![(Solution, 9.0), (Starting, 21.0), (Reference, 7.0)],
                vec![(Starting, 20.0), (Reference, 6.5), (Solution, 8.0)],
            ],
        };
        // Round 1 scores ln(21/9)/ln(21/7) = 0.771, round 2 ln(20/8)/ln(20/6.5) = 0.816: the
        // lower median of two is round 1, whose three runs are the score.
        let calibration = endpoints(&timings, Transform::Ln).unwrap();
        assert_eq!((calibration.starting, calibration.reference), (21.0, 7.0));
        assert!(matches!(calibration.source, CalibrationSource::Live { .. }));
        let checks = vec![json!({"pipeline": "solution", "relative": 1e-4}), json!({"pipeline": "starting", "relative": 5e-4})];
        let measured = Measured { timings, checks };
        let scored = outcome(&measured, MAX_RELATIVE_DIFF, Transform::Ln);
        assert_eq!(scored.raw(), Some(9.0));
        assert!(scored.message().contains("took 9.00 s in round 1 of 2"), "{}", scored.message());
        assert!(scored.message().contains("the starting pipeline took 21.00 s and the reference 7.00 s"), "{}", scored.message());
        assert!(scored.message().contains("in all 1 runs (largest relative difference 1.00e-4"), "{}", scored.message());
        // A scoring that timed only the solution has no endpoints to give, and its raw score
        // is the fastest run.
        let alone = Timings { rounds: vec![vec![(Solution, 3.0)], vec![(Solution, 2.0)]] };
        assert!(endpoints(&alone, Transform::Ln).is_err());
        let scored = outcome(&Measured { timings: alone, checks: vec![] }, MAX_RELATIVE_DIFF, Transform::Ln);
        assert_eq!(scored.raw(), Some(2.0));
        assert!(scored.message().contains("the fastest of 2 timed runs"), "{}", scored.message());
    }

    #[test]
    fn option_sets_change_every_option_that_matters() {
        let d = hidden::default_config(64);
        for seed in 0..20 {
            let o = hidden::sample_options(seed, 64);
            o.validate().unwrap();
            assert_ne!(o.data.seq_len, d.data.seq_len);
            assert_ne!(o.data.min_doc_tokens, d.data.min_doc_tokens);
            assert_ne!(o.data.shuffle_seed, d.data.shuffle_seed);
            assert_ne!(o.optimizer.lr, d.optimizer.lr);
            assert_ne!(o.optimizer.beta1, d.optimizer.beta1);
            assert_ne!(o.optimizer.beta2, d.optimizer.beta2);
            assert_ne!(o.optimizer.eps, d.optimizer.eps);
            assert_ne!(o.optimizer.weight_decay, d.optimizer.weight_decay);
            assert_ne!(o.optimizer.grad_clip, d.optimizer.grad_clip);
            assert_ne!(o.schedule.kind, d.schedule.kind);
            assert_ne!(o.schedule.warmup_steps, d.schedule.warmup_steps);
            assert_ne!(o.schedule.min_lr_ratio, d.schedule.min_lr_ratio);
            assert_ne!(o.train.epochs, d.train.epochs);
            assert_ne!(o.train.batch_size, d.train.batch_size);
        }
    }
}
