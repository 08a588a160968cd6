//! The model the scorer evaluates (compiled on its own, `#![no_std]`, with `restricted` as its
//! only dependency and the escape hatch off).
//!
//! A dilated 1-D convolution network built from allowed operations: each layer gathers every
//! position's neighbours at offsets -d, 0, +d (an index_select with a constant index, the
//! `as_strided` windows of RE-Bench's reference), mixes them with a ReLU MLP and adds the result
//! to the residual stream. Dilations 1, 2, 4, 8 let a position see 15 tokens on each side.

use restricted::prelude::*;

/// Training steps of `solve` (batches of 32 windows), about a minute on 2 cores.
pub const TRAIN_STEPS: usize = 300;

const DIM: usize = 96;
const HIDDEN: usize = 192;
const TAPS: usize = 3;
const DILATIONS: [usize; 4] = [1, 2, 4, 8];

struct Layer {
    /// Padding on each side and, for every position, the rows of its taps in the padded input.
    pad: usize,
    index: Tensor,
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

pub struct Model {
    seq_len: usize,
    embed: Tensor,
    layers: Vec<Layer>,
    head_w: Tensor,
    head_b: Tensor,
}

impl Model {
    /// Declares the parameters (fresh while training, the saved weights when scored) and builds
    /// the constant tap indices.
    pub fn new(config: &Config, p: &mut Params) -> Result<Model> {
        let t = config.seq_len;
        let embed = p.param("embed", &[config.input_vocab(), DIM], Init::Normal(0.05))?;
        let mut layers = Vec::new();
        for (i, &d) in DILATIONS.iter().enumerate() {
            // Three taps: one on each side, so `d` rows of zeros on each side.
            let pad = d;
            let mut rows = Vec::with_capacity(t * TAPS);
            for pos in 0..t {
                for tap in 0..TAPS {
                    rows.push((pos + tap * d) as u32);
                }
            }
            layers.push(Layer {
                pad,
                index: Tensor::ids(rows, &[t * TAPS], config.device())?,
                w1: p.param(&format!("conv{i}.w1"), &[HIDDEN, TAPS * DIM], Init::Normal(0.05))?,
                b1: p.param(&format!("conv{i}.b1"), &[HIDDEN], Init::Zeros)?,
                w2: p.param(&format!("conv{i}.w2"), &[DIM, HIDDEN], Init::Normal(0.02))?,
                b2: p.param(&format!("conv{i}.b2"), &[DIM], Init::Zeros)?,
            });
        }
        let head_w = p.param("head.w", &[config.vocab, DIM], Init::Normal(0.02))?;
        let head_b = p.param("head.b", &[config.vocab], Init::Zeros)?;
        Ok(Model { seq_len: t, embed, layers, head_w, head_b })
    }

    /// Hidden states `[batch, seq, DIM]` of token ids `[batch, seq]`.
    pub fn hidden(&self, tokens: &Tensor) -> Result<Tensor> {
        let b = tokens.dim(0)?;
        let t = self.seq_len;
        let mut h = self.embed.embedding(tokens)?;
        for layer in &self.layers {
            let padded = h.pad_zeros(1, layer.pad, layer.pad)?;
            let taps = padded.index_select(&layer.index, 1)?.reshape(&[b, t, TAPS * DIM])?;
            let mixed = taps.linear(&layer.w1, Some(&layer.b1))?.relu()?.linear(&layer.w2, Some(&layer.b2))?;
            h = h.add(&mixed)?;
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
