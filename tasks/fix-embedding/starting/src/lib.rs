//! A minimal GPT training codebase in candle (the role nanoGPT plays in RE-Bench's task): the
//! model, its checkpoints, token shards, random batches, training and evaluation.
//!
//! The model is GPT-2's layout: token and position embeddings, pre-norm blocks (layer norm,
//! causal self-attention, residual; layer norm, 4x MLP with tanh-GELU, residual), a final layer
//! norm, and an output head that is the token embedding itself (tied). Weights are stored
//! `[in, out]` (`y = x · W + b`).
//!
//! Checkpoints are safetensors files: every parameter by name (f32) and the configuration as
//! JSON under the `config` metadata key, with `format` = [`FORMAT`]. The scorer reads exactly
//! this layout.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use candle_core::{D, DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

/// The value of the `format` metadata key of a checkpoint.
pub const FORMAT: &str = "rebench-models/1";

/// Layer-norm epsilon.
pub const LN_EPS: f32 = 1e-5;

/// The shape of a model (the `config` metadata of a checkpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Always `causal` here.
    pub kind: String,
    pub vocab: usize,
    /// The longest sequence the model reads.
    pub context: usize,
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
}

impl Config {
    /// Every parameter's name and shape, in checkpoint order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (v, t, c) = (self.vocab, self.context, self.width);
        let mut out = vec![("wte".to_string(), vec![v, c]), ("wpe".to_string(), vec![t, c])];
        for i in 0..self.depth {
            let p = |s: &str| format!("h.{i}.{s}");
            out.extend([
                (p("ln_1.weight"), vec![c]),
                (p("ln_1.bias"), vec![c]),
                (p("attn.c_attn.weight"), vec![c, 3 * c]),
                (p("attn.c_attn.bias"), vec![3 * c]),
                (p("attn.c_proj.weight"), vec![c, c]),
                (p("attn.c_proj.bias"), vec![c]),
                (p("ln_2.weight"), vec![c]),
                (p("ln_2.bias"), vec![c]),
                (p("mlp.c_fc.weight"), vec![c, 4 * c]),
                (p("mlp.c_fc.bias"), vec![4 * c]),
                (p("mlp.c_proj.weight"), vec![4 * c, c]),
                (p("mlp.c_proj.bias"), vec![c]),
            ]);
        }
        out.push(("ln_f.weight".to_string(), vec![c]));
        out.push(("ln_f.bias".to_string(), vec![c]));
        out
    }
}

/// A GPT: its configuration and its parameters by name (each a trainable [`Var`]).
#[derive(Debug)]
pub struct Gpt {
    pub config: Config,
    pub params: Vec<(String, Var)>,
    /// When set, the forward pass reads the parameters as constants: no gradient is computed
    /// for them (training something else through a fixed model is cheaper).
    pub frozen: bool,
}

