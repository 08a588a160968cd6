//! The Slurm executor against a real Slurm cluster: the single-node one that
//! `scripts/slurm/start-single-node.sh` starts (CI runs it before the tests), or any other whose
//! clients are on PATH (then set `REBENCH_SLURM_TEST_DIR` to a directory every node shares).
//!
//! Where no controller answers, each test prints why and passes, unless
//! `REBENCH_REQUIRE_SLURM=1`, which makes that a failure. `REBENCH_START_SLURM=1` has the tests
//! run the start script themselves first (it needs root and, the first time, apt). The tests run in parallel, the slow one
//! (a one-minute time limit, Slurm's smallest) beside the others: about 1.5 minutes in all.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rebench_harness::slurm::{self, JobState, SlurmOptions};

const POLL: Duration = Duration::from_millis(500);

/// Whether Slurm is usable, asked once per test binary. With `REBENCH_START_SLURM=1`, an
/// unavailable Slurm is first started with `scripts/slurm/start-single-node.sh` (root, apt).
fn availability() -> &'static Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        let first = slurm::available();
        if first.is_ok() || std::env::var("REBENCH_START_SLURM").as_deref() != Ok("1") {
            return first;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm/start-single-node.sh");
        eprintln!("REBENCH_START_SLURM=1: running {}", script.display());
        match Command::new(&script).status() {
            Ok(status) if status.success() => slurm::available(),
            Ok(status) => Err(format!("{} failed ({status}); before it: {}", script.display(), first.unwrap_err())),
            Err(e) => Err(format!("cannot run {}: {e}", script.display())),
        }
    })
}

/// Whether to go on; panics when Slurm is required but unavailable.
fn slurm_or_skip(test: &str) -> bool {
    match availability().clone() {
        Ok(()) => true,
        Err(reason) if std::env::var("REBENCH_REQUIRE_SLURM").as_deref() == Ok("1") => {
            panic!("{test}: REBENCH_REQUIRE_SLURM=1 but Slurm is unavailable: {reason}")
        }
        Err(reason) => {
            eprintln!(
                "skipping {test}: {reason}. Start a single-node cluster with \
                 scripts/slurm/start-single-node.sh (as root); REBENCH_REQUIRE_SLURM=1 turns this skip into a failure"
            );
            false
        }
    }
}

