//! Inference for the weak model: the GPT's forward pass one token at a time with a key/value
//! cache, in plain single-threaded f32 Rust over the checkpoint's weights, and sampling.
//!
//! Why not candle's forward: without a cache every new token recomputes the whole prompt (about
//! 30x the work here), and a fixed summation order on one thread makes a sample depend only on
//! the weights, the prompt and the seed, not on thread counts. `tests` check the logits against
//! `rebench_models::Gpt::forward`.

use std::path::Path;

use anyhow::Context;
use dsl::Sample;
use rebench_models::candle_core::Device;
use rebench_models::{Gpt, ModelConfig, Rng};

use crate::tokens::{self, Vocab};

struct Layer {
    ln1: (Vec<f32>, Vec<f32>),
    attn: (Vec<f32>, Vec<f32>),
    proj: (Vec<f32>, Vec<f32>),
    ln2: (Vec<f32>, Vec<f32>),
    fc: (Vec<f32>, Vec<f32>),
    fc_proj: (Vec<f32>, Vec<f32>),
}

/// The model's weights as flat `[in, out]` matrices.
pub struct Engine {
    pub cfg: ModelConfig,
    wte: Vec<f32>,
    wpe: Vec<f32>,
    layers: Vec<Layer>,
    ln_f: (Vec<f32>, Vec<f32>),
    vocab: Vocab,
}

/// The keys and values of the positions read so far, per layer.
#[derive(Clone)]
pub struct Cache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
    /// The logits after the last token read.
    logits: Vec<f32>,
}

impl Cache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
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
    /// Loads a checkpoint written by `train::train`.
    pub fn load(path: &Path) -> anyhow::Result<Engine> {
        let gpt = Gpt::load(path, &Device::Cpu).with_context(|| format!("cannot load the model {}", path.display()))?;
        Engine::from_gpt(&gpt)
    }

    pub fn from_gpt(gpt: &Gpt) -> anyhow::Result<Engine> {
        let params = gpt.body.params();
        let get = |name: &str| -> anyhow::Result<Vec<f32>> {
            let var = params.get(name).with_context(|| format!("no parameter {name}"))?;
            Ok(var.as_tensor().flatten_all()?.to_vec1::<f32>()?)
        };
        let pair = |prefix: &str| -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
            Ok((get(&format!("{prefix}.weight"))?, get(&format!("{prefix}.bias"))?))
        };
        let cfg = gpt.body.config().clone();
        let vocab = Vocab::new();
        anyhow::ensure!(cfg.vocab == vocab.size(), "the model has {} tokens, the task {}", cfg.vocab, vocab.size());
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
        Ok(Engine { wte: get("wte")?, wpe: get("wpe")?, layers, ln_f: pair("ln_f")?, cfg, vocab })
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
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
                let mut scores: Vec<f32> = (0..=pos)
                    .map(|j| q.iter().zip(&keys[j * c + h * d..j * c + (h + 1) * d]).map(|(a, b)| a * b).sum::<f32>() * scale)
                    .collect();
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

    /// The logits after the last token read.
    pub fn logits<'a>(&self, cache: &'a Cache) -> &'a [f32] {
        &cache.logits
    }

    /// Draws one program after a prefilled prompt: at most `max_tokens` tokens (the end token
    /// included), from the language's words and `<eos>` only, greedily when `temperature` is 0.
    pub fn sample(&self, prompt: &Cache, temperature: f64, max_tokens: u32, rng: &mut Rng) -> Sample {
        let mut cache = prompt.clone();
        let mut words = Vec::new();
        let mut logprob = 0.0f64;
        let mut drawn = 0u32;
        let mut finished = false;
        while drawn < max_tokens && cache.len < self.cfg.context {
            let allowed: Vec<(u32, f64)> = cache
                .logits
                .iter()
                .enumerate()
                .filter(|(t, _)| *t as u32 == tokens::EOS || self.vocab.is_word(*t as u32))
                .map(|(t, &l)| (t as u32, f64::from(l)))
                .collect();
            let max = allowed.iter().map(|a| a.1).fold(f64::NEG_INFINITY, f64::max);
            let log_total = allowed.iter().map(|a| (a.1 - max).exp()).sum::<f64>().ln() + max;
            let token = if temperature <= 0.0 {
                // The first of the best, so ties break the same way everywhere.
                allowed.iter().fold(allowed[0], |best, a| if a.1 > best.1 { *a } else { best }).0
            } else {
                let weights: Vec<f64> = allowed.iter().map(|a| ((a.1 - max) / temperature).exp()).collect();
                let mut r = rng.uniform() * weights.iter().sum::<f64>();
                let mut pick = allowed[allowed.len() - 1].0;
                for (a, w) in allowed.iter().zip(&weights) {
                    if r < *w {
                        pick = a.0;
                        break;
                    }
                    r -= w;
                }
                pick
            };
            let l = allowed.iter().find(|a| a.0 == token).map_or(f64::NEG_INFINITY, |a| a.1);
            logprob += l - log_total;
            drawn += 1;
            if token == tokens::EOS {
                finished = true;
                break;
            }
            words.push(self.vocab.word_text(token).unwrap_or("?"));
            if drawn < max_tokens {
                self.push(&mut cache, token);
            }
        }
        Sample { text: words.join(" "), tokens: drawn, logprob, finished }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebench_models::candle_core::Tensor;

    #[test]
    fn cached_logits_match_the_gpt_forward() {
        let vocab = Vocab::new();
        let cfg = ModelConfig::gpt(vocab.size(), 24, 32, 2, 4);
        let gpt = Gpt::new(cfg, 5, &Device::Cpu).unwrap();
        let engine = Engine::from_gpt(&gpt).unwrap();
        let tokens: Vec<u32> = (0..20).map(|i| (i * 37 + 11) % vocab.size() as u32).collect();
        let logits = gpt.forward(&Tensor::new(tokens.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap()).unwrap();
        let logits = logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        let mut cache = engine.empty_cache();
        for (i, &t) in tokens.iter().enumerate() {
            engine.push(&mut cache, t);
            let worst = engine.logits(&cache).iter().zip(&logits[i]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-4, "position {i}: logits differ by {worst}");
        }
    }

    #[test]
    fn sampling_is_seeded_and_greedy_is_fixed() {
        let vocab = Vocab::new();
        let gpt = Gpt::new(ModelConfig::gpt(vocab.size(), 32, 32, 1, 2), 9, &Device::Cpu).unwrap();
        let engine = Engine::from_gpt(&gpt).unwrap();
        let prompt = engine.prefill(&[tokens::BOS, vocab.number(3), tokens::TO, vocab.number(6), tokens::END, tokens::PROG]);
        let draw = |seed, t| engine.sample(&prompt, t, 8, &mut Rng::new(seed));
        assert_eq!(draw(1, 1.0), draw(1, 1.0));
        assert_eq!(draw(1, 0.0), draw(2, 0.0));
        let s = draw(3, 1.0);
        assert!(s.tokens <= 8 && s.logprob <= 0.0);
        assert!(s.text.split_whitespace().all(|w| vocab.is_word(vocab.word(w))), "{}", s.text);
    }
}
