//! The scorer on answers, called directly: well-formed answers get RE-Bench's score from the
//! committed ground truth; over-budget, under-spent, malformed, missing and non-finite answers
//! are invalid with their reasons. And the training program's FLOP cap, and the variants'
//! parameters and ground truths.

use std::path::Path;

use rebench_scoring::task::{Environment, PrepareRequest, ScoreRequest};
use rebench_scoring::{Outcome, Task};
use rebench_models::candle_core::Device;
use scaling_law::experiment::{Experiment, Family, Refused};
use scaling_law::truth::Truth;
use scaling_law::{ScalingLaw, Variant, grid, truth_path, vocab};
use serde_json::json;

fn task_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scorer's environment with every directory under `dir`.
fn environment(dir: &Path) -> Environment {
    Environment {
        task_dir: task_dir().to_owned(),
        store: dir.join("store"),
        scratch: dir.join("scratch"),
        target_dir: dir.join("target"),
        assets: dir.join("assets"),
    }
}

fn score_text(answer: Option<&str>) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let solution = tmp.path().join("solution");
    std::fs::create_dir_all(&solution).unwrap();
    if let Some(text) = answer {
        std::fs::write(solution.join("answer.json"), text).unwrap();
    }
    let env = environment(tmp.path());
    let request = ScoreRequest {
        variant: "cpu".into(),
        solution,
        env,
        seed: 0,
        params: ScalingLaw::new().manifest().variant_params("cpu").unwrap(),
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: None,
    };
    ScalingLaw::new().score(&request).unwrap().outcome
}

fn score(answer: serde_json::Value) -> Outcome {
    score_text(Some(&answer.to_string()))
}

fn truth() -> Truth {
    Truth::load(&truth_path(task_dir(), "cpu")).unwrap()
}

fn invalid_because(outcome: Outcome, needle: &str) {
    match outcome {
        Outcome::Invalid { reason, .. } => assert!(reason.contains(needle), "reason `{reason}` lacks `{needle}`"),
        Outcome::Valid { raw, message, .. } => panic!("valid ({raw}, {message}), expected invalid: {needle}"),
    }
}

#[test]
fn an_answer_on_the_grid_scores_as_re_bench_computes_it() {
    let t = truth();
    let cell = t.cells.iter().find(|c| c.width == 64 && c.fraction == 1.0).unwrap();
    let best = t.optimum().2;
    let outcome = score(json!({"width": 64, "steps": cell.steps, "predicted_loss": 5.0}));
    let raw = outcome.raw().unwrap_or_else(|| panic!("{outcome:?}"));
    let loss = t.loss(64, Experiment { family: t.family, width: 64, steps: cell.steps, seed: 0 }.flops(vocab()) / t.budget).unwrap();
    assert!((loss - cell.mean).abs() < 2e-3, "the grid point's own loss, up to rounding of its steps");
    let expected = 1.0 - ((loss - best) + (5.0 - loss).abs());
    assert!((raw - expected).abs() < 1e-12, "{raw} vs {expected}");
    // A perfect prediction at the optimum's width scores about 1.
    let (w, _, _) = t.optimum();
    let steps = grid::steps_for(t.family, w, vocab(), t.budget, 1.1) - 1;
    let exact = t.loss(w, Experiment { family: t.family, width: w, steps, seed: 0 }.flops(vocab()) / t.budget).unwrap();
    let raw = score(json!({"width": w, "steps": steps, "predicted_loss": exact})).raw().unwrap();
    assert!(raw > 0.999 && raw <= 1.0, "{raw}");
}

#[test]
fn an_answer_over_the_budget_or_far_under_it_is_invalid() {
    let family = truth().family;
    let steps = grid::steps_for(family, 64, vocab(), 5e12, 1.12);
    invalid_because(score(json!({"width": 64, "steps": steps, "predicted_loss": 4.8})), "over the 110% allowed");
    let steps = grid::steps_for(family, 64, vocab(), 5e12, 1.09);
    assert!(score(json!({"width": 64, "steps": steps, "predicted_loss": 4.8})).is_valid());
    let steps = grid::steps_for(family, 64, vocab(), 5e12, 0.3);
    invalid_because(score(json!({"width": 64, "steps": steps, "predicted_loss": 4.8})), "under the 50%");
}

#[test]
fn widths_the_program_cannot_train_or_the_table_does_not_cover_are_invalid() {
    invalid_because(score(json!({"width": 66, "steps": 2000, "predicted_loss": 4.8})), "not a multiple of 4");
    invalid_because(score(json!({"width": 16, "steps": 10000, "predicted_loss": 4.8})), "outside the allowed widths 24..=192");
    invalid_because(score(json!({"width": 256, "steps": 300, "predicted_loss": 4.8})), "outside the allowed widths");
}

