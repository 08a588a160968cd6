//! The synthetic corpus as shared assets, with the exact entropy floor of every split.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rebench_assets::{Asset, Spec, Store};
use rebench_corpus::{Config, Language, Prepared, Split, SyntheticSplits, read_shard};

/// Seed of the default splits' streams (the language itself is `Config::default()`).
pub const DEFAULT_SEED: u64 = 0x00c0_4905;

/// Validation and test tokens of the default splits: enough for a loss to about ±0.01 nats
/// (documents are ~290 tokens, so ~700 independent documents each).
pub const DEFAULT_HELDOUT_TOKENS: usize = 200_000;

/// Train tokens of the default splits: [`crate::PretrainSpec::cpu_default`] reads each about
/// once (generating them takes a fraction of a second; scoring their floor about a second).
pub const DEFAULT_TRAIN_TOKENS: usize = 4_000_000;

/// The default language (`rebench_corpus::Config::default()`, about 4,100 words) with splits
/// sized for the CPU default pretraining: [`DEFAULT_TRAIN_TOKENS`] to train on,
/// [`DEFAULT_HELDOUT_TOKENS`] each for validation and test.
pub fn default_splits() -> SyntheticSplits {
    SyntheticSplits {
        config: Config::default(),
        seed: DEFAULT_SEED,
        train: DEFAULT_TRAIN_TOKENS,
        validation: DEFAULT_HELDOUT_TOKENS,
        test: DEFAULT_HELDOUT_TOKENS,
    }
}

/// The corpus assets of one [`SyntheticSplits`]: shards, vocabulary and floors.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub splits: SyntheticSplits,
    /// `train.tok`, `vocab.txt`, `language.json` (public) and `validation.tok`, `test.tok`,
    /// `floor.json` (protected).
    pub prepared: Prepared,
    vocab_size: usize,
    floors: [f64; 3],
}

impl Corpus {
    /// The train shard. Public: a task may copy it into its `public/` store for the agent.
    pub fn train_shard(&self) -> PathBuf {
        self.prepared.public.file(&Split::Train.file())
    }

    /// The validation shard. Protected: never copy it anywhere an agent can read.
    pub fn validation_shard(&self) -> PathBuf {
        self.prepared.protected.file(&Split::Validation.file())
    }

    /// The test shard. Protected: never copy it anywhere an agent can read.
    pub fn test_shard(&self) -> PathBuf {
        self.prepared.protected.file(&Split::Test.file())
    }

    /// The shard of `split`.
    pub fn shard(&self, split: Split) -> PathBuf {
        match split {
            Split::Train => self.train_shard(),
            Split::Validation => self.validation_shard(),
            Split::Test => self.test_shard(),
        }
    }

    /// The tokens of `split`.
    pub fn tokens(&self, split: Split) -> anyhow::Result<Vec<u32>> {
        Ok(read_shard(&self.shard(split))?.tokens)
    }

    /// The exact entropy floor of `split` in nats per token: the mean of
    /// `-ln p(x_t | every earlier token of the shard)` over its tokens (`Language::surprise`).
    /// A model that sees windows rather than the whole prefix cannot beat it beyond noise.
    pub fn floor(&self, split: Split) -> f64 {
        self.floors[split as usize]
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// `vocab.txt`: one word per line, by token id (public).
    pub fn vocab_file(&self) -> PathBuf {
        self.prepared.public.file("vocab.txt")
    }

    /// The language the corpus is drawn from (builds its tables: a few milliseconds).
    pub fn language(&self) -> Language {
        Language::new(self.splits.config.clone())
    }
}

/// Makes (or finds, verified) the corpus assets in the shared store `assets`: the public and
/// protected assets of `SyntheticSplits::prepare` (their names differ, so one root holds both)
/// and a small one with the train split's floor, scored once.
pub fn synthetic_corpus(assets: &Path, splits: &SyntheticSplits) -> anyhow::Result<Corpus> {
    let prepared = splits.prepare(assets, assets).context("preparing the synthetic corpus")?;
    let heldout: serde_json::Value = serde_json::from_slice(&fs::read(prepared.protected.file("floor.json"))?)
        .context("the held-out floor.json")?;
    let read = |v: &serde_json::Value, split: Split| {
        v.get(split.name())
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("floor.json has no floor for {}", split.name()))
    };
    let lang = Language::new(splits.config.clone());
    let train_floor = train_floor(assets, splits, &prepared, &lang)?;
    let floors = [train_floor, read(&heldout, Split::Validation)?, read(&heldout, Split::Test)?];
    Ok(Corpus { splits: splits.clone(), vocab_size: lang.vocab_size(), prepared, floors })
}

/// The train split's floor, kept in an asset of its own (`synthetic-train-floor`): scoring the
/// split costs about a second per 15 million tokens, not worth repeating on every call.
fn train_floor(assets: &Path, splits: &SyntheticSplits, prepared: &Prepared, lang: &Language) -> anyhow::Result<f64> {
    let spec = Spec::new(
        "synthetic-train-floor",
        serde_json::json!({"generator-version": rebench_corpus::GENERATOR_VERSION, "splits": splits}),
    );
    let asset: Asset = Store::new(assets).ensure(&spec, |b| {
        let tokens = read_shard(&prepared.public.file(&Split::Train.file()))?.tokens;
        let surprise = lang.surprise(&tokens).context("scoring the train split")?;
        let mean = surprise.iter().map(|&s| f64::from(s)).sum::<f64>() / surprise.len().max(1) as f64;
        fs::write(b.dir().join("floor.json"), serde_json::to_vec_pretty(&serde_json::json!({"train": mean}))?)?;
        Ok(())
    })?;
    let v: serde_json::Value = serde_json::from_slice(&fs::read(asset.file("floor.json"))?)?;
    v.get("train").and_then(serde_json::Value::as_f64).context("the train floor.json has no floor")
}
