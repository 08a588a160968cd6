//! Model configurations, parameter counts and the FLOP count used by the scaling-law task.
//!
//! # The FLOP count
//!
//! With `V` the vocabulary, `T` the context, `C` the width and `L` the depth (MLP width `4C`), a
//! forward pass over one token costs, in multiply-adds counted as 2 FLOPs:
//!
//! - per layer, the four weight matrices (`C×3C` for q, k, v; `C×C` out; `C×4C` and `4C×C` MLP):
//!   `2 · 12C²`;
//! - per layer, attention scores `q·kᵀ` and the weighted sum of values over the whole context:
//!   `2 · T · C` each, so `4 · T · C` (Kaplan et al. 2020, eq. 2.2; the causal mask is not
//!   discounted, as there: a dense implementation computes the masked half too);
//! - the output head (tied to the token embedding): `2 · C · V`.
//!
//! The backward pass costs twice the forward (a gradient for the input and one for the weights
//! of every matmul), so training costs per token
//!
//! ```text
//! train_flops_per_token = 6 · N + 12 · L · T · C,    N = 12 · L · C² + V · C
//! ```
//!
//! which is the `6ND` rule with `N` the parameters that take part in matmuls (embeddings looked up
//! by index, position embeddings, biases and norms are left out: their cost is O(C) per token),
//! plus the attention term. Element-wise work (norms, GELU, softmax) is not counted.
//! For the masked LM the head only runs on the masked positions, so its real cost is lower by
//! `6 · C · V · (1 - mask rate)` per token; [`ModelConfig::train_flops_per_token`] counts the head
//! on every position for both kinds so that the two are comparable.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Which objective a transformer is built for: it decides the attention mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// GPT-style: causal attention, next-token prediction.
    Causal,
    /// BERT-style: bidirectional attention, masked-token prediction.
    Masked,
}

/// The shape of a model. Serialized as JSON into every checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ModelConfig {
    pub kind: ModelKind,
    /// Vocabulary size (a masked LM's `[MASK]` token must be inside it).
    pub vocab: usize,
    /// The longest sequence the model reads (the position-embedding table's size).
    pub context: usize,
    /// Residual-stream width `C`.
    pub width: usize,
    /// Number of transformer blocks `L`.
    pub depth: usize,
    /// Attention heads; must divide `width`.
    pub heads: usize,
}

impl ModelConfig {
    pub fn gpt(vocab: usize, context: usize, width: usize, depth: usize, heads: usize) -> Self {
        Self {
            kind: ModelKind::Causal,
            vocab,
            context,
            width,
            depth,
            heads,
        }
    }

    pub fn masked(vocab: usize, context: usize, width: usize, depth: usize, heads: usize) -> Self {
        Self {
            kind: ModelKind::Masked,
            vocab,
            context,
            width,
            depth,
            heads,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.vocab == 0
            || self.context == 0
            || self.width == 0
            || self.depth == 0
            || self.heads == 0
        {
            return bad(format!("every size must be positive: {self:?}"));
        }
        if !self.width.is_multiple_of(self.heads) {
            return bad(format!(
                "heads ({}) must divide width ({})",
                self.heads, self.width
            ));
        }
        if self.vocab > u32::MAX as usize {
            return bad(format!("vocab {} does not fit u32 token ids", self.vocab));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.width / self.heads
    }

    /// Width of the MLP's hidden layer.
    pub fn mlp_width(&self) -> usize {
        4 * self.width
    }

    /// Every parameter: embeddings, weights, biases and norms.
    pub fn params_total(&self) -> usize {
        let c = self.width;
        let per_layer = 12 * c * c + 13 * c; // weights + biases (3C + C + 4C + C) + 2 norms (4C)
        self.vocab * c + self.context * c + self.depth * per_layer + 2 * c
    }

    /// Parameters that take part in matmuls: `N = 12·L·C² + V·C` (the tied head included).
    pub fn params_matmul(&self) -> usize {
        12 * self.depth * self.width * self.width + self.vocab * self.width
    }

    /// Training FLOPs per token (forward and backward): `6·N + 12·L·T·C`; see the module docs.
    pub fn train_flops_per_token(&self) -> u64 {
        let (l, t, c) = (self.depth as u64, self.context as u64, self.width as u64);
        6 * self.params_matmul() as u64 + 12 * l * t * c
    }

    /// Training FLOPs for `tokens` tokens of full-context sequences.
    pub fn train_flops(&self, tokens: u64) -> u64 {
        self.train_flops_per_token() * tokens
    }
}

#[cfg(test)]
mod tests {
    use super::ModelConfig;

    #[test]
    fn flops_match_a_hand_computed_example() {
        // V = 10, T = 4, C = 8, L = 2:
        // N = 12·2·64 + 10·8 = 1536 + 80 = 1616; 6N = 9696; 12·L·T·C = 12·2·4·8 = 768.
        let cfg = ModelConfig::gpt(10, 4, 8, 2, 2);
        assert_eq!(cfg.params_matmul(), 1616);
        assert_eq!(cfg.train_flops_per_token(), 9696 + 768);
        assert_eq!(cfg.train_flops(1000), 10_464_000);
        // Every parameter: wte 80 + wpe 32 + 2·(12·64 + 13·8) + ln_f 16 = 80 + 32 + 1744 + 16.
        assert_eq!(cfg.params_total(), 1872);
    }

    #[test]
    fn bench_config_flops() {
        // The benchmark's GPT: 3,276,800 matmul parameters; 21,233,664 FLOPs per token.
        let cfg = ModelConfig::gpt(512, 128, 256, 4, 4);
        assert_eq!(cfg.params_matmul(), 3_276_800);
        assert_eq!(
            cfg.train_flops_per_token(),
            6 * 3_276_800 + 12 * 4 * 128 * 256
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let err = ModelConfig::gpt(10, 4, 8, 2, 3).validate().unwrap_err();
        assert!(
            err.to_string().contains("heads (3) must divide width (8)"),
            "{err}"
        );
    }
}
