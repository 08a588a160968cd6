//! Prompts: the opening sentences of synthetic-corpus documents that name someone.
//!
//! Training prompts (public) and held-out prompts (protected) come from two documents streams
//! of their own, so no prompt is in both.

use rebench_corpus::{Class, Language};

/// Documents streams of the two prompt sets (derived from the corpus seed, so another corpus
/// gives other prompts).
pub const TRAIN_STREAM: u64 = 0x7261_696e;
pub const HELDOUT_STREAM: u64 = 0x6865_6c64;

/// The first `count` prompts of `stream`: each a document's longest prefix of whole sentences
/// with at most `max_tokens` tokens, kept when it has at least `min_tokens` and names someone.
pub fn prompts(lang: &Language, seed: u64, stream: u64, count: usize, min_tokens: usize, max_tokens: usize) -> Vec<Vec<u32>> {
    let seed = rebench_corpus::rng::derive(seed, stream);
    let mut out = Vec::with_capacity(count);
    let mut index = 0u64;
    while out.len() < count {
        let doc = lang.document(seed, index);
        index += 1;
        let Some(end) = doc.iter().take(max_tokens).rposition(|&t| lang.class(t) == Class::Period) else { continue };
        let prompt = &doc[..=end];
        if prompt.len() >= min_tokens && prompt.iter().any(|&t| lang.class(t) == Class::Name) {
            out.push(prompt.to_vec());
        }
        assert!(index < 1000 * (count as u64 + 10), "the language gives no prompts of {min_tokens}..={max_tokens} tokens");
    }
    out
}
