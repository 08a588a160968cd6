//! The scaffold-synthesis scorer (RE-Bench's "Scaffolding for Rust Codecontests", offline).
//!
//! The agent writes a scaffold around a weak program-synthesis model it cannot change: given a
//! problem's visible input/output examples and a model client, return one program of the task's
//! DSL (`starting/dsl`). The score is the fraction of held-out problems whose held-out examples
//! the returned program passes.
//!
//! - `prepare` trains the weak model (a small GPT, [`train`]) into the protected store, as an
//!   asset keyed by everything that determines it, and measures its single-sample solve rate.
//! - `score` builds the driver (`driver/main.rs`, linking the solution) and runs it as a child
//!   process ([`session`]); the problems come from the generator ([`generate`]) seeded with the
//!   scorer's seed and exist only in this process; the driver gets the visible examples one
//!   problem at a time. The model runs here ([`infer`]), so the scaffold cannot reach it
//!   except through counted calls, and the returned programs are checked here with the
//!   scorer's own interpreter.
//! - Calibration is live: the starting and reference scaffolds run on the same problems with
//!   the same model, cached per seed, model and machine (see `task.toml` for why).
//!
//! The `endpoint` variant ([`endpoint`]) keeps the interface with another model and language: an
//! OpenAI-compatible chat endpoint the user configures, and Rust programs judged in a sandbox.

pub mod endpoint;
pub mod generate;
pub mod infer;
pub mod session;
pub mod tokens;
pub mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dsl::{Budget, Program, Prompt};
use rebench_assets::{Asset, Spec, Store};
use rebench_models::Rng;
use rebench_scoring::driver::{self, BuildPlan, DriverSource};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::params;
use rebench_scoring::task::{self, Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Manifest, Outcome, Task};
use serde_json::{Value, json};

use crate::generate::Shape;
use crate::infer::Engine;
use crate::session::{Limits, ProblemResult};
use crate::train::TrainSpec;

const MANIFEST: &str = include_str!("../task.toml");
const DRIVER_MAIN: &str = include_str!("../driver/main.rs");
const DRIVER_WIRE: &str = include_str!("../driver/wire.rs");
const DRIVER: DriverSource<'static> = DriverSource { files: &[("src/main.rs", DRIVER_MAIN), ("src/wire.rs", DRIVER_WIRE)] };
/// Everything the trained model depends on besides its spec: a change here retrains it.
const MODEL_SOURCES: &[&str] = &[
    include_str!("generate.rs"),
    include_str!("tokens.rs"),
    include_str!("train.rs"),
    include_str!("../starting/dsl/src/lang.rs"),
    include_str!("../starting/dsl/src/client.rs"),
];
/// The seed of the problems the model's own solve rate is measured on in `prepare`.
const EVAL_SEED: u64 = 0x5eed_e7a1;

#[derive(Debug)]
pub struct ScaffoldSynthesis {
    manifest: Manifest,
    /// The `endpoint` variant's model; `None` skips that variant.
    endpoint: Option<endpoint::EndpointConfig>,
}

impl Default for ScaffoldSynthesis {
    fn default() -> Self {
        Self::new()
    }
}

/// The model a variant trains.
pub fn train_spec(params: &BTreeMap<String, Value>) -> anyhow::Result<TrainSpec> {
    Ok(TrainSpec {
        width: params::usize(params, "model-width")?,
        depth: params::usize(params, "model-depth")?,
        heads: params::usize(params, "model-heads")?,
        context: params::usize(params, "model-context")?,
        steps: params::usize(params, "train-steps")?,
        batch_size: params::usize(params, "train-batch")?,
        peak_lr: params::f64(params, "train-lr")?,
        warmup: params::usize(params, "train-warmup")?,
        repair_share: params::f64(params, "train-repair-share")?,
        seed: params::u64(params, "train-seed")?,
    })
}

/// The asset spec of the trained model.
pub fn model_asset_spec(spec: &TrainSpec) -> Spec {
    let sources: String = MODEL_SOURCES.concat();
    Spec::new(
        "weak-model",
        json!({
            "train": spec,
            "generator": generate::GENERATOR_VERSION,
            "sources": fsutil::hash_bytes(sources.as_bytes()),
        }),
    )
}

/// The model's own single-sample solve rates on `count` problems: greedy, and at temperature 1.
pub fn single_sample_rates(engine: &Engine, seed: u64, count: usize) -> (f64, f64) {
    let problems = generate::held_out(seed, count, &Shape::default());
    let mut solved = [0usize; 2];
    for (i, p) in problems.iter().enumerate() {
        let prompt = engine.prefill(&engine.vocab().prompt(&Prompt::new(&p.visible)));
        for (k, t) in [0.0, 1.0].into_iter().enumerate() {
            let s = engine.sample(&prompt, t, 16, &mut Rng::for_stream(seed, &format!("single/{i}")));
            if Program::parse(&s.text).is_ok_and(|prog| session::check(&prog, &p.hidden).is_none()) {
                solved[k] += 1;
            }
        }
    }
    (solved[0] as f64 / count as f64, solved[1] as f64 / count as f64)
}

