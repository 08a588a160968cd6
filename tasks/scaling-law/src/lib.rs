//! The scaling-law scorer (RE-Bench's "Scaling Law Experiment").
//!
//! The agent gets a training program (its solution's `trainer` package, built on a copy of the
//! workspace's models crate placed in its `data/models/`) that refuses any experiment over a
//! FLOP cap, and must predict, for a much larger target budget, the width and step count that
//! minimize the validation loss and the loss they reach. It writes `answer.json`; nothing is
//! trained at scoring. The answer's loss is interpolated from a ground-truth table measured
//! with the same experiment code over widths × fractions of the budget
//! (`ground-truth/<variant>.json`, measured by `src/bin/grid.rs`), and the score is RE-Bench's
//! `1 - [(loss(answer) - loss(optimum)) + |predicted - loss(answer)|]`. The metric is hidden
//! from the agent (`hidden = true`), as in RE-Bench; the score log has it.

pub mod answer;
#[path = "../starting/trainer/src/experiment.rs"]
pub mod experiment;
pub mod grid;
pub mod truth;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::ensure;
use rebench_corpus::SyntheticSplits;
use rebench_pretrained::{Split, default_splits, synthetic_corpus};
use rebench_scoring::params::{self, Params};
use rebench_scoring::task::{Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::json;

use crate::experiment::Family;
use crate::truth::Truth;

const MANIFEST: &str = include_str!("../task.toml");

/// Tokens at the end of the corpus's train split kept out of training, for the agent's own
/// evaluations (`data/dev.tok`).
pub const DEV_TOKENS: usize = 200_000;

/// The train split cut into the tokens experiments train on and the dev tokens they evaluate on.
pub fn split_train(mut tokens: Vec<u32>) -> (Vec<u32>, Vec<u32>) {
    let dev = tokens.split_off(tokens.len().saturating_sub(DEV_TOKENS));
    (tokens, dev)
}

/// The vocabulary of the default synthetic language (every variant uses it).
pub fn vocab() -> usize {
    rebench_corpus::Language::new(default_splits().config).vocab_size()
}

/// The ground-truth table of `variant`, committed beside the manifest.
pub fn truth_path(task_dir: &Path, variant: &str) -> PathBuf {
    task_dir.join("ground-truth").join(format!("{variant}.json"))
}

/// The parameters a variant may set; [`Variant::from_params`] refuses any other.
pub const PARAMS: [&str; 8] = ["budget", "cap", "depth", "heads", "context", "batch", "device", "train-tokens"];

/// What a variant fixes: the target `budget` and the per-experiment `cap` in FLOPs, the model
/// family (`depth`, `heads`, `context`, `batch`), the `device` experiments train on (`cpu`
/// where unset, or `cuda`), and the corpus (the default one, its train split `train-tokens`
/// long where set).
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub budget: f64,
    pub cap: f64,
    pub family: Family,
    pub device: String,
    pub splits: SyntheticSplits,
}

impl Variant {
    pub fn from_params(params: &Params) -> anyhow::Result<Variant> {
        params::refuse_unknown(params, &PARAMS)?;
        let family = Family::from_json(&serde_json::to_value(params)?)?;
        let device = params::device(params)?.to_owned();
        let mut splits = default_splits();
        if params.contains_key("train-tokens") {
            splits.train = params::usize(params, "train-tokens")?;
        }
        let (budget, cap) = (params::f64(params, "budget")?, params::f64(params, "cap")?);
        ensure!(cap > 0.0 && cap < budget, "the cap ({cap:.3e}) must be positive and under the budget ({budget:.3e})");
        Ok(Variant { budget, cap, family, device, splits })
    }

    /// The manifest's variant `name` of this task.
    pub fn named(name: &str) -> anyhow::Result<Variant> {
        Variant::from_params(&ScalingLaw::new().manifest.variant_params(name)?)
    }

