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
//! - [`pretrain`]: the specification, the training run (AdamW, warm-up + cosine schedule,
//!   gradient clipping at 1.0, the fused CPU kernels) and what it leaves in the asset:
//!   `model.safetensors` (the `rebench_models::checkpoint` format), `spec.json`,
//!   `train_log.csv` (step, loss, lr) and `eval.json` (validation loss, floor, wall seconds).
//!
//! [`PretrainSpec::cpu_default`] (a 1.1M-parameter GPT, 2,000 steps of 16 windows of 65 tokens)
//! reaches a validation loss of about 4.80 nats/token against the floor's 4.37 and a bigram
//! model's 5.24, in about 2 minutes on 2 free cores (crate README: the run and its command).
//!
//! Reproducibility: the weights' initialization and the batch order are functions of the
//! specification, but two builds of the cpu default in separate processes differ in the last
//! bits (validation 4.8005 and 4.7994 in two runs on 2 threads): the models crate's CPU kernels
//! add per-thread partial sums (bias and layer-norm gradients, the gradient norm) with rayon's
//! `reduce`/`sum`, whose order follows the work-stealing schedule. Once built, an asset is fixed,
//! so scores computed against it are reproducible; [`PretrainSpec::tiny`] is small enough to be
//! bit-identical (a test checks it).
//!
//! Threads: training runs on rayon's global pool; a binary should call
//! `rebench_models::cpu::init_threads` first thing in `main` (see its docs for why).

pub mod batches;
pub mod corpus;
pub mod pretrain;

pub use batches::TokenBatches;
pub use corpus::{Corpus, default_splits, synthetic_corpus};
pub use pretrain::{EVAL_BATCH, EVAL_SEED, PRETRAIN_VERSION, PretrainSpec, Pretrained, evaluate_split, pretrained};
pub use rebench_corpus::{Split, SyntheticSplits};
