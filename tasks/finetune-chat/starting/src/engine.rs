//! Sampling from a GPT checkpoint: the forward pass one token at a time with a key/value cache,
//! in plain single-threaded f32 Rust over the checkpoint's weights.
//!
//! The scorer samples your model's responses with this same file, so a response depends only
//! on the weights, the prompt and the seed (a fixed summation order on one thread), never on
//! the thread count. Without a cache every new token would recompute the whole prompt.

use std::path::Path;

use anyhow::Context;
use rebench_models::candle_core::Device;
use rebench_models::{Gpt, ModelConfig, Rng};

struct Layer {
    ln1: (Vec<f32>, Vec<f32>),
    attn: (Vec<f32>, Vec<f32>),
    proj: (Vec<f32>, Vec<f32>),
    ln2: (Vec<f32>, Vec<f32>),
    fc: (Vec<f32>, Vec<f32>),
    fc_proj: (Vec<f32>, Vec<f32>),
}

/// A model's weights as flat `[in, out]` matrices.
pub struct Engine {
    pub cfg: ModelConfig,
    wte: Vec<f32>,
    wpe: Vec<f32>,
    layers: Vec<Layer>,
    ln_f: (Vec<f32>, Vec<f32>),
}

/// The keys and values of the positions read so far, per layer, and the next token's logits.
#[derive(Clone)]
pub struct Cache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
    logits: Vec<f32>,
}

impl Cache {
    /// Positions read so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The logits of the next token (empty before the first token).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

/// One sampled response.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The tokens drawn, the end-of-document token included when it was drawn.
    pub tokens: Vec<u32>,
    /// `ln p(tokens | prompt)` under the sampling distribution (temperature applied).
    pub logprob: f64,
}

fn layer_norm(x: &[f32], (w, b): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let rstd = 1.0 / (var + rebench_models::kernels::LN_EPS).sqrt();
    x.iter().zip(w).zip(b).map(|((v, w), b)| (v - mean) * rstd * w + b).collect()
}

/// `x · W + b` with `W` stored `[in, out]`.
fn linear(x: &[f32], (w, b): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let out = b.len();
    let mut y = b.clone();
    for (i, &xi) in x.iter().enumerate() {
        let row = &w[i * out..(i + 1) * out];
        for (yj, wj) in y.iter_mut().zip(row) {
            *yj += xi * wj;
        }
    }
    y
}

fn gelu(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}

impl Engine {
    /// Loads a checkpoint written by `rebench_models` (`Gpt::save`).
    pub fn load(path: &Path) -> anyhow::Result<Engine> {
        let gpt = Gpt::load(path, &Device::Cpu).with_context(|| format!("cannot load the model {}", path.display()))?;
        Engine::from_gpt(&gpt)
    }

