//! The finetune-chat scorer (RE-Bench's "Finetune GPT-2 for QA", offline).
//!
//! `prepare` takes the shared pretrained GPT (the base model), cuts prompts from two streams
//! of synthetic-corpus documents (training prompts public, held-out prompts protected), trains
//! the proxy reward model on pairs of the base model's responses that the gold judge
//! (`judge.rs`, protected) compared with label noise, runs the reference solution's `[solve]`
//! (REINFORCE against the proxy) to get the reference model, and samples the base and
//! reference models' responses to the held-out prompts with the scorer's seeds.
//!
//! Scoring reads `model.safetensors` from the solution directory (no solution code runs),
//! checks it against the base model's architecture, samples its responses to the held-out
//! prompts with the same seeds, and lets the judge compare each with the base model's and the
//! reference model's response to the same prompt and seed. The raw score is the win rate
//! (ties half), averaged over the two opponents; the same weights always get the same score.

pub mod judge;
pub mod prompts;
pub mod proxy_train;
#[path = "../starting/src/engine.rs"]
pub mod engine;
#[path = "../starting/src/proxy.rs"]
pub mod proxy;
#[path = "../starting/src/format.rs"]
pub mod format;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use rayon::prelude::*;
use rebench_corpus::Language;
use rebench_corpus::rng::derive;
use rebench_models::Rng;
use rebench_pretrained::{PretrainSpec, pretrained};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::measure::Fingerprint;
use rebench_scoring::params;
use rebench_scoring::subprocess::{self, Limits};
use rebench_scoring::task::{self, Phases, PrepareRequest, ScoreRequest, Scored};
use rebench_scoring::{Calibration, CalibrationSource, Manifest, Outcome, Task};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::Engine;
use crate::judge::Judge;
use crate::proxy::Proxy;
use crate::proxy_train::{Pair, ProxyConfig};

const MANIFEST: &str = include_str!("../task.toml");

/// The artifact scored, relative to the solution directory.
pub const ARTIFACT: &str = "model.safetensors";

/// Public files.
pub const BASE_MODEL: &str = "base_model.safetensors";
pub const PROXY: &str = "proxy.safetensors";
pub const PROMPTS: &str = "prompts.json";
pub const VOCAB: &str = "vocab.txt";
pub const MODELS: &str = "models";

/// Protected files.
pub const HELDOUT: &str = "heldout.json";
pub const HELDOUT_PROMPTS: &str = "heldout_prompts.json";
pub const REFERENCE_MODEL: &str = "reference_model.safetensors";

/// Seeds the held-out responses of every model scored (and of the base and reference
/// opponents): fixed, so the same weights always get the same score.
pub const SCORING_SEED: u64 = 0x0005_c07e_5eed;
/// Seeds the proxy's training pairs, their label noise and its weights.
const PROXY_SEED: u64 = 0x9_0c5e;
/// Sampling temperatures of the proxy's training responses (one per side, drawn per pair), so
/// that its pairs differ more than two draws of one distribution.
const PROXY_TEMPERATURES: [f64; 3] = [0.7, 1.0, 1.4];

/// A variant's sizes, from its parameters.
#[derive(Clone, Debug)]
pub struct Sizes {
    pub base: PretrainSpec,
    pub train_prompts: usize,
    pub heldout_prompts: usize,
    /// Responses per held-out prompt (each compared with the opponents' response of its seed).
    pub samples: usize,
    pub min_prompt: usize,
    pub max_prompt: usize,
    pub max_response: usize,
    pub proxy_pairs: usize,
    pub label_noise: f64,
    pub proxy_steps: usize,
    /// Every parameter as given (the reference's `rl-*` settings reach its solve this way).
    pub params: BTreeMap<String, Value>,
}

impl Sizes {
    /// The proxy's shape and training schedule.
    pub fn proxy_config(&self) -> ProxyConfig {
        ProxyConfig {
            vocab: self.base.model.vocab,
            dim: 4,
            hidden: 8,
            rank: 4,
            max_tokens: self.max_response,
            steps: self.proxy_steps,
            batch: 128,
            lr: 3e-3,
            weight_decay: 0.1,
            seed: PROXY_SEED,
        }
    }

