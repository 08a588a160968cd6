//! Building and running a scorer's driver: a small program, kept out of the agent's reach, that
//! links the agent's solution as a library and measures it.
//!
//! The driver crate is written into a scratch directory beside a snapshot of the solution and
//! built with cargo into a shared target directory; it runs as a child process, so a solution
//! that panics, hangs or exhausts memory only ends its own process and becomes an invalid outcome.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::fsutil;
use crate::subprocess::{self, Finished, Limits};

/// The line prefix a driver puts before its one JSON report on stdout.
pub const REPORT_PREFIX: &str = "REBENCH-DRIVER ";

/// The source of a driver crate: its files besides `Cargo.toml`, e.g. `src/main.rs`.
#[derive(Clone, Copy, Debug)]
pub struct DriverSource<'a> {
    pub files: &'a [(&'a str, &'a str)],
}

/// Where and how to build.
#[derive(Clone, Debug)]
pub struct BuildPlan {
    /// Replaced on every build: holds `solution/` (the snapshot) and `driver/`.
    pub scratch: PathBuf,
    pub solution: PathBuf,
    pub target_dir: PathBuf,
    pub timeout: Duration,
}

/// Builds the driver linked against a snapshot of `plan.solution`.
///
/// `Ok(Err(reason))` when the solution is at fault (it does not build, it is not a package named
/// `solution`, its build tampered with the driver); `Err` for infrastructure faults.
pub fn build(plan: &BuildPlan, source: DriverSource<'_>) -> anyhow::Result<Result<PathBuf, String>> {
    build_with_features(plan, source, &[])
}