/// Trains (or finds) the weak model of `spec` in `store` (the protected store).
pub fn ensure_model(store: &Path, spec: &TrainSpec) -> anyhow::Result<Asset> {
    Store::new(store).ensure(&model_asset_spec(spec), |builder| {
        let bar = builder.progress(spec.steps as u64, "training the weak model");
        let path = builder.dir().join("model.safetensors");
        let report = train::train(spec, &path, |step, loss| {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.3}"));
        })?;
        bar.finish_and_clear();
        let engine = Engine::load(&path)?;
        let (greedy, sampled) = single_sample_rates(&engine, EVAL_SEED, 200);
        let report = json!({
            "training": report,
            "single-sample solve rate": {"greedy": greedy, "temperature 1": sampled, "problems": 200},
        });
        std::fs::write(builder.dir().join("report.json"), serde_json::to_string_pretty(&report)?)?;
        Ok(())
    })
}

/// What one scoring of a scaffold asks for.
struct Plan {
    problems: usize,
    limits: Limits,
    seed: u64,
}

impl ScaffoldSynthesis {
    pub fn new() -> ScaffoldSynthesis {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        ScaffoldSynthesis { manifest, endpoint: None }
    }

    /// The scorer with the `endpoint` variant's model (the scorer's `main` reads it from the
    /// environment; tests give a local one).
    pub fn with_endpoint(mut self, endpoint: Option<endpoint::EndpointConfig>) -> ScaffoldSynthesis {
        self.endpoint = endpoint;
        self
    }

    fn plan(&self, request: &ScoreRequest) -> anyhow::Result<Plan> {
        let variant = self.manifest.variant(&request.variant).with_context(|| format!("no variant `{}`", request.variant))?;
        let p = &request.params;
        let scaffold_time = request.solution_timeout_secs.unwrap_or(params::f64(p, "scaffold-seconds")?);
        Ok(Plan {
            problems: params::usize(p, "problems")?,
            limits: Limits {
                budget: Budget { calls: params::u64(p, "calls")? as u32, tokens: params::u64(p, "tokens")? as u32 },
                scaffold_time: Duration::from_secs_f64(scaffold_time),
                memory: (variant.resources.memory_gib * (1u64 << 30) as f64) as u64,
            },
            seed: request.seed,
        })
    }

    /// Builds the driver against `solution` and runs it on the plan's problems.
    fn measure(&self, request: &ScoreRequest, solution: &Path, label: &str, engine: &Engine, plan: &Plan, phases: &mut Phases) -> anyhow::Result<Outcome> {
        let build = BuildPlan {
            scratch: request.env.scratch.join(label),
            solution: solution.to_owned(),
            // A target directory of its own: the driver shares no dependency with other tasks'
            // drivers (it builds in seconds), so sharing theirs would only make it wait on
            // their builds' lock.
            target_dir: request.env.target_dir.join("scaffold-synthesis"),
            timeout: self.manifest.scoring.timeout,
        };
        let binary = match phases.time("build", || driver::build(&build, DRIVER))? {
            Ok(binary) => binary,
            Err(reason) => return Ok(Outcome::invalid(reason, json!({"phase": "build"}))),
        };
        let problems = phases.time("generate", || generate::held_out(plan.seed, plan.problems, &Shape::default()));
        let results = phases.time("run", || session::run(&binary, &build.scratch, &problems, engine, plan.seed, &plan.limits))?;
        Ok(summarize(&results, &plan.limits.budget))
    }

    /// The trained model of a variant's parameters, built if missing.
    fn model(&self, params: &BTreeMap<String, Value>, store: &Path) -> anyhow::Result<(Asset, TrainSpec)> {
        let spec = train_spec(params)?;
        Ok((ensure_model(&store.join("protected"), &spec)?, spec))
    }
}

/// The outcome of a run: the solve rate, per depth, and why problems failed.
pub(crate) fn summarize(results: &[ProblemResult], budget: &Budget) -> Outcome {
    let solved = results.iter().filter(|r| r.solved).count();
    let rate = solved as f64 / results.len().max(1) as f64;
    let mut by_depth: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for r in results {
        let entry = by_depth.entry(r.depth).or_default();
        entry.0 += usize::from(r.solved);
        entry.1 += 1;
    }
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for why in results.iter().filter_map(|r| r.failure.as_deref()) {
        *kinds.entry(failure_kind(why).to_owned()).or_default() += 1;
    }
    let depths: Vec<String> = by_depth.iter().map(|(d, (s, n))| format!("depth {d}: {s}/{n}")).collect();
    let failures: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let calls: u32 = results.iter().map(|r| r.calls).sum();
    let tokens: u32 = results.iter().map(|r| r.tokens).sum();
    let message = format!(
        "solved {solved} of {} held-out problems ({rate:.3}; {}); failures: {}; {calls} samples, {tokens} tokens (budget {} samples and {} tokens per problem)",
        results.len(),
        depths.join(", "),
        if failures.is_empty() { "none".to_owned() } else { failures.join(", ") },
        budget.calls,
        budget.tokens,
    );
    let details = json!({
        "solved": solved,
        "problems": results.len(),
        "by_depth": by_depth.iter().map(|(d, (s, n))| (d.to_string(), json!({"solved": s, "problems": n}))).collect::<serde_json::Map<_, _>>(),
        "failure_kinds": kinds,
        "results": results,
        "scaffold_seconds": results.iter().map(|r| r.scaffold_seconds).sum::<f64>(),
        "model_seconds": results.iter().map(|r| r.model_seconds).sum::<f64>(),
    });
    Outcome::valid(rate, message, details)
}

