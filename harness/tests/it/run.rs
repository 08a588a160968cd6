//! Runs: trials of built-in and command agents, their records, and resuming after a kill -9.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rebench_harness::agent::Agent;
use rebench_harness::run::{self, RunConfig, TrialEnv};
use rebench_harness::sandbox::Isolation;
use rebench_scoring::log::read_log;

use crate::fixtures::{Fixture, manifest, read, scored_by_solution};

fn config(agent: Agent, tasks: &[&str], seeds: u32, time_limit_secs: f64) -> RunConfig {
    let tasks = tasks.iter().map(|t| (*t).to_owned()).collect();
    RunConfig::new(agent, "cpu", seeds, Duration::from_secs_f64(time_limit_secs), tasks, "local")
}

fn env(f: &Fixture, config: &RunConfig, isolation: Isolation) -> TrialEnv {
    let scorer = f.scorer("by-solution", &scored_by_solution());
    let scorers = config.tasks.iter().map(|t| (t.clone(), scorer.clone())).collect();
    let ids: Vec<String> = config.trial_ids().into_iter().map(|s| s.trial_id).collect();
    let mut env = TrialEnv::new(scorers, isolation, &ids).unwrap();
    env.client = PathBuf::from(env!("CARGO_BIN_EXE_rebench"));
    env
}

#[test]
fn nop_scores_zero_and_oracle_one_with_full_records() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    for (agent, expected) in [("nop", 0.0), ("oracle", 1.0)] {
        let cfg = config(Agent::resolve(agent).unwrap(), &["alpha"], 2, 60.0);
        let dir = f.dir.path().join(agent);
        run::create(&dir, &cfg).unwrap();
        let results = run::run_local(&f.ws, &dir, 2, &env(&f, &cfg, Isolation::Unsandboxed)).unwrap();
        assert_eq!(results.len(), 2);
        for (id, result) in results {
            let r = result.unwrap();
            assert_eq!(r.normalized, expected, "{agent} {id}");
            assert_eq!(r.end_reason, "agent-exited");
            assert_eq!(r.scorings, 1);
            let trial = dir.join("trials").join(&id);
            for file in ["trial.json", "result.json", "score_log.jsonl", "workdir/instructions.md", "snapshots/snapshot-0000/src/lib.rs"] {
                assert!(trial.join(file).is_file(), "{agent} {id}: {file} missing");
            }
            assert!(!trial.join("state.json").exists(), "a finished trial has no state.json");
            // The parts account for the wall time without double counting. (How small the
            // overhead is, is a benchmark's business: with 50 tests on 2 cores it once took 2 s.)
            assert!(r.agent_secs >= 0.0 && r.overhead_secs >= 0.0, "{agent} {id}: {r:?}");
            assert!(r.agent_secs + r.overhead_secs <= r.wall_secs + 1e-9, "{agent} {id}: {r:?}");
        }
    }
    // The same command on a finished run changes nothing; another configuration is refused.
    let cfg = config(Agent::resolve("nop").unwrap(), &["alpha"], 2, 60.0);
    run::create(&f.dir.path().join("nop"), &cfg).unwrap();
    let other = config(Agent::resolve("nop").unwrap(), &["alpha"], 3, 60.0);
    let err = run::create(&f.dir.path().join("nop"), &other).unwrap_err().to_string();
    assert!(err.contains("holds a different run"), "{err}");
}

