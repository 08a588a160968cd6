//! Scoring tests: one misbehaving scaffold run on hand-made problems (each failure stays with
//! its problem, and the scaffold can read nothing of the scorer's), and a whole scoring of the
//! starting solution through `Task::score` with a tiny model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dsl::{Budget, Example, Program};
use rebench_models::candle_core::Device;
use rebench_models::{Gpt, ModelConfig};
use rebench_scoring::driver::{self, BuildPlan, DriverSource};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::{Environment, ScoreRequest};
use rebench_scoring::{Outcome, Task};
use scaffold_synthesis::generate::{self, HiddenProblem, Shape};
use scaffold_synthesis::infer::Engine;
use scaffold_synthesis::session::{self, Limits};
use scaffold_synthesis::tokens::Vocab;
use serde_json::json;

fn task_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn solutions_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-synthesis-solutions")
}

/// A problem whose hidden program is `sort`, whose first input starts with `marker`.
fn sort_problem(marker: i64) -> HiddenProblem {
    let inputs: Vec<Vec<i64>> = vec![vec![marker, 3, 1], vec![2, 9, -4], vec![5, 5, 0, 1], vec![7, -1], vec![3, 2, 1], vec![8, 6, 4, 2]];
    let program = Program::parse("sort").unwrap();
    let mut examples: Vec<Example> = inputs.into_iter().map(|input| Example { output: program.run(&input).unwrap(), input }).collect();
    let hidden = examples.split_off(3);
    HiddenProblem { program, depth: 1, visible: examples, hidden }
}

fn driver_source() -> String {
    std::fs::read_to_string(task_dir().join("driver/main.rs")).unwrap()
}

#[test]
fn every_failure_stays_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("misbehaves");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    fsutil::copy_tree(&task_dir().join("tests/fixtures/misbehaves"), &solution).unwrap();
    let source = driver_source();
    let wire = std::fs::read_to_string(task_dir().join("driver/wire.rs")).unwrap();
    let files = [("src/main.rs", source.as_str()), ("src/wire.rs", wire.as_str())];
    let plan = BuildPlan {
        scratch: dir.path().join("scratch/solution"),
        solution,
        target_dir: solutions_target(),
        timeout: Duration::from_secs(600),
    };
    let binary = driver::build(&plan, DriverSource { files: &files }).unwrap().unwrap();

    let vocab = Vocab::new();
    let gpt = Gpt::new(ModelConfig::gpt(vocab.size(), 96, 16, 1, 2), 1, &Device::Cpu).unwrap();
    let engine = Engine::from_gpt(&gpt).unwrap();
    let problems: Vec<HiddenProblem> = (1..=11).chain([1]).map(sort_problem).collect();
    let limits = Limits { budget: Budget { calls: 4, tokens: 40 }, scaffold_time: Duration::from_secs(3), memory: 2 << 30 };
    scaffold_synthesis::protect_this_process();
    let results = session::run(&binary, &plan.scratch, &problems, &engine, 9, &limits).unwrap();
    let failure = |i: usize| results[i].failure.clone().unwrap_or_default();
    // The scorer is not dumpable, so a scaffold of the same (non-root) user cannot read its
    // memory; root reads anything, and these tests may run as root.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let snooped = if root { "found []".to_owned() } else { "snoop mem:denied environ:denied maps:denied fd:denied found []".to_owned() };
    let expect = [
        (0, ""),
        (1, "budget exceeded: asked for 5 samples"),
        (2, "budget exceeded: asked for 1 samples of up to"),
        (3, "the scaffold panicked: the scaffold gives up"),
        (4, "fails: more than 20000 steps of work"),
        (5, "is malformed: step 1 (`sum`) gives an integer but is not the last step"),
        (6, "the scaffold took more than 3.0 s on this problem"),
        (7, "the scaffold's process was killed by signal 6"),
        (8, "(out of memory)"),
        (9, snooped.as_str()),
        (10, "the scaffold returned no program"),
        (11, ""),
    ];
    for (i, needle) in expect {
        if needle.is_empty() {
            assert!(results[i].solved, "problem {i}: {:?}", results[i]);
        } else {
            assert!(failure(i).contains(needle), "problem {i}: expected {needle:?}, got {:?}", failure(i));
            assert!(!results[i].solved);
        }
    }
    // The budget was charged for the calls that fit, and only for those.
    assert_eq!((results[0].calls, results[2].calls), (1, 1));
    assert_eq!(results[1].calls, 0);
}

fn request(dir: &Path, solution: &Path, params: BTreeMap<String, serde_json::Value>) -> ScoreRequest {
    ScoreRequest {
        variant: "cpu".into(),
        solution: solution.to_owned(),
        env: Environment {
            task_dir: task_dir(),
            store: dir.join("store"),
            scratch: dir.join("scratch"),
            target_dir: solutions_target(),
            assets: dir.join("assets"),
        },
        seed: 77,
        params,
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: None,
    }
}

#[test]
fn the_starting_scaffold_scores_and_leaves_no_problem_on_disk() {
    let task = scaffold_synthesis::ScaffoldSynthesis::new();
    let mut params: BTreeMap<String, serde_json::Value> =
        task.manifest().variant_params("cpu").unwrap();
    // A model trained for a few steps: the plumbing, not the model, is under test.
    for (key, value) in [("problems", json!(12)), ("model-width", json!(16)), ("model-depth", json!(1)), ("train-steps", json!(3)), ("train-batch", json!(4))] {
        params.insert(key.into(), value);
    }
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("starting");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    let request = request(dir.path(), &solution, params);
    let scored = task.score(&request).unwrap();
    let Outcome::Valid { raw, message, details } = &scored.outcome else {
        panic!("the starting scaffold is invalid: {}", scored.outcome.message());
    };
    assert!((0.0..=1.0).contains(raw), "{message}");
    assert!(message.contains("of 12 held-out problems"), "{message}");
    assert_eq!(details["results"].as_array().unwrap().len(), 12);
    // One greedy sample per problem, never more.
    assert!(details["results"].as_array().unwrap().iter().all(|r| r["calls"] == json!(1)), "{details}");

    // The held-out examples exist only in the scorer's memory: none is in any file the scoring
    // wrote (the store with the model, the scratch space with the driver and the solution).
    let problems = generate::held_out(request.seed, 12, &Shape::default());
    let needles: Vec<String> = problems.iter().flat_map(|p| p.hidden.iter().map(ToString::to_string)).collect();
    let mut stack = vec![dir.path().to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                for needle in &needles {
                    assert!(!text.contains(needle.as_str()), "{} holds the held-out example {needle}", path.display());
                }
            }
        }
    }
    assert!(files > 3, "the scoring wrote its model and scratch files under the test's directory");
}
