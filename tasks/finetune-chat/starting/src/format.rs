//! The data formats: `data/prompts.json` and `data/vocab.txt`.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// `data/prompts.json`: the training prompts and the response format.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Prompts {
    /// A response has at most this many tokens.
    pub max_response_tokens: usize,
    /// The end-of-document token: a response that draws it ends there.
    pub stop: u32,
    /// Each prompt: token ids, `<doc>` first, ending at a sentence's end.
    pub prompts: Vec<Vec<u32>>,
}

impl Prompts {
    pub fn load(path: &Path) -> anyhow::Result<Prompts> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a prompts file", path.display()))
    }
}

/// The words of the vocabulary (`data/vocab.txt`, one per token id), to read responses.
pub fn load_vocab(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Tokens as text.
pub fn render(vocab: &[String], tokens: &[u32]) -> String {
    tokens.iter().map(|&t| vocab.get(t as usize).map_or("<oov>", String::as_str)).collect::<Vec<_>>().join(" ")
}
