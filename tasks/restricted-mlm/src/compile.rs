//! Compiling the model module the scorer's way, and the driver that evaluates it.
//!
//! "The model module" is exactly one file, `solution/src/model.rs`. It is copied into a crate of
//! the scorer's (`<scratch>/model`): its `lib.rs` is `driver/model_lib.rs` (`#![no_std]`,
//! `#![forbid(unsafe_code)]`, `mod model;`, and the contract the driver calls), its manifest
//! has one dependency, the task's own `restricted` crate with no features, no build script and
//! no other target. Nothing else of the solution (its manifest, its build script, its
//! `.cargo/config.toml`, its other modules) takes part. Cargo runs from the scratch directory.
//!
//! The gate is a build of that crate alone: the escape hatch is off there, so a module that
//! reaches for raw candle, another crate, `std` or an operation the restricted API lacks does
//! not compile, and rustc's errors (read as JSON) are the reason, with file, line and the
//! offending path or call. Only then is the driver built, a separate crate that depends on the
//! model crate and enables `restricted`'s `training` feature for itself (cargo unifies the
//! feature, which is why the gate must build the model crate on its own first). Both builds
//! enable the plan's further features of `restricted` (`cuda` for the gpu variant: a backend,
//! no operation), so that they share one build of candle.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use rebench_scoring::fsutil;
use rebench_scoring::subprocess::{self, Limits};
use serde_json::Value;

use crate::{MODEL_FILE, scan};

const MODEL_LIB: &str = include_str!("../driver/model_lib.rs");
const DRIVER_MAIN: &str = include_str!("../driver/main.rs");

/// The profile of every build here: the starting solution's, so a solution built in the same
/// target directory shares candle's compiled artifacts with the scorer's builds.
const PROFILE: &str = "[profile.release]\ndebug = \"line-tables-only\"\n";

/// Where and how to build.
#[derive(Clone, Debug)]
pub struct Plan {
    pub solution: PathBuf,
    /// The task's restricted crate (never the solution's or the public store's copy).
    pub restricted: PathBuf,
    /// Holds `model/` and `driver/` (files rewritten when they change).
    pub scratch: PathBuf,
    pub target_dir: PathBuf,
    pub timeout: Duration,
    /// Features of `restricted` enabled in both builds besides the driver's `training`.
    pub features: Vec<String>,
}

/// `plan.features`, and `extra` before them, as a TOML array.
fn features(plan: &Plan, extra: Option<&str>) -> String {
    let all: Vec<toml::Value> = extra.into_iter().map(str::to_owned).chain(plan.features.iter().cloned()).map(toml::Value::String).collect();
    toml::Value::Array(all).to_string()
}

/// Checks and compiles the model module, then builds the driver. `Ok(Err(reason))` when the
/// solution breaks a rule or does not compile; `Err` for infrastructure faults.
pub fn build(plan: &Plan) -> anyhow::Result<Result<PathBuf, String>> {
    let model_dir = match gate(plan)? {
        Ok(dir) => dir,
        Err(reason) => return Ok(Err(reason)),
    };
    build_driver(plan, &model_dir)
}

