//! Training batches from a token vector: windows at seeded random offsets.

use std::path::Path;

use anyhow::Context;
use rebench_models::{BatchSource, Rng};

/// A [`BatchSource`] over a token vector: every window starts at an offset drawn uniformly from
/// all those where it fits, from a generator seeded once, so the batch sequence is a function of
/// the tokens and the seed alone.
///
/// Windows are drawn with replacement: over a run of `s` steps of `b` windows of `w` tokens a
/// token is seen `s·b·w / len` times in expectation.
#[derive(Clone, Debug)]
pub struct TokenBatches {
    tokens: Vec<u32>,
    rng: Rng,
}

impl TokenBatches {
    pub fn new(tokens: Vec<u32>, seed: u64) -> Self {
        Self { tokens, rng: Rng::new(seed) }
    }

    /// The tokens of an `RBTOKENS` shard (`rebench_corpus::read_shard`).
    pub fn open(shard: &Path, seed: u64) -> anyhow::Result<Self> {
        let shard = rebench_corpus::read_shard(shard).with_context(|| format!("training batches from {}", shard.display()))?;
        Ok(Self::new(shard.tokens, seed))
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

impl BatchSource for TokenBatches {
    fn fill(&mut self, batch: usize, window: usize, out: &mut Vec<u32>) -> rebench_models::Result<()> {
        if window == 0 || self.tokens.len() < window {
            return Err(rebench_models::Error::Batch(format!(
                "{} tokens do not fill one window of {window}",
                self.tokens.len()
            )));
        }
        let starts = (self.tokens.len() - window + 1) as u64;
        out.clear();
        out.reserve(batch * window);
        for _ in 0..batch {
            let s = self.rng.below(starts) as usize;
            out.extend_from_slice(&self.tokens[s..s + window]);
        }
        Ok(())
    }
}
