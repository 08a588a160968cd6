//! One training run of the scaling-law task: the model family, the fixed training recipe, the
//! FLOP count and its cap, the data, and the evaluation.
//!
//! The task's scorer compiles this same file (the ground-truth grid and the scaling check are
//! measured with it), so what an experiment here reports and what the ground truth measured
//! are the same computation. Changing the recipe here changes only your own experiments.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use rebench_models::candle_core::Device;
use rebench_models::{
    AdamWConfig, BatchSource, Gpt, LrSchedule, ModelConfig, Rng, TrainConfig, Trainer, evaluate,
};

/// The widths the program trains (a multiple of the family's heads).
pub const MIN_WIDTH: usize = 16;
pub const MAX_WIDTH: usize = 1024;

/// The model family and batch shape of a variant: everything a run fixes except its width,
/// steps and seed. The variant sets it; `data/task.json` holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Transformer blocks of every model (RE-Bench's task fixes the depth too).
    pub depth: usize,
    /// Attention heads of every model; the width must be a multiple of it.
    pub heads: usize,
    /// Tokens each window predicts.
    pub context: usize,
    /// Windows per step, and per evaluation batch.
    pub batch: usize,
}

impl Family {
    /// The family of a `task.json` (or of any JSON object with the same four keys).
    pub fn from_json(task: &serde_json::Value) -> Result<Family, Refused> {
        let field = |key: &str| -> Result<usize, Refused> {
            task[key]
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| Refused(format!("the model family needs a positive integer `{key}`")))
        };
        Ok(Family { depth: field("depth")?, heads: field("heads")?, context: field("context")?, batch: field("batch")? })
    }

    /// Tokens trained on per step (predictions, the unit of the FLOP count).
    pub fn tokens_per_step(&self) -> u64 {
        (self.batch * self.context) as u64
    }
}

/// What to train: the only two choices of the task, plus the seed, in the variant's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Experiment {
    pub family: Family,
    pub width: usize,
    pub steps: usize,
    pub seed: u64,
}

/// Why an experiment was refused before any work.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Experiment {
    pub fn config(&self, vocab: usize) -> ModelConfig {
        let f = &self.family;
        ModelConfig::gpt(vocab, f.context, self.width, f.depth, f.heads)
    }

    /// Training FLOPs: `6·N + 12·L·T·C` per token (`ModelConfig::train_flops`) times the tokens
    /// of all steps.
    pub fn flops(&self, vocab: usize) -> f64 {
        self.config(vocab).train_flops_per_token() as f64 * self.family.tokens_per_step() as f64 * self.steps as f64
    }

    /// The peak learning rate: wider models take smaller steps (about `1/√width`), from
    /// 3e-3 at width 128, the shared pretraining recipe's rate.
    pub fn peak_lr(&self) -> f64 {
        3e-3 * (128.0 / self.width as f64).sqrt()
    }

    /// Linear warm-up over a tenth of the run (at most 100 steps), cosine decay to a tenth.
    pub fn schedule(&self) -> LrSchedule {
        let peak = self.peak_lr();
        LrSchedule { peak, min: peak / 10.0, warmup: (self.steps / 10).clamp(1, 100), total: self.steps }
    }

    /// Checks the shape and the FLOP cap; nothing has been computed when it refuses.
    pub fn check(&self, vocab: usize, cap: Option<f64>) -> Result<(), Refused> {
        let f = &self.family;
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&self.width) || !self.width.is_multiple_of(f.heads) {
            return Err(Refused(format!(
                "width {} is not a multiple of {} between {MIN_WIDTH} and {MAX_WIDTH}",
                self.width, f.heads
            )));
        }
        if self.steps == 0 {
            return Err(Refused("steps must be positive".into()));
        }
        if let Some(cap) = cap {
            let flops = self.flops(vocab);
            if flops > cap {
                return Err(Refused(format!(
                    "width {} for {} steps needs {flops:.3e} FLOPs, over the cap of {cap:.3e} per experiment",
                    self.width, self.steps
                )));
            }
        }
        Ok(())
    }
}

