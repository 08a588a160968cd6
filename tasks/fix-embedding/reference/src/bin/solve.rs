//! The reference repair: recovers which token each row of the large model's embedding belongs
//! to, and writes the large model with its rows put back in order to `fixed_model.safetensors`.
//!
//! The rows themselves are intact, only their order is lost, so the repair is a matching:
//!
//! 1. An adapter: the small model's correct embedding `E_s` (`[V, c_s]`) times a learned
//!    `A` (`[c_s, c]`) serves as the large model's embedding (input and tied head), with every
//!    other weight of the large model frozen; `A` is trained on the train shard for a few
//!    hundred steps (RE-Bench's official solution's first stage).
//! 2. Snap: each token gets the corrupted row most similar (cosine) to its adapted embedding
//!    `E_s[t] · A`, one row per token, greedily by similarity.
//! 3. Refit: `A` is refitted by least squares to the matched rows and the matching redone, a
//!    few times: as more tokens are matched correctly, the map improves, and so on.
//!
//! Its budget is about two minutes on two cores for the cpu variant.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use solution::{Batches, Gpt, lr_at, read_shard};

/// Adapter training steps, windows per step and peak learning rate.
const ADAPTER_STEPS: usize = 150;
const BATCH: usize = 16;
const ADAPTER_LR: f64 = 1e-2;
/// Candidate rows kept per token for the greedy matching.
const CANDIDATES: usize = 16;
/// Least-squares refits of the adapter after the first matching.
const REFITS: usize = 4;

fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let device = Device::Cpu;
    let large = Gpt::load("../data/large_model.safetensors".as_ref(), &device)?;
    let small = Gpt::load("../data/small_model.safetensors".as_ref(), &device)?;
    let tokens = read_shard("../data/train.tok".as_ref())?;
    let (v, c) = (large.config.vocab, large.config.width);
    let corrupted = large.get("wte")?.as_tensor().clone();
    let e_small = small.get("wte")?.as_tensor().clone();
    let cs = e_small.dim(1)?;

    // 1. The adapter, trained through the frozen large model.
    // Initialized at random (a fixed seed) at the scale that gives adapted rows the corrupted
    // rows' typical size.
    let std = |t: &Tensor| -> anyhow::Result<f64> { Ok(f64::from(t.sqr()?.mean_all()?.to_scalar::<f32>()?).sqrt()) };
    let scale = std(&corrupted)? / (std(&e_small)? * (cs as f64).sqrt());
    let init: Vec<f32> = (0..cs * c).map(|i| (uniform(i as u64) * 2.0 - 1.0) * 3f64.sqrt() * scale).map(|x| x as f32).collect();
    let adapter = Var::from_tensor(&Tensor::from_vec(init, (cs, c), &device)?)?;
    let mut opt = AdamW::new(vec![adapter.clone()], ParamsAdamW { lr: ADAPTER_LR, weight_decay: 0.0, ..Default::default() })?;
    let mut batches = Batches::new(tokens, 1);
    let mut last = f32::NAN;
    for step in 0..ADAPTER_STEPS {
        opt.set_learning_rate(lr_at(step, ADAPTER_LR, ADAPTER_STEPS / 10, ADAPTER_STEPS));
        let windows = batches.next(BATCH, large.config.context + 1, &device)?;
        let wte = e_small.matmul(adapter.as_tensor())?;
        let loss = large.loss_with(&wte, &windows)?;
        // Only the adapter is updated: the optimizer holds it alone.
        opt.backward_step(&loss)?;
        last = loss.to_scalar::<f32>()?;
        if step % 25 == 0 {
            eprintln!("adapter step {step}: loss {last:.4} ({:.0} s)", start.elapsed().as_secs_f64());
        }
    }
    eprintln!("adapter trained: loss {last:.4} ({:.0} s)", start.elapsed().as_secs_f64());

    // 2-3. Match, refit, match again.
    let rows = to_rows(&corrupted)?;
    let small_rows = to_rows(&e_small)?;
    let mut predicted = to_rows(&e_small.matmul(adapter.as_tensor())?)?;
    let mut assignment = Vec::new();
    for round in 0..=REFITS {
        assignment = match_rows(&predicted, &rows, v, c, &device)?;
        if round == REFITS {
            break;
        }
        let a = least_squares(&small_rows, &rows, &assignment, v, cs, c);
        predicted = (0..v)
            .flat_map(|t| {
                let x = &small_rows[t * cs..(t + 1) * cs];
                let a = &a;
                (0..c).map(move |j| (0..cs).map(|k| x[k] * a[k * c + j]).sum::<f32>())
            })
            .collect();
        eprintln!("refit {round} ({:.0} s)", start.elapsed().as_secs_f64());
    }
    let fixed: Vec<f32> = assignment.iter().flat_map(|&r| rows[r * c..(r + 1) * c].iter().copied()).collect();
    let wte = large.get("wte")?;
    wte.set(&Tensor::from_vec(fixed, (v, c), &device)?)?;
    large.save("fixed_model.safetensors".as_ref())?;
    let held = read_shard("../data/train.tok".as_ref())?;
    let tail = &held[held.len().saturating_sub(20_000)..];
    eprintln!("repaired in {:.0} s; loss on the train shard's last {} tokens {:.4}", start.elapsed().as_secs_f64(), tail.len(), large.evaluate(tail, 32)?);
    Ok(())
}