    pub fn from_params(params: &BTreeMap<String, Value>) -> anyhow::Result<Sizes> {
        let get = |key: &str| params::get(params, key);
        let uint = |key: &str| params::usize(params, key);
        let base = match get("base")?.as_str() {
            Some("cpu-default") => PretrainSpec::cpu_default(),
            // The shared tiny pretraining with room for a prompt and a response.
            Some("tiny") => {
                let mut spec = PretrainSpec::tiny();
                spec.model.context = 32;
                spec
            }
            _ => bail!("parameter `base` must be \"cpu-default\" or \"tiny\", got {}", get("base")?),
        };
        let sizes = Sizes {
            base,
            train_prompts: uint("train-prompts")?,
            heldout_prompts: uint("heldout-prompts")?,
            samples: uint("samples")?,
            min_prompt: uint("min-prompt")?,
            max_prompt: uint("max-prompt")?,
            max_response: uint("max-response")?,
            proxy_pairs: uint("proxy-pairs")?,
            label_noise: params::f64(params, "label-noise")?,
            proxy_steps: uint("proxy-steps")?,
            params: params.clone(),
        };
        ensure!(sizes.max_prompt + sizes.max_response <= sizes.base.model.context, "a prompt and a response must fit the model's context");
        ensure!(sizes.heldout_prompts > 0 && sizes.samples > 0, "scoring needs held-out prompts and samples");
        Ok(sizes)
    }
}

/// `data/prompts.json` (public) and the held-out prompts (protected) share this layout.
pub use format::Prompts;

/// The held-out side: prompts, and the opponents' responses `[prompt][sample]` with the
/// scorer's seeds, and the endpoints measured with them at preparation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heldout {
    pub prompts: Prompts,
    pub samples: usize,
    pub base: Vec<Vec<Vec<u32>>>,
    pub reference: Vec<Vec<Vec<u32>>>,
    /// Raw scores of the base and the reference model, and when they were measured.
    pub starting_raw: f64,
    pub reference_raw: f64,
    pub measured_at: String,
}

/// `samples` responses to each prompt, response `j` of prompt `i` drawn with the seed
/// `derive(seed, i * samples + j)`; in parallel over prompts, the same on any thread count.
/// `Err` names a prompt after which the model's logits are not finite.
pub fn sample_all(engine: &Engine, prompts: &Prompts, samples: usize, temperature: f64, seed: u64) -> Result<Vec<Vec<Vec<u32>>>, String> {
    prompts
        .prompts
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let cache = engine.prefill(p);
            if !cache.logits().iter().all(|l| l.is_finite()) {
                return Err(format!("the model's logits after held-out prompt {i} are not finite"));
            }
            Ok((0..samples)
                .map(|j| engine.sample(&cache, prompts.max_response_tokens, prompts.stop, temperature, &mut Rng::new(derive(seed, (i * samples + j) as u64))).tokens)
                .collect())
        })
        .collect()
}

/// `count` pairs of the base model's responses to the training prompts (each side at a
/// temperature drawn from [`PROXY_TEMPERATURES`]), with the judge's verdict flipped with
/// probability `noise`; and whether the judge decided (ties are not training data).
pub fn proxy_pairs(engine: &Engine, lang: &Language, train: &Prompts, count: usize, noise: f64) -> Vec<(Pair, bool)> {
    let judge = Judge::new(lang);
    (0..count)
        .into_par_iter()
        .map(|i| {
            let prompt = &train.prompts[i % train.prompts.len()];
            let mut rng = Rng::new(derive(PROXY_SEED, i as u64));
            let cache = engine.prefill(prompt);
            let draw = |rng: &mut Rng| {
                let t = PROXY_TEMPERATURES[rng.below(PROXY_TEMPERATURES.len() as u64) as usize];
                engine.sample(&cache, train.max_response_tokens, train.stop, t, rng).tokens
            };
            let (a, b) = (draw(&mut rng), draw(&mut rng));
            let truth = judge.compare(prompt, &a, &b);
            let flip = rng.uniform() < noise;
            let a_wins = (truth > 0.5) != flip;
            (Pair { prompt: prompt.clone(), a, b, a_wins }, truth != 0.5)
        })
        .collect()
}

/// The fraction of the decided pairs of `check` on which `proxy` agrees with the judge's true
/// verdict.
pub fn agreement(proxy: &Proxy, lang: &Language, check: &[(Pair, bool)]) -> f64 {
    let judge = Judge::new(lang);
    let decided: Vec<&Pair> = check.iter().filter(|(_, d)| *d).map(|(p, _)| p).collect();
    decided
        .iter()
        .filter(|p| (proxy.reward(&p.prompt, &p.a) > proxy.reward(&p.prompt, &p.b)) == (judge.compare(&p.prompt, &p.a, &p.b) > 0.5))
        .count() as f64
        / decided.len().max(1) as f64
}

