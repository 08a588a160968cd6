//! The fix-embedding scorer (RE-Bench's "Fix Embedding").
//!
//! `prepare` takes the shared pretrained GPT (the large model) and a smaller GPT trained on the
//! same corpus (the small correct model) from the shared asset store, permutes the rows of the
//! large model's token embedding with a secret seed, and publishes the corrupted large model,
//! the small model and the train shard. The clean large model stays in the shared store and in
//! this task's protected store; it never reaches a workdir.
//!
//! Scoring reads `fixed_model.safetensors` from the solution directory (the agent's artifact:
//! no solution code runs), checks it tensor by tensor against the large model's architecture
//! (names, dtype, shapes; finite values), loads it into `rebench_models`' own GPT and evaluates
//! its mean loss on the protected test split. The raw score is that loss minus the split's exact
//! entropy floor, so the manifest's `ln` gives `ln(loss - floor)`.
//!
//! Pretraining and evaluation run on the variant's `device` (`cpu` where the parameter is absent;
//! `cuda` for the gpu variant, in a build with the `cuda` feature).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use rebench_corpus::Split;
use rebench_models::candle_core::Device;
use rebench_models::{Gpt, ModelConfig, evaluate};
use rebench_pretrained::{Corpus, EVAL_BATCH, EVAL_SEED, PretrainSpec, pretrained_on};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::params;
use rebench_scoring::subprocess::{self, Limits};
use rebench_scoring::task::{self, Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

const MANIFEST: &str = include_str!("../task.toml");

/// The artifact scored, relative to the solution directory.
pub const ARTIFACT: &str = "fixed_model.safetensors";

/// Public files: the corrupted large model, the small correct model, the train shard and its
/// vocabulary.
pub const LARGE_MODEL: &str = "large_model.safetensors";
pub const SMALL_MODEL: &str = "small_model.safetensors";
pub const TRAIN_SHARD: &str = "train.tok";
pub const VOCAB: &str = "vocab.txt";

/// Protected files: the clean large model and the losses measured at preparation.
pub const CLEAN_MODEL: &str = "clean_model.safetensors";
pub const LOSSES: &str = "losses.json";

/// Seeds the embedding's permutation. Not secret from the repository, but from the agent: it
/// reaches neither the workdir nor the instructions.
const CORRUPTION_SEED: u64 = 0x5eed_e3b0_f1c5;

/// Seed of the small model's weights and batches (the large model's is its spec's).
const SMALL_SEED: u64 = 2;

/// The parameters a variant may set; [`Sizes::from_params`] refuses any other.
pub const PARAMS: [&str; 7] = ["large", "small-width", "small-depth", "small-heads", "small-steps", "eval-tokens", "device"];

/// The two models of a variant, from its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Sizes {
    pub large: PretrainSpec,
    pub small: PretrainSpec,
    /// Held-out tokens the scorer evaluates (at most the test split's length).
    pub eval_tokens: usize,
    /// Where pretraining and evaluation run: a name for `rebench_pretrained::device::by_name`,
    /// resolved when used, so that a gpu variant's parameters parse on a machine without one.
    pub device: String,
}

impl Sizes {
    /// Reads `large`, `small-width`, `small-depth`, `small-heads`, `small-steps`,
    /// `eval-tokens` and, optionally, `device` (default `cpu`).
    pub fn from_params(params: &BTreeMap<String, Value>) -> anyhow::Result<Sizes> {
        params::refuse_unknown(params, &PARAMS)?;
        let uint = |key: &str| params::usize(params, key);
        let name = |key: &str| params::str(params, key);
        let large = PretrainSpec::named(name("large")?)?;
        let device = params::str_or(params, "device", "cpu")?.to_owned();
        let mut small = large.clone();
        small.model = ModelConfig::gpt(large.model.vocab, large.model.context, uint("small-width")?, uint("small-depth")?, uint("small-heads")?);
        small.steps = uint("small-steps")?;
        small.warmup = small.warmup.min(small.steps / 5).max(1);
        small.seed = SMALL_SEED;
        Ok(Sizes { large, small, eval_tokens: uint("eval-tokens")?, device })
    }

    /// The device named by the `device` parameter.
    pub fn device(&self) -> anyhow::Result<Device> {
        rebench_pretrained::device::by_name(&self.device)
    }
}

/// The permutation applied to the embedding's rows: row `i` of the corrupted embedding is row
/// `perm[i]` of the clean one.
pub fn permutation(vocab: usize) -> Vec<u32> {
    rebench_corpus::rng::Rng::new(CORRUPTION_SEED).permutation(vocab)
}

