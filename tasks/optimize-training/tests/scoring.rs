//! The optimize-training scorer end to end through the `Task` trait, on the tiny variant:
//! the task's own pipelines pass the weight check, and the tolerance separates float
//! reorderings (accepted) from every change of the math and every way of cheating or failing
//! (rejected, each with its reason).
//!
//! The calibration numbers at full size: `OT_TEST_VARIANT=cpu cargo test --release -p
//! optimize-training --test scoring -- --nocapture` prints each case's relative difference.

mod support;

use std::io::Write;

use optimize_training::compare::MAX_RELATIVE_DIFF;
use rebench_scoring::Outcome;
use rebench_scoring::fsutil::{self, Solution};
use support::{invalid_reason, prepared, request, task_dir};

fn relative_differences(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Valid { details, .. } => {
            details["checks"].as_array().unwrap().iter().map(|c| format!("{:.3e}", c["relative"].as_f64().unwrap())).collect()
        }
        Outcome::Invalid { details, .. } => details["difference"]["relative"].as_f64().into_iter().map(|d| format!("{d:.3e}")).collect(),
    }
}

/// One calibrating scoring of the starting solution runs all three pipelines: the solution, then
/// the task's own starting and reference pipelines, interleaved round by round on the same data.
/// Every run's weights must pass, and the raw score and the endpoints are the median round's.
fn score_own_pipelines(overrides: &[(&str, serde_json::Value)]) -> Vec<f64> {
    let task = prepared();
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("starting");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    let mut request = request(&dir.path().join("scratch"), &solution, 11, true);
    for (key, value) in overrides {
        request.params.insert((*key).to_owned(), value.clone());
    }
    let scored = rebench_scoring::Task::score(task, &request).unwrap();
    let outcome = scored.outcome;
    assert!(outcome.is_valid(), "{}", outcome.message());
    println!("{}", outcome.message());
    let details = outcome.details();
    let rounds = details["interleaved"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len() as u64, request.param_u64("timed-runs").unwrap());
    let firsts: Vec<&str> = rounds.iter().map(|r| r["order"][0].as_str().unwrap()).collect();
    let expected: Vec<&str> = (0..rounds.len()).map(|r| ["solution", "starting", "reference"][r % 3]).collect();
    assert_eq!(firsts, expected, "the order rotates every round");
    let calibration = scored.calibration.expect("a calibrating scoring returns its endpoints");
    let median = &rounds[details["median_round"].as_u64().unwrap() as usize - 1]["seconds"];
    assert_eq!(calibration.starting, median["starting"].as_f64().unwrap());
    assert_eq!(calibration.reference, median["reference"].as_f64().unwrap());
    assert_eq!(outcome.raw(), median["solution"].as_f64());
    let mut diffs = Vec::new();
    for pipeline in ["solution", "starting", "reference"] {
        let checks: Vec<f64> = details["checks"].as_array().unwrap().iter().filter(|c| c["pipeline"] == pipeline).map(|c| c["relative"].as_f64().unwrap()).collect();
        println!("{pipeline:<10} relative differences {:?}", checks.iter().map(|d| format!("{d:.3e}")).collect::<Vec<_>>());
        assert!(!checks.is_empty(), "{pipeline} was checked");
        diffs.extend(checks);
    }
    diffs
}

#[test]
fn the_tasks_own_pipelines_compute_the_reference_weights_and_the_endpoints() {
    assert!(score_own_pipelines(&[]).iter().all(|d| *d <= MAX_RELATIVE_DIFF));
}

