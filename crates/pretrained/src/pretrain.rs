//! Pretraining a GPT on the synthetic corpus, once per specification, into the asset store.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rebench_assets::{Asset, Spec, Store};
use rebench_corpus::{Config, Split, SyntheticSplits};
use rebench_models::candle_core::Device;
use rebench_models::{AdamWConfig, Gpt, LanguageModel, LrSchedule, ModelConfig, TrainConfig, Trainer, evaluate};
use serde::{Deserialize, Serialize};

use crate::batches::TokenBatches;
use crate::corpus::{Corpus, default_splits, synthetic_corpus};

/// Part of every pretrained asset's key: bump it whenever the training code changes what a
/// specification produces (the schedule's shape, the optimizer, the evaluation, the files).
/// 2: the models crate adds its parallel partial sums in chunk order (the cpu default's
/// validation loss moved from 4.8005 to 4.800882...), and checkpoints have a canonical header.
pub const PRETRAIN_VERSION: u32 = 2;

/// Windows per evaluation batch (the evaluation's result does not depend on it beyond float
/// rounding, but the recorded loss is reproduced bit for bit only with the same value).
pub const EVAL_BATCH: usize = 16;

/// The evaluation's seed (a GPT draws nothing; kept for `rebench_models::evaluate`).
pub const EVAL_SEED: u64 = 0;

/// What to pretrain: the model, the corpus and the run. Its JSON, with [`PRETRAIN_VERSION`],
/// keys the asset. The schedule is linear warm-up over `warmup` steps to `peak_lr`, then cosine
/// decay to `peak_lr / 10` at `steps`; AdamW with β = (0.9, 0.999), weight decay 0.1 (not on
/// biases and norms); the global gradient norm clipped to 1.0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PretrainSpec {
    /// A causal model (`ModelConfig::gpt`) whose vocabulary is the corpus's.
    pub model: ModelConfig,
    pub corpus: SyntheticSplits,
    pub steps: usize,
    /// Windows of `context + 1` tokens per step.
    pub batch_size: usize,
    pub peak_lr: f64,
    pub warmup: usize,
    /// Seeds the weights; the batch order is drawn from a stream derived from it.
    pub seed: u64,
}

impl PretrainSpec {
    /// The CPU default: sized to train in a few minutes on 2 cores (see the crate's README for
    /// the measured time and losses).
    pub fn cpu_default() -> Self {
        let corpus = default_splits();
        let vocab = rebench_corpus::Language::new(corpus.config.clone()).vocab_size();
        Self {
            model: ModelConfig::gpt(vocab, 64, 128, 3, 4),
            corpus,
            steps: 2000,
            batch_size: 16,
            peak_lr: 3e-3,
            warmup: 100,
            seed: 1,
        }
    }

    /// The GPU default, for the tasks' `gpu` variants: an 8-layer GPT of width 512 with a
    /// context of 256 (about 29M parameters), 4,000 steps of 32 windows on a 40M-token train
    /// split of the default language (about 33M tokens read: under one epoch). Sized from the
    /// models crate's H100 measurement (a 4-layer width-256 step took 29 ms, host-bound) to
    /// train in minutes on one H100; not yet run on a GPU.
    pub fn gpu_default() -> Self {
        let corpus = SyntheticSplits { train: 40_000_000, ..default_splits() };
        let vocab = rebench_corpus::Language::new(corpus.config.clone()).vocab_size();
        Self {
            model: ModelConfig::gpt(vocab, 256, 512, 8, 8),
            corpus,
            steps: 4000,
            batch_size: 32,
            peak_lr: 1e-3,
            warmup: 200,
            seed: 1,
        }
    }

    /// The specification a variant parameter names: `cpu-default`, `gpu-default` or `tiny`.
    pub fn named(name: &str) -> anyhow::Result<Self> {
        match name {
            "cpu-default" => Ok(Self::cpu_default()),
            "gpu-default" => Ok(Self::gpu_default()),
            "tiny" => Ok(Self::tiny()),
            other => anyhow::bail!("unknown pretrained model `{other}`: `cpu-default`, `gpu-default` or `tiny`"),
        }
    }

