//! Children are contained: time limits kill the whole group, output is captured, limits apply.

use std::process::Command;
use std::time::{Duration, Instant};

use rebench_scoring::subprocess::{Limits, run};

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

#[test]
fn captures_output_and_stdin() {
    let f = run(&mut sh("cat; echo err >&2; exit 3"), b"hello", &Limits::default()).unwrap();
    assert_eq!(f.stdout_text(), "hello");
    assert_eq!(f.stderr_text().trim(), "err");
    assert_eq!(f.describe_exit(), "exited with status 3");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survivor");
    // A grandchild that would write a file after the limit, if it survived.
    let script = format!("(sleep 2; touch {}) & sleep 60", marker.display());
    let start = Instant::now();
    let f = run(&mut sh(&script), b"", &Limits { timeout: Some(Duration::from_millis(300)), address_space: None }).unwrap();
    assert!(f.timed_out());
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "a grandchild outlived the time limit");
}

#[test]
fn background_children_are_ended_when_the_child_exits() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("daemon");
    let script = format!("(sleep 1; touch {}) >/dev/null 2>&1 & exit 0", marker.display());
    let f = run(&mut sh(&script), b"", &Limits::default()).unwrap();
    assert!(f.success());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!marker.exists(), "a daemon outlived its parent's run");
}

#[test]
fn address_space_limit_applies() {
    let limits = Limits { timeout: Some(Duration::from_secs(20)), address_space: Some(64 << 20) };
    let f = run(&mut sh("ulimit -v"), b"", &limits).unwrap();
    assert_eq!(f.stdout_text().trim(), "65536", "ulimit -v reports KiB");
}