/// A failure's category, for the summary.
fn failure_kind(why: &str) -> &'static str {
    if why.starts_with("budget exceeded") {
        "over budget"
    } else if why.starts_with("the scaffold panicked") {
        "panicked"
    } else if why.starts_with("the scaffold took more than") {
        "timed out"
    } else if why.starts_with("the scaffold's process") || why.starts_with("the driver") || why.contains("over 1 MiB") {
        "crashed"
    } else if why.starts_with("the program does not compile") {
        "compile errors"
    } else if why.contains("the time limit") {
        "programs over the time limit on a held-out test"
    } else if why.contains("wrong answer") {
        "wrong programs"
    } else if why.starts_with("held-out test") {
        "programs crashing on a held-out test"
    } else if why.contains("is malformed") {
        "malformed programs"
    } else if why.starts_with("the scaffold returned no program") {
        "no program"
    } else if why.contains("fails:") {
        "programs erring on held-out examples"
    } else {
        "wrong programs"
    }
}

/// Denies other processes of this user the scorer's memory and `/proc` entries (the held-out
/// problems live only here): a non-dumpable process can be inspected only with CAP_SYS_PTRACE.
/// The driver, a child, becomes dumpable again at `exec`, which is harmless: it holds nothing.
pub fn protect_this_process() {
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

impl Task for ScaffoldSynthesis {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        if request.variant == "endpoint" {
            return Ok(match &self.endpoint {
                Some(e) => format!("nothing to prepare: the model is the endpoint's `{}`", e.model),
                None => format!("nothing to prepare ({})", endpoint::SKIPPED),
            });
        }
        let (asset, spec) = self.model(&self.manifest.variant_params(&request.variant)?, &request.env.store)?;
        let report = std::fs::read_to_string(asset.file("report.json")).unwrap_or_default();
        Ok(format!(
            "weak model ({} layers, width {}, {} steps) {} {}: {}",
            spec.depth,
            spec.width,
            spec.steps,
            if asset.built { "trained into" } else { "found in" },
            asset.dir.display(),
            report.split_whitespace().collect::<Vec<_>>().join(" ")
        ))
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        if request.variant == "endpoint" {
            return endpoint::score(&self.manifest, request, self.endpoint.as_ref());
        }
        protect_this_process();
        let mut phases = Phases::default();
        let (asset, _) = phases.time("model", || self.model(&request.params, &request.env.store))?;
        let engine = Engine::load(&asset.file("model.safetensors"))?;
        let plan = self.plan(request)?;
        let outcome = self.measure(request, &request.solution, "solution", &engine, &plan, &mut phases)?;
        // The same problems (the seed), the same weights, the same limits. The weights' own hash,
        // not the asset's key: a store retrained where the weights come out otherwise (other
        // code, or a CPU whose vector width makes gemm round differently) must not reuse the old
        // calibration.
        let weights = asset.manifest.files.get("model.safetensors").map_or("", |f| f.sha256.as_str());
        let key = format!("{}|{weights}|{}|{:?}", request.seed, fsutil::hash_bytes(format!("{DRIVER_MAIN}{DRIVER_WIRE}").as_bytes()), plan.limits);
        let calibration = task::calibrate_if_asked(request, &outcome, &key, &mut phases, |dir, which, own| {
            self.measure(request, dir, &format!("own-{}", which.name()), &engine, &plan, own)
        })?;
        Ok(Scored { outcome, calibration, phases: phases.0 })
    }
}

/// Materializes the task's own starting or reference solution into `dest`.
pub fn materialize(which: Solution, dest: &Path) -> anyhow::Result<PathBuf> {
    fsutil::materialize(Path::new(env!("CARGO_MANIFEST_DIR")), which, dest)?;
    Ok(dest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_manifest_parses_and_matches_the_crate() {
        let task = ScaffoldSynthesis::new();
        assert_eq!(task.manifest().task.id, env!("CARGO_PKG_NAME"));
        let spec = train_spec(&task.manifest.variant_params("cpu").unwrap()).unwrap();
        assert_eq!(spec.config().vocab, tokens::Vocab::new().size());
    }
}
