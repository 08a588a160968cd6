//! The `[solve]` step of artifact tasks: running a solution's own command to make what its task
//! scores (repaired weights, a trained model, an answer file).
//!
//! It runs on the task's own starting and reference solutions before they are scored (so
//! `validate` measures what the reference method really produces, not a committed result) and
//! for the `oracle` agent in a trial. It never runs on an agent's workdir: there, the artifacts
//! the agent left are what count, as in RE-Bench, and scoring runs none of the agent's code.
//!
//! The command runs in `solution/` of a workdir-shaped directory (`../data/` is the variant's
//! public data), in the agents' sandbox where bubblewrap works, so the task's own solutions see
//! what an agent would see and nothing more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::manifest::Solve;
use serde_json::Value;

use crate::run::AGENT_MEMORY_HEADROOM_GIB;
use crate::sandbox::{self, Isolation, SandboxSpec};
use crate::tasks::TaskEntry;
use crate::workspace::Workspace;

/// The file in a solved directory that records what it was solved from.
const SOLVED_MARKER: &str = ".solved";

/// Where and how one solve runs.
#[derive(Debug)]
pub struct SolveRun<'a> {
    pub task: &'a TaskEntry,
    pub variant: &'a str,
    pub solve: &'a Solve,
    /// Holds `solution/` (the current directory of the command) and `data/`.
    pub workdir: &'a Path,
    /// The variant's parameters, passed as `REBENCH_PARAM_<KEY>`.
    pub params: &'a BTreeMap<String, Value>,
    /// Paths the command may read besides the workdir (what `data/` links to).
    pub read_only: Vec<PathBuf>,
    /// A cargo build directory shared with other solutions (`CARGO_BUILD_BUILD_DIR`, bound
    /// read-write), so their common dependencies are built once. Final artifacts stay in the
    /// workdir's own `target/`, so two solves (whose packages are both `solution`) never write
    /// the same `target/release/solve`. Sharing intermediate artifacts is safe because a solved
    /// solution is always a fresh copy, newer than anything built before: cargo rebuilds it
    /// (cargo keys a workspace's own package by its path relative to the workspace, so two
    /// solutions share keys, and only the sources' mtimes tell their builds apart).
    pub build_dir: Option<PathBuf>,
    /// At most this long; the solve's own timeout applies too.
    pub limit: Duration,
    pub isolation: &'a Isolation,
}

