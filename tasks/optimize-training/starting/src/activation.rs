//! The MLP's activation.

use candle_core::Tensor;

/// GELU, tanh approximation (GPT-2's): `x ↦ 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²)))`.
pub fn gelu(x: &Tensor) -> anyhow::Result<Tensor> {
    Ok(x.gelu()?)
}
