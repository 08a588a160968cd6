//! The gpu variant (`--features cuda`).
//!
//! Everywhere: the GPU driver builds against every GPU solution (starting, reference and the
//! `gpu-*` fixtures), so all their Rust compiles; every CUDA kernel compiles with NVRTC where
//! the library is found (`scripts/install-nvrtc.sh` fetches it; `REBENCH_REQUIRE_NVRTC=1` makes
//! its absence a failure); without a device, scoring and the driver say so.
//! With a CUDA device (`REBENCH_REQUIRE_GPU=1` makes its absence a failure): the starting
//! solution scores about 0, the reference about 1, and each bad fixture is invalid with its
//! reason. The rejections themselves are also tested without a GPU, on host-memory models of
//! the same fixtures (src/device_trials.rs).
#![cfg(feature = "cuda")]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use optimize_kernel::OptimizeKernel;
use optimize_kernel::cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};
use rebench_scoring::Task;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::task::ScoreRequest;
use support::{invalid_reason, solutions_target, task_dir};

const FIXTURES: [&str; 4] = ["gpu-wrong-value", "gpu-mutates-input", "gpu-caches-answer", "gpu-panics"];

/// Says why a test is skipped, on the terminal (past libtest's capture of `eprintln!`).
fn skip(test: &str, why: &str, variable: &str) {
    let _ = writeln!(std::io::stderr(), "skipped gpu::{test}: {why}; {variable}=1 turns this skip into a failure");
}

fn required(variable: &str) -> bool {
    std::env::var(variable).is_ok_and(|v| v == "1")
}

/// The device, or `None` (the test is skipped, saying why) where there is none.
fn device_or_skip(test: &str) -> Option<String> {
    match optimize_kernel::gpu_device() {
        Ok(device) => Some(device),
        Err(why) if required("REBENCH_REQUIRE_GPU") => panic!("REBENCH_REQUIRE_GPU=1 but: {why:#}"),
        Err(why) => {
            skip(test, &format!("{why:#}"), "REBENCH_REQUIRE_GPU");
            None
        }
    }
}

fn request(scratch: &Path, solution: &Path, n: u64, calibrate: bool) -> ScoreRequest {
    support::request("gpu", scratch, solution, (n, 2, 5), calibrate, 120.0)
}

fn fixture(dir: &Path, name: &str) -> PathBuf {
    support::fixture(dir, name, "src/gpu.rs", "src/naive_gpu.rs")
}

#[test]
fn the_gpu_driver_builds_against_every_gpu_solution() {
    let dir = tempfile::tempdir().unwrap();
    let task = OptimizeKernel::new();
    let mut solutions = Vec::new();
    for which in [Solution::Starting, Solution::Reference] {
        let path = dir.path().join(which.name());
        fsutil::materialize(&task_dir(), which, &path).unwrap();
        solutions.push((which.name().to_owned(), path));
    }
    solutions.extend(FIXTURES.iter().map(|name| (name.to_string(), fixture(dir.path(), name))));
    for (name, solution) in &solutions {
        let binary = task
            .build_driver("gpu", solution, &dir.path().join("scratch").join(name), &solutions_target())
            .unwrap()
            .unwrap_or_else(|reason| panic!("{name}: {reason}"));
        if name == "starting" && optimize_kernel::gpu_device().is_err() {
            // Without a device the driver reports an infrastructure error, not an invalid solution.
            let out = std::process::Command::new(&binary).args(["run", "--seed", "1", "--n", "10", "--warmup", "0", "--trials", "1"]).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let report = stdout.lines().last().unwrap_or_default();
            assert!(out.status.success() && report.starts_with("REBENCH-DRIVER {\"error\":"), "{stdout}");
        }
    }
}

