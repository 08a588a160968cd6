//! Integration tests of rebench-models: tiny configurations, seconds each, CPU only.

#[path = "../common/mod.rs"]
mod common;

mod checkpoint;
mod gradients;
mod kernels;
mod masking;
mod optimizer;
mod training;

use candle_core::{Device, Tensor};
use rebench_models::{Gpt, MaskedLm, Masking, ModelConfig};

pub use common::random_tokens;

pub fn tiny_gpt(seed: u64) -> Gpt {
    Gpt::new(ModelConfig::gpt(13, 8, 16, 2, 2), seed, &Device::Cpu).unwrap()
}

pub fn tiny_mlm(seed: u64) -> MaskedLm {
    MaskedLm::new(
        ModelConfig::masked(13, 8, 16, 2, 2),
        Masking::bert(12),
        seed,
        &Device::Cpu,
    )
    .unwrap()
}

/// The bit patterns of a tensor's elements.
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}