/// Builds the driver against the model crate in `model_dir` (made by [`compile_model`]).
pub fn build_driver(plan: &Plan, model_dir: &Path) -> anyhow::Result<Result<PathBuf, String>> {
    let driver = plan.scratch.join("driver");
    let model_manifest: toml::Table = toml::from_str(&std::fs::read_to_string(model_dir.join("Cargo.toml"))?)?;
    let package = model_manifest["package"]["name"].as_str().context("the model crate's name")?.to_owned();
    let name = format!("rebench-restricted-driver-{}", &fsutil::hash_bytes(plan.scratch.to_string_lossy().as_bytes())[..12]);
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\nbuild = false\n\n\
         [dependencies]\nrebench-restricted-model = {{ package = \"{package}\", path = {} }}\nrestricted = {{ path = {}, features = {} }}\n\n\
         [workspace]\n\n{PROFILE}",
        toml_str(model_dir),
        toml_str(&plan.restricted),
        features(plan, Some("training")),
    );
    write(&driver.join("Cargo.toml"), &manifest)?;
    write(&driver.join("src/main.rs"), DRIVER_MAIN)?;
    let finished = cargo(plan, &driver, false)?;
    if finished.timed_out() {
        return Ok(Err(format!("building the scorer's driver took longer than {:.0} s", plan.timeout.as_secs_f64())));
    }
    if !finished.success() {
        // The model crate compiled on its own and states the contract the driver uses, so this
        // should not happen; it is still the solution's build, so an invalid outcome.
        return Ok(Err(format!("the scorer's driver does not build against the model module:\n{}", finished.stderr_tail(30))));
    }
    Ok(Ok(plan.target_dir.join("release").join(name)))
}

/// The rules checked before any build: the model module exists, the solution has no build
/// script, and the scan finds nothing; then the model crate is built alone. Returns the model
/// crate's directory.
pub fn gate(plan: &Plan) -> anyhow::Result<Result<PathBuf, String>> {
    let model_path = plan.solution.join(MODEL_FILE);
    let source = match std::fs::read_to_string(&model_path) {
        Ok(text) => text,
        Err(err) => return Ok(Err(format!("cannot read the model module solution/{MODEL_FILE}: {err}"))),
    };
    if let Some(why) = build_script(&plan.solution) {
        return Ok(Err(why));
    }
    let violations = scan::scan(&source);
    if !violations.is_empty() {
        return Ok(Err(scan::describe(&format!("solution/{MODEL_FILE}"), &violations, 12)));
    }

    compile_model(plan, &source)
}

/// Builds `source` as the model crate, alone (the compile half of [`gate`], without the scan).
pub fn compile_model(plan: &Plan, source: &str) -> anyhow::Result<Result<PathBuf, String>> {
    let model_dir = plan.scratch.join("model");
    // A package name of its own per scratch directory and source. Cargo names a workspace
    // root's fingerprint by its name and its path *relative to the workspace* (empty here), so
    // two model crates of one name would share one fingerprint: a module written before
    // another build finished would be taken as already built, and a driver could link the
    // other module. The library keeps one name, which the driver imports.
    let key = format!("{}\0{source}", plan.scratch.display());
    let package = format!("rebench-restricted-model-{}", &fsutil::hash_bytes(key.as_bytes())[..16]);
    let manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\
         build = false\nautobins = false\nautoexamples = false\nautotests = false\nautobenches = false\n\n\
         [lib]\nname = \"rebench_restricted_model\"\npath = \"src/lib.rs\"\n\n[dependencies]\nrestricted = {{ path = {}, features = {} }}\n\n[workspace]\n\n{PROFILE}",
        toml_str(&plan.restricted),
        features(plan, None),
    );
    write(&model_dir.join("Cargo.toml"), &manifest)?;
    write(&model_dir.join("src/lib.rs"), MODEL_LIB)?;
    write(&model_dir.join("src/model.rs"), source)?;
    let finished = cargo(plan, &model_dir, true)?;
    if finished.timed_out() {
        return Ok(Err(format!("compiling the model module took longer than {:.0} s", plan.timeout.as_secs_f64())));
    }
    if !finished.success() {
        let errors = compiler_errors(&finished.stdout_text(), source);
        let body = if errors.is_empty() { finished.stderr_tail(30) } else { errors.join("\n") };
        return Ok(Err(format!(
            "the model module does not compile against the restricted API (its only dependency, escape hatch off, no_std):\n{body}"
        )));
    }
    Ok(Ok(model_dir))
}

