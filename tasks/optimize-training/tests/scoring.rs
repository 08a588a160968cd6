//! The optimize-training scorer end to end through the `Task` trait, on the tiny variant:
//! the task's own pipelines pass the weight check, and the tolerance separates float
//! reorderings (accepted) from every change of the math and every way of cheating or failing
//! (rejected, each with its reason).
//!
//! The calibration numbers at full size: `OT_TEST_VARIANT=cpu cargo test --release -p
//! optimize-training --test scoring -- --nocapture` prints each case's relative difference.

mod support;

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

#[test]
fn the_tasks_own_pipelines_compute_the_reference_weights() {
    let task = prepared();
    let dir = tempfile::tempdir().unwrap();
    for which in [Solution::Starting, Solution::Reference] {
        let solution = dir.path().join(which.name());
        fsutil::materialize(&task_dir(), which, &solution).unwrap();
        let outcome = rebench_scoring::Task::score(task, &request(&dir.path().join("scratch"), &solution, 11, false)).unwrap().outcome;
        assert!(outcome.is_valid(), "{}: {}", which.name(), outcome.message());
        let diffs = relative_differences(&outcome);
        println!("{:<10} relative differences {diffs:?}: {}", which.name(), outcome.message());
        assert!(diffs.iter().all(|d| d.parse::<f64>().unwrap() <= MAX_RELATIVE_DIFF));
    }
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
