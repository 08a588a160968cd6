//! The held-out batches: the first windows of the protected test split, masked BERT's way
//! (`rebench_models::Masking::bert`) with the scorer's own fixed seed, so every scoring of every
//! solution sees the same inputs and predicts the same positions.

use std::path::Path;

use anyhow::{Context, ensure};
use rebench_models::{Masking, Rng};

use crate::SEQ_LEN;

/// The masking seed: fixed, so scores are comparable across scorings; the test split is never
/// in an agent's reach, so knowing it does not help.
pub const MASK_SEED: u64 = 0x4d4c_4d5f_6576_616c;

/// Masked windows: `inputs` (`windows × SEQ_LEN`, `[MASK]` = `vocab`), and the flat positions
/// to predict (ascending) with their original tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalSet {
    pub windows: usize,
    pub vocab: usize,
    pub inputs: Vec<u32>,
    pub positions: Vec<u32>,
    pub targets: Vec<u32>,
}

/// The first `windows` non-overlapping windows of `shard`, masked.
pub fn build(shard: &Path, vocab: usize, windows: usize) -> anyhow::Result<EvalSet> {
    let tokens = rebench_corpus::read_shard(shard).with_context(|| format!("reading {}", shard.display()))?.tokens;
    ensure!(tokens.len() >= windows * SEQ_LEN, "the test split has {} tokens, {windows} windows need {}", tokens.len(), windows * SEQ_LEN);
    let masking = Masking::bert(vocab as u32);
    let mut rng = Rng::new(MASK_SEED);
    let mut set = EvalSet { windows, vocab, inputs: Vec::new(), positions: Vec::new(), targets: Vec::new() };
    for w in 0..windows {
        let window = &tokens[w * SEQ_LEN..(w + 1) * SEQ_LEN];
        // `vocab + 1` ids: random replacements are drawn among the real tokens only.
        let masked = masking.apply(window, vocab + 1, &mut rng);
        set.inputs.extend_from_slice(&masked.inputs);
        set.positions.extend(masked.positions.iter().map(|&p| (w * SEQ_LEN) as u32 + p));
        set.targets.extend_from_slice(&masked.targets);
    }
    Ok(set)
}

impl EvalSet {
    /// The driver's input file: `RMLMEVAL`, then little-endian u32s: windows, seq, vocab, the
    /// number of positions, the inputs, the positions, the targets.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut bytes = b"RMLMEVAL".to_vec();
        let header = [self.windows as u32, SEQ_LEN as u32, self.vocab as u32, self.positions.len() as u32];
        for w in header.iter().chain(&self.inputs).chain(&self.positions).chain(&self.targets) {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
    }
}
