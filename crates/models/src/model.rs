//! The transformer body shared by both models, the GPT-style causal LM and the BERT-style
//! masked LM.
//!
//! Layout follows GPT-2: token and position embeddings, pre-norm blocks (layer norm, attention,
//! residual; layer norm, 4x MLP with GELU, residual), a final layer norm, and an output head
//! tied to the token embedding. Weights are stored `[in, out]` (`y = x · W + b`).
//! Initialization follows GPT-2 too: weights and embeddings N(0, 0.02), the two projections
//! that write into the residual stream N(0, 0.02/√(2L)), biases 0, norm gains 1.

use candle_core::{Device, Tensor};

use crate::config::{ModelConfig, ModelKind};
use crate::kernels::Kernels;
use crate::params::{Init, Params};
use crate::rng::Rng;
use crate::{Error, Result};

struct Block {
    ln1: (Tensor, Tensor),
    attn: (Tensor, Tensor),
    attn_proj: (Tensor, Tensor),
    ln2: (Tensor, Tensor),
    fc: (Tensor, Tensor),
    fc_proj: (Tensor, Tensor),
}

/// Token embedding, blocks and final norm: everything but the objective.
pub struct Transformer {
    cfg: ModelConfig,
    params: Params,
    kernels: Kernels,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: (Tensor, Tensor),
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer")
            .field("cfg", &self.cfg)
            .field("kernels", &self.kernels)
            .finish()
    }
}

/// The name, shape and initialization of every parameter, in creation order.
pub fn param_specs(cfg: &ModelConfig) -> Vec<(String, Vec<usize>, Init)> {
    let (v, t, c, f) = (cfg.vocab, cfg.context, cfg.width, cfg.mlp_width());
    let std = 0.02;
    let resid_std = std / (2.0 * cfg.depth as f64).sqrt();
    let mut specs = vec![
        ("wte".to_string(), vec![v, c], Init::Normal(std)),
        ("wpe".to_string(), vec![t, c], Init::Normal(std)),
    ];
    for i in 0..cfg.depth {
        let p = |s: &str| format!("h.{i}.{s}");
        specs.extend([
            (p("ln_1.weight"), vec![c], Init::Ones),
            (p("ln_1.bias"), vec![c], Init::Zeros),
            (p("attn.c_attn.weight"), vec![c, 3 * c], Init::Normal(std)),
            (p("attn.c_attn.bias"), vec![3 * c], Init::Zeros),
            (p("attn.c_proj.weight"), vec![c, c], Init::Normal(resid_std)),
            (p("attn.c_proj.bias"), vec![c], Init::Zeros),
            (p("ln_2.weight"), vec![c], Init::Ones),
            (p("ln_2.bias"), vec![c], Init::Zeros),
            (p("mlp.c_fc.weight"), vec![c, f], Init::Normal(std)),
            (p("mlp.c_fc.bias"), vec![f], Init::Zeros),
            (p("mlp.c_proj.weight"), vec![f, c], Init::Normal(resid_std)),
            (p("mlp.c_proj.bias"), vec![c], Init::Zeros),
        ]);
    }
    specs.push(("ln_f.weight".to_string(), vec![c], Init::Ones));
    specs.push(("ln_f.bias".to_string(), vec![c], Init::Zeros));
    specs
}

impl Transformer {
    /// A freshly initialized model: the same `seed` gives bit-identical weights.
    pub fn new(cfg: ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let mut params = Params::default();
        for (name, shape, init) in param_specs(&cfg) {
            params.add(&name, &shape, init, seed, device)?;
        }
        Self::from_params(cfg, params)
    }

