//! Shared pretrained language models for the rebench-rs tasks: the synthetic corpus as assets
//! ([`synthetic_corpus`], [`Corpus`]), random training windows over a token shard
//! ([`TokenBatches`]), and a GPT pretrained on it once per configuration ([`pretrained`],
//! [`PretrainSpec`]) into the shared asset store.
//!
//! Several tasks start from the same pretrained model (fine-tuning, embedding repair, scaling
//! studies), so it is trained once per machine, not once per task: [`pretrained`] keeps it in
//! the store the harness passes as `Environment::assets` (`$REBENCH_HOME/assets`), keyed by a
//! hash of the [`PretrainSpec`]'s JSON and [`PRETRAIN_VERSION`]. That store is never copied into
//! an agent's workdir; a task copies what an agent may see (the train shard, a checkpoint) into
//! its own `public/` store.
//!
//! - [`corpus`]: the default language and split sizes, the corpus assets and their exact
//!   entropy floors (the floor of every split, train included).
//! - [`batches`]: [`TokenBatches`], seeded random windows of a token vector.
//! - [`device`]: the device a variant's `device` parameter names (`cpu`, `cuda`).
//! - [`pretrain`]: the specification, the training run (AdamW, warm-up + cosine schedule,
//!   gradient clipping at 1.0, the fused CPU kernels) and what it leaves in the asset:
//!   `model.safetensors` (the `rebench_models::checkpoint` format), `spec.json`,
//!   `train_log.csv` (step, loss, lr) and `eval.json` (validation loss, floor, wall seconds).
//!
//! [`PretrainSpec::cpu_default`] (a 1.1M-parameter GPT, 2,000 steps of 16 windows of 65 tokens)
//! reaches a validation loss of about 4.80 nats/token against the floor's 4.37 and a bigram
//! model's 5.24, in about 2 minutes on 2 free cores (crate README: the run and its command).
//!
//! Reproducibility: a specification's weights are a function of the specification, bit for
//! bit, whatever the thread count and the x86-64 machine: the models crate adds parallel partial
//! sums in chunk order, and checkpoints are written with a canonical header. Checked on
//! 2026-11-27: `examples/pretrain --spec cpu-default --threads 2` on the device machine's
//! 16-core Xeon gave validation loss 4.800882338866992 and the checkpoint hash (`a196126f…`) of
//! the build on the project's 2-core machine; `--spec tiny` gave one hash at 1 to 4 threads on
//! both. (Earlier builds differed in the last bits, 4.8005 and 4.7994, because rayon's `sum`
//! followed the work-stealing schedule; and half of all checkpoint files differed in bytes,
//! because safetensors wrote the metadata in a `HashMap`'s order.)
//!
//! Threads: training runs on rayon's global pool; a binary should call
//! `rebench_models::cpu::init_threads` first thing in `main` (see its docs for why).

pub mod batches;
pub mod corpus;
pub mod device;
pub mod models_copy;
pub mod pretrain;
pub mod solution_weights;

pub use batches::TokenBatches;
pub use corpus::{Corpus, default_splits, synthetic_corpus};
pub use pretrain::{EVAL_BATCH, EVAL_SEED, PRETRAIN_VERSION, PretrainSpec, Pretrained, evaluate_split, pretrained, pretrained_on};
pub use rebench_corpus::{Split, SyntheticSplits};
