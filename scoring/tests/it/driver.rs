//! The driver mechanism end to end on tiny solutions: each way a solution can fail becomes a
//! reason, and a good one gives its report.

use std::path::Path;
use std::time::Duration;

use rebench_scoring::driver::{self, BuildPlan, DriverRun, DriverSource};
use rebench_scoring::subprocess::Limits;

const MAIN: &str = r#"
fn main() {
    let arg = std::env::args().nth(1).unwrap_or_default();
    let value = solution::answer(arg.parse().unwrap());
    println!("noise from the driver");
    println!("REBENCH-DRIVER {{\"value\":{value}}}");
}
"#;

fn solution(dir: &Path, name: &str, lib: &str, extra: &[(&str, &str)]) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("Cargo.toml"), format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n[workspace]\n")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
    for (rel, text) in extra {
        std::fs::write(dir.join(rel), text).unwrap();
    }
}

/// Builds and runs; `Err(reason)` for a build failure or a failed run.
fn build_and_run(lib: &str, name: &str, extra: &[(&str, &str)], arg: &str, limits: Limits) -> Result<serde_json::Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let sol = dir.path().join("solution");
    solution(&sol, name, lib, extra);
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("driver-tests");
    let plan = BuildPlan {
        scratch: dir.path().join("scratch"),
        solution: sol,
        target_dir: target,
        timeout: Duration::from_secs(300),
    };
    let binary = driver::build(&plan, DriverSource { files: &[("src/main.rs", MAIN)] }).unwrap()?;
    match driver::run(&binary, &[arg.to_owned()], &limits).unwrap() {
        DriverRun::Report { report, .. } => Ok(report),
        DriverRun::Failed { reason, .. } => Err(reason),
    }
}

fn limits() -> Limits {
    Limits { timeout: Some(Duration::from_secs(5)), address_space: Some(1 << 30) }
}

#[test]
fn good_solution_reports() {
    let report = build_and_run("pub fn answer(x: u64) -> u64 { x * 2 }", "solution", &[], "21", limits()).unwrap();
    assert_eq!(report["value"], 42);
}

#[test]
fn failures_become_reasons() {
    // (name, lib.rs, argument, what the reason must say)
    let cases = [
        ("panics", "pub fn answer(_: u64) -> u64 { panic!(\"boom at {}\", 7) }", "1", "the solution panicked: "),
        ("loops", "pub fn answer(x: u64) -> u64 { loop { std::hint::black_box(x); } }", "1", "did not finish within 2 s"),
        (
            "oom",
            "pub fn answer(x: u64) -> u64 { let v = vec![1u8; (x as usize) << 30]; v.iter().map(|&b| b as u64).sum() }",
            "4",
            "ran out of memory (limit 1.0 GiB)",
        ),
        ("no build", "pub fn answer(x: u64) -> u64 { x + \"1\" }", "1", "the solution does not build"),
        ("aborts", "pub fn answer(_: u64) -> u64 { std::process::abort() }", "1", "killed by signal 6 (SIGABRT)"),
        ("exits early", "pub fn answer(_: u64) -> u64 { std::process::exit(0) }", "1", "without a result"),
    ];
    for (name, lib, arg, expected) in cases {
        let limits = Limits { timeout: Some(Duration::from_secs(2)), address_space: Some(1 << 30) };
        let reason = build_and_run(lib, "solution", &[], arg, limits).expect_err(name);
        assert!(reason.contains(expected), "{name}: {reason:?} does not contain {expected:?}");
    }
}

#[test]
fn renamed_package_and_driver_tampering_are_refused() {
    let renamed = build_and_run("pub fn answer(x: u64) -> u64 { x }", "fast", &[], "1", limits()).unwrap_err();
    assert!(renamed.contains("must keep `name = \"solution\"`"), "{renamed}");

    let tamper = r#"fn main() {
        let _ = std::fs::write("../driver/src/main.rs", "fn main() { println!(\"REBENCH-DRIVER {{\\\"value\\\":0}}\"); }");
    }"#;
    let dir = tempfile::tempdir().unwrap();
    let sol = dir.path().join("solution");
    solution(&sol, "solution", "pub fn answer(x: u64) -> u64 { x }", &[("build.rs", tamper)]);
    let plan = BuildPlan {
        scratch: dir.path().join("scratch"),
        solution: sol,
        target_dir: Path::new(env!("CARGO_TARGET_TMPDIR")).join("driver-tests"),
        timeout: Duration::from_secs(300),
    };
    let reason = driver::build(&plan, DriverSource { files: &[("src/main.rs", MAIN)] }).unwrap().unwrap_err();
    assert!(reason.contains("modified the scorer's driver"), "{reason}");
}