/// A scratch directory the nodes share (a plain temporary one on a single node).
fn shared_tempdir() -> tempfile::TempDir {
    match std::env::var_os("REBENCH_SLURM_TEST_DIR") {
        Some(dir) => {
            fs::create_dir_all(&dir).unwrap();
            tempfile::Builder::new().prefix("rebench-slurm-").tempdir_in(dir).unwrap()
        }
        None => tempfile::Builder::new().prefix("rebench-slurm-").tempdir().unwrap(),
    }
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn an_array_writes_into_one_results_directory_and_reports_each_element() {
    if !slurm_or_skip("slurm::an_array_writes_into_one_results_directory_and_reports_each_element") {
        return;
    }
    let tmp = shared_tempdir();
    let results = tmp.path().join("results dir");
    let cwd = tmp.path().join("work");
    fs::create_dir_all(&results).unwrap();
    fs::create_dir_all(&cwd).unwrap();
    let results_text = results.to_str().unwrap();
    let tricky = r#"spaces, a 'single' and a "double" quote, $HOME `date` \ and a * glob"#;
    let commands = vec![
        // Argument survival: $1 must arrive byte for byte.
        argv(&["sh", "-c", r#"printf '%s' "$1" > "$2/zero.txt"; pwd > "$2/zero.cwd""#, "sh", tricky, results_text]),
        argv(&["sh", "-c", r#"echo one > "$1/one.txt"; echo 'to stderr' >&2"#, "sh", results_text]),
        argv(&["sh", "-c", r#"echo two > "$1/two.txt"; exit 7"#, "sh", results_text]),
    ];
    let options = SlurmOptions {
        time_limit: Duration::from_secs(5 * 60),
        mem_gib: Some(0.25),
        max_parallel: Some(2),
        ..SlurmOptions::default()
    };
    let started = Instant::now();
    let job = slurm::submit(&tmp.path().join("slurm"), "rebench-it", &commands, &cwd, &options).unwrap();
    let states = slurm::wait(&job, POLL, Some(Duration::from_secs(90))).unwrap();
    eprintln!("3-element array {} ended in {:.1} s", job.job_id, started.elapsed().as_secs_f64());
    for s in &states {
        eprintln!("  {}", s.describe());
    }

    assert_eq!(states.len(), 3);
    assert!(job.script.is_file(), "the script is kept: {}", job.script.display());
    assert!(read(&job.script).contains("SLURM_ARRAY_TASK_ID"));
    for (i, s) in states.iter().enumerate() {
        assert_eq!(s.index, i);
        assert_eq!(s.job_id, format!("{}_{i}", job.job_id));
        assert!(s.node.is_some(), "{s:?}");
    }
    assert!(states[0].success() && states[1].success(), "{states:#?}");
    assert_eq!(states[2].state, JobState::Failed, "{:?}", states[2]);
    assert_eq!(states[2].exit_code, Some(7));
    assert!(!states[2].success());

    assert_eq!(read(&results.join("zero.txt")), tricky);
    assert_eq!(read(&results.join("zero.cwd")).trim(), fs::canonicalize(&cwd).unwrap().to_str().unwrap());
    assert_eq!(read(&results.join("one.txt")), "one\n");
    assert_eq!(read(&results.join("two.txt")), "two\n");
    assert_eq!(read(&states[1].stderr).trim(), "to stderr");
    assert_eq!(read(&job.exit_file(2)).trim(), "7");
}

#[test]
fn an_element_over_its_time_limit_is_reported_as_timeout() {
    if !slurm_or_skip("slurm::an_element_over_its_time_limit_is_reported_as_timeout") {
        return;
    }
    let tmp = shared_tempdir();
    // Slurm counts time limits in minutes and checks them every 30 s: this takes 60 to 90 s.
    let options = SlurmOptions { time_limit: Duration::from_secs(1), mem_gib: Some(0.25), ..SlurmOptions::default() };
    let started = Instant::now();
    let job = slurm::submit(tmp.path(), "rebench-timeout", &[argv(&["sleep", "600"])], tmp.path(), &options).unwrap();
    assert!(read(&job.script).contains("sleep"));
    // Generous: under load the element may queue behind other tests' jobs before its minute starts.
    let states = slurm::wait(&job, POLL, Some(Duration::from_secs(300))).unwrap_or_else(|e| {
        let _ = slurm::cancel(&job);
        panic!("{e:#}")
    });
    eprintln!("{} after {:.1} s", states[0].describe(), started.elapsed().as_secs_f64());
    assert_eq!(states[0].state, JobState::Timeout, "{:?}", states[0]);
    assert!(!states[0].success());
    assert!(!job.exit_file(0).exists(), "a killed element records no exit status");
    assert!(started.elapsed() >= Duration::from_secs(55), "Slurm rounds the 1 s limit up to a minute");
}

#[test]
fn a_deadline_leaves_the_job_running_and_cancel_ends_it() {
    if !slurm_or_skip("slurm::a_deadline_leaves_the_job_running_and_cancel_ends_it") {
        return;
    }
    let tmp = shared_tempdir();
    let options = SlurmOptions { time_limit: Duration::from_secs(120), mem_gib: Some(0.25), ..SlurmOptions::default() };
    let job = slurm::submit(tmp.path(), "rebench-cancel", &[argv(&["sleep", "600"])], tmp.path(), &options).unwrap();
    let error = slurm::wait(&job, POLL, Some(Duration::from_secs(2))).unwrap_err().to_string();
    assert!(error.contains("did not end within") && error.contains(&job.job_id), "{error}");
    slurm::cancel(&job).unwrap();
    let states = slurm::wait(&job, POLL, Some(Duration::from_secs(60))).unwrap();
    assert_eq!(states[0].state, JobState::Cancelled, "{:?}", states[0]);
}

#[test]
fn sbatch_errors_are_reported_with_its_stderr() {
    if !slurm_or_skip("slurm::sbatch_errors_are_reported_with_its_stderr") {
        return;
    }
    let tmp = shared_tempdir();
    let options = SlurmOptions { partition: Some("no-such-partition".into()), ..SlurmOptions::default() };
    let error = slurm::submit(tmp.path(), "rebench-bad", &[argv(&["true"])], tmp.path(), &options).unwrap_err();
    let error = format!("{error:#}");
    assert!(error.contains("sbatch") && error.contains("no-such-partition"), "{error}");
    // Nothing was submitted, so no script is left behind.
    let left: Vec<PathBuf> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_submissions_are_refused_before_sbatch() {
    // No cluster needed.
    let tmp = tempfile::tempdir().unwrap();
    let options = SlurmOptions::default();
    let refuse = |name: &str, commands: &[Vec<String>]| {
        format!("{:#}", slurm::submit(tmp.path(), name, commands, tmp.path(), &options).unwrap_err())
    };
    assert!(refuse("x", &[]).contains("no commands"));
    assert!(refuse("x", &[vec![]]).contains("command 0 is empty"));
    assert!(refuse("x", &[argv(&["true", "nul\0byte"])]).contains("NUL"));
    let missing = tmp.path().join("missing");
    let error = slurm::submit(tmp.path(), "x", &[argv(&["true"])], &missing, &options).unwrap_err();
    assert!(format!("{error:#}").contains("working directory"), "{error:#}");
}

/// `rebench run --executor slurm`: every trial runs as an element of one array job through the
/// `rebench` binary and writes into the shared run directory; `report` reads it as any other.
#[test]
fn a_run_on_slurm_finishes_every_trial_in_the_shared_run_directory() {
    if !slurm_or_skip("a_run_on_slurm_finishes_every_trial_in_the_shared_run_directory") {
        return;
    }
    use crate::fixtures::{Fixture, manifest, scored_by_solution};
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let scorer = f.scorer("by-solution", &scored_by_solution());
    let run_dir = shared_tempdir();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_rebench"))
        .current_dir(&f.ws.root)
        .env("REBENCH_HOME", &f.ws.home)
        .env("REBENCH_SCORER_OVERRIDE", format!("alpha={}", scorer.display()))
        .args(["run", "--agent", "oracle", "--task", "alpha", "--seeds", "3", "--time-limit", "10s", "--executor", "slurm", "--out"])
        .arg(run_dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    for seed in 0..3 {
        let result = rebench_harness::run::result_of(run_dir.path(), &format!("alpha-cpu-s{seed}")).unwrap().expect("a result");
        assert_eq!(result.normalized, 1.0);
    }
    let report = rebench_harness::report::load(&[run_dir.path().to_owned()]).unwrap();
    assert!(rebench_harness::report::table(&report).contains("oracle"));
}
