//! Tokenizers for the language-model tasks, all offline:
//!
//! - [`ByteLevel`]: one token per byte (256), lossless for any text;
//! - [`Bpe`]: a byte-level BPE trained on corpus text with Hugging Face's `tokenizers` crate
//!   (pure Rust: fancy-regex, no onig C library, no hub), saved and loaded as `tokenizer.json`;
//! - [`Gpt2`]: GPT-2's BPE (`r50k_base`) through `tiktoken-rs`, whose merge ranks are compiled
//!   into the crate, so nothing is downloaded at run time.
//!
//! All implement [`Tokenizer`]: `decode(encode(text)) == text` for every one of them.

use std::path::Path;

use anyhow::{Context, anyhow};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel as ByteLevelPre;

/// Text to token ids and back.
pub trait Tokenizer {
    fn encode(&self, text: &str) -> Vec<u32>;
    /// The text of `ids`; an error for ids outside the vocabulary or bytes that are not UTF-8.
    fn decode(&self, ids: &[u32]) -> anyhow::Result<String>;
    fn vocab_size(&self) -> usize;
}

/// One token per UTF-8 byte.
#[derive(Clone, Copy, Debug, Default)]
pub struct ByteLevel;

impl Tokenizer for ByteLevel {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        let bytes = ids
            .iter()
            .map(|&id| u8::try_from(id).map_err(|_| anyhow!("token {id} is not a byte")))
            .collect::<anyhow::Result<Vec<u8>>>()?;
        String::from_utf8(bytes).context("the bytes are not UTF-8 text")
    }

    fn vocab_size(&self) -> usize {
        256
    }
}

/// A byte-level BPE (GPT-2's scheme: bytes mapped to printable characters, a regex
/// pre-tokenizer, merges learned from a corpus).
pub struct Bpe {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Bpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bpe {{ vocab_size: {} }}", self.vocab_size())
    }
}

impl Bpe {
    /// Learns merges from `texts` until the vocabulary (256 byte symbols included) has
    /// `vocab_size` entries or no pair occurs `min_frequency` times. Deterministic for the same
    /// texts in the same order.
    pub fn train<I, S>(texts: I, vocab_size: usize, min_frequency: u64) -> anyhow::Result<Bpe>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        let mut tokenizer = tokenizers::Tokenizer::new(BPE::default());
        // No prefix space: decode(encode(text)) must give back exactly the text.
        let byte_level = ByteLevelPre::new(false, true, true);
        tokenizer.with_pre_tokenizer(Some(byte_level));
        tokenizer.with_decoder(Some(byte_level));
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .initial_alphabet(ByteLevelPre::alphabet().into_iter().collect())
            .build()
            .into();
        tokenizer.train(&mut trainer, texts).map_err(|e| anyhow!("training the BPE failed: {e}"))?;
        Ok(Bpe { inner: tokenizer })
    }

    /// Writes `tokenizer.json` (Hugging Face's format, loadable by its Python library too).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.inner.save(path, false).map_err(|e| anyhow!("cannot save {}: {e}", path.display()))
    }

    pub fn load(path: &Path) -> anyhow::Result<Bpe> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| anyhow!("cannot load {}: {e}", path.display()))?;
        Ok(Bpe { inner })
    }

    /// The tokenizer as `tokenizer.json` text.
    pub fn to_json(&self) -> anyhow::Result<String> {
        self.inner.to_string(false).map_err(|e| anyhow!("cannot serialize the tokenizer: {e}"))
    }
}

impl Tokenizer for Bpe {
    fn encode(&self, text: &str) -> Vec<u32> {
        // Only a tokenizer whose normalizer or pre-tokenizer rejects the text errs here; ours
        // has neither (byte-level accepts every string).
        self.inner.encode_fast(text, false).map(|e| e.get_ids().to_vec()).unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        if let Some(id) = ids.iter().find(|&&id| id as usize >= self.vocab_size()) {
            anyhow::bail!("token {id} is outside the vocabulary of {}", self.vocab_size());
        }
        self.inner.decode(ids, false).map_err(|e| anyhow!("cannot decode: {e}"))
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// GPT-2's tokenizer (`r50k_base`: 50,257 tokens, `<|endoftext|>` = 50256).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gpt2;

impl Gpt2 {
    pub const END_OF_TEXT: u32 = 50_256;
}

impl Tokenizer for Gpt2 {
    /// Ordinary text: `<|endoftext|>` in the text is encoded as characters, not as the
    /// special token (append [`Gpt2::END_OF_TEXT`] between documents yourself).
    fn encode(&self, text: &str) -> Vec<u32> {
        tiktoken_rs::r50k_base_singleton().encode_ordinary(text)
    }

    fn decode(&self, ids: &[u32]) -> anyhow::Result<String> {
        let bytes = tiktoken_rs::r50k_base_singleton().decode_bytes(ids).map_err(|e| anyhow!("cannot decode: {e:?}"))?;
        String::from_utf8(bytes).context("the tokens do not decode to UTF-8 text")
    }

    fn vocab_size(&self) -> usize {
        50_257
    }
}