    /// Wraps parameters that hold every entry of [`param_specs`] with its shape.
    pub(crate) fn from_params(cfg: ModelConfig, params: Params) -> Result<Self> {
        cfg.validate()?;
        for (name, shape, _) in param_specs(&cfg) {
            match params.get(&name) {
                None => return Err(Error::Config(format!("missing parameter {name}"))),
                Some(v) if v.dims() != shape.as_slice() => {
                    return Err(Error::Config(format!(
                        "parameter {name} has shape {:?}, expected {shape:?}",
                        v.dims()
                    )));
                }
                Some(_) => {}
            }
        }
        let get = |name: &str| params.get(name).expect("checked above").as_tensor().clone();
        let pair = |prefix: String| {
            (
                get(&format!("{prefix}.weight")),
                get(&format!("{prefix}.bias")),
            )
        };
        let blocks = (0..cfg.depth)
            .map(|i| Block {
                ln1: pair(format!("h.{i}.ln_1")),
                attn: pair(format!("h.{i}.attn.c_attn")),
                attn_proj: pair(format!("h.{i}.attn.c_proj")),
                ln2: pair(format!("h.{i}.ln_2")),
                fc: pair(format!("h.{i}.mlp.c_fc")),
                fc_proj: pair(format!("h.{i}.mlp.c_proj")),
            })
            .collect();
        Ok(Self {
            wte: get("wte"),
            wpe: get("wpe"),
            ln_f: pair("ln_f".to_string()),
            blocks,
            kernels: Kernels::default(),
            cfg,
            params,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn device(&self) -> &Device {
        self.wte.device()
    }

    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Chooses the kernel implementation (the weights are unchanged).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// The final hidden states `[b·t, c]` (after the last layer norm) for token ids `[b, t]`.
    pub fn hidden(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        if t > self.cfg.context {
            return Err(Error::Batch(format!(
                "sequence length {t} exceeds the context {}",
                self.cfg.context
            )));
        }
        let c = self.cfg.width;
        let k = self.kernels;
        let causal = self.cfg.kind == ModelKind::Causal;
        let tok = self
            .wte
            .embedding(&tokens.flatten_all()?)?
            .reshape((b, t, c))?;
        let mut x = tok
            .broadcast_add(&self.wpe.narrow(0, 0, t)?)?
            .reshape((b * t, c))?;
        for blk in &self.blocks {
            let attn = [
                &blk.ln1.0,
                &blk.ln1.1,
                &blk.attn.0,
                &blk.attn.1,
                &blk.attn_proj.0,
                &blk.attn_proj.1,
            ];
            x = k.attention_block(&x, attn, b, self.cfg.heads, causal)?;
            let mlp = [
                &blk.ln2.0,
                &blk.ln2.1,
                &blk.fc.0,
                &blk.fc.1,
                &blk.fc_proj.0,
                &blk.fc_proj.1,
            ];
            x = k.mlp_block(&x, mlp)?;
        }
        k.layer_norm(&x, &self.ln_f.0, &self.ln_f.1)
    }

    /// Logits `[n, v]` of the tied output head for hidden states `[n, c]`.
    pub fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden.matmul(&self.wte.t()?)?)
    }
}

/// A model trained by [`crate::train::Trainer`]: a transformer plus its objective.
pub trait LanguageModel {
    fn transformer(&self) -> &Transformer;

    /// The length of each token window in a batch (the context, plus one for next-token
    /// prediction).
    fn window(&self) -> usize;

