//! Trains (fine-tunes) a checkpoint on the train shard and reports its loss on held-out tokens.
//!
//! `cargo run --release --bin train -- --init ../data/large_model.safetensors --out model.safetensors --steps 200`
//! `cargo run --release --bin train -- --init ../data/large_model.safetensors --steps 0` (evaluate only)
//! `cargo run --release --features cuda --bin train -- --device cuda ...` (on a CUDA device)
//!
//! The last `--holdout` tokens of the shard (default 100,000) are kept out of training and used
//! for the reported loss.

use std::path::PathBuf;

use anyhow::Context;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use solution::{Batches, Gpt, device, lr_at, read_shard};

fn main() -> anyhow::Result<()> {
    let mut init = PathBuf::from("../data/large_model.safetensors");
    let mut out: Option<PathBuf> = None;
    let mut shard = PathBuf::from("../data/train.tok");
    let mut device_name = "cpu".to_owned();
    let (mut steps, mut batch, mut lr, mut holdout, mut seed) = (200usize, 16usize, 3e-4f64, 100_000usize, 0u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--init" => init = value()?.into(),
            "--out" => out = Some(value()?.into()),
            "--data" => shard = value()?.into(),
            "--steps" => steps = value()?.parse()?,
            "--batch" => batch = value()?.parse()?,
            "--lr" => lr = value()?.parse()?,
            "--holdout" => holdout = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--device" => device_name = value()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    let device = device(&device_name)?;
    let model = Gpt::load(&init, &device)?;
    let tokens = read_shard(&shard)?;
    let split = tokens.len().saturating_sub(holdout);
    let (train, held) = (tokens[..split].to_vec(), &tokens[split..]);
    let vars = model.params.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(vars, ParamsAdamW { lr, weight_decay: 0.1, ..Default::default() })?;
    let mut batches = Batches::new(train, seed);
    for step in 0..steps {
        opt.set_learning_rate(lr_at(step, lr, steps / 20 + 1, steps));
        let windows = batches.next(batch, model.config.context + 1, &device)?;
        let loss = model.loss(&windows)?;
        opt.backward_step(&loss)?;
        if step % 20 == 0 || step + 1 == steps {
            println!("step {step}: train loss {:.4}", loss.to_scalar::<f32>()?);
        }
    }
    println!("held-out loss {:.4}", model.evaluate(held, 32)?);
    if let Some(out) = out {
        model.save(&out)?;
        println!("saved {}", out.display());
    }
    Ok(())
}