#[test]
fn malformed_missing_and_non_finite_answers_are_invalid() {
    invalid_because(score_text(None), "no answer.json");
    invalid_because(score_text(Some("{\"width\": 64,")), "not valid JSON");
    invalid_because(score_text(Some("[64, 2000, 4.8]")), "must be a JSON object");
    invalid_because(score(json!({"width": 64, "predicted_loss": 4.8})), "has no `steps`");
    invalid_because(score(json!({"width": 64, "steps": 2000})), "has no `predicted_loss`");
    invalid_because(score(json!({"width": 64.5, "steps": 2000, "predicted_loss": 4.8})), "`width` must be a positive integer");
    invalid_because(score(json!({"width": 64, "steps": -5, "predicted_loss": 4.8})), "`steps` must be a positive integer");
    invalid_because(score(json!({"width": 64, "steps": 0, "predicted_loss": 4.8})), "`steps` must be a positive integer");
    invalid_because(score(json!({"width": 64, "steps": 2000, "predicted_loss": "4.8"})), "must be a number");
    invalid_because(score(json!({"width": 64, "steps": 2000, "predicted_loss": 4.8, "n_layer": 4})), "unknown key `n_layer`");
    // JSON has no NaN or infinity: the ways to write one are all refused.
    invalid_because(score_text(Some(r#"{"width": 64, "steps": 2000, "predicted_loss": NaN}"#)), "not valid JSON");
    invalid_because(score_text(Some(r#"{"width": 64, "steps": 2000, "predicted_loss": 1e999}"#)), "not valid JSON");
    invalid_because(score(json!({"width": 64, "steps": 2000, "predicted_loss": "inf"})), "must be a number");
    assert!(scaling_law::answer::parse(r#"{"width": 64, "steps": 2000, "predicted_loss": 4.8}"#).is_ok());
}

#[test]
fn the_training_program_refuses_a_run_over_the_cap_before_any_work() {
    let (v, family) = (vocab(), truth().family);
    let cap = 5e11;
    let steps = (cap / Experiment { family, width: 64, steps: 1, seed: 1 }.flops(v)).floor() as usize;
    let under = Experiment { family, width: 64, steps, seed: 1 };
    let over = Experiment { family, width: 64, steps: steps + 1, seed: 1 };
    assert!(under.flops(v) <= cap && over.flops(v) > cap);
    assert_eq!(under.check(v, Some(cap)), Ok(()));
    let Err(Refused(why)) = over.check(v, Some(cap)) else { panic!("over the cap, accepted") };
    assert!(why.contains("over the cap of 5.000e11"), "{why}");
    // `run` refuses it before looking at the data (there is none here) or building the model.
    let err = scaling_law::experiment::run(&over, v, &[], &[], Some(cap), &Device::Cpu, |_, _| panic!("trained")).unwrap_err();
    assert!(err.to_string().contains("over the cap"), "{err}");
    // The FLOPs are the models crate's count, 6N + 12LTC per token.
    let cfg = over.config(v);
    assert_eq!(over.flops(v), (cfg.train_flops(1024 * over.steps as u64)) as f64);
}

#[test]
fn the_committed_ground_truth_is_consistent_and_has_its_provenance() {
    let t = truth();
    assert_eq!(t.budget, 5e12);
    assert!(!t.provenance.command.is_empty() && !t.provenance.hardware.is_empty() && !t.provenance.git_rev.is_empty());
    // Every cell was measured at its place in the grid, within rounding of the steps.
    for c in &t.cells {
        assert_eq!(c.steps, grid::steps_for(t.family, c.width, vocab(), t.budget, c.fraction));
        assert!((c.flops / t.budget - c.fraction).abs() < 0.01 * c.fraction);
        assert!(c.mean > t.provenance.floor, "no loss below the entropy floor");
    }
}

#[test]
fn the_gpu_variant_is_refused_before_any_work_until_its_ground_truth_is_measured() {
    let gpu = Variant::named("gpu").unwrap();
    assert_eq!((gpu.device.as_str(), gpu.family.depth, gpu.splits.train), ("cuda", 4, 40_000_000));
    assert!(gpu.cap < gpu.budget);
    let tmp = tempfile::tempdir().unwrap();
    let env = environment(tmp.path());
    let request = PrepareRequest { variant: "gpu".into(), env };
    let err = ScalingLaw::new().prepare(&request).unwrap_err().to_string();
    assert!(err.contains("variant `gpu` has no ground truth yet") && err.contains("VARIANT=gpu"), "{err}");
    assert!(!tmp.path().join("store").exists() && !tmp.path().join("assets").exists(), "nothing was generated");
}

#[test]
fn a_ground_truth_of_another_family_or_budget_is_refused() {
    let cpu = Variant::named("cpu").unwrap();
    assert!(cpu.truth(task_dir(), "cpu").is_ok());
    let deeper = Variant { family: Family { depth: 3, ..cpu.family }, ..cpu.clone() };
    let err = deeper.truth(task_dir(), "cpu").unwrap_err().to_string();
    assert!(err.contains("measured for the model family"), "{err}");
    let larger = Variant { budget: 1e13, ..cpu };
    let err = larger.truth(task_dir(), "cpu").unwrap_err().to_string();
    assert!(err.contains("measured for a budget of 5.000e12"), "{err}");
}

#[test]
fn a_variant_with_an_unknown_or_missing_parameter_is_refused() {
    let mut params = ScalingLaw::new().manifest().variant_params("cpu").unwrap();
    params.insert("widht".into(), json!(64));
    let err = Variant::from_params(&params).unwrap_err().to_string();
    assert!(err.contains("unknown parameter `widht`"), "{err}");
    params.remove("widht");
    params.remove("heads");
    let err = Variant::from_params(&params).unwrap_err().to_string();
    assert!(err.contains("positive integer `heads`"), "{err}");
}