fn agent_file(dir: &Path, script: &str) -> Agent {
    let path = dir.join("agent.toml");
    let toml = format!("name = \"scripted\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", {}]\n", toml_string(script));
    std::fs::write(&path, toml).unwrap();
    Agent::load(&path).unwrap()
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn a_command_agent_scores_through_the_socket_and_is_stopped_at_its_budget() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    // Scores the starting solution, switches to the reference's text, scores again, then
    // overstays its 3 s budget.
    let script = "score > scored-1.txt; echo '// reference' > solution/src/lib.rs; score > scored-2.txt; sleep 60";
    let cfg = config(agent_file(f.dir.path(), script), &["alpha"], 1, 3.0);
    let dir = f.dir.path().join("run");
    run::create(&dir, &cfg).unwrap();
    let start = Instant::now();
    let results = run::run_local(&f.ws, &dir, 1, &env(&f, &cfg, Isolation::Unsandboxed)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    let r = results[0].1.as_ref().unwrap();
    assert_eq!(r.end_reason, "budget");
    assert_eq!(r.scorings, 3, "two by the agent, one final");
    assert_eq!(r.normalized, 1.0);
    let trial = dir.join("trials").join(&r.trial_id);
    let told = std::fs::read_to_string(trial.join("workdir/scored-1.txt")).unwrap();
    assert!(told.starts_with("valid: fine") && told.contains("normalized score 0.000"), "{told}");
    let log = read_log(&trial.join("score_log.jsonl")).unwrap();
    let elapsed: Vec<f64> = log.entries.iter().map(|e| e.elapsed_secs).collect();
    assert!(elapsed.windows(2).all(|w| w[0] <= w[1]) && elapsed[2] >= 3.0, "elapsed since the trial's start: {elapsed:?}");
    assert_eq!(log.entries[1].solution, "snapshot-0001");
}

/// `rebench run` killed with SIGKILL in the middle, then run again: every trial finishes and
/// every score logged before the kill is still there.
#[test]
fn a_run_killed_with_sigkill_resumes_and_loses_no_score() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let scorer = f.scorer("by-solution", &scored_by_solution());
    let agent = f.dir.path().join("agent.toml");
    std::fs::write(&agent, "name = \"slow\"\nkind = \"command\"\ncommand = [\"sh\", \"-c\", \"score; sleep 2; score; sleep 30\"]\n").unwrap();
    let run_dir = f.dir.path().join("run");
    let rebench = |_: ()| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rebench"));
        c.current_dir(&f.ws.root)
            .env("REBENCH_HOME", &f.ws.home)
            .env("REBENCH_SCORER_OVERRIDE", format!("alpha={}", scorer.display()))
            .args(["run", "--agent"])
            .arg(&agent)
            .args(["--task", "alpha", "--seeds", "3", "--time-limit", "4s", "--jobs", "1", "--unsandboxed", "--out"])
            .arg(&run_dir);
        c
    };
    let mut child = rebench(()).stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait until the second trial has logged a score, then kill the harness outright.
    let second_log = run_dir.join("trials/alpha-cpu-s1/score_log.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_log(&second_log).map(|l| l.entries.len()).unwrap_or(0) < 1 {
        assert!(Instant::now() < deadline, "the run never reached its second trial");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before: Vec<_> = (0..3).map(|s| read_log(&run_dir.join(format!("trials/alpha-cpu-s{s}/score_log.jsonl"))).unwrap().entries).collect();
    assert!(run_dir.join("trials/alpha-cpu-s0/result.json").is_file());
    assert!(!run_dir.join("trials/alpha-cpu-s1/result.json").exists());

    let status = rebench(()).stderr(std::process::Stdio::null()).status().unwrap();
    assert!(status.success());
    for (s, earlier) in before.iter().enumerate() {
        let trial = run_dir.join(format!("trials/alpha-cpu-s{s}"));
        let after = read_log(&trial.join("score_log.jsonl")).unwrap().entries;
        assert_eq!(&after[..earlier.len()], &earlier[..], "trial {s}: a logged score changed or vanished");
        let result = run::result_of(&run_dir, &format!("alpha-cpu-s{s}")).unwrap().expect("finished");
        assert_eq!(result.scorings, after.len());
    }
}

