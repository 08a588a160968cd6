//! Small language models in candle for rebench-rs tasks: a GPT-style causal LM and a BERT-style
//! masked LM ([`model`]), training with AdamW, a warm-up + cosine schedule and gradient clipping
//! ([`train`]), held-out evaluation ([`eval`]), safetensors checkpoints ([`checkpoint`]) and the
//! FLOP count of a configuration ([`config`]).
//!
//! Everything is f32. On the CPU (the default) the building blocks run as fused custom ops with
//! hand-written backward passes ([`kernels`]); CUDA is behind the `cuda` feature.

pub mod checkpoint;
pub mod config;
pub mod cpu;
mod error;
pub mod eval;
pub mod kernels;
pub mod model;
pub mod params;
pub mod rng;
pub mod sources;
pub mod train;

pub use config::{ModelConfig, ModelKind};
pub use error::{Error, Result};
pub use eval::{EvalResult, evaluate};
pub use kernels::Kernels;
pub use model::{Gpt, LanguageModel, MaskedBatch, MaskedLm, Masking, Transformer};
pub use params::Params;
pub use rng::Rng;
pub use train::{
    AdamW, AdamWConfig, BatchSource, LrSchedule, StepStats, StepTimes, TrainConfig, Trainer,
};

/// Re-exported so that callers use the same candle as this crate.
pub use candle_core;
