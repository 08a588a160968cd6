//! Synthetic-corpus assets: train, validation and test token shards of the language, made
//! deterministically into the asset store.
//!
//! **The validation and test shards are protected assets**: they go to the task's `protected/`
//! store, which the harness never copies into an agent's workdir (only `public/` reaches it).
//! The train shard, the vocabulary and the language's description are public.

use std::fs;
use std::path::Path;

use anyhow::Context;
use rebench_assets::{Asset, Spec, Store};
use serde::{Deserialize, Serialize};

use crate::language::{Config, Language, Token};
use crate::rng::derive;
use crate::shard::write_shard;

/// A split of a corpus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// The shard's file name in its asset.
    pub fn file(self) -> String {
        format!("{}.tok", self.name())
    }
}

/// What to generate: the language, the seed and the size of each split (in tokens).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SyntheticSplits {
    pub config: Config,
    pub seed: u64,
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// The prepared assets.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// `train.tok`, `vocab.txt` (one word per line, by token id), `language.json`.
    pub public: Asset,
    /// `validation.tok`, `test.tok`, `floor.json` (the exact mean surprise of each).
    pub protected: Asset,
}

impl SyntheticSplits {
    /// Each split is its own stream (a derived seed), so no document is in two splits.
    pub fn stream_seed(&self, split: Split) -> u64 {
        derive(self.seed, 0x5911_7000 + split as u64)
    }

    pub fn size(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Validation => self.validation,
            Split::Test => self.test,
        }
    }

    pub fn tokens(&self, lang: &Language, split: Split) -> Vec<Token> {
        lang.generate(self.stream_seed(split), self.size(split))
    }

    fn spec(&self, name: &str) -> Spec {
        Spec::new(name, serde_json::json!({"generator-version": crate::GENERATOR_VERSION, "splits": self}))
    }

    /// Makes (or finds, verified) the public and protected assets under the two store roots.
    pub fn prepare(&self, public_root: &Path, protected_root: &Path) -> anyhow::Result<Prepared> {
        let lang = Language::new(self.config.clone());
        let vocab = lang.vocab_size() as u32;
        let public = Store::new(public_root).ensure(&self.spec("synthetic-train"), |b| {
            let bar = b.progress(self.train as u64, "generating the train split");
            let tokens = lang.generate_with_progress(self.stream_seed(Split::Train), self.train, |done| bar.set_position(done as u64));
            bar.finish_and_clear();
            write_shard(&b.dir().join(Split::Train.file()), &tokens, vocab)?;
            fs::write(b.dir().join("vocab.txt"), lang.words().join("\n") + "\n")?;
            let about = serde_json::json!({"generator-version": crate::GENERATOR_VERSION, "config": self.config, "seed": self.seed});
            fs::write(b.dir().join("language.json"), serde_json::to_vec_pretty(&about)?)?;
            Ok(())
        })?;
        let protected = Store::new(protected_root).ensure(&self.spec("synthetic-heldout"), |b| {
            let mut floors = serde_json::Map::new();
            for split in [Split::Validation, Split::Test] {
                let tokens = self.tokens(&lang, split);
                write_shard(&b.dir().join(split.file()), &tokens, vocab)?;
                let surprise = lang.surprise(&tokens).with_context(|| format!("scoring the {} split", split.name()))?;
                let mean = surprise.iter().map(|&s| f64::from(s)).sum::<f64>() / surprise.len().max(1) as f64;
                floors.insert(split.name().to_owned(), serde_json::json!(mean));
            }
            fs::write(b.dir().join("floor.json"), serde_json::to_vec_pretty(&floors)?)?;
            Ok(())
        })?;
        Ok(Prepared { public, protected })
    }
}