    /// The variant's ground truth, or why it has none yet.
    pub fn truth(&self, task_dir: &Path, variant: &str) -> anyhow::Result<Truth> {
        let path = truth_path(task_dir, variant);
        ensure!(
            path.exists(),
            "variant `{variant}` has no ground truth yet ({} is missing): it is measured with \
             `VARIANT={variant} tasks/scaling-law/ground-truth/measure.sh` on the variant's device, \
             as ground-truth/README.md says",
            path.display()
        );
        let truth = Truth::load(&path)?;
        ensure!(
            truth.family == self.family,
            "{} was measured for the model family {:?}, the variant trains {:?}",
            path.display(),
            truth.family,
            self.family
        );
        ensure!(
            (truth.budget - self.budget).abs() <= 1e-9 * self.budget,
            "the ground truth was measured for a budget of {:.3e} FLOPs, the variant asks {:.3e}",
            truth.budget,
            self.budget
        );
        Ok(truth)
    }
}

#[derive(Debug)]
pub struct ScalingLaw {
    manifest: Manifest,
}

impl Default for ScalingLaw {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalingLaw {
    pub fn new() -> Self {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is valid");
        Self { manifest }
    }
}

impl Task for ScalingLaw {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The public store: the train tokens (`train.tok`), the dev tokens (`dev.tok`, the end of
    /// the corpus's train split, never trained on), `task.json` (budget, cap, model family,
    /// device), and `models/`, the models crate the trainer builds on. The protected validation
    /// split, which the ground truth was measured on, stays in the shared asset store.
    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let variant = Variant::from_params(&self.manifest.variant_params(&request.variant)?)?;
        // Before any work: a variant without its ground truth cannot be scored, so not run.
        let truth = variant.truth(&request.env.task_dir, &request.variant)?;
        let (budget, cap, family) = (variant.budget, variant.cap, variant.family);
        let corpus = synthetic_corpus(&request.env.assets, &variant.splits)?;
        let vocab = corpus.vocab_size();
        let public = request.env.store.join("public");
        fs::create_dir_all(&public)?;
        let (train, dev) = split_train(corpus.tokens(Split::Train)?);
        rebench_corpus::write_shard(&public.join("train.tok"), &train, vocab as u32)?;
        rebench_corpus::write_shard(&public.join("dev.tok"), &dev, vocab as u32)?;
        let task = json!({
            "budget": budget,
            "cap": cap,
            "vocab": vocab,
            "device": variant.device,
            "depth": family.depth,
            "heads": family.heads,
            "context": family.context,
            "batch": family.batch,
            "min-width": truth.widths[0],
            "max-width": truth.widths.last(),
            "min-fraction": truth.min_fraction(),
        });
        fs::write(public.join("task.json"), serde_json::to_vec_pretty(&task)?)?;
        rebench_pretrained::models_copy::write(&public.join("models"))?;
        Ok(format!(
            "{} train and {} dev tokens, budget {budget:.2e} FLOPs, cap {cap:.2e} per experiment",
            train.len(),
            dev.len()
        ))
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let mut phases = Phases::default();
        let variant = Variant::from_params(&request.params)?;
        let truth = variant.truth(&request.env.task_dir, &request.variant)?;
        let outcome = phases.time("verify", || match answer::read(&request.solution) {
            Err(reason) => Outcome::invalid(reason, json!({})),
            Ok(a) => {
                let details = json!({"width": a.width, "steps": a.steps, "predicted-loss": a.predicted_loss});
                match answer::grade(&a, &truth, vocab()) {
                    Err(reason) => Outcome::invalid(reason, details),
                    Ok(g) => Outcome::valid(
                        g.score,
                        format!(
                            "width {} for {} steps ({:.1}% of the budget): loss {:.4} (best {:.4} at width {}), predicted {:.4}",
                            a.width,
                            a.steps,
                            g.fraction * 100.0,
                            g.loss,
                            g.optimum.2,
                            g.optimum.0,
                            a.predicted_loss
                        ),
                        json!({
                            "width": a.width, "steps": a.steps, "predicted-loss": a.predicted_loss,
                            "loss": g.loss, "fraction": g.fraction,
                            "optimum": {"width": g.optimum.0, "fraction": g.optimum.1, "loss": g.optimum.2},
                        }),
                    ),
                }
            }
        });
        Ok(Scored { outcome, calibration: None, phases: phases.0 })
    }
}
