//! Training the model: token windows from `../data/train.tok`, BERT's masking, cross-entropy on
//! the masked positions, AdamW. Not restricted: only `model.rs` is.

use std::path::Path;
use std::time::Instant;

use restricted::candle::{D, DType, Tensor as Raw, Var};
use restricted::{Config, Device, Params, Tensor};

use crate::model::Model;

/// Tokens per sequence, as the scorer feeds them.
pub const SEQ_LEN: usize = 128;

/// One training run's settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub steps: usize,
    pub batch: usize,
    pub peak_lr: f64,
    pub warmup: usize,
    pub weight_decay: f64,
    pub seed: u64,
    /// Where the model trains.
    pub device: Device,
}

/// The token shard format (`RBTOKENS`): a 32-byte header (magic, version, bytes per token,
/// vocabulary size, reserved, token count) and little-endian tokens.
pub fn read_shard(path: &Path) -> Result<(usize, Vec<u32>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() < 32 || &bytes[..8] != b"RBTOKENS" {
        return Err(format!("{} is not a token shard", path.display()));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let (width, vocab) = (u32_at(12) as usize, u32_at(16) as usize);
    let body = &bytes[32..];
    let tokens = match width {
        2 => body.chunks_exact(2).map(|c| u32::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        4 => body.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        w => return Err(format!("{w} bytes per token")),
    };
    Ok((vocab, tokens))
}

/// SplitMix64: a small seeded generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A masked batch: inputs `[batch * SEQ_LEN]`, and the flat positions to predict with their
/// original tokens.
pub struct Masked {
    pub inputs: Vec<u32>,
    pub positions: Vec<u32>,
    pub targets: Vec<u32>,
}

/// BERT's masking, as the scorer does it: each position is picked with p = 0.15; a picked one
/// becomes `[MASK]` (80%), a random real token (10%) or stays (10%).
pub fn mask(tokens: &[u32], vocab: usize, mask_token: u32, rng: &mut Rng) -> Masked {
    let mut out = Masked { inputs: tokens.to_vec(), positions: Vec::new(), targets: Vec::new() };
    for (i, &t) in tokens.iter().enumerate() {
        if rng.uniform() < 0.15 {
            out.positions.push(i as u32);
            out.targets.push(t);
            let u = rng.uniform();
            if u < 0.8 {
                out.inputs[i] = mask_token;
            } else if u < 0.9 {
                out.inputs[i] = rng.below(vocab as u64) as u32;
            }
        }
    }
    out
}

/// Mean cross-entropy of logits `[n, vocab]` against targets `[n]`.
pub fn cross_entropy(logits: &Raw, targets: &Raw) -> restricted::candle::Result<Raw> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let picked = shifted.gather(&targets.unsqueeze(1)?, 1)?;
    (lse - picked)?.mean_all()
}

/// AdamW over the model's variables.
pub struct AdamW {
    vars: Vec<(Var, Raw, Raw)>,
    step: i32,
    weight_decay: f64,
}

impl AdamW {
    pub fn new(params: &Params, weight_decay: f64) -> restricted::candle::Result<AdamW> {
        let vars = params
            .vars()
            .into_iter()
            .map(|(_, v)| {
                let z = v.as_tensor().zeros_like()?;
                Ok((v, z.clone(), z))
            })
            .collect::<restricted::candle::Result<_>>()?;
        Ok(AdamW { vars, step: 0, weight_decay })
    }

    pub fn step(&mut self, loss: &Raw, lr: f64) -> restricted::candle::Result<()> {
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        self.step += 1;
        let (c1, c2) = (1.0 - b1.powi(self.step), 1.0 - b2.powi(self.step));
        let grads = loss.backward()?;
        for (var, m, v) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + eps)?)?;
            // No decay on biases and gains (1-D parameters).
            let decay = if var.as_tensor().rank() >= 2 { self.weight_decay } else { 0.0 };
            var.set(&((var.as_tensor() * (1.0 - lr * decay))? - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Trains a fresh model on `data_dir/train.tok` and saves its weights to `out`.
pub fn train(settings: &Settings, data_dir: &Path, out: &Path) -> Result<(), String> {
    let start = Instant::now();
    let (vocab, tokens) = read_shard(&data_dir.join("train.tok"))?;
    let device = settings.device.clone();
    let config = Config::new(vocab, vocab as u32, SEQ_LEN, device.clone());
    let mut params = Params::fresh(settings.seed, &device);
    let model = Model::new(&config, &mut params).map_err(|e| e.to_string())?;
    let n_params: usize = params.vars().iter().map(|(_, v)| v.as_tensor().elem_count()).sum();
    eprintln!("{n_params} parameters, {} training tokens", tokens.len());
    let mut opt = AdamW::new(&params, settings.weight_decay).map_err(|e| e.to_string())?;
    let mut rng = Rng::new(settings.seed ^ 0xda7a);
    let mut smoothed = f64::NAN;
    for step in 0..settings.steps {
        let mut window = Vec::with_capacity(settings.batch * SEQ_LEN);
        for _ in 0..settings.batch {
            let at = rng.below((tokens.len() - SEQ_LEN) as u64) as usize;
            window.extend_from_slice(&tokens[at..at + SEQ_LEN]);
        }
        let masked = mask(&window, vocab, config.mask_token, &mut rng);
        let lr = schedule(settings, step);
        let loss = (|| -> restricted::candle::Result<f64> {
            let inputs = Raw::from_vec(masked.inputs, (settings.batch, SEQ_LEN), device.as_candle())?;
            let hidden = model.hidden(&Tensor::from_candle(inputs)).map_err(|e| restricted::candle::Error::Msg(e.to_string()))?;
            let d = hidden.dims()[2];
            let n = masked.positions.len();
            let positions = Raw::from_vec(masked.positions, n, device.as_candle())?;
            let picked = hidden.as_candle().reshape((settings.batch * SEQ_LEN, d))?.index_select(&positions, 0)?;
            let logits = model.head(&Tensor::from_candle(picked)).map_err(|e| restricted::candle::Error::Msg(e.to_string()))?;
            let targets = Raw::from_vec(masked.targets, n, device.as_candle())?;
            let loss = cross_entropy(logits.as_candle(), &targets)?;
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            opt.step(&loss, lr)?;
            Ok(value)
        })()
        .map_err(|e| e.to_string())?;
        smoothed = if smoothed.is_nan() { loss } else { 0.95 * smoothed + 0.05 * loss };
        if step % 50 == 0 || step + 1 == settings.steps {
            eprintln!("step {step:>5}  loss {loss:.4}  smoothed {smoothed:.4}  lr {lr:.2e}  {:.1} s", start.elapsed().as_secs_f64());
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    params.save(out).map_err(|e| e.to_string())?;
    eprintln!("saved {} after {:.1} s", out.display(), start.elapsed().as_secs_f64());
    Ok(())
}

/// Linear warm-up, then cosine decay to a tenth of the peak.
fn schedule(s: &Settings, step: usize) -> f64 {
    if step < s.warmup {
        return s.peak_lr * (step + 1) as f64 / s.warmup as f64;
    }
    let progress = (step - s.warmup) as f64 / (s.steps - s.warmup).max(1) as f64;
    let min = s.peak_lr * 0.1;
    min + 0.5 * (s.peak_lr - min) * (1.0 + (std::f64::consts::PI * progress).cos())
}
