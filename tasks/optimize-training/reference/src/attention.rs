//! Causal multi-head self-attention, every head in one batched matmul.

use candle_core::Tensor;

use crate::model::softmax_last;

/// Attention over `qkv` `[b·t, 3c]` (queries, keys, values side by side, heads within each):
/// `[b·t, c]`.
pub fn causal_self_attention(qkv: &Tensor, b: usize, t: usize, heads: usize) -> anyhow::Result<Tensor> {
    let c = qkv.dim(1)? / 3;
    let hd = c / heads;
    // [b, t, 3, h, d] -> [3, b, h, t, d]
    let qkv = qkv.reshape((b, t, 3, heads, hd))?.permute((2, 0, 3, 1, 4))?;
    let q = qkv.get(0)?.contiguous()?;
    let k = qkv.get(1)?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
    let mask: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY })).collect();
    let mask = Tensor::from_vec(mask, (t, t), q.device())?;
    let probs = softmax_last(&scores.broadcast_add(&mask)?)?;
    Ok(probs.matmul(&v)?.transpose(1, 2)?.reshape((b * t, c))?)
}
