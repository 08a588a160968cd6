//! The finetune-chat solution's library: the prompts, a sampler for GPT checkpoints and the
//! proxy reward model. `src/bin/solve.rs` produces `model.safetensors`, the file that is scored.

pub mod engine;
pub mod format;
pub mod proxy;

pub use format::{Prompts, load_vocab, render};