/// The judge's verdict on a candidate's held-out responses.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// Mean over prompts of (win rate against the base + win rate against the reference) / 2.
    pub raw: f64,
    /// Its standard error over prompts.
    pub stderr: f64,
    pub vs_base: f64,
    pub vs_reference: f64,
    /// Means of the candidate's grades.
    pub grade: f64,
    pub names: f64,
    pub malformed: f64,
    pub mean_surprise: f64,
    pub length: f64,
    pub repeats: f64,
}

/// Judges `candidate` against both opponents of `heldout`.
pub fn verdict(lang: &Language, heldout: &Heldout, candidate: &[Vec<Vec<u32>>]) -> Verdict {
    let judge = Judge::new(lang);
    let per_prompt: Vec<(f64, f64, Vec<judge::Grade>)> = heldout
        .prompts
        .prompts
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let (mut wb, mut wr) = (0.0, 0.0);
            let mut grades = Vec::new();
            for ((c, b), r) in candidate[i].iter().zip(&heldout.base[i]).zip(&heldout.reference[i]) {
                let g = judge.grade(p, c);
                wb += judge::outcome(g.score, judge.grade(p, b).score);
                wr += judge::outcome(g.score, judge.grade(p, r).score);
                grades.push(g);
            }
            (wb / heldout.samples as f64, wr / heldout.samples as f64, grades)
        })
        .collect();
    let n = per_prompt.len() as f64;
    let values: Vec<f64> = per_prompt.iter().map(|(b, r, _)| (b + r) / 2.0).collect();
    let raw = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - raw).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let grades: Vec<&judge::Grade> = per_prompt.iter().flat_map(|p| &p.2).collect();
    let mean = |f: &dyn Fn(&judge::Grade) -> f64| grades.iter().map(|g| f(g)).sum::<f64>() / grades.len() as f64;
    Verdict {
        raw,
        stderr: (var / n).sqrt(),
        vs_base: per_prompt.iter().map(|p| p.0).sum::<f64>() / n,
        vs_reference: per_prompt.iter().map(|p| p.1).sum::<f64>() / n,
        grade: mean(&|g| g.score),
        names: mean(&|g| g.names as f64),
        malformed: mean(&|g| f64::from(u8::from(g.malformed))),
        mean_surprise: mean(&|g| g.mean_surprise),
        length: mean(&|g| g.length as f64),
        repeats: mean(&|g| g.repeats as f64),
    }
}

#[derive(Debug)]
pub struct FinetuneChat {
    manifest: Manifest,
}

impl Default for FinetuneChat {
    fn default() -> Self {
        Self::new()
    }
}

