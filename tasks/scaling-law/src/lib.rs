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

use anyhow::{Context, ensure};
use rebench_pretrained::{Split, default_splits, synthetic_corpus};
use rebench_scoring::task::{Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::json;

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

    fn param_f64(&self, request_params: &std::collections::BTreeMap<String, serde_json::Value>, key: &str) -> anyhow::Result<f64> {
        request_params
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("the variant has no numeric parameter `{key}`"))
    }
}

impl Task for ScalingLaw {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The public store: the train tokens (`train.tok`), the dev tokens (`dev.tok`, the end of
    /// the corpus's train split, never trained on), `task.json` (budget, cap, model family),
    /// and `models/`, the models crate the trainer builds on. The protected validation split,
    /// which the ground truth was measured on, stays in the shared asset store.
    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let params = self.manifest.variant_params(&request.variant)?;
        let (budget, cap) = (self.param_f64(&params, "budget")?, self.param_f64(&params, "cap")?);
        let corpus = synthetic_corpus(&request.env.assets, &default_splits())?;
        let vocab = corpus.vocab_size();
        let public = request.env.store.join("public");
        fs::create_dir_all(&public)?;
        let (train, dev) = split_train(corpus.tokens(Split::Train)?);
        rebench_corpus::write_shard(&public.join("train.tok"), &train, vocab as u32)?;
        rebench_corpus::write_shard(&public.join("dev.tok"), &dev, vocab as u32)?;
        let truth = Truth::load(&truth_path(&request.env.task_dir, &request.variant))?;
        let task = json!({
            "budget": budget,
            "cap": cap,
            "vocab": vocab,
            "depth": experiment::DEPTH,
            "heads": experiment::HEADS,
            "context": experiment::CONTEXT,
            "batch": experiment::BATCH,
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
        let budget = self.param_f64(&request.params, "budget")?;
        let truth = Truth::load(&truth_path(&request.env.task_dir, &request.variant))?;
        ensure!(
            (truth.budget - budget).abs() <= 1e-9 * budget,
            "the ground truth was measured for a budget of {:.3e} FLOPs, the variant asks {budget:.3e}",
            truth.budget
        );
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
