//! The transformer's building blocks, in two interchangeable implementations.
//!
//! [`Kernels::Plain`] composes candle's own tensor ops and lets candle's autograd differentiate
//! them; it is the specification. [`Kernels::Fused`] runs each block as one candle `CustomOp`
//! with a hand-written CPU forward and backward (`fused.rs`), and the model's attention and MLP
//! sub-blocks, residual included, as one op each (`blocks.rs`, built from the same slice
//! kernels); `tests/it/kernels.rs` checks every fused op against the plain composition for equal
//! values and gradients.
//!
//! Pitfall: candle-nn 0.11.1's `LayerNorm`/`RmsNorm` fast paths and `ops::softmax_last_dim` have
//! no backward pass and silently stop gradients. The plain kernels use `ops::layer_norm_slow`
//! and `ops::softmax` for that reason; `tests/gradients.rs` compares gradients with finite
//! differences so that a swap back would fail.

use candle_core::{D, Tensor};

use crate::Result;

mod blocks;
mod fused;

/// Epsilon of every layer norm.
pub const LN_EPS: f32 = 1e-5;

/// Which implementation of the building blocks a model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    /// candle tensor ops, differentiated by candle's autograd.
    Plain,
    /// One custom op per block with a hand-written backward pass (CPU; elsewhere it falls back
    /// to `Plain`).
    #[default]
    Fused,
}

impl Kernels {
    /// Every implementation, for tests and benchmarks that compare them.
    pub const ALL: &[Kernels] = &[Kernels::Plain, Kernels::Fused];

    /// Layer norm over the last dimension of `x` with gain `w` and bias `b`.
    pub fn layer_norm(self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => {
                Ok(x.apply_op3(w, b, fused::LayerNorm::new(LN_EPS))?)
            }
            _ => Ok(candle_nn::ops::layer_norm_slow(x, w, b, LN_EPS)?),
        }
    }

    /// `x · w + b` for `x` of shape `[n, k]`, `w` of shape `[k, m]` and `b` of shape `[m]`.
    pub fn linear(self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => {
                Ok(x.apply_op3(w, b, fused::Linear::new(false))?)
            }
            _ => Ok(x.matmul(w)?.broadcast_add(b)?),
        }
    }

    /// `gelu(x · w + b)`: the MLP's first layer.
    pub fn linear_gelu(self, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => {
                Ok(x.apply_op3(w, b, fused::Linear::new(true))?)
            }
            _ => Kernels::Plain.gelu(&Kernels::Plain.linear(x, w, b)?),
        }
    }

    /// GELU, tanh approximation (GPT-2's `gelu_new`; PyTorch's `GELU(approximate="tanh")`).
    pub fn gelu(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => Ok(x.apply_op1(fused::Gelu)?),
            _ => Ok(x.gelu()?),
        }
    }

    /// Multi-head self-attention on packed projections `qkv` of shape `[batch·t, 3c]` (q, k, v
    /// side by side, heads contiguous within each); returns `[batch·t, c]` with heads
    /// concatenated. Scores are scaled by `1/√(c/heads)`.
    pub fn attention(
        self,
        qkv: &Tensor,
        batch: usize,
        heads: usize,
        causal: bool,
    ) -> Result<Tensor> {
        match self {
            Kernels::Fused if qkv.device().is_cpu() => {
                Ok(qkv.apply_op1(fused::Attention::new(batch, heads, causal))?)
            }
            _ => plain_attention(qkv, batch, heads, causal),
        }
    }

    /// The pre-norm attention sub-block with its residual,
    /// `x + c_proj(attention(c_attn(ln_1(x))))`, for `x` `[batch·t, c]`; `p` holds ln_1's gain
    /// and bias, c_attn's weight `[c, 3c]` and bias, c_proj's weight `[c, c]` and bias.
    pub fn attention_block(
        self,
        x: &Tensor,
        p: [&Tensor; 6],
        batch: usize,
        heads: usize,
        causal: bool,
    ) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => {
                let shape = fused::AttnShape {
                    batch,
                    heads,
                    causal,
                };
                Ok(x.apply_op2(&pack(p)?, blocks::AttnBlock::new(shape, LN_EPS))?)
            }
            _ => {
                let h = self.layer_norm(x, p[0], p[1])?;
                let y = self.attention(&self.linear(&h, p[2], p[3])?, batch, heads, causal)?;
                Ok((x + self.linear(&y, p[4], p[5])?)?)
            }
        }
    }

    /// The pre-norm MLP sub-block with its residual, `x + c_proj(gelu(c_fc(ln_2(x))))`; `p`
    /// holds ln_2's gain and bias, c_fc's weight `[c, 4c]` and bias, c_proj's weight `[4c, c]`
    /// and bias.
    pub fn mlp_block(self, x: &Tensor, p: [&Tensor; 6]) -> Result<Tensor> {
        match self {
            Kernels::Fused if x.device().is_cpu() => {
                Ok(x.apply_op2(&pack(p)?, blocks::MlpBlock::new(LN_EPS))?)
            }
            _ => {
                let h = self.layer_norm(x, p[0], p[1])?;
                let h = self.linear_gelu(&h, p[2], p[3])?;
                Ok((x + self.linear(&h, p[4], p[5])?)?)
            }
        }
    }

    /// Mean cross-entropy of `logits` `[n, v]` against `targets` `[n]` (u32).
    pub fn cross_entropy(self, logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused if logits.device().is_cpu() => {
                Ok(logits.apply_op2(targets, fused::CrossEntropy::new())?)
            }
            _ => Ok(candle_nn::loss::cross_entropy(logits, targets)?),
        }
    }

    /// Mean cross-entropy of the tied output head's logits `hidden · wteᵀ` (`hidden` `[n, c]`,
    /// `wte` `[v, c]`) against `targets` `[n]` (u32).
    pub fn head_cross_entropy(
        self,
        hidden: &Tensor,
        wte: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor> {
        match self {
            Kernels::Fused if hidden.device().is_cpu() => {
                Ok(hidden.apply_op3(wte, targets, fused::HeadCrossEntropy::new())?)
            }
            _ => Kernels::Plain.cross_entropy(&hidden.matmul(&wte.t()?)?, targets),
        }
    }
}

/// A sub-block's parameters as one flat tensor (candle's `cat` backward splits the gradient).
fn pack(p: [&Tensor; 6]) -> Result<Tensor> {
    let flat = p
        .iter()
        .map(|t| t.flatten_all())
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&flat, 0)?)
}

fn plain_attention(qkv: &Tensor, b: usize, heads: usize, causal: bool) -> Result<Tensor> {
    let (bt, c3) = qkv.dims2()?;
    let t = bt / b;
    let c = c3 / 3;
    let hd = c / heads;
    // [b, t, 3, h, d] -> [3, b, h, t, d]
    let qkv = qkv
        .reshape((b, t, 3, heads, hd))?
        .permute((2, 0, 3, 1, 4))?;
    let q = qkv.get(0)?.contiguous()?;
    let k = qkv.get(1)?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    let scores = if causal {
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        scores.broadcast_add(&Tensor::from_vec(mask, (t, t), qkv.device())?)?
    } else {
        scores
    };
    let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
    let y = p.matmul(&v)?; // [b, h, t, d]
    Ok(y.transpose(1, 2)?.reshape((b * t, c))?)
}
