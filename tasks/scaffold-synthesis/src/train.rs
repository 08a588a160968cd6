//! Training the weak model: a small GPT (`rebench_models`) that reads a problem's examples and
//! writes a program, trained on an endless stream of generated problems, with the loss on the
//! program's tokens only (the examples are data to read, not text to predict).
//!
//! A quarter of the training sequences are repair prompts: the examples, a one-edit wrong
//! version of the program after `<try>`, and the right program to write.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use dsl::Prompt;
use rebench_models::candle_core::{Device, Tensor};
use rebench_models::{
    AdamWConfig, BatchSource, Gpt, LanguageModel, LrSchedule, ModelConfig, Rng, TrainConfig, Trainer, Transformer,
};
use serde::{Deserialize, Serialize};

use crate::generate::{self, Shape};
use crate::tokens::{self, Vocab};

/// What `prepare` trains: the model's shape and the training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TrainSpec {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub context: usize,
    pub steps: usize,
    pub batch_size: usize,
    pub peak_lr: f64,
    pub warmup: usize,
    /// Share of the sequences that are repair prompts.
    pub repair_share: f64,
    pub seed: u64,
}

impl TrainSpec {
    pub fn config(&self) -> ModelConfig {
        ModelConfig::gpt(Vocab::new().size(), self.context, self.width, self.depth, self.heads)
    }
}

/// The GPT with the loss on program tokens only.
pub struct SynthModel {
    pub gpt: Gpt,
}

impl LanguageModel for SynthModel {
    fn transformer(&self) -> &Transformer {
        &self.gpt.body
    }

    fn window(&self) -> usize {
        self.gpt.body.config().context + 1
    }

    fn loss(&self, windows: &[u32], batch: usize, _rng: &mut Rng) -> rebench_models::Result<(Tensor, usize)> {
        let w = self.window();
        let t = w - 1;
        let mut positions = Vec::new();
        let mut targets = Vec::new();
        for (b, seq) in windows.chunks_exact(w).enumerate() {
            let mut writing = false;
            for i in 0..t {
                writing |= seq[i] == tokens::PROG;
                if writing && seq[i + 1] != tokens::PAD {
                    positions.push((b * t + i) as u32);
                    targets.push(seq[i + 1]);
                }
                if seq[i + 1] == tokens::EOS {
                    writing = false;
                }
            }
        }
        let dev = self.gpt.body.device();
        let all = Tensor::from_slice(windows, (batch, w), dev)?;
        let inputs = all.narrow(1, 0, t)?.contiguous()?;
        let hidden = self.gpt.body.hidden(&inputs)?;
        let picked = hidden.index_select(&Tensor::new(positions.as_slice(), dev)?, 0)?;
        let wte = self.gpt.body.params().get("wte").expect("every GPT has wte").as_tensor();
        let n = targets.len();
        let loss = self.gpt.body.kernels().head_cross_entropy(&picked, wte, &Tensor::new(targets.as_slice(), dev)?)?;
        Ok((loss, n))
    }
}

/// One training sequence: a problem's visible examples (and, for a repair, a wrong attempt),
/// then its program; `None` when it does not fit the context.
pub fn sequence(rng: &mut Rng, vocab: &Vocab, shape: &Shape, repair_share: f64, window: usize) -> Option<Vec<u32>> {
    // Shallow programs more often: they are what a small model learns first, and what deeper
    // programs are built of.
    let depth = match rng.below(10) {
        0..=3 => 1,
        4..=6 => 2,
        7..=8 => 3,
        _ => 4,
    };
    let problem = generate::problem(rng, depth, shape);
    let mut prompt = Prompt::new(&problem.visible);
    if rng.uniform() < repair_share {
        prompt.attempt = Some(generate::mutate(rng, &problem.program).words().join(" "));
    }
    let mut seq = vocab.prompt(&prompt);
    seq.extend(vocab.program(&problem.program.words()));
    (seq.len() <= window).then(|| {
        seq.resize(window, tokens::PAD);
        seq
    })
}

/// Training batches drawn from the generator.
pub struct Problems {
    rng: Rng,
    vocab: Vocab,
    shape: Shape,
    repair_share: f64,
}

impl Problems {
    pub fn new(seed: u64, repair_share: f64) -> Problems {
        Problems { rng: Rng::for_stream(seed, "training-problems"), vocab: Vocab::new(), shape: Shape::default(), repair_share }
    }
}

impl BatchSource for Problems {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> rebench_models::Result<()> {
        out.clear();
        while out.len() < batch * window {
            if let Some(seq) = sequence(&mut self.rng, &self.vocab, &self.shape, self.repair_share, window) {
                out.extend(seq);
            }
        }
        Ok(())
    }
}

/// What a training run reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    pub seconds: f64,
    pub first_loss: f32,
    pub last_loss: f32,
    /// Mean loss over the last tenth of the steps.
    pub final_loss: f32,
}

/// Trains the model of `spec` and writes its checkpoint to `path`.
pub fn train(spec: &TrainSpec, path: &Path, mut progress: impl FnMut(usize, f32)) -> anyhow::Result<TrainReport> {
    let start = Instant::now();
    let model = SynthModel { gpt: Gpt::new(spec.config(), spec.seed, &Device::Cpu).context("cannot build the model")? };
    let cfg = TrainConfig {
        batch_size: spec.batch_size,
        schedule: LrSchedule { peak: spec.peak_lr, min: spec.peak_lr / 10.0, warmup: spec.warmup, total: spec.steps },
        adamw: AdamWConfig::default(),
        grad_clip: Some(1.0),
        seed: spec.seed,
    };
    let mut trainer = Trainer::new(&model, cfg);
    let mut source = Problems::new(spec.seed, spec.repair_share);
    let stats = trainer.run(&model, &mut source, spec.steps, |s| progress(s.step, s.loss)).context("training failed")?;
    let tail = &stats[stats.len() - (stats.len() / 10).max(1)..];
    let report = TrainReport {
        seconds: start.elapsed().as_secs_f64(),
        first_loss: stats.first().map_or(f32::NAN, |s| s.loss),
        last_loss: stats.last().map_or(f32::NAN, |s| s.loss),
        final_loss: tail.iter().map(|s| s.loss).sum::<f32>() / tail.len() as f32,
    };
    model.gpt.save(path).context("cannot save the model")?;
    Ok(report)
}