    /// Seconds on a CPU: for tests. The tiny language (a few words per class), a one-layer
    /// model.
    pub fn tiny() -> Self {
        let corpus = SyntheticSplits { config: Config::tiny(), seed: 3, train: 50_000, validation: 4_000, test: 4_000 };
        let vocab = rebench_corpus::Language::new(corpus.config.clone()).vocab_size();
        Self {
            model: ModelConfig::gpt(vocab, 16, 32, 1, 2),
            corpus,
            steps: 300,
            batch_size: 8,
            peak_lr: 1e-2,
            warmup: 20,
            seed: 1,
        }
    }

    /// Tokens read in training (`context + 1` per window, each window predicting `context`).
    pub fn train_tokens(&self) -> usize {
        self.steps * self.batch_size * (self.model.context + 1)
    }

    fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size,
            schedule: LrSchedule { peak: self.peak_lr, min: self.peak_lr / 10.0, warmup: self.warmup, total: self.steps },
            adamw: AdamWConfig::default(),
            grad_clip: Some(1.0),
            seed: self.seed,
        }
    }

    /// The asset's key. A model trained off the CPU is an asset of its own (other kernels give
    /// other bits); a CPU model keeps the key it had before devices were named.
    fn asset_spec(&self, device: &Device) -> Spec {
        let mut key = serde_json::json!({
            "pretrain-version": PRETRAIN_VERSION,
            "checkpoint-format": rebench_models::checkpoint::FORMAT,
            "generator-version": rebench_corpus::GENERATOR_VERSION,
            "spec": self,
        });
        if !device.is_cpu() {
            key["device"] = serde_json::json!(if device.is_cuda() { "cuda" } else { "metal" });
        }
        Spec::new("pretrained-gpt", key)
    }

    fn check(&self, corpus: &Corpus) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.model.kind == rebench_models::ModelKind::Causal,
            "pretraining needs a causal model, not {:?}",
            self.model.kind
        );
        anyhow::ensure!(
            self.model.vocab == corpus.vocab_size(),
            "the model's vocabulary ({}) is not the corpus's ({})",
            self.model.vocab,
            corpus.vocab_size()
        );
        anyhow::ensure!(self.steps > 0 && self.batch_size > 0, "steps and batch size must be positive");
        self.model.validate()?;
        Ok(())
    }
}

/// What `eval.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EvalRecord {
    /// Mean loss of the trained model on the validation split ([`evaluate_split`]).
    pub validation_loss: f64,
    /// The validation split's exact entropy floor.
    pub floor: f64,
    /// Mean training loss over the last 5% of steps.
    pub final_train_loss: f64,
    pub steps: usize,
    pub train_tokens: usize,
    /// Wall-clock seconds of training and of the evaluation (the only inputs that vary between
    /// two builds of one asset).
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

/// A pretrained model in the asset store.
#[derive(Clone, Debug)]
pub struct Pretrained {
    pub spec: PretrainSpec,
    /// The trained model's mean loss on the validation split, as recorded at training.
    pub validation_loss: f64,
    pub eval: EvalRecord,
    pub asset: Asset,
    pub corpus: Corpus,
}

impl Pretrained {
    /// `model.safetensors`, in the `rebench_models::checkpoint` format.
    pub fn checkpoint(&self) -> PathBuf {
        self.asset.file("model.safetensors")
    }

    /// `train_log.csv`: `step,loss,lr` for every step.
    pub fn train_log(&self) -> PathBuf {
        self.asset.file("train_log.csv")
    }

    /// Loads the checkpoint on the CPU.
    pub fn load(&self) -> anyhow::Result<Gpt> {
        self.load_on(&Device::Cpu)
    }

    /// Loads the checkpoint on `device`.
    pub fn load_on(&self, device: &Device) -> anyhow::Result<Gpt> {
        Ok(Gpt::load(&self.checkpoint(), device)?)
    }
}

