//! The `[solve]` step of artifact tasks: it makes the task's own solutions' artifacts before
//! they are scored, reuses them while nothing changed, turns a failing or hanging command into a
//! logged invalid entry, and never runs on an agent's workdir.

use rebench_harness::score::{ScoreOptions, Target, score};
use rebench_harness::{reset, tasks};
use rebench_scoring::fsutil::Solution;
use rebench_scoring::log::read_log;

use crate::fixtures::{Fixture, manifest};

/// The fixture manifest with a `[solve]` section running `script` (shell) within `timeout`.
fn with_solve(id: &str, script: &str, timeout: &str) -> String {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    manifest(id).replace("[calibration]", &format!("[solve]\ncommand = [\"sh\", \"-c\", \"{script}\"]\ntimeout = \"{timeout}\"\n\n[calibration]"))
}

/// A scorer that scores 10 when the solution's `out.txt` holds the parameter `n` and the public
/// data it was given, and is invalid when there is no `out.txt`.
fn scores_artifact() -> String {
    let answer = |raw: u32| {
        format!("echo '{{\"kind\":\"scored\",\"outcome\":{{\"status\":\"valid\",\"raw\":{raw},\"message\":\"fine\",\"details\":{{}}}},\"calibration\":null,\"phases\":{{}}}}'")
    };
    format!(
        "sol=$(printf '%s' \"$req\" | sed -n 's/.*\"solution\":\"\\([^\"]*\\)\".*/\\1/p'); \
         if [ ! -f \"$sol/out.txt\" ]; then echo '{{\"kind\":\"scored\",\"outcome\":{{\"status\":\"invalid\",\"reason\":\"no out.txt\",\"details\":{{}}}},\"calibration\":null,\"phases\":{{}}}}'; \
         elif grep -q '^1000 public-data cpu$' \"$sol/out.txt\"; then {}; else {}; fi",
        answer(10),
        answer(100)
    )
}

#[test]
fn solve_makes_the_artifacts_of_the_tasks_own_solutions_and_is_reused() {
    let f = Fixture::new();
    let script = "printf '%s %s %s\\n' \"$REBENCH_PARAM_N\" \"$(cat ../data/seed.txt)\" \"$REBENCH_VARIANT\" > out.txt; date +%s%N >> out.txt";
    f.task("alpha", &with_solve("alpha", script, "30s"));
    let public = f.ws.store("alpha", "cpu").join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("seed.txt"), "public-data").unwrap();
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.dir.path().join("scorer");
    std::fs::copy(f.scorer("artifact", &scores_artifact()), &bin).unwrap();

    let first = score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert!(first.entry.valid, "{}", first.entry.message);
    assert_eq!(first.entry.raw, Some(10.0), "the solve ran with the parameters, the variant and ../data");
    let solved = f.ws.materialized("alpha", "reference-cpu-solved").join("solution/out.txt");
    let stamp = std::fs::read_to_string(&solved).unwrap();

    let again = score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert!(again.entry.valid);
    assert_eq!(std::fs::read_to_string(&solved).unwrap(), stamp, "nothing changed, so the solved solution is reused");

    std::fs::write(task.dir.join("reference/src/lib.rs"), "// a changed reference\n").unwrap();
    score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert_ne!(std::fs::read_to_string(&solved).unwrap(), stamp, "a changed source solves again");
}

#[test]
fn a_failing_or_hanging_solve_is_a_logged_invalid_entry() {
    let f = Fixture::new();
    let log = f.dir.path().join("log.jsonl");
    let options = ScoreOptions { log: Some(log.clone()), ..ScoreOptions::default() };
    let cases = [
        ("fails", "echo 'training diverged' >&2; exit 3", "training diverged"),
        ("hangs", "sleep 30", "ran past its limit of 1s"),
    ];
    for (id, script, expected) in cases {
        f.task(id, &with_solve(id, script, "1s"));
        let task = tasks::find(&f.ws, id).unwrap();
        let bin = f.scorer(id, &scores_artifact());
        let start = std::time::Instant::now();
        let result = score(&f.ws, &task, "cpu", &Target::Named(Solution::Starting), &options, &bin).unwrap();
        assert!(start.elapsed().as_secs() < 20, "{id} took {:?}", start.elapsed());
        assert!(!result.entry.valid, "{id} should be invalid");
        assert!(result.entry.message.contains("the solve step failed"), "{id}: {}", result.entry.message);
        assert!(result.entry.message.contains(expected), "{id}: {:?} does not contain {expected:?}", result.entry.message);
    }
    assert_eq!(read_log(&log).unwrap().entries.len(), cases.len(), "every scoring is logged");
}

#[test]
fn an_agents_workdir_is_scored_as_left_without_solving() {
    let f = Fixture::new();
    f.task("alpha", &with_solve("alpha", "echo made > out.txt", "30s"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("artifact", &scores_artifact());
    let workdir = f.dir.path().join("workdir");
    reset::reset(&f.ws, &task, "cpu", Solution::Starting, &workdir).unwrap();
    let result = score(&f.ws, &task, "cpu", &Target::Workdir(workdir.clone()), &ScoreOptions::default(), &bin).unwrap();
    assert!(!result.entry.valid, "the agent left no artifact");
    assert!(result.entry.message.contains("no out.txt"), "{}", result.entry.message);
    assert!(!workdir.join("solution/out.txt").exists(), "no agent code ran at scoring");
}

/// The starting and reference solutions are both the package `solution` with a `solve` binary,
/// built by cargo in the sandbox, offline, with a build directory they share: each runs its own
/// binary, also when one is solved again after the other was built.
#[test]
fn two_solutions_of_one_package_name_each_run_their_own_solve() {
    let f = Fixture::new();
    f.task("alpha", &with_solve("alpha", "cargo run --quiet --offline --bin solve > out.txt", "120s"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    for (dir, which) in [("starting", "starting"), ("reference", "reference")] {
        let bin = task.dir.join(dir).join("src/bin/solve.rs");
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(bin, format!("fn main() {{ println!(\"made by the {which} solution\"); }}\n")).unwrap();
    }
    let bin = f.scorer("artifact", &scores_artifact());
    let made = |which: Solution| {
        let result = score(&f.ws, &task, "cpu", &Target::Named(which), &ScoreOptions::default(), &bin).unwrap();
        assert!(!result.entry.message.contains("solve step failed"), "{}", result.entry.message);
        let out = f.ws.materialized("alpha", &format!("{}-cpu-solved", which.name())).join("solution/out.txt");
        std::fs::read_to_string(out).unwrap()
    };
    assert_eq!(made(Solution::Starting), "made by the starting solution\n");
    assert_eq!(made(Solution::Reference), "made by the reference solution\n");
    // The starting solution changes after the reference was built: it is solved again, with
    // its own binary.
    std::fs::write(task.dir.join("starting/src/lib.rs"), "// changed\n").unwrap();
    assert_eq!(made(Solution::Starting), "made by the starting solution\n");
}