/// Why the solution's build script is refused, if it has one: the model module is compiled
/// without it, and a script that generates code is a way to smuggle operations in.
fn build_script(solution: &Path) -> Option<String> {
    if solution.join("build.rs").exists() {
        return Some("the solution has a build script (build.rs): not allowed in this task (the model module must be plain source, compiled without one)".into());
    }
    let manifest = std::fs::read_to_string(solution.join("Cargo.toml")).ok()?;
    let doc: toml::Table = toml::from_str(&manifest).ok()?;
    match doc.get("package").and_then(|p| p.get("build")) {
        Some(toml::Value::Boolean(false)) | None => None,
        Some(other) => Some(format!("the solution's Cargo.toml declares a build script (build = {other}): not allowed in this task")),
    }
}

/// Runs `cargo build --release` on the crate in `dir`, from the scratch directory (so no
/// `.cargo/config.toml` of the solution applies), with JSON diagnostics when `json`.
fn cargo(plan: &Plan, dir: &Path, json: bool) -> anyhow::Result<subprocess::Finished> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--quiet"]);
    if json {
        command.arg("--message-format=json");
    }
    command
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .current_dir(&plan.scratch)
        .env("CARGO_TARGET_DIR", &plan.target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    subprocess::run(&mut command, &[], &Limits { timeout: Some(plan.timeout), address_space: None })
        .context("cannot run cargo to build the model module")
}

/// rustc's errors in the model crate, one line each: `solution/src/model.rs:LINE:COL: error[CODE]:
/// MESSAGE: `the source line``. Errors in the scorer's wrapper (`lib.rs`) mean the module does
/// not offer the contract, and say so.
pub fn compiler_errors(cargo_json: &str, source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut out = Vec::new();
    for line in cargo_json.lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else { continue };
        if msg.get("reason").and_then(Value::as_str) != Some("compiler-message") {
            continue;
        }
        let Some(diag) = msg.get("message") else { continue };
        if diag.get("level").and_then(Value::as_str) != Some("error") {
            continue;
        }
        let text = diag.get("message").and_then(Value::as_str).unwrap_or("");
        let code = diag.get("code").and_then(|c| c.get("code")).and_then(Value::as_str).map_or(String::new(), |c| format!("[{c}]"));
        let spans = diag.get("spans").and_then(Value::as_array).cloned().unwrap_or_default();
        let primary = spans.iter().find(|s| s.get("is_primary").and_then(Value::as_bool) == Some(true)).or(spans.first());
        let Some(span) = primary else {
            continue; // "aborting due to N previous errors" and the like
        };
        let file = span.get("file_name").and_then(Value::as_str).unwrap_or("");
        let line_no = span.get("line_start").and_then(Value::as_u64).unwrap_or(0) as usize;
        let col = span.get("column_start").and_then(Value::as_u64).unwrap_or(0);
        if file.ends_with("model.rs") {
            let src = lines.get(line_no.wrapping_sub(1)).map_or("", |l| l.trim());
            out.push(format!("  solution/{MODEL_FILE}:{line_no}:{col}: error{code}: {text}: `{src}`"));
        } else {
            out.push(format!(
                "  the module does not offer the contract `Model::new(&Config, &mut Params) -> Result<Model>`, `Model::forward(&self, &Tensor) -> Result<Tensor>`: error{code}: {text}"
            ));
        }
    }
    out.dedup();
    out
}

/// A path as a TOML string.
fn toml_str(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// Writes `text` unless the file already holds it: an unchanged model module is not rebuilt
/// (cargo goes by modification times), so scoring the same solution again costs no compile.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_builds_enable_the_plans_features_and_only_the_driver_the_hatch() {
        let plan = |features: &[&str]| Plan {
            solution: PathBuf::new(),
            restricted: PathBuf::new(),
            scratch: PathBuf::new(),
            target_dir: PathBuf::new(),
            timeout: Duration::ZERO,
            features: features.iter().map(|f| (*f).to_owned()).collect(),
        };
        assert_eq!(features(&plan(&[]), None), "[]");
        assert_eq!(features(&plan(&[]), Some("training")), r#"["training"]"#);
        assert_eq!(features(&plan(&["cuda"]), None), r#"["cuda"]"#);
        assert_eq!(features(&plan(&["cuda"]), Some("training")), r#"["training", "cuda"]"#);
    }
}
