//! The model the scorer evaluates (compiled on its own, `#![no_std]`, with `restricted` as its
//! only dependency and the escape hatch off).
//!
//! A per-token model: an embedding, two residual ReLU MLP layers and an output head. It sees no
//! context, so at a masked position it can only predict the tokens' overall frequencies.

use restricted::prelude::*;

/// Training steps of `solve` (batches of 32 windows), about a minute on 2 cores.
pub const TRAIN_STEPS: usize = 400;

const DIM: usize = 64;
const HIDDEN: usize = 256;
const LAYERS: usize = 2;

pub struct Model {
    embed: Tensor,
    layers: Vec<[Tensor; 4]>,
    head_w: Tensor,
    head_b: Tensor,
}

impl Model {
    /// Declares the parameters (fresh while training, the saved weights when scored).
    pub fn new(config: &Config, p: &mut Params) -> Result<Model> {
        let embed = p.param("embed", &[config.input_vocab(), DIM], Init::Normal(0.02))?;
        let mut layers = Vec::new();
        for i in 0..LAYERS {
            layers.push([
                p.param(&format!("mlp{i}.w1"), &[HIDDEN, DIM], Init::Normal(0.05))?,
                p.param(&format!("mlp{i}.b1"), &[HIDDEN], Init::Zeros)?,
                p.param(&format!("mlp{i}.w2"), &[DIM, HIDDEN], Init::Normal(0.02))?,
                p.param(&format!("mlp{i}.b2"), &[DIM], Init::Zeros)?,
            ]);
        }
        let head_w = p.param("head.w", &[config.vocab, DIM], Init::Normal(0.02))?;
        let head_b = p.param("head.b", &[config.vocab], Init::Zeros)?;
        Ok(Model { embed, layers, head_w, head_b })
    }

    /// Hidden states `[batch, seq, DIM]` of token ids `[batch, seq]`.
    pub fn hidden(&self, tokens: &Tensor) -> Result<Tensor> {
        let mut h = self.embed.embedding(tokens)?;
        for [w1, b1, w2, b2] in &self.layers {
            let up = h.linear(w1, Some(b1))?.relu()?;
            h = h.add(&up.linear(w2, Some(b2))?)?;
        }
        Ok(h)
    }

    /// Logits `[.., vocab]` of hidden states `[.., DIM]`.
    pub fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        hidden.linear(&self.head_w, Some(&self.head_b))
    }

    /// Logits `[batch, seq, vocab]` of token ids `[batch, seq]`: what the scorer calls.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden(tokens)?)
    }
}
