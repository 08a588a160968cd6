//! Scoring through the protocol: whatever a scorer does (crash, hang, garbage, its own error)
//! becomes a logged invalid outcome with the reason, and the harness goes on.

use rebench_harness::score::{ScoreOptions, Target, score};
use rebench_harness::tasks;
use rebench_scoring::fsutil::Solution;
use rebench_scoring::log::read_log;

use crate::fixtures::{Fixture, manifest, scored};

#[test]
fn valid_scores_are_normalized_and_logged() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("ok", &scored(10.0));
    let result = score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert!(result.entry.valid, "{}", result.entry.message);
    assert!((result.entry.normalized.unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(result.phases["run"], 0.5);
    let log = read_log(&result.log).unwrap();
    assert_eq!(log.entries, vec![result.entry.clone()]);
    assert!(result.json()["normalized"].as_f64().is_some());
    assert!(f.ws.store("alpha", "cpu").join(".prepared").is_file(), "prepare ran first");
}

#[test]
fn a_store_prepared_from_other_sources_is_prepared_again() {
    let f = Fixture::new();
    let dir = f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("ok", &scored(10.0));
    let store = f.ws.store("alpha", "cpu");
    let score_once = || score(&f.ws, &task, "cpu", &Target::Named(Solution::Starting), &ScoreOptions::default(), &bin).unwrap();
    score_once();
    let first = std::fs::read_to_string(store.join(".prepared")).unwrap();
    // Left by the first prepare: it must not outlive a stale store.
    std::fs::write(store.join("public/old-data"), "made by the old code").unwrap();

    // Same sources, tests edited: the store stands.
    std::fs::write(dir.join("tests/hidden.rs"), "// another test\n").unwrap();
    score_once();
    assert_eq!(std::fs::read_to_string(store.join(".prepared")).unwrap(), first);
    assert!(store.join("public/old-data").is_file());

    // The scorer's code changed: prepared again, from an empty store.
    std::fs::write(dir.join("src/lib.rs"), "// SECRET scorer, edited\n").unwrap();
    score_once();
    let second = std::fs::read_to_string(store.join(".prepared")).unwrap();
    assert_ne!(second, first);
    assert!(!store.join("public/old-data").exists(), "the stale store's data were kept");

    // So does another variant's key, or shared code.
    std::fs::create_dir_all(f.ws.root.join("crates/shared")).unwrap();
    std::fs::write(f.ws.root.join("crates/shared/lib.rs"), "// shared\n").unwrap();
    let keyed = rebench_harness::score::prepare_key(&f.ws, &task, "cpu").unwrap();
    assert!(!second.contains(&keyed));
    assert_ne!(keyed, rebench_harness::score::prepare_key(&f.ws, &task, "gpu").unwrap());
}

#[test]
fn misbehaving_scorers_become_invalid_entries_and_the_log_survives() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let log = f.dir.path().join("log.jsonl");
    let options = ScoreOptions { log: Some(log.clone()), ..ScoreOptions::default() };
    let cases = [
        ("crash", "echo 'thread main panicked: boom' >&2; exit 101", "exited with status 101"),
        ("hang", "sleep 30", "timed out"),
        ("garbage", "echo 'hello, I am not JSON'", "response is not valid"),
        ("silent", "exit 0", "printed no response"),
        ("error", "echo '{\"kind\":\"error\",\"message\":\"disk full\"}'; exit 1", "the scorer reported an error: disk full"),
        ("ok", &scored(20.0), ""),
    ];
    for (name, script, expected) in cases {
        let bin = f.scorer(name, script);
        let start = std::time::Instant::now();
        let result = score(&f.ws, &task, "cpu", &Target::Named(Solution::Starting), &options, &bin).unwrap();
        assert!(start.elapsed().as_secs() < 10, "{name} took {:?}", start.elapsed());
        if expected.is_empty() {
            assert!(result.entry.valid, "{name}: {}", result.entry.message);
        } else {
            assert!(!result.entry.valid, "{name} should be invalid");
            assert!(result.entry.message.contains(expected), "{name}: {:?} does not contain {expected:?}", result.entry.message);
        }
    }
    let entries = read_log(&log).unwrap();
    assert!(entries.torn_tail.is_none());
    assert_eq!(entries.entries.len(), cases.len(), "every scoring is logged, valid or not");
    assert_eq!(entries.entries.iter().filter(|e| e.valid).count(), 1);
}

#[test]
fn workdir_without_solution_and_unknown_params_are_errors() {
    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("ok", &scored(10.0));
    let err = score(&f.ws, &task, "cpu", &Target::Workdir(f.dir.path().join("nowhere")), &ScoreOptions::default(), &bin)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no solution/ directory"), "{err}");
    let options = ScoreOptions { params: [("m".to_owned(), serde_json::json!(5))].into(), ..ScoreOptions::default() };
    let err = score(&f.ws, &task, "cpu", &Target::Named(Solution::Starting), &options, &bin).unwrap_err().to_string();
    assert!(err.contains("has no parameter `m` (it has: label, n)"), "{err}");
}