/// An agent that attacks the harness from inside its sandbox: every attempt fails or is
/// contained, the trial ends with its reason, and the logs and the other trial are untouched.
#[test]
fn a_hostile_agent_is_contained() {
    let isolation = match rebench_harness::sandbox::detect() {
        Ok(isolation) => isolation,
        Err(why) if std::env::var_os("REBENCH_REQUIRE_SANDBOX").is_none() => {
            eprintln!("skipped: no sandbox ({why}); set REBENCH_REQUIRE_SANDBOX=1 to make this a failure");
            return;
        }
        Err(why) => panic!("REBENCH_REQUIRE_SANDBOX is set but there is no sandbox: {why}"),
    };
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let protected = f.ws.store("alpha", "cpu").join("protected");
    std::fs::create_dir_all(&protected).unwrap();
    std::fs::write(protected.join("answers.txt"), "SECRET").unwrap();
    let run_dir = f.dir.path().join("run");
    let victim = run_dir.join("trials/alpha-cpu-s1");
    let own = run_dir.join("trials/alpha-cpu-s0");
    let script = format!(
        "cat {answers} > stolen.txt 2>&1; \
         : > {own}/score_log.jsonl 2>/dev/null && echo truncated-log >> report.txt; \
         echo '{{}}' > {own}/result.json 2>/dev/null && echo forged-result >> report.txt; \
         echo x >> {victim}/workdir/solution/src/lib.rs 2>/dev/null && echo touched-victim >> report.txt; \
         touch {outside}/escaped 2>/dev/null && echo escaped >> report.txt; \
         setsid sh -c 'sleep 6; echo alive > daemon.txt' & \
         score > scored.txt; sleep 60",
        answers = protected.join("answers.txt").display(),
        own = own.display(),
        victim = victim.display(),
        outside = f.dir.path().display(),
    );
    // Only the first trial is hostile; the second builds its solution, offline, as an agent
    // would (the solution's dependencies were fetched before the sandbox started).
    let honest = "cargo build --offline --quiet --manifest-path solution/Cargo.toml && echo built > built.txt";
    let cfg = config(agent_file(f.dir.path(), &format!("if pwd | grep -q s0/workdir; then {script}; else {honest}; fi")), &["alpha"], 2, 4.0);
    run::create(&run_dir, &cfg).unwrap();
    let results = run::run_local(&f.ws, &run_dir, 2, &env(&f, &cfg, isolation)).unwrap();
    std::thread::sleep(Duration::from_secs(4));

    let workdir = own.join("workdir");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(!read(&workdir.join("stolen.txt")).contains("SECRET"), "read the protected store");
    // Writes to host paths land, at most, in the sandbox's private /tmp (where bubblewrap makes
    // the parents of the workdir's mount point): what matters is the host's files.
    assert!(!f.dir.path().join("escaped").exists(), "wrote outside the workdir");
    let result: serde_json::Value = serde_json::from_str(&read(&own.join("result.json"))).unwrap();
    assert_eq!(result["trial_id"], "alpha-cpu-s0", "the result was forged");
    assert!(!workdir.join("daemon.txt").exists(), "a daemon outlived the trial");
    assert!(read(&workdir.join("scored.txt")).starts_with("valid"), "the agent could still score");
    for (id, result) in &results {
        let r = result.as_ref().unwrap();
        let log = read_log(&run_dir.join("trials").join(id).join("score_log.jsonl")).unwrap();
        assert_eq!(log.entries.len(), r.scorings, "{id}");
        assert!(log.entries.iter().all(|e| e.valid), "{id}");
    }
    assert_eq!(results[0].1.as_ref().unwrap().end_reason, "budget");
    assert_eq!(results[0].1.as_ref().unwrap().scorings, 2);
    assert_eq!(read(&victim.join("workdir/solution/src/lib.rs")), "// slow\n");
    assert_eq!(read(&victim.join("workdir/built.txt")), "built\n", "the honest agent could not build offline: {}", read(&victim.join("agent.log")));
}

#[test]
fn trials_get_the_public_data_of_a_store_that_nothing_prepared_before_and_prepare_it_once() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let cfg = config(Agent::resolve("nop").unwrap(), &["alpha"], 2, 60.0);
    let dir = f.dir.path().join("run");
    run::create(&dir, &cfg).unwrap();
    let count = f.dir.path().join("prepares.txt");
    let on_prepare = format!("echo once >> {}; echo hint > \"$store/public/hint.txt\"", count.display());
    let scorer = f.scorer_preparing("preparing", &on_prepare, &scored_by_solution());
    let ids: Vec<String> = cfg.trial_ids().into_iter().map(|s| s.trial_id).collect();
    let env = TrialEnv::new(cfg.tasks.iter().map(|t| (t.clone(), scorer.clone())).collect(), Isolation::Unsandboxed, &ids).unwrap();
    assert!(!f.ws.store("alpha", "cpu").join("public/hint.txt").exists());
    // Two trials at once, sharing the store.
    for (id, result) in run::run_local(&f.ws, &dir, 2, &env).unwrap() {
        result.unwrap();
        assert_eq!(read(&dir.join("trials").join(&id).join("workdir/data/hint.txt")), "hint\n", "{id}");
    }
    assert_eq!(read(&count), "once\n", "the store was prepared once, not once per trial");
}