fn to_rows(t: &Tensor) -> anyhow::Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn unit(rows: &[f32], c: usize) -> Vec<f32> {
    rows.chunks_exact(c)
        .flat_map(|r| {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            r.iter().map(move |x| x / n)
        })
        .collect()
}

/// Assigns every token a distinct row: the pairs (token, candidate row) by decreasing cosine
/// similarity, greedily; tokens left without a candidate take the most similar free row.
fn match_rows(predicted: &[f32], rows: &[f32], v: usize, c: usize, device: &Device) -> anyhow::Result<Vec<usize>> {
    let p = Tensor::from_vec(unit(predicted, c), (v, c), device)?;
    let r = Tensor::from_vec(unit(rows, c), (v, c), device)?;
    let sims = to_rows(&p.matmul(&r.t()?)?)?;
    let sim = |t: usize, j: usize| -> f32 { sims[t * v + j] };
    let mut pairs: Vec<(f32, u32, u32)> = Vec::with_capacity(v * CANDIDATES);
    for t in 0..v {
        let mut best: Vec<(f32, u32)> = (0..v).map(|j| (sim(t, j), j as u32)).collect();
        best.select_nth_unstable_by(CANDIDATES.min(v - 1), |a, b| b.0.total_cmp(&a.0));
        pairs.extend(best[..CANDIDATES.min(v)].iter().map(|&(s, j)| (s, t as u32, j)));
    }
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let (mut of_token, mut taken) = (vec![usize::MAX; v], vec![false; v]);
    for (_, t, j) in pairs {
        let (t, j) = (t as usize, j as usize);
        if of_token[t] == usize::MAX && !taken[j] {
            of_token[t] = j;
            taken[j] = true;
        }
    }
    for t in 0..v {
        if of_token[t] == usize::MAX {
            let j = (0..v).filter(|&j| !taken[j]).max_by(|&a, &b| sim(t, a).total_cmp(&sim(t, b))).expect("as many rows as tokens");
            of_token[t] = j;
            taken[j] = true;
        }
    }
    Ok(of_token)
}

/// A uniform number in [0, 1) from `i` (SplitMix64), for a reproducible initialization.
fn uniform(i: u64) -> f64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// The `[cs, c]` map minimizing `Σ_t |x_t · A - rows[assignment[t]]|²` (with a small ridge),
/// by the normal equations and a Cholesky factorization.
fn least_squares(x: &[f32], rows: &[f32], assignment: &[usize], v: usize, cs: usize, c: usize) -> Vec<f32> {
    let mut xtx = vec![0f64; cs * cs];
    let mut xty = vec![0f64; cs * c];
    for t in 0..v {
        let xt = &x[t * cs..(t + 1) * cs];
        let y = &rows[assignment[t] * c..(assignment[t] + 1) * c];
        for i in 0..cs {
            for k in 0..cs {
                xtx[i * cs + k] += f64::from(xt[i]) * f64::from(xt[k]);
            }
            for j in 0..c {
                xty[i * c + j] += f64::from(xt[i]) * f64::from(y[j]);
            }
        }
    }
    let trace = (0..cs).map(|i| xtx[i * cs + i]).sum::<f64>() / cs as f64;
    for i in 0..cs {
        xtx[i * cs + i] += 1e-3 * trace;
    }
    // Cholesky: xtx = L Lᵀ.
    let mut l = vec![0f64; cs * cs];
    for i in 0..cs {
        for j in 0..=i {
            let s: f64 = xtx[i * cs + j] - (0..j).map(|k| l[i * cs + k] * l[j * cs + k]).sum::<f64>();
            l[i * cs + j] = if i == j { s.max(1e-12).sqrt() } else { s / l[j * cs + j] };
        }
    }
    let mut a = vec![0f32; cs * c];
    for j in 0..c {
        let mut z = vec![0f64; cs];
        for i in 0..cs {
            z[i] = (xty[i * c + j] - (0..i).map(|k| l[i * cs + k] * z[k]).sum::<f64>()) / l[i * cs + i];
        }
        for i in (0..cs).rev() {
            z[i] = (z[i] - (i + 1..cs).map(|k| l[k * cs + i] * z[k]).sum::<f64>()) / l[i * cs + i];
        }
        for i in 0..cs {
            a[i * c + j] = z[i] as f32;
        }
    }
    a
}

