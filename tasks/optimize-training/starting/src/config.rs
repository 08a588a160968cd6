//! The finetuning configuration (`finetune.toml`): every option the pipeline supports.
//!
//! The scorer may run the pipeline with any values of these options, not only the defaults.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data: DataConfig,
    pub optimizer: OptimizerConfig,
    pub schedule: ScheduleConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
    pub checkpoint: CheckpointConfig,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Tokens each training sample predicts (at most the model's context); a sample holds
    /// `seq_len + 1` consecutive tokens of the packed stream.
    pub seq_len: usize,
    /// Documents with fewer tokens than this (their `<doc>` included) are left out.
    pub min_doc_tokens: usize,
    /// Whether each epoch visits the samples in a fresh random order.
    pub shuffle: bool,
    /// The seed of that order.
    pub shuffle_seed: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Peak learning rate.
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay (AdamW), on matrices and embeddings only.
    pub weight_decay: f64,
    /// Gradients are rescaled so that their global L2 norm is at most this; 0 turns it off.
    pub grad_clip: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    Constant,
    Linear,
    Cosine,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub kind: ScheduleKind,
    /// Linear warm-up from `lr / warmup_steps` to `lr` over this many steps.
    pub warmup_steps: usize,
    /// The learning rate at the end of a linear or cosine decay, as a fraction of `lr`.
    pub min_lr_ratio: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Samples per optimizer step; an epoch's last incomplete batch is dropped.
    pub batch_size: usize,
    /// Samples per forward and backward pass: a batch's gradient is accumulated over its
    /// micro-batches (a memory knob, as LLM Foundry's `device_train_microbatch_size`; the
    /// gradient is the same up to float rounding).
    pub micro_batch_size: usize,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate the loss over the training samples after every epoch (reported, not used).
    pub every_epoch: bool,
    /// Also evaluate it every this many steps (0: never).
    pub interval_steps: usize,
    /// Samples per evaluation batch.
    pub batch_size: usize,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Save a checkpoint every this many steps (0: never), under `<out>/checkpoints/`.
    pub save_every: usize,
}

impl Config {
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.data.seq_len >= 1, "data.seq_len must be at least 1");
        anyhow::ensure!(self.train.batch_size >= 1, "train.batch_size must be at least 1");
        anyhow::ensure!(self.train.micro_batch_size >= 1, "train.micro_batch_size must be at least 1");
        anyhow::ensure!(self.eval.batch_size >= 1, "eval.batch_size must be at least 1");
        anyhow::ensure!(self.optimizer.lr.is_finite() && self.optimizer.lr >= 0.0, "optimizer.lr must be a non-negative number");
        anyhow::ensure!((0.0..1.0).contains(&self.optimizer.beta1), "optimizer.beta1 must be in [0, 1)");
        anyhow::ensure!((0.0..1.0).contains(&self.optimizer.beta2), "optimizer.beta2 must be in [0, 1)");
        anyhow::ensure!(self.optimizer.eps > 0.0, "optimizer.eps must be positive");
        anyhow::ensure!(self.optimizer.grad_clip >= 0.0, "optimizer.grad_clip must be non-negative");
        anyhow::ensure!((0.0..=1.0).contains(&self.schedule.min_lr_ratio), "schedule.min_lr_ratio must be in [0, 1]");
        Ok(())
    }

    /// The learning rate of step `step` (0-based) of `total`.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        let s = &self.schedule;
        let peak = self.optimizer.lr;
        if step < s.warmup_steps {
            return peak * (step + 1) as f64 / s.warmup_steps as f64;
        }
        let span = total.saturating_sub(s.warmup_steps).max(1) as f64;
        let progress = ((step - s.warmup_steps) as f64 / span).min(1.0);
        let min = s.min_lr_ratio;
        let factor = match s.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Linear => 1.0 - (1.0 - min) * progress,
            ScheduleKind::Cosine => min + (1.0 - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
        };
        peak * factor
    }
}