/// What a finished experiment reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub width: usize,
    pub steps: usize,
    pub seed: u64,
    pub flops: f64,
    /// Parameters that take part in matmuls (`ModelConfig::params_matmul`).
    pub params: usize,
    pub tokens: u64,
    /// Mean training loss over the last 5% of steps.
    pub train_loss: f64,
    /// Mean loss on the evaluation tokens.
    pub eval_loss: f64,
    pub seconds: f64,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "width": self.width, "steps": self.steps, "seed": self.seed, "flops": self.flops,
            "params": self.params, "tokens": self.tokens, "train_loss": self.train_loss,
            "eval_loss": self.eval_loss, "seconds": self.seconds,
        })
    }
}

/// Training windows at uniformly random offsets of the token stream, from one seeded generator.
struct Windows<'a> {
    tokens: &'a [u32],
    rng: Rng,
}

impl BatchSource for Windows<'_> {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> rebench_models::Result<()> {
        if self.tokens.len() < window {
            return Err(rebench_models::Error::Batch(format!("{} tokens are shorter than a window", self.tokens.len())));
        }
        let offsets = (self.tokens.len() - window + 1) as u64;
        out.clear();
        for _ in 0..batch {
            let at = self.rng.below(offsets) as usize;
            out.extend_from_slice(&self.tokens[at..at + window]);
        }
        Ok(())
    }
}

/// Trains `exp` on `train` and evaluates it on `eval`, on `device`, after checking it against
/// `cap`. `progress` is called after every step with (step, loss).
pub fn run(
    exp: &Experiment,
    vocab: usize,
    train: &[u32],
    eval: &[u32],
    cap: Option<f64>,
    device: &Device,
    mut progress: impl FnMut(usize, f32),
) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
    exp.check(vocab, cap)?;
    let cfg = exp.config(vocab);
    cfg.validate()?;
    let start = Instant::now();
    let model = Gpt::new(cfg.clone(), exp.seed, device)?;
    let train_cfg = TrainConfig {
        batch_size: exp.family.batch,
        schedule: exp.schedule(),
        adamw: AdamWConfig::default(),
        grad_clip: Some(1.0),
        seed: exp.seed,
    };
    let mut trainer = Trainer::new(&model, train_cfg);
    // The batch order has a stream of its own, so that it differs from the weights' stream.
    let mut windows = Windows { tokens: train, rng: Rng::for_stream(exp.seed, "scaling-law-batches") };
    let mut losses = Vec::with_capacity(exp.steps);
    trainer.run(&model, &mut windows, exp.steps, |s| {
        losses.push(f64::from(s.loss));
        progress(s.step, s.loss);
    })?;
    let tail = (exp.steps / 20).max(1);
    let train_loss = losses[losses.len() - tail..].iter().sum::<f64>() / tail as f64;
    let eval_loss = if train_loss.is_finite() { evaluate(&model, eval, exp.family.batch, 0)?.loss } else { f64::NAN };
    Ok(Report {
        width: exp.width,
        steps: exp.steps,
        seed: exp.seed,
        flops: exp.flops(vocab),
        params: cfg.params_matmul(),
        tokens: exp.family.tokens_per_step() * exp.steps as u64,
        train_loss,
        eval_loss,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Reads an `RBTOKENS` token shard (a 32-byte header, then 2- or 4-byte little-endian tokens):
/// its vocabulary size and tokens.
pub fn read_tokens(path: &Path) -> Result<(usize, Vec<u32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bad = |why: &str| format!("{} is not a token shard: {why}", path.display());
    if bytes.len() < 32 || &bytes[..8] != b"RBTOKENS" {
        return Err(bad("no RBTOKENS header"));
    }
    let word = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let (width, vocab) = (word(12) as usize, word(16) as usize);
    let count = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes")) as usize;
    if !(width == 2 || width == 4) || bytes.len() != 32 + count * width {
        return Err(bad("its length does not match its header"));
    }
    let tokens: Vec<u32> = bytes[32..]
        .chunks_exact(width)
        .map(|c| if width == 2 { u32::from(u16::from_le_bytes([c[0], c[1]])) } else { u32::from_le_bytes([c[0], c[1], c[2], c[3]]) })
        .collect();
    if tokens.iter().any(|&t| t as usize >= vocab) {
        return Err(bad("a token is outside its vocabulary"));
    }
    Ok((vocab, tokens))
}