    /// The mean loss over a batch of `batch` windows laid end to end in `windows`, and the number
    /// of predictions it averages over. `rng` draws whatever the objective randomizes (masks).
    fn loss(&self, windows: &[u32], batch: usize, rng: &mut Rng) -> Result<(Tensor, usize)>;
}

fn check_batch(windows: &[u32], batch: usize, window: usize, vocab: usize) -> Result<()> {
    if windows.len() != batch * window {
        return Err(Error::Batch(format!(
            "{} tokens for {batch} windows of {window}",
            windows.len()
        )));
    }
    if let Some(&bad) = windows.iter().find(|&&id| id as usize >= vocab) {
        return Err(Error::Batch(format!(
            "token id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    Ok(())
}

/// GPT-style causal language model: predicts every next token.
#[derive(Debug)]
pub struct Gpt {
    pub body: Transformer,
}

impl Gpt {
    pub fn new(cfg: ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        if cfg.kind != ModelKind::Causal {
            return Err(Error::Config("a Gpt needs kind = causal".into()));
        }
        Ok(Self {
            body: Transformer::new(cfg, seed, device)?,
        })
    }

    /// Logits `[b, t, v]` for token ids `[b, t]`.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let logits = self.body.head(&self.body.hidden(tokens)?)?;
        Ok(logits.reshape((b, t, self.body.cfg.vocab))?)
    }
}

impl LanguageModel for Gpt {
    fn transformer(&self) -> &Transformer {
        &self.body
    }

    fn window(&self) -> usize {
        self.body.cfg.context + 1
    }

    fn loss(&self, windows: &[u32], batch: usize, _rng: &mut Rng) -> Result<(Tensor, usize)> {
        let w = self.window();
        check_batch(windows, batch, w, self.body.cfg.vocab)?;
        let t = w - 1;
        let dev = self.body.device();
        let all = Tensor::from_slice(windows, (batch, w), dev)?;
        let inputs = all.narrow(1, 0, t)?.contiguous()?;
        let targets = all.narrow(1, 1, t)?.flatten_all()?.contiguous()?;
        let hidden = self.body.hidden(&inputs)?;
        let loss = self
            .body
            .kernels
            .head_cross_entropy(&hidden, &self.body.wte, &targets)?;
        Ok((loss, batch * t))
    }
}

/// BERT's masking recipe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Masking {
    /// The id of `[MASK]`, inside the vocabulary.
    pub mask_token: u32,
    /// The share of positions that are predicted (BERT: 0.15).
    pub rate: f64,
    /// Of those, the share replaced by `[MASK]` (0.8) and by a random token (0.1); the rest keep
    /// their token.
    pub replace_mask: f64,
    pub replace_random: f64,
}

impl Masking {
    pub fn bert(mask_token: u32) -> Self {
        Self {
            mask_token,
            rate: 0.15,
            replace_mask: 0.8,
            replace_random: 0.1,
        }
    }
}

/// A masked batch: the model's inputs, and the positions and original tokens it must predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskedBatch {
    pub inputs: Vec<u32>,
    pub positions: Vec<u32>,
    pub targets: Vec<u32>,
}

impl Masking {
    /// Picks each position with probability `rate` (at least one per batch), then replaces it
    /// by `[MASK]`, by a random token other than `[MASK]` (uniform), or leaves it.
    pub fn apply(&self, tokens: &[u32], vocab: usize, rng: &mut Rng) -> MaskedBatch {
        let mut out = MaskedBatch {
            inputs: tokens.to_vec(),
            positions: Vec::new(),
            targets: Vec::new(),
        };
        for (i, &tok) in tokens.iter().enumerate() {
            if rng.uniform() < self.rate {
                out.positions.push(i as u32);
                out.targets.push(tok);
            }
        }
        if out.positions.is_empty() && !tokens.is_empty() {
            let i = rng.below(tokens.len() as u64) as usize;
            out.positions.push(i as u32);
            out.targets.push(tokens[i]);
        }
        for &p in &out.positions {
            let u = rng.uniform();
            if u < self.replace_mask {
                out.inputs[p as usize] = self.mask_token;
            } else if u < self.replace_mask + self.replace_random {
                let mut r = rng.below(vocab as u64 - 1) as u32;
                if r >= self.mask_token {
                    r += 1;
                }
                out.inputs[p as usize] = r;
            }
        }
        out
    }
}

/// BERT-style masked language model: bidirectional attention, loss on masked positions only.
#[derive(Debug)]
pub struct MaskedLm {
    pub body: Transformer,
    pub masking: Masking,
}

impl MaskedLm {
    pub fn new(cfg: ModelConfig, masking: Masking, seed: u64, device: &Device) -> Result<Self> {
        if cfg.kind != ModelKind::Masked {
            return Err(Error::Config("a MaskedLm needs kind = masked".into()));
        }
        if masking.mask_token as usize >= cfg.vocab {
            return Err(Error::Config(format!(
                "mask token {} outside vocab {}",
                masking.mask_token, cfg.vocab
            )));
        }
        Ok(Self {
            body: Transformer::new(cfg, seed, device)?,
            masking,
        })
    }

    /// Logits `[b, t, v]` at every position of token ids `[b, t]` (some may be `[MASK]`).
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let logits = self.body.head(&self.body.hidden(tokens)?)?;
        Ok(logits.reshape((b, t, self.body.cfg.vocab))?)
    }

    /// Mean loss of an already masked batch (the head runs on the masked positions only).
    pub fn masked_loss(&self, batch: usize, masked: &MaskedBatch) -> Result<Tensor> {
        let dev = self.body.device();
        let t = masked.inputs.len() / batch;
        let inputs = Tensor::from_slice(&masked.inputs, (batch, t), dev)?;
        let positions = Tensor::new(masked.positions.as_slice(), dev)?;
        let targets = Tensor::new(masked.targets.as_slice(), dev)?;
        let hidden = self.body.hidden(&inputs)?.index_select(&positions, 0)?;
        self.body
            .kernels
            .head_cross_entropy(&hidden, &self.body.wte, &targets)
    }
}

impl LanguageModel for MaskedLm {
    fn transformer(&self) -> &Transformer {
        &self.body
    }

    fn window(&self) -> usize {
        self.body.cfg.context
    }

    fn loss(&self, windows: &[u32], batch: usize, rng: &mut Rng) -> Result<(Tensor, usize)> {
        check_batch(windows, batch, self.window(), self.body.cfg.vocab)?;
        let masked = self.masking.apply(windows, self.body.cfg.vocab, rng);
        Ok((self.masked_loss(batch, &masked)?, masked.positions.len()))
    }
}
