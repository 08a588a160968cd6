//! The reference repair, RE-Bench's official solution's first stage: the small model's correct
//! embedding `E_s` (`[V, c_s]`) times a learned adapter `A` (`[c_s, c]`) replaces the large
//! model's embedding (input and tied head alike), every other weight of the large model frozen;
//! `A` is trained on the train shard, and `E_s · A` is baked into `wte` of
//! `fixed_model.safetensors`.
//!
//! The adapter has `c_s · c` parameters instead of the embedding's `V · c`, so it learns in a few
//! hundred steps, and it covers rare tokens as well as frequent ones (each token's row comes from
//! the small model, which saw them all). Its budget is about a minute on two cores for the cpu
//! variant. It runs on the variant's device (`REBENCH_PARAM_DEVICE`: `cpu` where unset, `cuda`
//! for the gpu variant).

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use solution::{Batches, Gpt, lr_at, read_shard};

/// Adapter training steps and windows per step on the CPU: about a minute on two cores.
const CPU_SCHEDULE: (usize, usize) = (60, 16);
/// On a CUDA device (the gpu variant's larger models): five times the steps of twice the
/// windows. Not yet run on a GPU: at the H100 rate `gpu-default`'s pretraining assumes (4,000
/// steps of 32 windows through the large model in minutes), well under a minute.
const CUDA_SCHEDULE: (usize, usize) = (300, 32);
/// Peak learning rate.
const ADAPTER_LR: f64 = 1e-2;

fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let device = solution::device(&std::env::var("REBENCH_PARAM_DEVICE").unwrap_or_else(|_| "cpu".to_owned()))?;
    let (adapter_steps, batch) = if device.is_cuda() { CUDA_SCHEDULE } else { CPU_SCHEDULE };
    let mut large = Gpt::load("../data/large_model.safetensors".as_ref(), &device)?;
    large.frozen = true;
    let small = Gpt::load("../data/small_model.safetensors".as_ref(), &device)?;
    let tokens = read_shard("../data/train.tok".as_ref())?;
    // The last 10,000 tokens are held out, to report the repaired model's loss.
    let held = tokens[tokens.len() - 10_000..].to_vec();
    let c = large.config.width;
    let corrupted = large.get("wte")?.as_tensor().clone();
    let e_small = small.get("wte")?.as_tensor().detach();
    let cs = e_small.dim(1)?;

    // Initialized at random (a fixed seed) at the scale that gives adapted rows the corrupted
    // rows' typical size.
    let std = |t: &Tensor| -> anyhow::Result<f64> { Ok(f64::from(t.sqr()?.mean_all()?.to_scalar::<f32>()?).sqrt()) };
    let scale = std(&corrupted)? / (std(&e_small)? * (cs as f64).sqrt());
    let init: Vec<f32> = (0..cs * c).map(|i| ((uniform(i as u64) * 2.0 - 1.0) * 3f64.sqrt() * scale) as f32).collect();
    let adapter = Var::from_tensor(&Tensor::from_vec(init, (cs, c), &device)?)?;
    let mut opt = AdamW::new(vec![adapter.clone()], ParamsAdamW { lr: ADAPTER_LR, weight_decay: 0.0, ..Default::default() })?;
    let mut batches = Batches::new(tokens[..tokens.len() - held.len()].to_vec(), 1);
    for step in 0..adapter_steps {
        opt.set_learning_rate(lr_at(step, ADAPTER_LR, adapter_steps / 10, adapter_steps));
        let windows = batches.next(batch, large.config.context + 1, &device)?;
        let loss = large.loss_with(&e_small.matmul(adapter.as_tensor())?, &windows)?;
        opt.backward_step(&loss)?;
        if step % 20 == 0 || step + 1 == adapter_steps {
            eprintln!("adapter step {step}: loss {:.4} ({:.0} s)", loss.to_scalar::<f32>()?, start.elapsed().as_secs_f64());
        }
    }
    large.get("wte")?.set(&e_small.matmul(adapter.as_tensor())?)?;
    large.save("fixed_model.safetensors".as_ref())?;
    eprintln!(
        "repaired in {:.0} s; loss on the train shard's last {} tokens {:.4}",
        start.elapsed().as_secs_f64(),
        held.len(),
        large.evaluate(&held, 32)?
    );
    Ok(())
}

/// A uniform number in [0, 1) from `i` (SplitMix64), for a reproducible initialization.
fn uniform(i: u64) -> f64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}