impl Gpt {
    /// The parameter `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<&Var> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v).with_context(|| format!("no parameter {name}"))
    }

    fn t(&self, name: &str) -> anyhow::Result<Tensor> {
        let t = self.get(name)?.as_tensor();
        Ok(if self.frozen { t.detach() } else { t.clone() })
    }

    /// Reads a checkpoint (see the module docs).
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<Gpt> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let meta = header.metadata().clone().unwrap_or_default();
        ensure!(meta.get("format").map(String::as_str) == Some(FORMAT), "{}: not a {FORMAT} checkpoint", path.display());
        let config: Config = serde_json::from_str(meta.get("config").context("no config in the metadata")?)?;
        let st = safetensors::SafeTensors::deserialize(&bytes)?;
        let mut params = Vec::new();
        for (name, shape) in config.param_shapes() {
            let view = st.tensor(&name).with_context(|| format!("{}: no tensor {name}", path.display()))?;
            ensure!(view.shape() == shape.as_slice(), "{name}: shape {:?}, expected {shape:?}", view.shape());
            let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            params.push((name, Var::from_tensor(&Tensor::from_vec(values, shape, device)?)?));
        }
        Ok(Gpt { config, params, frozen: false })
    }

    /// Writes a checkpoint that [`Gpt::load`] and the scorer read.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut data = Vec::new();
        for (name, var) in &self.params {
            let values = var.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
            data.push((name.clone(), bytes, var.dims().to_vec()));
        }
        let views = data
            .iter()
            .map(|(name, bytes, shape)| Ok((name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let metadata = HashMap::from([("format".to_string(), FORMAT.to_string()), ("config".to_string(), serde_json::to_string(&self.config)?)]);
        safetensors::serialize_to_file(views, Some(metadata), path)?;
        Ok(())
    }

    /// The final hidden states `[b, t, c]` for input embeddings `[b, t, c]` (token embeddings
    /// already looked up): position embeddings, the blocks and the final layer norm.
    pub fn body(&self, tok: &Tensor) -> anyhow::Result<Tensor> {
        let (b, t, c) = tok.dims3()?;
        let (h, hd) = (self.config.heads, c / self.config.heads);
        let mut x = tok.broadcast_add(&self.t("wpe")?.narrow(0, 0, t)?)?;
        let mask: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (t, t), tok.device())?;
        let linear = |x: &Tensor, p: &str| -> anyhow::Result<Tensor> {
            let (w, bias) = (self.t(&format!("{p}.weight"))?, self.t(&format!("{p}.bias"))?);
            Ok(x.broadcast_matmul(&w)?.broadcast_add(&bias)?)
        };
        let norm = |x: &Tensor, p: &str| -> anyhow::Result<Tensor> {
            Ok(candle_nn::ops::layer_norm_slow(x, &self.t(&format!("{p}.weight"))?, &self.t(&format!("{p}.bias"))?, LN_EPS)?)
        };
        for i in 0..self.config.depth {
            let qkv = linear(&norm(&x, &format!("h.{i}.ln_1"))?, &format!("h.{i}.attn.c_attn"))?;
            let heads = |k: usize| -> anyhow::Result<Tensor> {
                Ok(qkv.narrow(D::Minus1, k * c, c)?.reshape((b, t, h, hd))?.transpose(1, 2)?.contiguous()?)
            };
            let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
            let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?.broadcast_add(&mask)?;
            let att = candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v)?;
            let att = att.transpose(1, 2)?.reshape((b, t, c))?;
            x = (x + linear(&att, &format!("h.{i}.attn.c_proj"))?)?;
            let m = linear(&norm(&x, &format!("h.{i}.ln_2"))?, &format!("h.{i}.mlp.c_fc"))?.gelu()?;
            x = (x + linear(&m, &format!("h.{i}.mlp.c_proj"))?)?;
        }
        norm(&x, "ln_f")
    }

    /// The mean next-token loss of windows `[b, t + 1]` with token embedding `wte` `[v, c]`,
    /// used both to embed the inputs and as the output head (tied).
    pub fn loss_with(&self, wte: &Tensor, windows: &Tensor) -> anyhow::Result<Tensor> {
        let (b, w) = windows.dims2()?;
        let t = w - 1;
        let inputs = windows.narrow(1, 0, t)?.contiguous()?;
        let targets = windows.narrow(1, 1, t)?.flatten_all()?;
        let tok = wte.embedding(&inputs.flatten_all()?)?.reshape((b, t, wte.dim(1)?))?;
        let hidden = self.body(&tok)?.reshape((b * t, wte.dim(1)?))?;
        let logits = hidden.matmul(&wte.t()?)?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
    }

    /// The mean next-token loss of windows `[b, t + 1]`.
    pub fn loss(&self, windows: &Tensor) -> anyhow::Result<Tensor> {
        self.loss_with(&self.t("wte")?, windows)
    }

    /// The mean loss over `tokens`, cut into consecutive windows of `context + 1` tokens that
    /// start every `context` tokens (each token after the first predicted once), as the scorer
    /// evaluates.
    pub fn evaluate(&self, tokens: &[u32], batch: usize) -> anyhow::Result<f64> {
        let (t, device) = (self.config.context, self.get("wte")?.device().clone());
        ensure!(tokens.len() > t, "{} tokens do not fill one window", tokens.len());
        let starts: Vec<usize> = (0..=tokens.len() - t - 1).step_by(t).collect();
        let (mut sum, mut count) = (0.0, 0usize);
        for chunk in starts.chunks(batch) {
            let buf: Vec<u32> = chunk.iter().flat_map(|&s| tokens[s..s + t + 1].iter().copied()).collect();
            let windows = Tensor::from_vec(buf, (chunk.len(), t + 1), &device)?;
            sum += f64::from(self.loss(&windows)?.to_scalar::<f32>()?) * (chunk.len() * t) as f64;
            count += chunk.len() * t;
        }
        Ok(sum / count as f64)
    }
}

/// The device `cpu` or `cuda` (CUDA device 0, in a build with the `cuda` feature).
pub fn device(name: &str) -> anyhow::Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(0).context("device `cuda` (it needs a build with `--features cuda` and a CUDA device)"),
        other => bail!("unknown device `{other}`: `cpu` or `cuda`"),
    }
}

/// The tokens of a token shard (`RBTOKENS`: a 32-byte header, then 2- or 4-byte little-endian
/// token ids).
pub fn read_shard(path: &Path) -> anyhow::Result<Vec<u32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(bytes.len() >= 32 && &bytes[..8] == b"RBTOKENS", "{} is not a token shard", path.display());
    let width = u32::from_le_bytes(bytes[12..16].try_into()?) as usize;
    let tokens = match width {
        2 => bytes[32..].chunks_exact(2).map(|b| u32::from(u16::from_le_bytes([b[0], b[1]]))).collect(),
        4 => bytes[32..].chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        _ => bail!("{}: {width} bytes per token", path.display()),
    };
    Ok(tokens)
}

/// Random training windows: a small SplitMix64 generator picks each window's start.
#[derive(Debug)]
pub struct Batches {
    tokens: Vec<u32>,
    state: u64,
}

impl Batches {
    pub fn new(tokens: Vec<u32>, seed: u64) -> Batches {
        Batches { tokens, state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `batch` windows of `window` tokens, as a `[batch, window]` tensor.
    pub fn next(&mut self, batch: usize, window: usize, device: &Device) -> anyhow::Result<Tensor> {
        let span = (self.tokens.len() - window + 1) as u64;
        let mut buf = Vec::with_capacity(batch * window);
        for _ in 0..batch {
            let s = (self.next_u64() % span) as usize;
            buf.extend_from_slice(&self.tokens[s..s + window]);
        }
        Ok(Tensor::from_vec(buf, (batch, window), device)?)
    }
}

/// The learning rate at `step`: linear warm-up, then cosine decay to a tenth of `peak`.
pub fn lr_at(step: usize, peak: f64, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total.saturating_sub(warmup)).max(1) as f64;
    let min = peak / 10.0;
    min + 0.5 * (peak - min) * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}