    /// A copy of a model's current weights.
    pub fn from_gpt(gpt: &Gpt) -> anyhow::Result<Engine> {
        let params = gpt.body.params();
        let get = |name: &str| -> anyhow::Result<Vec<f32>> {
            let var = params.get(name).with_context(|| format!("no parameter {name}"))?;
            Ok(var.as_tensor().flatten_all()?.to_vec1::<f32>()?)
        };
        let pair = |prefix: &str| -> anyhow::Result<(Vec<f32>, Vec<f32>)> { Ok((get(&format!("{prefix}.weight"))?, get(&format!("{prefix}.bias"))?)) };
        let cfg = gpt.body.config().clone();
        let layers = (0..cfg.depth)
            .map(|i| {
                Ok(Layer {
                    ln1: pair(&format!("h.{i}.ln_1"))?,
                    attn: pair(&format!("h.{i}.attn.c_attn"))?,
                    proj: pair(&format!("h.{i}.attn.c_proj"))?,
                    ln2: pair(&format!("h.{i}.ln_2"))?,
                    fc: pair(&format!("h.{i}.mlp.c_fc"))?,
                    fc_proj: pair(&format!("h.{i}.mlp.c_proj"))?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Engine { wte: get("wte")?, wpe: get("wpe")?, layers, ln_f: pair("ln_f")?, cfg })
    }

    pub fn empty_cache(&self) -> Cache {
        Cache { keys: vec![Vec::new(); self.cfg.depth], values: vec![Vec::new(); self.cfg.depth], len: 0, logits: Vec::new() }
    }

    /// Reads one more token; the cache's logits become those of the next token.
    pub fn push(&self, cache: &mut Cache, token: u32) {
        let c = self.cfg.width;
        let pos = cache.len;
        assert!(pos < self.cfg.context, "position {pos} is past the context");
        let (heads, d) = (self.cfg.heads, self.cfg.head_dim());
        let scale = 1.0 / (d as f32).sqrt();
        let t = token as usize;
        let mut x: Vec<f32> = self.wte[t * c..(t + 1) * c].iter().zip(&self.wpe[pos * c..(pos + 1) * c]).map(|(a, b)| a + b).collect();
        for (l, layer) in self.layers.iter().enumerate() {
            let qkv = linear(&layer_norm(&x, &layer.ln1), &layer.attn);
            cache.keys[l].extend_from_slice(&qkv[c..2 * c]);
            cache.values[l].extend_from_slice(&qkv[2 * c..]);
            let (keys, values) = (&cache.keys[l], &cache.values[l]);
            let mut attended = vec![0.0f32; c];
            for h in 0..heads {
                let q = &qkv[h * d..(h + 1) * d];
                let mut scores: Vec<f32> =
                    (0..=pos).map(|j| q.iter().zip(&keys[j * c + h * d..j * c + (h + 1) * d]).map(|(a, b)| a * b).sum::<f32>() * scale).collect();
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut total = 0.0;
                for s in &mut scores {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let out = &mut attended[h * d..(h + 1) * d];
                for (j, s) in scores.iter().enumerate() {
                    let p = s / total;
                    for (o, v) in out.iter_mut().zip(&values[j * c + h * d..j * c + (h + 1) * d]) {
                        *o += p * v;
                    }
                }
            }
            for (xi, yi) in x.iter_mut().zip(linear(&attended, &layer.proj)) {
                *xi += yi;
            }
            let hidden: Vec<f32> = linear(&layer_norm(&x, &layer.ln2), &layer.fc).into_iter().map(gelu).collect();
            for (xi, yi) in x.iter_mut().zip(linear(&hidden, &layer.fc_proj)) {
                *xi += yi;
            }
        }
        let x = layer_norm(&x, &self.ln_f);
        cache.logits = self.wte.chunks_exact(c).map(|row| row.iter().zip(&x).map(|(a, b)| a * b).sum()).collect();
        cache.len += 1;
    }

    /// A cache that has read `tokens`.
    pub fn prefill(&self, tokens: &[u32]) -> Cache {
        let mut cache = self.empty_cache();
        for &t in tokens {
            self.push(&mut cache, t);
        }
        cache
    }

    /// Draws a response after a prefilled prompt: at most `max_tokens` tokens, stopping after
    /// `stop` (the end-of-document token) or at the context's end, at `temperature` (greedy
    /// when 0).
    pub fn sample(&self, prompt: &Cache, max_tokens: usize, stop: u32, temperature: f64, rng: &mut Rng) -> Response {
        let mut cache = prompt.clone();
        let mut tokens = Vec::new();
        let mut logprob = 0.0f64;
        while tokens.len() < max_tokens && cache.len < self.cfg.context {
            let logits = &cache.logits;
            let token = if temperature <= 0.0 {
                // The first of the best, so ties break the same way everywhere.
                let mut best = 0;
                for (t, &l) in logits.iter().enumerate() {
                    if l > logits[best] {
                        best = t;
                    }
                }
                logprob += 0.0;
                best as u32
            } else {
                let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / temperature).collect();
                let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scaled.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                let mut r = rng.uniform() * total;
                let mut pick = weights.len() - 1;
                for (t, w) in weights.iter().enumerate() {
                    if r < *w {
                        pick = t;
                        break;
                    }
                    r -= w;
                }
                logprob += (weights[pick] / total).ln();
                pick as u32
            };
            tokens.push(token);
            if token == stop {
                break;
            }
            if tokens.len() < max_tokens && cache.len < self.cfg.context {
                self.push(&mut cache, token);
            }
        }
        Response { tokens, logprob }
    }
}