/// [`build`] with `solution_features` of the solution package enabled (a gpu variant's driver
/// needs the solution's `cuda` feature, say). A solution that lacks one of them does not build.
pub fn build_with_features(
    plan: &BuildPlan,
    source: DriverSource<'_>,
    solution_features: &[&str],
) -> anyhow::Result<Result<PathBuf, String>> {
    let snapshot = plan.scratch.join("solution");
    let driver = plan.scratch.join("driver");
    fsutil::remove_tree(&plan.scratch).with_context(|| format!("cannot clear {}", plan.scratch.display()))?;
    if let Err(err) = fsutil::copy_tree(&plan.solution, &snapshot) {
        return Ok(Err(format!("cannot copy the solution: {err}")));
    }
    let solution_manifest = match std::fs::read_to_string(snapshot.join("Cargo.toml")) {
        Ok(text) => text,
        Err(err) => return Ok(Err(format!("the solution has no readable Cargo.toml: {err}"))),
    };
    let profile = match release_profile(&solution_manifest) {
        Ok(profile) => profile,
        Err(reason) => return Ok(Err(reason)),
    };
    // One binary name per scratch directory: concurrent scorings share the target directory
    // (dependencies compile once) without overwriting each other's driver.
    let name = format!("rebench-driver-{}", &fsutil::hash_bytes(plan.scratch.to_string_lossy().as_bytes())[..12]);
    let manifest = driver_manifest(&name, solution_features, &profile);
    write_file(&driver.join("Cargo.toml"), &manifest)?;
    for (rel, text) in source.files {
        write_file(&driver.join(rel), text)?;
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(driver.join("Cargo.toml"))
        // The solution's own .cargo/config.toml (rustflags such as target-cpu) applies, as it
        // would when the agent builds in its workdir.
        .current_dir(&snapshot)
        .env("CARGO_TARGET_DIR", &plan.target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let finished = subprocess::run(&mut command, &[], &Limits { timeout: Some(plan.timeout), address_space: None })
        .context("cannot run cargo to build the solution")?;
    // A build script of the solution runs before the driver compiles: make sure it left the
    // driver alone.
    for (rel, text) in source.files {
        if std::fs::read_to_string(driver.join(rel)).ok().as_deref() != Some(*text) {
            return Ok(Err(format!("the solution's build modified the scorer's driver ({rel})")));
        }
    }
    if finished.timed_out() {
        return Ok(Err(format!("building the solution took longer than {:.0} s", plan.timeout.as_secs_f64())));
    }
    if !finished.success() {
        return Ok(Err(format!("the solution does not build:\n{}", finished.stderr_tail(30))));
    }
    Ok(Ok(plan.target_dir.join("release").join(name)))
}

/// The driver crate's `Cargo.toml`: one path dependency on the snapshot of the solution.
fn driver_manifest(name: &str, solution_features: &[&str], profile: &str) -> String {
    let features: Vec<String> = solution_features.iter().map(|f| format!("{f:?}")).collect();
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nsolution = {{ path = \"../solution\", features = [{}] }}\n\n[workspace]\n\n{profile}",
        features.join(", ")
    )
}

/// The `[profile.release]` table of the solution's manifest, re-emitted for the driver: cargo
/// reads profiles only from the root package, and tuning them is a legitimate optimization.
fn release_profile(solution_manifest: &str) -> Result<String, String> {
    let doc: toml::Table =
        toml::from_str(solution_manifest).map_err(|err| format!("the solution's Cargo.toml does not parse: {err}"))?;
    let name = doc.get("package").and_then(|p| p.get("name")).and_then(toml::Value::as_str);
    if name != Some("solution") {
        return Err(format!(
            "the solution's Cargo.toml must keep `name = \"solution\"` in [package] (found {})",
            name.map_or("none".to_owned(), |n| format!("{n:?}"))
        ));
    }
    let Some(release) = doc.get("profile").and_then(|p| p.get("release")) else {
        return Ok(String::new());
    };
    let mut profile = toml::Table::new();
    let mut inner = toml::Table::new();
    inner.insert("release".into(), release.clone());
    profile.insert("profile".into(), toml::Value::Table(inner));
    toml::to_string(&profile).map_err(|err| format!("the solution's [profile.release] is not usable: {err}"))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// What one run of a driver gave.
#[derive(Debug)]
pub enum DriverRun {
    /// The driver's JSON report (without an `invalid` key).
    Report { report: Value, finished: Finished },
    /// The solution failed; the reason says how.
    Failed { reason: String, finished: Finished },
}

/// Runs a built driver with `args`, turning every way it can fail into a reason.
pub fn run(binary: &Path, args: &[String], limits: &Limits) -> anyhow::Result<DriverRun> {
    let mut command = Command::new(binary);
    command.args(args).env("RUST_BACKTRACE", "0");
    let finished = subprocess::run(&mut command, &[], limits)
        .with_context(|| format!("cannot start the driver {}", binary.display()))?;
    let report = finished
        .stdout_text()
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(REPORT_PREFIX).map(str::to_owned));
    if finished.success()
        && let Some(line) = report
    {
        return Ok(match serde_json::from_str::<Value>(&line) {
            Ok(report) => match report.get("invalid").and_then(Value::as_str) {
                Some(reason) => DriverRun::Failed { reason: reason.to_owned(), finished },
                None => DriverRun::Report { report, finished },
            },
            Err(err) => DriverRun::Failed { reason: format!("the driver's report is not valid JSON ({err}): {line}"), finished },
        });
    }
    let reason = failure_reason(&finished, limits);
    Ok(DriverRun::Failed { reason, finished })
}

/// Explains a driver process that ended without a report.
fn failure_reason(finished: &Finished, limits: &Limits) -> String {
    let stderr = finished.stderr_text();
    if finished.timed_out() {
        return format!(
            "the solution did not finish within {:.0} s and was killed",
            limits.timeout.map_or(0.0, |t| t.as_secs_f64())
        );
    }
    if let Some(line) = stderr.lines().find(|l| l.contains("memory allocation of") || l.contains("capacity overflow")) {
        let limit = limits.address_space.map_or(String::new(), |b| format!(" (limit {:.1} GiB)", b as f64 / (1u64 << 30) as f64));
        return format!("the solution ran out of memory{limit}: {}", line.trim());
    }
    if let Some(at) = stderr.find("panicked at") {
        let panic: Vec<&str> = stderr[at..].lines().take_while(|l| !l.starts_with("note:")).take(6).collect();
        return format!("the solution panicked: {}", panic.join(" ").trim());
    }
    format!("the solution's process {} without a result; stderr:\n{}", finished.describe_exit(), finished.stderr_tail(15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_carried_and_package_name_enforced() {
        let ok = "[package]\nname = \"solution\"\n[profile.release]\nlto = \"thin\"\ncodegen-units = 1\n";
        let profile = release_profile(ok).unwrap();
        assert!(profile.contains("[profile.release]") && profile.contains("lto = \"thin\""), "{profile}");
        assert_eq!(release_profile("[package]\nname = \"solution\"\n").unwrap(), "");
        let renamed = release_profile("[package]\nname = \"fast\"\n").unwrap_err();
        assert!(renamed.contains("name = \\\"solution\\\"") || renamed.contains("\"fast\""), "{renamed}");
        assert!(release_profile("[package\n").unwrap_err().contains("does not parse"));
    }

    #[test]
    fn driver_manifest_enables_the_solution_features() {
        let plain: toml::Table = toml::from_str(&driver_manifest("d", &[], "")).unwrap();
        assert_eq!(plain["dependencies"]["solution"]["features"].as_array().unwrap().len(), 0);
        let gpu: toml::Table = toml::from_str(&driver_manifest("d", &["cuda"], "[profile.release]\nlto = true\n")).unwrap();
        assert_eq!(gpu["dependencies"]["solution"]["features"].as_array().unwrap()[0].as_str(), Some("cuda"));
        assert_eq!(gpu["profile"]["release"]["lto"].as_bool(), Some(true));
    }
}