/// The socket takes no score from the agent: a request that claims one is scored by the
/// harness like any other, and garbage is refused without logging anything.
#[test]
fn score_requests_cannot_carry_a_score() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Mutex};

    use rebench_harness::progress::Progress;
    use rebench_harness::reset;
    use rebench_harness::score_server::{ScoreServer, TrialScoring};

    let f = Fixture::new();
    f.task("alpha", &manifest("alpha"));
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let workdir = f.dir.path().join("workdir");
    reset::reset(&f.ws, &task, "cpu", Solution::Starting, &workdir).unwrap();
    let scoring = Arc::new(TrialScoring {
        ws: f.ws.clone(),
        task,
        variant: "cpu".into(),
        scorer_bin: f.scorer("ok", &scored(100.0)),
        workdir,
        log: f.dir.path().join("log.jsonl"),
        snapshots: f.dir.path().join("snapshots"),
        started: std::time::SystemTime::now(),
        params: Default::default(),
        lock: Mutex::new(()),
        trial_id: "t".into(),
        progress: Arc::new(Progress::new(&["t".to_owned()])),
    });
    let socket = f.dir.path().join("sock/score.sock");
    let _server = ScoreServer::start(&socket, Arc::clone(&scoring)).unwrap();
    let ask = |request: &str| {
        let mut stream = UnixStream::connect(&socket).unwrap();
        writeln!(stream, "{request}").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    let forged = ask(r#"{"op":"score","raw":0.001,"normalized":99}"#);
    assert_eq!(forged["raw"], 100.0, "{forged}");
    let refused = ask("please give me a 1.0");
    assert!(refused["message"].as_str().unwrap().contains("unknown request"), "{refused}");
    let log = read_log(&f.dir.path().join("log.jsonl")).unwrap();
    assert_eq!(log.entries.len(), 1);
    assert_eq!(log.entries[0].raw, Some(100.0));
}

/// A variant whose environment variable is unset is skipped by validate (a passing row that says
/// why), refused by score, and leaves no log entry; once the variable is set it is scored.
#[test]
fn variants_missing_their_environment_are_skipped_not_failed() {
    const VAR: &str = "REBENCH_TEST_SKIP_ENDPOINT_B71C";
    let f = Fixture::new();
    let text = manifest("alpha").replace(
        "params = { n = 1000, label = \"small\" }",
        &format!("params = {{ n = 1000, label = \"small\" }}\nrequires-env = [\"{VAR}\"]"),
    );
    assert!(text.contains("requires-env"));
    f.task("alpha", &text);
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("ok", &crate::fixtures::scored_by_solution());
    let options = ScoreOptions::default();

    let row = rebench_harness::validate::validate_task(&f.ws, &task, "cpu", &options, &bin);
    assert!(row.passed(), "{:?}", row.problems);
    assert_eq!(row.skipped.as_deref(), Some(format!("{VAR} is not set").as_str()));
    assert!(row.starting.is_none() && row.reference.is_none());
    assert!(rebench_harness::validate::table(std::slice::from_ref(&row)).contains(&format!("skipped: {VAR} is not set")));
    let err = score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &options, &bin).unwrap_err();
    assert!(format!("{err:#}").starts_with("skipped:"), "{err:#}");
    assert!(!f.ws.home.join("scores").exists() || std::fs::read_dir(f.ws.home.join("scores")).unwrap().next().is_none(), "a skip logs nothing");

    // SAFETY: this test alone reads or writes this variable.
    unsafe { std::env::set_var(VAR, "http://127.0.0.1:9/v1") };
    let row = rebench_harness::validate::validate_task(&f.ws, &task, "cpu", &options, &bin);
    unsafe { std::env::remove_var(VAR) };
    assert!(row.skipped.is_none() && row.passed(), "{:?} {:?}", row.skipped, row.problems);
    assert!(row.reference.is_some());
}

/// A variant whose calibration is pending is scored and logged raw, with the reason and no
/// normalized score, and validate fails it saying why.
#[test]
fn a_pending_calibration_logs_raw_scores_and_fails_validate_with_its_reason() {
    let f = Fixture::new();
    let text = format!(
        "{}\n[variants.big]\ndescription = \"big\"\ntime-budget = \"2h\"\nresources = {{ cores = 2, memory-gib = 4 }}\ncalibration = {{ mode = \"pending\", why = \"not run at this size\" }}\n",
        manifest("alpha")
    );
    f.task("alpha", &text);
    let task = tasks::find(&f.ws, "alpha").unwrap();
    let bin = f.scorer("ok", &scored(10.0));
    let result = score(&f.ws, &task, "big", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert!(result.entry.valid && result.entry.raw == Some(10.0), "{:?}", result.entry);
    assert_eq!(result.entry.normalized, None);
    assert_eq!(result.entry.details["calibration_pending"], "not run at this size");
    assert_eq!(read_log(&result.log).unwrap().entries, vec![result.entry.clone()]);

    let row = rebench_harness::validate::validate_task(&f.ws, &task, "big", &ScoreOptions::default(), &bin);
    assert!(!row.passed());
    assert!(row.problems.iter().all(|p| p.contains("calibration is pending (not run at this size)")), "{:?}", row.problems);
    // The task's own calibration still holds for its other variant.
    let cpu = score(&f.ws, &task, "cpu", &Target::Named(Solution::Reference), &ScoreOptions::default(), &bin).unwrap();
    assert_eq!(cpu.entry.normalized, Some(1.0));
}
