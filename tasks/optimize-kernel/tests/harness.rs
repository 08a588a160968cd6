//! optimize-kernel through the harness, as `cargo xtask score` runs it: the real scorer binary
//! as a child process, bad and good solutions in workdirs, every scoring in one score log.

use std::path::Path;

use rebench_harness::score::{ScoreOptions, Target, score};
use rebench_harness::{Workspace, reset, scorer, tasks};
use rebench_scoring::fsutil::Solution;
use rebench_scoring::log::read_log;
use serde_json::json;

#[test]
fn scoring_workdirs_through_the_harness_logs_every_outcome() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let home = tempfile::tempdir().unwrap();
    let ws = Workspace::at(&root, home.path());
    let task = tasks::find(&ws, "optimize-kernel").unwrap();
    let bin = scorer::build(&ws, &[&task], &[]).unwrap().remove(0);
    let log = home.path().join("log.jsonl");
    let options = ScoreOptions {
        seed: Some(7),
        params: [("n".to_owned(), json!(200_000)), ("trials".to_owned(), json!(3))].into(),
        log: Some(log.clone()),
        origin: None,
    };
    let mut expected = Vec::new();
    for (fixture, reason) in [(Some("panics"), Some("solution panicked")), (Some("wrong-value"), Some("wrong value at index 100000")), (None, None)] {
        let workdir = home.path().join(fixture.unwrap_or("reference"));
        reset::reset(&ws, &task, "cpu", Solution::Reference, &workdir).unwrap();
        if let Some(name) = fixture {
            let solution = workdir.join("solution");
            std::fs::copy(task.dir.join("starting/src/lib.rs"), solution.join("src/naive.rs")).unwrap();
            rebench_scoring::fsutil::copy_tree(&task.dir.join("tests/fixtures").join(name), &solution).unwrap();
        }
        let result = score(&ws, &task, "cpu", &Target::Workdir(workdir), &options, &bin).unwrap();
        match reason {
            Some(reason) => assert!(!result.entry.valid && result.entry.message.contains(reason), "{}", result.entry.message),
            None => assert!(result.entry.valid && result.entry.normalized.is_some(), "{}", result.entry.message),
        }
        expected.push(result.entry);
    }
    let contents = read_log(&log).unwrap();
    assert!(contents.torn_tail.is_none());
    assert_eq!(contents.entries, expected, "the log holds every scoring, in order");
}

#[test]
fn each_variant_gets_its_own_instructions_filled_in() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
    let home = tempfile::tempdir().unwrap();
    let task = tasks::find(&Workspace::at(&root, home.path()), "optimize-kernel").unwrap();
    let cpu = reset::render_instructions(&task, "cpu").unwrap();
    let gpu = reset::render_instructions(&task, "gpu").unwrap();
    assert!(cpu.contains("pub fn prefix_sum(x: &[i32]) -> Vec<i32>") && cpu.contains("100000000 values"), "{cpu}");
    assert!(gpu.contains("pub struct PrefixSum") && gpu.contains("100000000 values") && gpu.contains("20 timed calls"), "{gpu}");
    assert!(!gpu.contains("{{") && !cpu.contains("{{"));
}
