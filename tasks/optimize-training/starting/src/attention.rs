//! Causal multi-head self-attention.

use candle_core::Tensor;

use crate::model::softmax_last;

/// Attention over `qkv` `[b·t, 3c]` (queries, keys, values side by side, heads within each):
/// `[b·t, c]`.
pub fn causal_self_attention(qkv: &Tensor, b: usize, t: usize, heads: usize) -> anyhow::Result<Tensor> {
    let c = qkv.dim(1)? / 3;
    let hd = c / heads;
    let qkv = qkv.reshape((b, t, 3 * c))?;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut outputs = Vec::with_capacity(heads);
    for h in 0..heads {
        let q = qkv.narrow(2, h * hd, hd)?.contiguous()?;
        let k = qkv.narrow(2, c + h * hd, hd)?.contiguous()?;
        let v = qkv.narrow(2, 2 * c + h * hd, hd)?.contiguous()?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        let mut mask = Vec::with_capacity(t * t);
        for i in 0..t {
            for j in 0..t {
                mask.push(if j <= i { 0.0f32 } else { f32::NEG_INFINITY });
            }
        }
        let mask = Tensor::from_vec(mask, (t, t), qkv.device())?;
        let probs = softmax_last(&scores.broadcast_add(&mask)?)?;
        outputs.push(probs.matmul(&v)?);
    }
    Ok(Tensor::cat(&outputs, 2)?.reshape((b * t, c))?)
}
