//! The entropy floor: the generator's own average surprise, with its standard error.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::language::{Language, Token};
use crate::score::Scorer;

/// An estimate of `H = E[-ln p(x_t | x_<t)]`, the lowest loss (nats per token) that any model
/// can reach in expectation on this language's streams.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Floor {
    pub nats_per_token: f64,
    /// One standard error of the estimate (documents are independent draws; the ratio
    /// estimator's error by the delta method).
    pub std_error: f64,
    pub tokens: u64,
    pub documents: u64,
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.4} ± {:.4} nats/token ({:.4} bits; {} tokens in {} documents)",
            self.nats_per_token,
            self.std_error,
            self.nats_per_token / std::f64::consts::LN_2,
            self.tokens,
            self.documents
        )
    }
}

impl Floor {
    /// From per-document (total surprise, token count) pairs.
    pub fn from_documents(docs: &[(f64, u64)]) -> Floor {
        let total: f64 = docs.iter().map(|d| d.0).sum();
        let tokens: u64 = docs.iter().map(|d| d.1).sum();
        let h = total / tokens as f64;
        let n = docs.len() as f64;
        let mean_len = tokens as f64 / n;
        let residual: f64 = docs.iter().map(|&(l, t)| (l - h * t as f64).powi(2)).sum();
        let std_error = if docs.len() > 1 { (residual / (n * (n - 1.0))).sqrt() / mean_len } else { f64::INFINITY };
        Floor { nats_per_token: h, std_error, tokens, documents: docs.len() as u64 }
    }
}

impl Language {
    /// Total surprise and length of document `index` of stream `seed`, as it contributes to a
    /// long stream: its `<doc>` is charged the previous document's decision to end (`-ln
    /// doc_end`), so that every document's share is the same whatever its position.
    pub fn document_surprise(&self, seed: u64, index: u64) -> (f64, u64) {
        let tokens = self.document(seed, index);
        let mut scorer = Scorer::new(self);
        let mut total = -self.config.doc_end.ln();
        for &t in &tokens {
            total += scorer.observe(t);
        }
        (total, tokens.len() as u64)
    }

    /// The entropy floor estimated from `documents` documents of stream `seed`, in parallel.
    pub fn entropy_floor(&self, seed: u64, documents: u64) -> Floor {
        let docs: Vec<(f64, u64)> = (0..documents).into_par_iter().map(|i| self.document_surprise(seed, i)).collect();
        Floor::from_documents(&docs)
    }

    /// `-ln p(x_t | x_<t)` of every token of a stream that starts with `<doc>` (as every stream
    /// and shard this crate makes does). The mean over a window is the floor for exactly those
    /// tokens: a model evaluated on them cannot beat it beyond noise.
    pub fn surprise(&self, tokens: &[Token]) -> anyhow::Result<Vec<f32>> {
        let mut scorer = Scorer::new(self);
        tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let s = scorer.observe(t);
                if s.is_finite() {
                    Ok(s as f32)
                } else {
                    let word = if (t as usize) < self.vocab_size() { self.word(t) } else { "out of the vocabulary" };
                    anyhow::bail!("token {i} ({t}, `{word}`) is impossible after its prefix: not a stream of this language")
                }
            })
            .collect()
    }
}

impl Language {
    /// `-ln p(x_t | every other token of tokens)`: the exact surprise of token `t` when it alone
    /// is masked and both sides are seen (a masked language model's floor). `tokens` is a
    /// stream from its start (`<doc>` first); pass a document followed by the next `<doc>` to
    /// say that it ended there. Only the tokens up to the first `<doc>` after `t` matter.
    ///
    /// Every candidate word `v` is scored in place of `x_t` together with the rest of the
    /// document: `p(x_t = v | rest) ∝ p(v | prefix) · p(suffix | prefix, v)`. Cost: about
    /// (candidates × suffix length) scorer steps, milliseconds per position.
    pub fn masked_surprise(&self, tokens: &[Token], t: usize) -> anyhow::Result<f64> {
        anyhow::ensure!(t < tokens.len(), "position {t} is outside {} tokens", tokens.len());
        let doc = self.doc_token();
        let end = tokens[t + 1..].iter().position(|&x| x == doc).map_or(tokens.len(), |i| t + 2 + i);
        let mut prefix = Scorer::new(self);
        for (i, &x) in tokens[..t].iter().enumerate() {
            anyhow::ensure!(prefix.observe(x).is_finite(), "token {i} is impossible after its prefix");
        }
        let weights: Vec<(Token, f64)> = (0..self.vocab_size() as Token)
            .filter_map(|v| {
                let mut s = prefix.clone();
                let mut total = s.observe(v);
                for &x in &tokens[t + 1..end] {
                    if !total.is_finite() {
                        break;
                    }
                    total += s.observe(x);
                }
                total.is_finite().then_some((v, -total))
            })
            .collect();
        let actual = weights.iter().find(|w| w.0 == tokens[t]).map(|w| w.1);
        let actual = actual.ok_or_else(|| anyhow::anyhow!("the tokens are impossible as a stream of this language"))?;
        let max = weights.iter().map(|w| w.1).fold(f64::NEG_INFINITY, f64::max);
        let log_total = max + weights.iter().map(|w| (w.1 - max).exp()).sum::<f64>().ln();
        Ok(log_total - actual)
    }

    /// The masked-token floor `E[-ln p(x_t | all other tokens)]`, estimated from `positions`
    /// random positions in each of `documents` documents of stream `seed` (each document
    /// followed by its end). A lower bound on the loss of a masked model at any masking rate
    /// (more masked tokens only hide more), and below the causal floor.
    pub fn masked_floor(&self, seed: u64, documents: u64, positions: usize) -> Floor {
        let docs: Vec<(f64, u64)> = (0..documents)
            .into_par_iter()
            .map(|i| {
                let mut tokens = self.document(seed, i);
                let n = tokens.len();
                tokens.push(self.doc_token());
                let mut rng = crate::rng::Rng::new(crate::rng::derive(seed ^ 0x6d61_736b, i));
                let sum: f64 = (0..positions)
                    .map(|_| self.masked_surprise(&tokens, rng.below(n)).expect("a generated document is a valid stream"))
                    .sum();
                // This document's share: its length times the mean over the sampled positions.
                (sum / positions as f64 * n as f64, n as u64)
            })
            .collect();
        Floor::from_documents(&docs)
    }
}
