//! What the solution is run on: finetuning data drawn from the synthetic language with a seed
//! the agent never sees, and the configurations (the defaults, and option sets sampled from
//! the seed so that a solution must honour every option).

use rebench_corpus::Language;
use serde_json::json;

use crate::pipeline::config::{CheckpointConfig, Config, DataConfig, EvalConfig, OptimizerConfig, ScheduleConfig, ScheduleKind, TrainConfig};
use crate::pipeline::rng::SplitMix64;

/// Documents of `lang` from stream `seed` as JSON Lines (`{"id": i, "text": "<doc> ..."}`)
/// whose documents of at least `min_doc_tokens` tokens hold exactly `tokens` tokens (the last
/// one cut short; shorter documents are kept too, for the pipeline's filter to drop).
///
/// Exactly, so that every data set of a size makes the same number of samples and steps: the
/// timed runs of a scoring and of the calibration, each on data of its own, do the same work.
pub fn finetuning_data(lang: &Language, seed: u64, tokens: usize, min_doc_tokens: usize) -> String {
    let min = min_doc_tokens.max(1);
    assert!(tokens >= min, "{tokens} tokens cannot be documents of at least {min}");
    let mut out = String::new();
    // Invariant: `remaining` is 0 or at least `min`, so the last document can be cut to it.
    let mut remaining = tokens;
    let mut index = 0;
    while remaining > 0 {
        let mut doc = lang.document(seed, index);
        index += 1;
        if doc.len() >= min {
            if doc.len() >= remaining {
                doc.truncate(remaining);
            } else if remaining - doc.len() < min {
                // Taking it whole would leave a remainder no document can fill exactly.
                continue;
            }
            remaining -= doc.len();
        }
        out.push_str(&json!({"id": index - 1, "text": lang.render(&doc)}).to_string());
        out.push('\n');
    }
    out
}

/// The configuration the starting pipeline ships with (`finetune.toml`), and the one timed:
/// samples as long as the model's `context`.
pub fn default_config(context: usize) -> Config {
    Config {
        data: DataConfig { seq_len: context, min_doc_tokens: 16, shuffle: true, shuffle_seed: 1234 },
        optimizer: OptimizerConfig { lr: 6e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: 1.0 },
        schedule: ScheduleConfig { kind: ScheduleKind::Cosine, warmup_steps: 8, min_lr_ratio: 0.1 },
        train: TrainConfig { epochs: 2, batch_size: 16, micro_batch_size: 2 },
        eval: EvalConfig { every_epoch: true, interval_steps: 2, batch_size: 2 },
        checkpoint: CheckpointConfig { save_every: 1 },
    }
}

/// The default configuration as the TOML file the agent gets, with a header.
pub fn default_config_toml(context: usize) -> String {
    let body = toml::to_string(&default_config(context)).expect("the configuration serializes");
    format!(
        "# The finetuning configuration. The scorer times the pipeline with these values and also\n\
         # runs it with other values of every option: a solution must honour all of them.\n\n{body}"
    )
}

/// A configuration in which every option that changes the weights differs from the default
/// (the others are drawn too), drawn from `seed`; `context` bounds `seq_len`.
pub fn sample_options(seed: u64, context: usize) -> Config {
    let mut rng = SplitMix64::new(seed ^ 0x0b7e_5e75);
    let d = default_config(context);
    let mut pick = |n: usize| rng.below(n as u64) as usize;
    let pick_f = |i: usize, values: &[f64]| values[i % values.len()];
    let seq_lens = [context / 2, (3 * context) / 4, context - 1];
    let kinds = [ScheduleKind::Constant, ScheduleKind::Linear];
    Config {
        data: DataConfig {
            seq_len: seq_lens[pick(3)].max(1),
            min_doc_tokens: [0, 40, 120][pick(3)],
            shuffle: pick(4) != 0,
            shuffle_seed: SplitMix64::new(seed).next_u64() % 1_000_000,
        },
        optimizer: OptimizerConfig {
            lr: d.optimizer.lr * pick_f(pick(3), &[0.5, 1.6, 2.5]),
            beta1: pick_f(pick(2), &[0.8, 0.95]),
            beta2: pick_f(pick(2), &[0.9, 0.99]),
            eps: pick_f(pick(2), &[1e-6, 1e-7]),
            weight_decay: pick_f(pick(3), &[0.0, 0.02, 0.3]),
            grad_clip: pick_f(pick(3), &[0.0, 0.25, 0.5]),
        },
        schedule: ScheduleConfig {
            kind: kinds[pick(2)],
            warmup_steps: [0, 3, 5][pick(3)],
            min_lr_ratio: pick_f(pick(3), &[0.0, 0.3, 0.5]),
        },
        train: TrainConfig { epochs: [1, 3][pick(2)], batch_size: [4, 6, 8, 12][pick(4)], micro_batch_size: [1, 2, 3, 4][pick(4)] },
        eval: EvalConfig { every_epoch: pick(2) == 0, interval_steps: [0, 5][pick(2)], batch_size: [2, 8][pick(2)] },
        checkpoint: CheckpointConfig { save_every: [0, 3, 7][pick(3)] },
    }
}
