//! A finetuning pipeline for a small GPT: tokenizes the data, trains with AdamW under a
//! learning-rate schedule, and writes the finetuned weights.
//!
//! `run` is the whole command: `src/main.rs` calls it with the command line, and so does the
//! scorer. It reads `--data` (JSON Lines), `--config` (TOML, see `config.rs`), `--model` (the
//! pretrained checkpoint), `--vocab` (one word per line) and writes `<out>/model.safetensors`.
//!
//! The same computation as the starting pipeline, without its waste: the data is parsed and
//! tokenized once, in memory; no checkpoint is written but the last; the evaluation pass and
//! the intermediate export format are gone; attention runs all heads at once; AdamW updates
//! plain slices in place; candle's element-wise thread pool no longer competes with the
//! matmul's threads for the cores. On a CUDA device (`--device cuda`) AdamW stays on the device
//! (tensor ops), since the in-place update would move every parameter over the bus twice a step.

pub mod activation;
pub mod attention;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod fastdata;
pub mod fastoptim;
pub mod model;
pub mod optim;
pub mod rng;

use anyhow::{Context, ensure};
use candle_core::Device;
use candle_core::backprop::GradStore;

use crate::checkpoint::Checkpoint;
use crate::cli::Args;
use crate::config::Config;
use crate::model::Gpt;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    // candle runs element-wise ops on a thread pool of its own (one worker per core) whose
    // workers spin after every op, taking the cores from the matmul's rayon workers; with one
    // thread that pool has no workers and those ops run on the calling thread.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: `main` calls `run` first thing, before any other thread exists.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let args = Args::parse(args)?;
    let config_text = std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = Config::parse(&config_text).with_context(|| format!("config {}", args.config.display()))?;
    let jsonl = std::fs::read_to_string(&args.data).with_context(|| format!("cannot read {}", args.data.display()))?;
    let vocab = data::load_vocab(&args.vocab)?;
    let pretrained = Checkpoint::load(&args.model)?;
    let trained = finetune(&config, &jsonl, &pretrained, &vocab, &args.device()?)?;
    std::fs::create_dir_all(&args.out)?;
    trained.save(&args.out.join("model.safetensors"))
}

/// AdamW where it is fastest: in place over host slices on the CPU, with tensor ops on the
/// device elsewhere. The same update either way, up to float rounding.
enum Optimizer {
    Host(fastoptim::AdamW),
    Device(optim::AdamW),
}

impl Optimizer {
    fn new(model: &Gpt, config: &Config, device: &Device) -> Optimizer {
        if device.is_cpu() {
            Optimizer::Host(fastoptim::AdamW::new(&model.vars, config.optimizer.clone()))
        } else {
            Optimizer::Device(optim::AdamW::new(&model.vars, config.optimizer.clone()))
        }
    }

    /// One update from the gradients `grads` at learning rate `lr`, after clipping.
    fn step(&mut self, grads: &GradStore, lr: f64) -> anyhow::Result<()> {
        match self {
            Optimizer::Host(adamw) => {
                let grads = adamw.gradients(grads)?;
                let scale = adamw.clip_scale(&grads);
                adamw.step(&grads, lr, scale)
            }
            Optimizer::Device(adamw) => {
                let scale = adamw.clip_scale(grads)?;
                adamw.step(grads, lr, scale)
            }
        }
    }
}

/// The finetuned weights, all in memory, trained on `device`.
pub fn finetune(config: &Config, jsonl: &str, pretrained: &Checkpoint, vocab: &[String], device: &Device) -> anyhow::Result<Checkpoint> {
    ensure!(vocab.len() == pretrained.config.vocab, "the vocabulary has {} words, the model {}", vocab.len(), pretrained.config.vocab);
    ensure!(config.data.seq_len <= pretrained.config.context, "data.seq_len exceeds the model's context");
    let seq_len = config.data.seq_len;
    let stream = fastdata::tokenize_jsonl(jsonl, vocab, config.data.min_doc_tokens)?;
    let n_samples = stream.len() / (seq_len + 1);
    let batch_size = config.train.batch_size;
    let steps_per_epoch = n_samples / batch_size;
    let total = config.train.epochs * steps_per_epoch;
    ensure!(total > 0, "{n_samples} samples make no batch of {batch_size}");

    let model = Gpt::from_checkpoint(pretrained, device)?;
    let mut optimizer = Optimizer::new(&model, config, device);
    let mut step = 0;
    for epoch in 0..config.train.epochs {
        let order = rng::epoch_order(n_samples, config.data.shuffle, config.data.shuffle_seed, epoch);
        for s in 0..steps_per_epoch {
            let (inputs, targets) = fastdata::batch(&stream, seq_len, &order[s * batch_size..(s + 1) * batch_size], device)?;
            optimizer.step(&model.loss(&inputs, &targets)?.backward()?, config.lr_at(step, total))?;
            step += 1;
        }
    }
    model.to_checkpoint()
}