#[test]
fn every_kernel_compiles_with_nvrtc() {
    // SAFETY: only tries to open the library.
    if !unsafe { optimize_kernel::cudarc::nvrtc::sys::is_culib_present() } {
        if required("REBENCH_REQUIRE_NVRTC") {
            panic!("REBENCH_REQUIRE_NVRTC=1 but libnvrtc.so.13 is not on the library path (scripts/install-nvrtc.sh)");
        }
        skip("every_kernel_compiles_with_nvrtc", "no NVRTC library (libnvrtc.so.13); scripts/install-nvrtc.sh fetches one", "REBENCH_REQUIRE_NVRTC");
        return;
    }
    let dir = task_dir();
    let sources = [
        dir.join("driver/gpu_kernels.cu"),
        dir.join("starting/kernels/prefix_sum.cu"),
        dir.join("reference/kernels/prefix_sum.cu"),
    ];
    // Ampere (A100), Hopper (H100, H200) and Blackwell (B200).
    for arch in ["compute_80", "compute_90", "compute_100"] {
        for source in &sources {
            let text = std::fs::read_to_string(source).unwrap();
            let options = CompileOptions { options: vec![format!("--gpu-architecture={arch}")], ..Default::default() };
            let ptx = compile_ptx_with_opts(&text, options).unwrap_or_else(|e| panic!("{} for {arch}: {e}", source.display()));
            assert!(ptx.to_src().contains(".entry"), "{}: no kernel in the PTX", source.display());
        }
    }
}

#[test]
fn without_a_device_scoring_is_an_infrastructure_error_that_says_why() {
    let Err(why) = optimize_kernel::gpu_device() else {
        let _ = writeln!(std::io::stderr(), "skipped gpu::without_a_device_scoring_is_an_infrastructure_error_that_says_why: this machine has a device");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let solution = dir.path().join("starting");
    fsutil::materialize(&task_dir(), Solution::Starting, &solution).unwrap();
    let task = OptimizeKernel::new();
    let err = task.score(&request(dir.path(), &solution, 1000, false)).unwrap_err();
    assert!(format!("{err:#}").contains("the gpu variant needs a CUDA device"), "{err:#}");
    assert!(format!("{why:#}").contains("no CUDA driver library") || format!("{why:#}").contains("NVRTC"), "{why:#}");
}

#[test]
fn on_a_device_starting_scores_about_zero_and_reference_about_one() {
    let Some(device) = device_or_skip("on_a_device_starting_scores_about_zero_and_reference_about_one") else { return };
    let dir = tempfile::tempdir().unwrap();
    let task = OptimizeKernel::new();
    let (tolerance, transform) = (task.manifest().scoring.tolerance, task.manifest().metric.transform);
    for (which, expected) in [(Solution::Starting, 0.0), (Solution::Reference, 1.0)] {
        let solution = dir.path().join(which.name());
        fsutil::materialize(&task_dir(), which, &solution).unwrap();
        let scored = task.score(&request(dir.path(), &solution, 20_000_000, true)).unwrap();
        let raw = scored.outcome.raw().unwrap_or_else(|| panic!("{}: {}", which.name(), scored.outcome.message()));
        let normalized = scored.calibration.expect("live calibration").normalize(transform, raw).unwrap();
        assert!((normalized - expected).abs() <= tolerance, "{} on {device}: normalized {normalized}", which.name());
    }
}

#[test]
fn on_a_device_bad_solutions_are_invalid_with_a_reason() {
    let Some(_) = device_or_skip("on_a_device_bad_solutions_are_invalid_with_a_reason") else { return };
    let dir = tempfile::tempdir().unwrap();
    let task = OptimizeKernel::new();
    let expected = [
        ("gpu-wrong-value", "wrong value at index 50000"),
        ("gpu-mutates-input", "mutated its input"),
        ("gpu-caches-answer", "returned the output of an earlier call"),
        ("gpu-panics", "solution panicked: index out of bounds in my kernel launch"),
    ];
    for (name, reason) in expected {
        let solution = fixture(dir.path(), name);
        let scored = task.score(&request(dir.path(), &solution, 100_000, true)).unwrap();
        let got = invalid_reason(name, &scored.outcome);
        assert!(got.contains(reason), "{name}: {got:?} does not contain {reason:?}");
        assert!(scored.calibration.is_none(), "{name}: an invalid solution needs no calibration");
    }
}