/// The mean loss of `model` on a split of `corpus`: consecutive windows, each token predicted
/// once with the history of its own window ([`rebench_models::evaluate`] with [`EVAL_BATCH`]).
pub fn evaluate_split<M: LanguageModel>(model: &M, corpus: &Corpus, split: Split) -> anyhow::Result<f64> {
    let tokens = corpus.tokens(split)?;
    Ok(evaluate(model, &tokens, EVAL_BATCH, EVAL_SEED)?.loss)
}

/// The model `spec` describes, trained on the CPU unless the store `assets` (the harness's
/// `Environment::assets`) already holds it, verified. Prepares the corpus assets first.
pub fn pretrained(assets: &Path, spec: &PretrainSpec) -> anyhow::Result<Pretrained> {
    pretrained_on(assets, spec, &Device::Cpu)
}

/// [`pretrained`], trained on `device` (an asset of its own off the CPU).
pub fn pretrained_on(assets: &Path, spec: &PretrainSpec, device: &Device) -> anyhow::Result<Pretrained> {
    let corpus = synthetic_corpus(assets, &spec.corpus)?;
    spec.check(&corpus)?;
    let asset = Store::new(assets).ensure(&spec.asset_spec(device), |b| train(spec, &corpus, device, b))?;
    let eval: EvalRecord = serde_json::from_slice(&fs::read(asset.file("eval.json"))?)
        .with_context(|| format!("{} is not a valid eval.json", asset.file("eval.json").display()))?;
    Ok(Pretrained { spec: spec.clone(), validation_loss: eval.validation_loss, eval, asset, corpus })
}

fn train(spec: &PretrainSpec, corpus: &Corpus, device: &Device, b: &rebench_assets::Builder) -> anyhow::Result<()> {
    let model = Gpt::new(spec.model.clone(), spec.seed, device)?;
    let mut batches = TokenBatches::open(&corpus.train_shard(), batch_seed(spec.seed))?;
    let mut trainer = Trainer::new(&model, spec.train_config());
    let bar = b.progress(spec.steps as u64, "pretraining");
    let mut log = String::from("step,loss,lr\n");
    let mut losses = Vec::with_capacity(spec.steps);
    let start = Instant::now();
    trainer.run(&model, &mut batches, spec.steps, |s| {
        let _ = writeln!(log, "{},{},{}", s.step, s.loss, s.lr);
        losses.push(f64::from(s.loss));
        bar.set_position(s.step as u64);
    })?;
    let train_seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    anyhow::ensure!(losses.iter().all(|l| l.is_finite()), "the training loss diverged");
    let start = Instant::now();
    let validation_loss = evaluate_split(&model, corpus, Split::Validation)?;
    let eval_seconds = start.elapsed().as_secs_f64();
    let tail = (spec.steps / 20).max(1);
    let final_train_loss = losses[losses.len() - tail..].iter().sum::<f64>() / tail as f64;
    let record = EvalRecord {
        validation_loss,
        floor: corpus.floor(Split::Validation),
        final_train_loss,
        steps: spec.steps,
        train_tokens: spec.train_tokens(),
        train_seconds,
        eval_seconds,
    };
    let checkpoint = b.dir().join("model.safetensors");
    model.save(&checkpoint)?;
    // safetensors creates it owner-only; it is as public as the other files (a task may copy it
    // into an agent's workdir).
    #[cfg(unix)]
    fs::set_permissions(&checkpoint, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    fs::write(b.dir().join("spec.json"), serde_json::to_vec_pretty(spec)?)?;
    fs::write(b.dir().join("train_log.csv"), log)?;
    fs::write(b.dir().join("eval.json"), serde_json::to_vec_pretty(&record)?)?;
    Ok(())
}

/// The batch order's seed: a stream of its own, so that it differs from the weights' seed.
fn batch_seed(seed: u64) -> u64 {
    rebench_corpus::rng::derive(seed, 0xba7c)
}
