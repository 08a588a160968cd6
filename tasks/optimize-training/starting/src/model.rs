//! The GPT being finetuned: GPT-2's layout (token and position embeddings, pre-norm blocks of
//! attention and a 4x MLP with tanh-GELU, a final layer norm, an output head tied to the token
//! embedding), f32, with candle's autograd, on the CPU or (`--device cuda`) a CUDA device.

use candle_core::{D, DType, Device, Tensor, Var};

use crate::{activation, attention};
use crate::checkpoint::{Checkpoint, ModelConfig, param_shapes};

/// Layer norm's epsilon (PyTorch's default).
pub const LN_EPS: f64 = 1e-5;

pub struct Gpt {
    pub config: ModelConfig,
    /// Every parameter, in checkpoint order.
    pub vars: Vec<(String, Var)>,
}

impl Gpt {
    pub fn from_checkpoint(checkpoint: &Checkpoint, device: &Device) -> anyhow::Result<Gpt> {
        let mut vars = Vec::new();
        for (name, shape, values) in &checkpoint.params {
            let tensor = Tensor::from_vec(values.clone(), shape.as_slice(), device)?;
            vars.push((name.clone(), Var::from_tensor(&tensor)?));
        }
        Ok(Gpt { config: checkpoint.config.clone(), vars })
    }

    pub fn to_checkpoint(&self) -> anyhow::Result<Checkpoint> {
        let mut params = Vec::new();
        for ((name, var), (_, shape)) in self.vars.iter().zip(param_shapes(&self.config)) {
            let values = var.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            params.push((name.clone(), shape, values));
        }
        Ok(Checkpoint { config: self.config.clone(), params })
    }

    fn get(&self, name: &str) -> &Tensor {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_tensor()).unwrap_or_else(|| panic!("no parameter {name}"))
    }

    /// Mean next-token cross-entropy of `inputs` `[b, t]` against `targets` `[b, t]` (u32).
    pub fn loss(&self, inputs: &Tensor, targets: &Tensor) -> anyhow::Result<Tensor> {
        let (b, t) = inputs.dims2()?;
        anyhow::ensure!(t <= self.config.context, "sequence length {t} exceeds the context {}", self.config.context);
        let c = self.config.width;
        let wte = self.get("wte");
        let x = wte.embedding(&inputs.flatten_all()?)?.reshape((b, t, c))?;
        let mut x = x.broadcast_add(&self.get("wpe").narrow(0, 0, t)?)?.reshape((b * t, c))?;
        for i in 0..self.config.depth {
            let p = |s: &str| self.get(&format!("h.{i}.{s}"));
            let h = layer_norm(&x, p("ln_1.weight"), p("ln_1.bias"))?;
            let qkv = linear(&h, p("attn.c_attn.weight"), p("attn.c_attn.bias"))?;
            let y = attention::causal_self_attention(&qkv, b, t, self.config.heads)?;
            x = (x + linear(&y, p("attn.c_proj.weight"), p("attn.c_proj.bias"))?)?;
            let h = layer_norm(&x, p("ln_2.weight"), p("ln_2.bias"))?;
            let h = activation::gelu(&linear(&h, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"))?)?;
            x = (x + linear(&h, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"))?)?;
        }
        let h = layer_norm(&x, self.get("ln_f.weight"), self.get("ln_f.bias"))?;
        let logits = h.matmul(&wte.t()?)?;
        cross_entropy(&logits, &targets.flatten_all()?)
    }
}

/// `x · w + b` for `x` `[n, k]`, `w` `[k, m]`, `b` `[m]`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> anyhow::Result<Tensor> {
    Ok(x.matmul(w)?.broadcast_add(b)?)
}

/// Layer norm over the last dimension (biased variance, as PyTorch).
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor) -> anyhow::Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centered.broadcast_div(&(var + LN_EPS)?.sqrt()?)?;
    Ok(normed.broadcast_mul(w)?.broadcast_add(b)?)
}

/// Mean of `-log softmax(logits)[target]` over the rows of `logits` `[n, v]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> anyhow::Result<Tensor> {
    // The maximum only shifts the exponentials for range; it is a constant of the math.
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    let picked = shifted.gather(&targets.unsqueeze(1)?, 1)?;
    Ok((lse - picked)?.mean_all()?)
}

/// Softmax over the last dimension, with a backward (candle-nn's fast softmax has none).
pub fn softmax_last(x: &Tensor) -> anyhow::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}