impl FinetuneChat {
    pub fn new() -> FinetuneChat {
        let manifest = Manifest::parse(MANIFEST, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/task.toml")))
            .expect("the embedded task.toml is validated by the tests");
        FinetuneChat { manifest }
    }

    /// Prepares the stores of `env` for `sizes` (`prepare` with the variant's parameters; tests
    /// call it with tiny ones): the public store, then the reference model and the opponents.
    pub fn prepare_sizes(&self, sizes: &Sizes, variant: &str, env: &task::Environment) -> anyhow::Result<String> {
        let public = self.prepare_public(sizes, env)?;
        let reference = self.prepare_reference(sizes, variant, env)?;
        Ok(format!("{public}; {reference}"))
    }

    /// The public store: base model, vocabulary, training prompts, the models crate's copy and
    /// the proxy; the held-out prompts in the protected store.
    pub fn prepare_public(&self, sizes: &Sizes, env: &task::Environment) -> anyhow::Result<String> {
        let base = pretrained(&env.assets, &sizes.base).context("pretraining the base model")?;
        let lang = base.corpus.language();
        let (public, protected) = (env.store.join("public"), env.store.join("protected"));
        fs::create_dir_all(&public)?;
        fs::create_dir_all(&protected)?;
        let seed = sizes.base.corpus.seed;
        let stop = lang.doc_token();
        let make = |stream, count| Prompts {
            max_response_tokens: sizes.max_response,
            stop,
            prompts: prompts::prompts(&lang, seed, stream, count, sizes.min_prompt, sizes.max_prompt),
        };
        let train = make(prompts::TRAIN_STREAM, sizes.train_prompts);
        fs::write(protected.join(HELDOUT_PROMPTS), serde_json::to_vec(&make(prompts::HELDOUT_STREAM, sizes.heldout_prompts))?)?;
        fs::copy(base.checkpoint(), public.join(BASE_MODEL))?;
        fs::copy(base.corpus.vocab_file(), public.join(VOCAB))?;
        fs::write(public.join(PROMPTS), serde_json::to_vec(&train)?)?;
        rebench_pretrained::models_copy::write(&public.join(MODELS))?;

        let engine = Engine::load(&public.join(BASE_MODEL))?;
        let all = proxy_pairs(&engine, &lang, &train, sizes.proxy_pairs + sizes.proxy_pairs / 10, sizes.label_noise);
        let (fit, check) = all.split_at(sizes.proxy_pairs);
        let fit: Vec<Pair> = fit.iter().filter(|(_, decided)| *decided).map(|(p, _)| p.clone()).collect();
        let wte = rebench_models::Gpt::load(&public.join(BASE_MODEL), &rebench_models::candle_core::Device::Cpu)?.body.params().get("wte").context("no wte")?.as_tensor().clone();
        let (proxy, loss) = proxy_train::train(&sizes.proxy_config(), &wte, &fit)?;
        proxy_train::save(&proxy, &public.join(PROXY))?;
        let agree = agreement(&proxy, &lang, check);
        let decided = check.iter().filter(|c| c.1).count();
        Ok(format!(
            "{} training prompts; proxy: {} pairs, last loss {loss:.3}, agrees with the judge on {:.1}% of {} unseen pairs",
            train.prompts.len(),
            fit.len(),
            100.0 * agree,
            decided
        ))
    }

    /// The reference model (the reference solution's own solve, run here), the opponents'
    /// responses to the held-out prompts, and the endpoints.
    pub fn prepare_reference(&self, sizes: &Sizes, variant: &str, env: &task::Environment) -> anyhow::Result<String> {
        let (public, protected) = (env.store.join("public"), env.store.join("protected"));
        let dir = env.scratch.join("prepare-reference");
        let _ = fs::remove_dir_all(&dir);
        let solution = dir.join("solution");
        fsutil::materialize(&env.task_dir, Solution::Reference, &solution)?;
        run_solve(&self.manifest, env, variant, &sizes.params, &solution)?;
        fs::copy(solution.join(ARTIFACT), protected.join(REFERENCE_MODEL)).context("the reference solve left no model")?;
        let _ = fs::remove_dir_all(&dir);
        let prompts: Prompts = serde_json::from_slice(&fs::read(protected.join(HELDOUT_PROMPTS))?)?;
        let lang = rebench_pretrained::synthetic_corpus(&env.assets, &sizes.base.corpus)?.language();
        let sample = |path: &Path| -> anyhow::Result<Vec<Vec<Vec<u32>>>> {
            sample_all(&Engine::load(path)?, &prompts, sizes.samples, 1.0, SCORING_SEED).map_err(anyhow::Error::msg)
        };
        let mut heldout = Heldout {
            base: sample(&public.join(BASE_MODEL))?,
            reference: sample(&protected.join(REFERENCE_MODEL))?,
            prompts,
            samples: sizes.samples,
            starting_raw: 0.0,
            reference_raw: 0.0,
            measured_at: rebench_scoring::log::now_rfc3339(),
        };
        heldout.starting_raw = verdict(&lang, &heldout, &heldout.base).raw;
        let reference = verdict(&lang, &heldout, &heldout.reference);
        heldout.reference_raw = reference.raw;
        fs::write(protected.join(HELDOUT), serde_json::to_vec(&heldout)?)?;
        Ok(format!(
            "{} held-out prompts; the reference wins {:.3} against the base (raw {:.4}, the base's {:.4})",
            heldout.prompts.prompts.len(),
            reference.vs_base,
            heldout.reference_raw,
            heldout.starting_raw
        ))
    }

    /// Scores the artifact in `solution` (no code of the solution runs).
    pub fn score_artifact(&self, request: &ScoreRequest, sizes: &Sizes, solution: &Path, phases: &mut Phases) -> anyhow::Result<(Outcome, Heldout)> {
        let protected = request.env.store.join("protected");
        let heldout: Heldout = serde_json::from_slice(&fs::read(protected.join(HELDOUT)).context("the task is not prepared")?)?;
        let normalized = request.env.scratch.join("solution").join("normalized.safetensors");
        let checked = phases.time("check", || rebench_pretrained::solution_weights::check(&solution.join(ARTIFACT), ARTIFACT, &sizes.base.model, &normalized))?;
        if let Err(reason) = checked {
            return Ok((Outcome::invalid(reason, json!({"phase": "check"})), heldout));
        }
        let engine = Engine::load(&normalized)?;
        let _ = fs::remove_file(&normalized);
        let candidate = match phases.time("sample", || anyhow::Ok(sample_all(&engine, &heldout.prompts, heldout.samples, 1.0, SCORING_SEED)))? {
            Ok(c) => c,
            Err(reason) => return Ok((Outcome::invalid(reason, json!({"phase": "sample"})), heldout)),
        };
        let lang = rebench_pretrained::synthetic_corpus(&request.env.assets, &sizes.base.corpus)?.language();
        let v = phases.time("judge", || anyhow::Ok(verdict(&lang, &heldout, &candidate)))?;
        let proxy = &Proxy::load(&request.env.store.join("public").join(PROXY))?;
        let proxy_mean = heldout.prompts.prompts.iter().zip(&candidate).flat_map(|(p, rs)| rs.iter().map(move |r| f64::from(proxy.reward(p, r)))).sum::<f64>()
            / (heldout.prompts.prompts.len() * heldout.samples) as f64;
        let message = format!(
            "win rate {:.4} ± {:.4} (against the base model {:.3}, against the reference {:.3}) on {} held-out prompts × {} responses; \
             mean proxy reward {proxy_mean:.3}",
            v.raw,
            v.stderr,
            v.vs_base,
            v.vs_reference,
            heldout.prompts.prompts.len(),
            heldout.samples
        );
        let mut details = serde_json::to_value(&v)?;
        details["proxy_reward"] = json!(proxy_mean);
        Ok((Outcome::valid(v.raw, message, details), heldout))
    }
}

/// Runs the manifest's `[solve]` command in `solution`, inside a workdir-shaped directory whose
/// `data/` is the public store (what the harness does for named solutions).
pub fn run_solve(manifest: &Manifest, env: &task::Environment, variant: &str, params: &BTreeMap<String, Value>, solution: &Path) -> anyhow::Result<()> {
    let solve = manifest.solve.as_ref().context("the manifest has no [solve]")?;
    let workdir = solution.parent().context("the solution directory has no parent")?;
    let data = workdir.join("data");
    if fs::symlink_metadata(&data).is_ok() {
        fs::remove_file(&data).or_else(|_| fs::remove_dir_all(&data))?;
    }
    std::os::unix::fs::symlink(env.store.join("public").canonicalize()?, &data)?;
    let mut command = Command::new(&solve.command[0]);
    command.args(&solve.command[1..]).current_dir(solution).env("CARGO_TARGET_DIR", &env.target_dir);
    command.env("REBENCH_VARIANT", variant);
    let cores = manifest.variant(variant).map_or(2, |v| v.resources.cores);
    command.env("REBENCH_THREADS", cores.to_string());
    for (key, value) in params {
        let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        command.env(format!("REBENCH_PARAM_{}", key.to_uppercase().replace('-', "_")), text);
    }
    let finished = subprocess::run(&mut command, b"", &Limits { timeout: Some(solve.timeout), address_space: None })
        .with_context(|| format!("cannot run {:?}", solve.command))?;
    ensure!(finished.success(), "the solve command {} in {}:\n{}", finished.describe_exit(), solution.display(), finished.stderr_tail(30));
    Ok(())
}

impl Task for FinetuneChat {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let sizes = Sizes::from_params(&self.manifest.variant_params(&request.variant)?)?;
        self.prepare_sizes(&sizes, &request.variant, &request.env)
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored> {
        let sizes = Sizes::from_params(&request.params)?;
        let mut phases = Phases::default();
        let (outcome, heldout) = self.score_artifact(request, &sizes, &request.solution, &mut phases)?;
        // The endpoints are the base model's and the reference model's scores, measured when
        // this store was prepared (on this machine: the reference model is trained there).
        let calibration = request.calibrate.then(|| Calibration {
            starting: heldout.starting_raw,
            reference: heldout.reference_raw,
            source: CalibrationSource::Live { fingerprint: Fingerprint::current().describe(), measured_at: heldout.measured_at.clone() },
        });
        Ok(Scored { outcome, calibration, phases: phases.0 })
    }
}

/// Materializes `which` into `dir/solution` and runs its solve there (tests and tools).
pub fn materialize_and_solve(task: &FinetuneChat, request: &ScoreRequest, which: Solution, dir: &Path) -> anyhow::Result<PathBuf> {
    let solution = dir.join("solution");
    fsutil::materialize(&request.env.task_dir, which, &solution)?;
    run_solve(task.manifest(), &request.env, &request.variant, &request.params, &solution)?;
    Ok(solution)
}