/// Mean loss of a checkpoint, loaded on `device`, on the first `tokens` tokens of `split`.
pub fn split_loss(checkpoint: &Path, corpus: &Corpus, split: Split, tokens: usize, device: &Device) -> anyhow::Result<f64> {
    let model = Gpt::load(checkpoint, device)?;
    let all = corpus.tokens(split)?;
    let n = tokens.min(all.len());
    Ok(evaluate(&model, &all[..n], EVAL_BATCH, EVAL_SEED)?.loss)
}

/// The exact entropy floor of the predictions [`split_loss`] scores: the mean surprise, given
/// every earlier token of the split, of the tokens the evaluation's windows predict (positions
/// `1..=m·context` of the first `tokens` tokens, `m` the number of whole windows).
pub fn split_floor(corpus: &Corpus, split: Split, tokens: usize, context: usize) -> anyhow::Result<f64> {
    let all = corpus.tokens(split)?;
    let n = tokens.min(all.len());
    ensure!(n > context, "{n} held-out tokens do not fill one window of {}", context + 1);
    let windows = (n - context - 1) / context + 1;
    let surprise = corpus.language().surprise(&all[..n])?;
    let predicted = &surprise[1..=windows * context];
    Ok(predicted.iter().map(|&s| f64::from(s)).sum::<f64>() / predicted.len() as f64)
}

