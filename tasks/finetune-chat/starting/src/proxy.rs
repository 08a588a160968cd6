//! The proxy reward model: the only reward you can query. A small bag-of-embeddings scorer of
//! one response to one prompt, trained by the task's `prepare` on a few thousand pairs of
//! responses that the hidden judge compared (with some of its verdicts flipped at random).
//!
//! For a response `y` of `n` tokens to a prompt `p` (tokens of the response that also occur in
//! the prompt are "echoes"; `y_0` is the prompt's last token), with the bigram fit
//! `b_t = 3 tanh(F[y_(t-1)] . G[y_t])`:
//! `x = [mean_t E[y_t] ; (1/n) sum over echoes E[y_t] ; n / max_tokens ; mean_t b_t ;
//! -ln sum_t exp(-b_t)]`, `reward = w2 . relu(x W1 + b1) + b2`.
//! It was fit as a Bradley-Terry model: `P(a beats b) = sigmoid(reward(a) - reward(b))`.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, ensure};
use rebench_models::candle_core::{Device, safetensors};

/// Tensor names in `proxy.safetensors`.
pub const EMBEDDING: &str = "emb";
pub const W1: &str = "w1";
pub const B1: &str = "b1";
pub const W2: &str = "w2";
pub const B2: &str = "b2";
pub const BIGRAM_LEFT: &str = "bigram_left";
pub const BIGRAM_RIGHT: &str = "bigram_right";

/// Features besides the two bags: length, mean bigram fit, soft minimum of the bigram fit.
pub const EXTRA_FEATURES: usize = 3;

/// The proxy's weights (`emb` is `[vocab, dim]`, `w1` `[2 dim + 3, hidden]`, `bigram_left`
/// and `bigram_right` `[vocab, rank]`).
#[derive(Clone, Debug)]
pub struct Proxy {
    pub vocab: usize,
    pub dim: usize,
    pub hidden: usize,
    /// Responses longer than this are not expected; the length feature is `n / max_tokens`.
    pub max_tokens: usize,
    pub emb: Vec<f32>,
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    pub w2: Vec<f32>,
    pub b2: f32,
    pub rank: usize,
    pub left: Vec<f32>,
    pub right: Vec<f32>,
}

/// The bigrams a response is judged on: `(previous token, token)`, the first one's previous
/// token the prompt's last.
pub fn bigrams(prompt: &[u32], response: &[u32]) -> Vec<(u32, u32)> {
    let mut prev = prompt.last().copied().unwrap_or(0);
    response
        .iter()
        .map(|&t| {
            let pair = (prev, t);
            prev = t;
            pair
        })
        .collect()
}

/// Per-response token weights of the two bags: `(token, weight in the mean bag, weight in the
/// echo bag)`, and the length feature. The training code builds the same features.
pub fn bags(prompt: &[u32], response: &[u32], max_tokens: usize) -> (Vec<(u32, f32, f32)>, f32) {
    let seen: HashSet<u32> = prompt.iter().copied().collect();
    let n = response.len().max(1) as f32;
    let bags = response.iter().map(|&t| (t, 1.0 / n, if seen.contains(&t) { 1.0 / n } else { 0.0 })).collect();
    (bags, response.len() as f32 / max_tokens as f32)
}

impl Proxy {
    /// Loads `proxy.safetensors` (its `max-tokens` in the metadata).
    pub fn load(path: &Path) -> anyhow::Result<Proxy> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (_, header) = ::safetensors::SafeTensors::read_metadata(&bytes)?;
        let max_tokens: usize = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("max-tokens"))
            .context("the proxy has no max-tokens in its metadata")?
            .parse()?;
        let tensors = safetensors::load_buffer(&bytes, &Device::Cpu)?;
        let get = |name: &str| -> anyhow::Result<(Vec<usize>, Vec<f32>)> {
            let t = tensors.get(name).with_context(|| format!("the proxy has no tensor {name}"))?;
            Ok((t.dims().to_vec(), t.flatten_all()?.to_vec1::<f32>()?))
        };
        let (emb_shape, emb) = get(EMBEDDING)?;
        let (w1_shape, w1) = get(W1)?;
        let (_, b1) = get(B1)?;
        let (_, w2) = get(W2)?;
        let (_, b2) = get(B2)?;
        let (left_shape, left) = get(BIGRAM_LEFT)?;
        let (_, right) = get(BIGRAM_RIGHT)?;
        ensure!(
            emb_shape.len() == 2 && w1_shape.len() == 2 && w1_shape[0] == 2 * emb_shape[1] + EXTRA_FEATURES && left_shape.len() == 2,
            "the proxy's shapes do not fit"
        );
        Ok(Proxy { vocab: emb_shape[0], dim: emb_shape[1], hidden: w1_shape[1], max_tokens, emb, w1, b1, w2, b2: b2[0], rank: left_shape[1], left, right })
    }

    /// The reward of `response` (the tokens after the prompt) to `prompt`.
    pub fn reward(&self, prompt: &[u32], response: &[u32]) -> f32 {
        let (bags, len) = bags(prompt, response, self.max_tokens);
        let d = self.dim;
        let mut x = vec![0.0f32; 2 * d + EXTRA_FEATURES];
        for (t, a, e) in bags {
            let t = (t as usize).min(self.vocab - 1);
            let row = &self.emb[t * d..(t + 1) * d];
            for k in 0..d {
                x[k] += a * row[k];
                x[d + k] += e * row[k];
            }
        }
        x[2 * d] = len;
        let fits: Vec<f32> = bigrams(prompt, response).iter().map(|&(a, b)| self.bigram(a, b)).collect();
        if !fits.is_empty() {
            x[2 * d + 1] = fits.iter().sum::<f32>() / fits.len() as f32;
            x[2 * d + 2] = -fits.iter().map(|f| (-f).exp()).sum::<f32>().ln();
        }
        let mut r = self.b2;
        for j in 0..self.hidden {
            let mut h = self.b1[j];
            for (i, xi) in x.iter().enumerate() {
                h += xi * self.w1[i * self.hidden + j];
            }
            r += h.max(0.0) * self.w2[j];
        }
        r
    }

    /// `3 tanh(F[a] . G[b])`: how well token `b` follows token `a`.
    pub fn bigram(&self, a: u32, b: u32) -> f32 {
        let k = self.rank;
        let (a, b) = ((a as usize).min(self.vocab - 1), (b as usize).min(self.vocab - 1));
        let dot: f32 = self.left[a * k..(a + 1) * k].iter().zip(&self.right[b * k..(b + 1) * k]).map(|(x, y)| x * y).sum();
        3.0 * dot.tanh()
    }
}
