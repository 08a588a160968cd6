//! A finetuning pipeline for a small GPT: converts the data, tokenizes it, trains with AdamW
//! under a learning-rate schedule, and writes the finetuned weights.
//!
//! `run` is the whole command: `src/main.rs` calls it with the command line, and so does the
//! scorer. It reads `--data` (JSON Lines), `--config` (TOML, see `config.rs`), `--model` (the
//! pretrained checkpoint), `--vocab` (one word per line) and writes `<out>/model.safetensors`;
//! `--device` (`cpu` by default; `cuda` in a build with the `cuda` feature) is where it trains.

pub mod activation;
pub mod attention;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod model;
pub mod optim;
pub mod rng;

use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use candle_core::Device;
use candle_core::backprop::GradStore;

use crate::checkpoint::Checkpoint;
use crate::cli::Args;
use crate::config::Config;
use crate::model::Gpt;
use crate::optim::AdamW;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let args = Args::parse(args)?;
    let config_text = std::fs::read_to_string(&args.config).with_context(|| format!("cannot read {}", args.config.display()))?;
    let config = Config::parse(&config_text).with_context(|| format!("config {}", args.config.display()))?;
    let device = args.device()?;
    let work = args.out.join("work");
    std::fs::create_dir_all(&work)?;

    // Stage 1: the data, converted to the pipeline's shard format.
    let shard = data::convert(&args.data, &work)?;
    let vocab = data::load_vocab(&args.vocab)?;

    // Stage 2: the pretrained model.
    let pretrained = Checkpoint::load(&args.model)?;
    ensure!(vocab.len() == pretrained.config.vocab, "the vocabulary has {} words, the model {}", vocab.len(), pretrained.config.vocab);
    ensure!(config.data.seq_len <= pretrained.config.context, "data.seq_len exceeds the model's context");
    let model = Gpt::from_checkpoint(&pretrained, &device)?;
    let mut optimizer = AdamW::new(&model.vars, config.optimizer.clone());

    // Stage 3: training.
    let n_samples = data::samples(&data::tokenize(&shard, &vocab, config.data.min_doc_tokens)?, config.data.seq_len).len();
    let batch_size = config.train.batch_size;
    let steps_per_epoch = n_samples / batch_size;
    let total = config.train.epochs * steps_per_epoch;
    ensure!(total > 0, "{n_samples} samples make no batch of {batch_size}");
    eprintln!("{n_samples} samples, {steps_per_epoch} steps per epoch, {total} steps");
    let mut step = 0;
    for epoch in 0..config.train.epochs {
        let docs = data::tokenize(&shard, &vocab, config.data.min_doc_tokens)?;
        let samples = data::samples(&docs, config.data.seq_len);
        let order = rng::epoch_order(samples.len(), config.data.shuffle, config.data.shuffle_seed, epoch);
        for s in 0..steps_per_epoch {
            // The batch's gradient, accumulated over micro-batches: each one's mean loss
            // weighted by its share of the batch.
            let mut grads: Option<GradStore> = None;
            let mut batch_loss = 0.0;
            for micro in order[s * batch_size..(s + 1) * batch_size].chunks(config.train.micro_batch_size) {
                let (inputs, targets) = data::batch(&samples, micro, &device)?;
                let loss = (model.loss(&inputs, &targets)? * (micro.len() as f64 / batch_size as f64))?;
                batch_loss += f64::from(loss.to_scalar::<f32>()?);
                let micro_grads = loss.backward()?;
                grads = Some(match grads {
                    None => micro_grads,
                    Some(mut acc) => {
                        for (_, var) in &model.vars {
                            if let Some(g) = micro_grads.get(var.as_tensor()) {
                                let sum = match acc.get(var.as_tensor()) {
                                    Some(a) => (a.detach() + g.detach())?,
                                    None => g.detach(),
                                };
                                acc.insert(var.as_tensor(), sum);
                            }
                        }
                        acc
                    }
                });
            }
            let grads = grads.context("an empty batch")?;
            let scale = optimizer.clip_scale(&grads)?;
            let lr = config.lr_at(step, total);
            optimizer.step(&grads, lr, scale)?;
            eprintln!("epoch {epoch} step {step} loss {batch_loss:.4} lr {lr:.3e}");
            step += 1;
            if config.eval.interval_steps > 0 && step % config.eval.interval_steps == 0 {
                let loss = evaluate(&model, &samples, config.eval.batch_size, &device)?;
                eprintln!("step {step}: loss over the training samples {loss:.4}");
            }
            if config.checkpoint.save_every > 0 && step % config.checkpoint.save_every == 0 {
                save_checkpoint(&model, &work.join("checkpoints"), step)?;
            }
        }
        if config.eval.every_epoch {
            let loss = evaluate(&model, &samples, config.eval.batch_size, &device)?;
            eprintln!("epoch {epoch}: loss over the training samples {loss:.4}");
        }
    }

    // Stage 4: export, through the interchange format.
    let exported = work.join("export").join("model.json");
    export_json(&model.to_checkpoint()?, &exported)?;
    import_json(&exported)?.save(&args.out.join("model.safetensors"))
}

/// Saves step `step`'s checkpoint under `dir`, keeping the two most recent.
fn save_checkpoint(model: &Gpt, dir: &Path, step: usize) -> anyhow::Result<()> {
    model.to_checkpoint()?.save(&dir.join(format!("step-{step:06}.safetensors")))?;
    let mut saved: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    saved.sort();
    for old in saved.iter().rev().skip(2) {
        std::fs::remove_file(old)?;
    }
    Ok(())
}

/// The mean loss over every sample, in batches.
fn evaluate(model: &Gpt, samples: &[Vec<u32>], batch_size: usize, device: &Device) -> anyhow::Result<f64> {
    let indices: Vec<usize> = (0..samples.len()).collect();
    let mut total = 0.0;
    let mut batches = 0;
    for chunk in indices.chunks(batch_size) {
        let (inputs, targets) = data::batch(samples, chunk, device)?;
        total += f64::from(model.loss(&inputs, &targets)?.to_scalar::<f32>()?);
        batches += 1;
    }
    Ok(total / batches as f64)
}

/// The interchange format: the configuration and every parameter as JSON.
fn export_json(checkpoint: &Checkpoint, path: &Path) -> anyhow::Result<()> {
    let params: Vec<serde_json::Value> = checkpoint
        .params
        .iter()
        .map(|(name, shape, values)| serde_json::json!({"name": name, "shape": shape, "values": values}))
        .collect();
    let doc = serde_json::json!({"config": checkpoint.config, "params": params});
    std::fs::create_dir_all(path.parent().context("export path")?)?;
    std::fs::write(path, serde_json::to_vec(&doc)?)?;
    Ok(())
}

fn import_json(path: &Path) -> anyhow::Result<Checkpoint> {
    #[derive(serde::Deserialize)]
    struct Param {
        name: String,
        shape: Vec<usize>,
        values: Vec<f32>,
    }
    #[derive(serde::Deserialize)]
    struct Doc {
        config: checkpoint::ModelConfig,
        params: Vec<Param>,
    }
    let doc: Doc = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok(Checkpoint { config: doc.config, params: doc.params.into_iter().map(|p| (p.name, p.shape, p.values)).collect() })
}