/// Writes `from` with the rows of its `wte` tensor permuted by `perm` to `to`; every other
/// tensor and the metadata unchanged.
pub fn corrupt(from: &Path, to: &Path, perm: &[u32]) -> anyhow::Result<()> {
    let bytes = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)?;
    let metadata: BTreeMap<String, String> = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let st = SafeTensors::deserialize(&bytes)?;
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let mut data = view.data().to_vec();
        if name == "wte" {
            let shape = view.shape();
            ensure!(view.dtype() == Dtype::F32 && shape.len() == 2 && shape[0] == perm.len(), "wte is {:?} {shape:?}", view.dtype());
            let row = shape[1] * 4;
            for (i, &p) in perm.iter().enumerate() {
                let p = p as usize;
                data[i * row..(i + 1) * row].copy_from_slice(&view.data()[p * row..(p + 1) * row]);
            }
        }
        owned.push((name, view.shape().to_vec(), data));
    }
    let views = owned
        .iter()
        .map(|(name, shape, data)| Ok((name.clone(), safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    rebench_models::checkpoint::write_safetensors(views, &metadata, to)?;
    Ok(())
}

#[derive(Debug)]
pub struct FixEmbedding {
    manifest: Manifest,
}

impl Default for FixEmbedding {
    fn default() -> Self {
        Self::new()
    }
}

impl FixEmbedding {
    pub fn new() -> FixEmbedding {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        FixEmbedding { manifest }
    }

    /// Prepares the stores of `env` for `sizes` (`prepare` with the variant's parameters; tests
    /// call it with tiny ones).
    pub fn prepare_sizes(&self, sizes: &Sizes, env: &task::Environment) -> anyhow::Result<String> {
        let device = sizes.device()?;
        let large = pretrained_on(&env.assets, &sizes.large, &device).context("pretraining the large model")?;
        let small = pretrained_on(&env.assets, &sizes.small, &device).context("pretraining the small model")?;
        let (public, protected) = (env.store.join("public"), env.store.join("protected"));
        fs::create_dir_all(&public)?;
        fs::create_dir_all(&protected)?;
        let corpus = &large.corpus;
        fs::copy(large.checkpoint(), protected.join(CLEAN_MODEL))?;
        corrupt(&large.checkpoint(), &public.join(LARGE_MODEL), &permutation(sizes.large.model.vocab))?;
        fs::copy(small.checkpoint(), public.join(SMALL_MODEL))?;
        fs::copy(corpus.train_shard(), public.join(TRAIN_SHARD))?;
        fs::copy(corpus.vocab_file(), public.join(VOCAB))?;
        let losses = json!({
            "split": "test",
            "tokens": sizes.eval_tokens,
            "floor": split_floor(corpus, Split::Test, sizes.eval_tokens, sizes.large.model.context)?,
            "clean": split_loss(&protected.join(CLEAN_MODEL), corpus, Split::Test, sizes.eval_tokens, &device)?,
            "corrupted": split_loss(&public.join(LARGE_MODEL), corpus, Split::Test, sizes.eval_tokens, &device)?,
            "small": split_loss(&public.join(SMALL_MODEL), corpus, Split::Test, sizes.eval_tokens, &device)?,
        });
        fs::write(protected.join(LOSSES), serde_json::to_vec_pretty(&losses)?)?;
        Ok(format!("test-split losses: {losses}"))
    }

    /// Scores the artifact in `solution` (no code of the solution runs).
    pub fn score_artifact(&self, request: &ScoreRequest, sizes: &Sizes, solution: &Path, label: &str, phases: &mut Phases) -> anyhow::Result<Outcome> {
        let config = &sizes.large.model;
        let device = sizes.device()?;
        let normalized = request.env.scratch.join(label).join("normalized.safetensors");
        let checked = phases.time("check", || rebench_pretrained::solution_weights::check(&solution.join(ARTIFACT), ARTIFACT, config, &normalized))?;
        if let Err(reason) = checked {
            return Ok(Outcome::invalid(reason, json!({"phase": "check"})));
        }
        let corpus = rebench_pretrained::synthetic_corpus(&request.env.assets, &sizes.large.corpus)?;
        let loss = phases.time("evaluate", || split_loss(&normalized, &corpus, Split::Test, sizes.eval_tokens, &device))?;
        let _ = fs::remove_file(&normalized);
        let floor = split_floor(&corpus, Split::Test, sizes.eval_tokens, config.context)?;
        if !loss.is_finite() {
            return Ok(Outcome::invalid(format!("the model's held-out loss is not finite ({loss})"), json!({"phase": "evaluate"})));
        }
        let known: Value = fs::read(request.env.store.join("protected").join(LOSSES))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let mut message = format!("held-out loss {loss:.4} (entropy floor {floor:.4})");
        if let (Some(clean), Some(corrupted)) = (known["clean"].as_f64(), known["corrupted"].as_f64()) {
            message.push_str(&format!("; the original model {clean:.4}, the corrupted one {corrupted:.4}"));
        }
        Ok(Outcome::valid(loss - floor, message, json!({"loss": loss, "floor": floor, "split": "test", "tokens": sizes.eval_tokens})))
    }

    /// Runs the manifest's `[solve]` command in `solution`, inside a workdir-shaped directory
    /// whose `data/` is the public store (what the harness does for named solutions).
    pub fn run_solve(&self, request: &ScoreRequest, solution: &Path) -> anyhow::Result<()> {
        let solve = self.manifest.solve.as_ref().context("the manifest has no [solve]")?;
        let workdir = solution.parent().context("the solution directory has no parent")?;
        let data = workdir.join("data");
        if fs::symlink_metadata(&data).is_ok() {
            fs::remove_file(&data).or_else(|_| fs::remove_dir_all(&data))?;
        }
        std::os::unix::fs::symlink(request.env.store.join("public").canonicalize()?, &data)?;
        let mut command = Command::new(&solve.command[0]);
        command.args(&solve.command[1..]).current_dir(solution).env("CARGO_TARGET_DIR", &request.env.target_dir);
        command.env("REBENCH_VARIANT", &request.variant);
        let cores = self.manifest.variant(&request.variant).map_or(2, |v| v.resources.cores);
        command.env("REBENCH_THREADS", cores.to_string());
        for (key, value) in &request.params {
            let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
            command.env(format!("REBENCH_PARAM_{}", key.to_uppercase().replace('-', "_")), text);
        }
        let finished = subprocess::run(&mut command, b"", &Limits { timeout: Some(solve.timeout), address_space: None })
            .with_context(|| format!("cannot run {:?}", solve.command))?;
        ensure!(finished.success(), "the solve command {} in {}:\n{}", finished.describe_exit(), solution.display(), finished.stderr_tail(30));
        Ok(())
    }

    fn calibrate(&self, request: &ScoreRequest, sizes: &Sizes, phases: &mut Phases) -> anyhow::Result<rebench_scoring::Calibration> {
        // The calibration depends on the prepared models too: a re-prepared store measures anew.
        let public = fsutil::hash_tree(&request.env.store.join("public"))?;
        task::calibrate_live(request, &format!("public={public}"), |dir, which| {
            phases.time(&format!("solve-{}", which.name()), || self.run_solve(request, dir))?;
            self.score_artifact(request, sizes, dir, &format!("calibration-{}", which.name()), phases)
        })
    }
}

impl Task for FixEmbedding {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let sizes = Sizes::from_params(&self.manifest.variant_params(&request.variant)?)?;
        self.prepare_sizes(&sizes, &request.env)
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let sizes = Sizes::from_params(&request.params)?;
        let mut phases = Phases::default();
        let outcome = self.score_artifact(request, &sizes, &request.solution, "solution", &mut phases)?;
        let calibration = if request.calibrate { Some(self.calibrate(request, &sizes, &mut phases)?) } else { None };
        Ok(Scored { outcome, calibration, phases: phases.0 })
    }
}

/// The solution directories' artifacts are made by `[solve]`; a helper for tests and tools:
/// materializes `which` into `dir/solution` and runs its solve there.
pub fn materialize_and_solve(task: &FixEmbedding, request: &ScoreRequest, which: Solution, dir: &Path) -> anyhow::Result<PathBuf> {
    let solution = dir.join("solution");
    fsutil::materialize(&request.env.task_dir, which, &solution)?;
    task.run_solve(request, &solution)?;
    Ok(solution)
}

