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
//! 4. runs it `timed-runs` times with the default configuration and times each whole process;
//!    the raw score is the fastest of them, in seconds (see [`fastest`] for why);
//! 5. after each run reads the weights it wrote and only then computes the reference weights,
//!    in the scorer's own process, with the task's own reference pipeline compiled in
//!    (`pipeline`); every run's weights must agree within [`compare::MAX_RELATIVE_DIFF`].
//!
//! Why the reference weights never touch the disk: solutions run as the scorer's user, outside
//! any sandbox, so anything the scorer writes or caches a solution could read (RE-Bench's
//! agents copied the reference model). Here they exist only in the scorer's memory, computed
//! after the solution's process group has ended, from inputs the scorer holds in memory; fresh
//! data every scoring means a solution cannot reuse what an earlier run computed either.

pub mod compare;
pub mod hidden;
pub mod pipeline;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rebench_pretrained::PretrainSpec;
use rebench_scoring::driver::{self, BuildPlan, DriverRun, DriverSource};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::measure::Stats;
use rebench_scoring::subprocess::Limits;
use rebench_scoring::task::{self, Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::{Value, json};

use crate::compare::{Difference, MAX_RELATIVE_DIFF};
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

/// What running a solution on every job gave: the timed runs' seconds and every run's check, or
/// why it is invalid.
type Measured = Result<(Vec<f64>, Vec<Value>), Outcome>;

impl OptimizeTraining {
    pub fn new() -> OptimizeTraining {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        OptimizeTraining { manifest }
    }

    fn param<'a>(&'a self, variant: &str, key: &str) -> anyhow::Result<&'a toml::Value> {
        let v = self.manifest.variant(variant).with_context(|| format!("no variant `{variant}`"))?;
        v.params.get(key).with_context(|| format!("variant `{variant}` has no parameter `{key}`"))
    }
}

/// The shared pretrained model a variant starts from.
pub fn pretrain_spec(name: &str) -> anyhow::Result<PretrainSpec> {
    match name {
        "cpu-default" => Ok(PretrainSpec::cpu_default()),
        "tiny" => Ok(PretrainSpec::tiny()),
        other => anyhow::bail!("unknown pretrained model `{other}` (cpu-default or tiny)"),
    }
}

fn usize_param(request: &ScoreRequest, key: &str) -> anyhow::Result<usize> {
    usize::try_from(request.param_u64(key)?).with_context(|| format!("parameter `{key}` is too large"))
}