/// The same on a CUDA device (the gpu variant's `device`), at the test variant's size: the
/// solutions built with their `cuda` feature, the scorer's reference computed on the device.
/// The relative differences it prints are the GPU's reorderings, what the gpu variant's
/// `max-relative-diff` must stay above. Skipped, saying why, without a CUDA device or without
/// the `cuda` feature; `REBENCH_REQUIRE_GPU=1` makes that a failure.
#[test]
fn on_a_gpu_the_tasks_own_pipelines_compute_the_reference_weights() {
    if let Err(why) = rebench_pretrained::device::by_name("cuda") {
        // candle's error may carry a backtrace: its first line says why.
        let why = format!("{why:#}").lines().next().unwrap_or_default().to_owned();
        if std::env::var("REBENCH_REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("REBENCH_REQUIRE_GPU=1 but there is no usable CUDA device: {why}");
        }
        let _ = writeln!(std::io::stderr(), "skipped on_a_gpu_the_tasks_own_pipelines_compute_the_reference_weights: {why}; REBENCH_REQUIRE_GPU=1 turns this skip into a failure");
        return;
    }
    let tolerance = rebench_scoring::Task::manifest(prepared()).variant("gpu").unwrap().params["max-relative-diff"].as_float().unwrap();
    let diffs = score_own_pipelines(&[("device", "cuda".into()), ("max-relative-diff", tolerance.into())]);
    assert!(diffs.iter().all(|d| *d <= tolerance), "{diffs:?} against the gpu variant's {tolerance}");
}

/// One build of `tests/fixtures/mutant` (the reference pipeline with a change chosen at run
/// time), scored once per change.
#[test]
fn the_tolerance_accepts_reorderings_and_rejects_every_other_change() {
    let task = prepared();
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("mutant");
    fsutil::materialize(&task_dir(), Solution::Reference, &solution).unwrap();
    fsutil::copy_tree(&task_dir().join("tests/fixtures/mutant"), &solution).unwrap();
    let scratch = dir.path().join("scratch");
    let request = request(&scratch, &solution, 5, false);
    let binary = task.build_solution(&request, &solution, "mutant").unwrap().unwrap();
    let cases: &[(&str, Option<&str>)] = &[
        ("none", None),
        ("reorder", None),
        // The option checks run first, so a change of the math fails there.
        ("fewer-steps", Some("options check 1 (options: ")),
        // The smallest change there is (the last step, at the lowest learning rate) made only in
        // the timed runs.
        ("fewer-steps-timed", Some("timed run 1 of ")),
        ("lr", Some("the weights differ from the reference pipeline's")),
        ("order", Some("the weights differ from the reference pipeline's")),
        ("skip-sample", Some("the weights differ from the reference pipeline's")),
        ("bf16", Some("the weights differ from the reference pipeline's")),
        ("ignore-option", Some("options check 1 (options: ")),
        // The newest weights it can find are another run's pretrained model, or this one's.
        ("copy-weights", Some("the weights ")),
        ("no-output", Some("wrote no readable <out>/model.safetensors")),
        ("garbage", Some("not a readable checkpoint")),
        ("nan", Some("non-finite value")),
        ("panics", Some("the solution panicked")),
        ("error", Some("the pipeline returned an error: the fixture fails on purpose")),
    ];
    let mut failures = Vec::new();
    for (mode, expected) in cases {
        std::fs::write(scratch.join("mutant").join("mode"), mode).unwrap();
        let outcome = task.score_built(&request, &binary, "mutant").unwrap();
        println!("{mode:<14} relative differences {:?}: {}", relative_differences(&outcome), outcome.message());
        match expected {
            None if !outcome.is_valid() => failures.push(format!("{mode}: expected valid, got {}", outcome.message())),
            Some(reason) if outcome.is_valid() || !invalid_reason(mode, &outcome).contains(reason) => {
                failures.push(format!("{mode}: expected invalid with `{reason}`, got {}", outcome.message()))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn a_solution_that_does_not_build_is_invalid() {
    let task = prepared();
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("broken");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    std::fs::write(solution.join("src/attention.rs"), "this is not rust").unwrap();
    let outcome = rebench_scoring::Task::score(task, &request(&dir.path().join("scratch"), &solution, 3, false)).unwrap().outcome;
    assert!(invalid_reason("broken", &outcome).contains("does not build"), "{}", outcome.message());
}