/// The environment variable name of a parameter: `REBENCH_PARAM_` and the key upper-cased,
/// dashes as underscores.
pub fn param_var(key: &str) -> String {
    format!("REBENCH_PARAM_{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// Runs the solve command; `Ok(Err(reason))` when it failed (a non-zero exit, a time-out), with
/// the end of its log, which is kept as `solve.log` in the workdir.
pub fn execute(run: &SolveRun) -> anyhow::Result<Result<Duration, String>> {
    let v = run.task.variant(run.variant)?;
    let mut env = vec![
        ("REBENCH_VARIANT".to_owned(), run.variant.to_owned()),
        ("REBENCH_THREADS".to_owned(), v.resources.cores.to_string()),
    ];
    for (key, value) in run.params {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        env.push((param_var(key), text));
    }
    let mut read_write = Vec::new();
    if let Some(build) = &run.build_dir {
        std::fs::create_dir_all(build).with_context(|| format!("cannot create {}", build.display()))?;
        env.push(("CARGO_BUILD_BUILD_DIR".to_owned(), build.display().to_string()));
        read_write.push(build.clone());
    }
    let spec = SandboxSpec {
        workdir: run.workdir.to_owned(),
        read_only: run.read_only.clone(),
        read_write,
        network: false,
        gpu: v.resources.gpus > 0,
        env,
        path_prefix: Vec::new(),
        limits: sandbox::Limits {
            memory: Some(((v.resources.memory_gib + AGENT_MEMORY_HEADROOM_GIB) * (1u64 << 30) as f64) as u64),
            ..sandbox::Limits::default()
        },
    };
    // The sandbox starts in the workdir; the command runs in its solution/.
    let mut argv: Vec<String> = ["sh", "-c", "cd solution && exec \"$@\"", "solve"].map(String::from).to_vec();
    argv.extend(run.solve.command.iter().cloned());
    let log_path = run.workdir.join("solve.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create {}", log_path.display()))?;
    let mut sandboxed = sandbox::command(&spec, run.isolation, &argv);
    sandboxed.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let limit = run.limit.min(run.solve.timeout);
    let start = Instant::now();
    let mut child = sandboxed.spawn().with_context(|| format!("cannot start the solve command {:?}", run.solve.command))?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() >= limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    rebench_scoring::subprocess::kill_group(child.id() as i32);
    let _ = child.wait();
    sandboxed.end_all();
    let wall = start.elapsed();
    let why = match status {
        Some(status) if status.success() => return Ok(Ok(wall)),
        Some(status) => format!("the solve command {:?} failed ({status})", run.solve.command),
        None => format!("the solve command {:?} ran past its limit of {}", run.solve.command, humantime::format_duration(limit)),
    };
    Ok(Err(format!("{why}; the end of {}:\n{}", log_path.display(), log_tail(&log_path, 20))))
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The task's own starting or reference solution with its artifacts made: materialized into a
/// workdir-shaped directory under the harness home and solved there, or reused when that
/// directory was solved from the same sources, data, parameters and command.
/// `Ok(Err(reason))` when the solve failed.
pub fn solved_named(
    ws: &Workspace,
    task: &TaskEntry,
    variant: &str,
    which: Solution,
    solve: &Solve,
    params: &BTreeMap<String, Value>,
) -> anyhow::Result<Result<PathBuf, String>> {
    let root = ws.materialized(&task.id, &format!("{}-{variant}-solved", which.name()));
    let solution = root.join("solution");
    let store = ws.store(&task.id, variant);
    let key = {
        let mut sources = fsutil::hash_tree(&task.dir.join("starting"))?;
        if which == Solution::Reference {
            sources.push_str(&fsutil::hash_tree(&task.dir.join("reference"))?);
        }
        let prepared = std::fs::read_to_string(store.join(".prepared")).unwrap_or_default();
        let inputs = serde_json::json!({"sources": sources, "prepared": prepared, "solve": solve, "params": params, "variant": variant});
        fsutil::hash_bytes(inputs.to_string().as_bytes())
    };
    if solution.is_dir() && std::fs::read_to_string(root.join(SOLVED_MARKER)).is_ok_and(|k| k.trim() == key) {
        eprintln!("solve: reusing the solved {} solution of {} [{variant}] ({})", which.name(), task.id, root.display());
        return Ok(Ok(solution));
    }
    fsutil::remove_tree(&root)?;
    std::fs::create_dir_all(&root)?;
    fsutil::materialize(&task.dir, which, &solution)
        .with_context(|| format!("cannot materialize the {} solution of `{}`", which.name(), task.id))?;
    let public = store.join("public");
    std::os::unix::fs::symlink(&public, root.join("data")).context("cannot link the public data")?;
    if solution.join("Cargo.toml").is_file() {
        crate::run::fetch_dependencies(&solution)?;
    }
    let isolation = sandbox::detect().unwrap_or_else(|why| {
        eprintln!("solve: running the task's own {} solution without a sandbox: {why}", which.name());
        Isolation::Unsandboxed
    });
    eprintln!(
        "solve: running the {} solution's solve for {} [{variant}] (at most {}; log: {})",
        which.name(),
        task.id,
        humantime::format_duration(solve.timeout),
        root.join("solve.log").display()
    );
    let run = SolveRun {
        task,
        variant,
        solve,
        workdir: &root,
        params,
        read_only: vec![public],
        build_dir: Some(ws.solutions_target_dir()),
        limit: solve.timeout,
        isolation: &isolation,
    };
    match execute(&run)? {
        Ok(wall) => {
            eprintln!("solve: done in {:.1} s", wall.as_secs_f64());
            std::fs::write(root.join(SOLVED_MARKER), format!("{key}\n"))?;
            Ok(Ok(solution))
        }
        Err(why) => Ok(Err(why)),
    }
}
