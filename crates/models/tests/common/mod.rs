//! Helpers shared by the CPU tests (`tests/it`) and the GPU tests (`tests/gpu.rs`).

use rebench_models::Rng;
use rebench_models::train::{AdamWConfig, LrSchedule, TrainConfig};

pub fn random_tokens(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| rng.below(vocab as u64) as u32).collect()
}

/// `steps` steps at peak learning rate `lr`: 10% warm-up, cosine to `lr / 10`, light weight
/// decay, gradients clipped to norm 1.
pub fn train_config(steps: usize, batch_size: usize, lr: f64) -> TrainConfig {
    TrainConfig {
        batch_size,
        schedule: LrSchedule {
            peak: lr,
            min: lr / 10.0,
            warmup: steps / 10,
            total: steps,
        },
        adamw: AdamWConfig {
            weight_decay: 0.01,
            ..AdamWConfig::default()
        },
        grad_clip: Some(1.0),
        seed: 1,
    }
}
