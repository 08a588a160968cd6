//! Building task scorers and talking to them over the JSON protocol, as child processes: a scorer
//! that crashes, hangs or prints garbage becomes a `ScorerFailure`, never a harness crash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use rebench_scoring::protocol::{Request, Response};
use rebench_scoring::subprocess::{self, Limits};

use crate::tasks::TaskEntry;
use crate::workspace::Workspace;

/// Builds the scorer binaries of `tasks` (release, shared target directory) with `features`
/// enabled on each task crate, and returns their paths in the same order.
pub fn build(ws: &Workspace, tasks: &[&TaskEntry], features: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(&ws.root).args(["build", "--release", "--quiet"]).env("CARGO_TARGET_DIR", ws.target_dir());
    for task in tasks {
        command.args(["--package", &task.id, "--bin", &task.id]);
        for feature in features {
            command.args(["--features", &format!("{}/{feature}", task.id)]);
        }
    }
    let status = command.status().context("cannot run cargo to build the scorers")?;
    if !status.success() {
        let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        bail!("building the scorers of {} failed (see cargo's output above)", ids.join(", "));
    }
    Ok(tasks.iter().map(|t| ws.target_dir().join("release").join(&t.id)).collect())
}

/// Why a scorer gave no usable response.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorerFailure(pub String);

/// Sends `request` to the scorer at `binary` and waits at most `timeout` for its response.
///
/// `Ok(Err(_))` when the scorer misbehaved (crash, hang, garbage, or its own `Error` response);
/// `Err` only when it could not be started at all.
pub fn call(binary: &Path, request: &Request, timeout: Duration) -> anyhow::Result<Result<Response, ScorerFailure>> {
    let input = serde_json::to_vec(request)?;
    let mut command = Command::new(binary);
    let limits = Limits { timeout: Some(timeout), address_space: None };
    let finished = subprocess::run(&mut command, &input, &limits)
        .with_context(|| format!("cannot start the scorer {}", binary.display()))?;
    // The scorer's own progress goes to stderr; pass it on so long work shows.
    let stderr = finished.stderr_text();
    if !stderr.trim().is_empty() {
        eprint!("{stderr}");
    }
    if finished.timed_out() {
        return Ok(Err(ScorerFailure(format!("the scorer {}", finished.describe_exit()))));
    }
    let stdout = finished.stdout_text();
    let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(Err(ScorerFailure(format!(
            "the scorer {} and printed no response; stderr:\n{}",
            finished.describe_exit(),
            finished.stderr_tail(10)
        ))));
    };
    match serde_json::from_str::<Response>(last) {
        Ok(Response::Error { message }) => Ok(Err(ScorerFailure(format!("the scorer reported an error: {message}")))),
        Ok(response) => Ok(Ok(response)),
        Err(err) => Ok(Err(ScorerFailure(format!(
            "the scorer {} and its response is not valid ({err}): {}",
            finished.describe_exit(),
            truncate(last, 300)
        )))),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}