/// A seed of its own for each use of the scoring's seed.
fn derive(seed: u64, k: u64) -> u64 {
    let mut rng = pipeline::rng::SplitMix64::new(seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.next_u64()
}

impl OptimizeTraining {
    fn load_inputs(&self, public: &Path) -> anyhow::Result<Inputs> {
        let model = public.join("model.safetensors");
        let pretrained_bytes = std::fs::read(&model).with_context(|| format!("cannot read {} (run prepare)", model.display()))?;
        let pretrained = Checkpoint::from_bytes(&pretrained_bytes).with_context(|| format!("the pretrained model {}", model.display()))?;
        let vocab_text = std::fs::read_to_string(public.join("vocab.txt")).context("cannot read the public vocab.txt (run prepare)")?;
        let vocab = vocab_text.lines().map(str::to_owned).collect();
        Ok(Inputs { pretrained_bytes, pretrained, vocab_text, vocab })
    }

    /// The option checks (run first, untimed: they are also the warm-up) and the timed runs
    /// (default options), each on data of its own drawn from `request`'s seed.
    fn jobs(&self, request: &ScoreRequest, inputs: &Inputs) -> anyhow::Result<Vec<Job>> {
        let spec = pretrain_spec(request.params.get("pretrained").and_then(Value::as_str).context("parameter `pretrained`")?)?;
        let lang = rebench_corpus::Language::new(spec.corpus.config.clone());
        let context = inputs.pretrained.config.context;
        let mut jobs = Vec::new();
        for k in 0..request.param_u64("option-checks")? {
            let config = hidden::sample_options(derive(request.seed, 100 + k), context);
            jobs.push(Job {
                name: format!("options check {}", k + 1),
                timed: false,
                jsonl: hidden::finetuning_data(&lang, derive(request.seed, 2 + k), usize_param(request, "option-data-tokens")?, config.data.min_doc_tokens),
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
                jsonl: hidden::finetuning_data(&lang, derive(request.seed, 1000 + r), usize_param(request, "data-tokens")?, config.data.min_doc_tokens),
                config,
                reference: None,
            });
        }
        Ok(jobs)
    }

    fn limits(&self, request: &ScoreRequest) -> anyhow::Result<Limits> {
        let variant = self.manifest.variant(&request.variant).with_context(|| format!("no variant `{}`", request.variant))?;
        let timeout = request.solution_timeout_secs.map_or(self.manifest.scoring.timeout, Duration::from_secs_f64);
        Ok(Limits { timeout: Some(timeout), address_space: Some((variant.resources.memory_gib * (1u64 << 30) as f64) as u64) })
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
        let result = match driver::run(binary, &args, &self.limits(request)?)? {
            DriverRun::Failed { reason, .. } => Err(reason),
            DriverRun::Report { finished, .. } => match std::fs::read(out.join("model.safetensors")) {
                Ok(bytes) => Ok((bytes, finished.wall.as_secs_f64())),
                Err(err) => Err(format!("the pipeline finished but wrote no readable <out>/model.safetensors ({err})")),
            },
        };
        fsutil::remove_tree(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        Ok(result)
    }

    /// Builds the driver of `solution` in `<scratch>/<label>` (cleared first): the binary, or
    /// why the solution does not build.
    pub fn build_solution(&self, request: &ScoreRequest, solution: &Path, label: &str) -> anyhow::Result<Result<PathBuf, String>> {
        let plan = BuildPlan {
            scratch: request.env.scratch.join(label),
            solution: solution.to_owned(),
            target_dir: request.env.target_dir.clone(),
            timeout: self.manifest.scoring.timeout,
        };
        driver::build(&plan, DRIVER)
    }

    /// Scores a driver built by [`OptimizeTraining::build_solution`] with the same `label`
    /// (without calibration): what `score` does after building. Tests use it to run one build
    /// many times.
    pub fn score_built(&self, request: &ScoreRequest, binary: &Path, label: &str) -> anyhow::Result<Outcome> {
        let inputs = self.load_inputs(&request.env.store.join("public"))?;
        let mut jobs = self.jobs(request, &inputs)?;
        self.measure_binary(request, binary, label, &inputs, &mut jobs, &mut Phases::default())
    }

    /// Builds `solution` and runs it on every job: the first timed, each one's weights checked
    /// against the reference pipeline's (computed here, the first time a job needs them).
    fn measure(&self, request: &ScoreRequest, solution: &Path, label: &str, inputs: &Inputs, jobs: &mut [Job], phases: &mut Phases) -> anyhow::Result<Outcome> {
        let binary = match phases.time("build", || self.build_solution(request, solution, label))? {
            Ok(binary) => binary,
            Err(reason) => return Ok(Outcome::invalid(reason, json!({"phase": "build"}))),
        };
        self.measure_binary(request, &binary, label, inputs, jobs, phases)
    }

    fn measure_binary(&self, request: &ScoreRequest, binary: &Path, label: &str, inputs: &Inputs, jobs: &mut [Job], phases: &mut Phases) -> anyhow::Result<Outcome> {
        let run_dir = request.env.scratch.join(label).join("run");
        match self.measure_built(request, binary, &run_dir, inputs, jobs, phases)? {
            Ok((times, checks)) => {
                let seconds = fastest(&times);
                let worst = checks.iter().filter_map(|c| c["relative"].as_f64()).fold(0.0, f64::max);
                let list = times.iter().map(|t| format!("{t:.2}")).collect::<Vec<_>>().join(", ");
                Ok(Outcome::valid(
                    seconds,
                    format!(
                        "finetuning took {seconds:.2} s (the fastest of {} timed runs: {list} s); the weights match the reference pipeline's in all {} runs (largest relative difference {worst:.2e}, tolerance {MAX_RELATIVE_DIFF:.0e})",
                        times.len(),
                        checks.len()
                    ),
                    json!({"seconds": seconds, "timed_runs": times, "stats": Stats::from_samples(&times), "checks": checks}),
                ))
            }
            Err(invalid) => Ok(invalid),
        }
    }

    fn measure_built(&self, request: &ScoreRequest, binary: &Path, dir: &Path, inputs: &Inputs, jobs: &mut [Job], phases: &mut Phases) -> anyhow::Result<Measured> {
        let mut times = Vec::new();
        let mut checks = Vec::new();
        for job in jobs.iter_mut() {
            let ran = phases.time(if job.timed { "run" } else { "options" }, || self.run_job(request, binary, dir, inputs, job))?;
            let (bytes, wall) = match ran {
                Ok(done) => done,
                Err(reason) => return Ok(Err(Outcome::invalid(format!("{}: {reason}", job.name), json!({"run": job.name, "config": job.config})))),
            };
            if job.timed {
                times.push(wall);
            }
            if job.reference.is_none() {
                let reference = phases
                    .time("reference", || pipeline::finetune(&job.config, &job.jsonl, &inputs.pretrained, &inputs.vocab))
                    .with_context(|| format!("the reference pipeline failed on the {}", job.name))?;
                job.reference = Some(reference);
            }
            let reference = job.reference.as_ref().expect("computed above");
            match verdict(&bytes, reference, &inputs.pretrained) {
                Ok(diff) => checks.push(json!({"run": job.name, "seconds": wall, "norm_diff_sum": diff.norm_diff_sum, "relative": diff.relative})),
                Err((reason, diff)) => {
                    let options = if job.timed { String::new() } else { format!(" (options: {})", toml::to_string(&job.config)?.replace('\n', "; ")) };
                    return Ok(Err(Outcome::invalid(
                        format!("{}{options}: {reason}", job.name),
                        json!({"run": job.name, "config": job.config, "difference": diff}),
                    )));
                }
            }
        }
        Ok(Ok((times, checks)))
    }
}

/// The raw score of the timed runs: the fastest.
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
fn verdict(bytes: &[u8], reference: &Checkpoint, pretrained: &Checkpoint) -> Result<Difference, (String, Option<Difference>)> {
    let diff = compare::compare(bytes, reference, pretrained).map_err(|reason| (reason, None))?;
    if diff.relative > MAX_RELATIVE_DIFF || diff.relative.is_nan() {
        return Err((
            format!(
                "the weights differ from the reference pipeline's: relative difference {:.3e} > {MAX_RELATIVE_DIFF:.0e} (sum over parameters of the norm of the difference {:.4e}, most in {}); the pipeline must compute the same thing up to float rounding",
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
        let name = self.param(&request.variant, "pretrained")?.as_str().context("parameter `pretrained` must be a string")?;
        let spec = pretrain_spec(name)?;
        let corpus = rebench_pretrained::synthetic_corpus(&request.env.assets, &spec.corpus)?;
        let model = rebench_pretrained::pretrained(&request.env.assets, &spec)?;
        let public = request.env.store.join("public");
        std::fs::create_dir_all(&public)?;
        std::fs::copy(model.checkpoint(), public.join("model.safetensors")).context("cannot copy the pretrained model")?;
        std::fs::copy(corpus.vocab_file(), public.join("vocab.txt")).context("cannot copy the vocabulary")?;
        std::fs::write(public.join("finetune.toml"), hidden::default_config_toml(spec.model.context))?;
        let tokens = self.param(&request.variant, "data-tokens")?.as_integer().and_then(|t| usize::try_from(t).ok()).context("parameter `data-tokens`")?;
        let min_doc_tokens = hidden::default_config(spec.model.context).data.min_doc_tokens;
        std::fs::write(public.join("train_data.jsonl"), hidden::finetuning_data(&corpus.language(), PUBLIC_DATA_SEED, tokens, min_doc_tokens))?;
        Ok(format!(
            "public: model.safetensors (pretrained `{name}`, validation loss {:.4}), vocab.txt, finetune.toml, train_data.jsonl (~{tokens} tokens)",
            model.validation_loss
        ))
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let mut phases = Phases::default();
        let inputs = phases.time("inputs", || self.load_inputs(&request.env.store.join("public")))?;
        let mut jobs = phases.time("inputs", || self.jobs(request, &inputs))?;
        let outcome = self.measure(request, &request.solution, "solution", &inputs, &mut jobs, &mut phases)?;
        let calibration = if request.calibrate && outcome.is_valid() {
            let mut calibrate_phases = Phases::default();
            // The timed work depends on the driver and on the default configuration (which lives
            // here, not in the solutions): a cached calibration of other work must not be reused.
            let timed_config = toml::to_string(&hidden::default_config(inputs.pretrained.config.context))?;
            let key = fsutil::hash_bytes(format!("{DRIVER_MAIN}\n{timed_config}").as_bytes());
            let calibration = task::calibrate_live(request, &key, |dir, which| {
                self.measure(request, dir, &format!("own-{}", which.name()), &inputs, &mut jobs, &mut calibrate_phases)
            })?;
            if !calibrate_phases.0.is_empty() {
                phases.0.insert("calibrate".into(), calibrate_phases.0.values().sum());
            }
            Some(calibration)
        } else {
            None
        };
        Ok(Scored { outcome, calibration, phases: phases.0 })
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
        for variant in ["cpu", "tiny"] {
            pretrain_spec(task.param(variant, "pretrained").unwrap().as_str().unwrap()).unwrap();
        }
    }

    #[test]
    fn every_data_set_of_a_size_makes_the_same_samples() {
        let spec = pretrain_spec("cpu-default").unwrap();
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
