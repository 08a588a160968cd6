//! Intermediate scoring during a trial, as RE-Bench does it: the agent runs `score` in its
//! workdir, which asks the harness over a Unix socket (not a file the agent could forge) to score
//! the current solution. The harness snapshots the solution, scores the snapshot, appends to the
//! trial's log (which the agent cannot reach) and answers with the message, and the score unless
//! the task hides it. One scoring at a time per trial.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rebench_scoring::fsutil;
use serde_json::{Value, json};

use crate::progress::Progress;
use crate::score::{self, ScoreOptions, ScoreResult, Target};
use crate::tasks::TaskEntry;
use crate::workspace::Workspace;

/// The environment variable through which the `score` command finds the socket.
pub const SOCKET_VAR: &str = "REBENCH_SCORE_SOCKET";

/// Everything needed to score one trial's solution, now or at the end.
#[derive(Debug)]
pub struct TrialScoring {
    pub ws: Workspace,
    pub task: TaskEntry,
    pub variant: String,
    pub scorer_bin: PathBuf,
    pub workdir: PathBuf,
    /// The trial's score log.
    pub log: PathBuf,
    pub snapshots: PathBuf,
    pub started: SystemTime,
    pub params: std::collections::BTreeMap<String, Value>,
    /// Held while scoring: one scoring at a time per trial.
    pub lock: Mutex<()>,
    pub trial_id: String,
    pub progress: Arc<Progress>,
}

impl TrialScoring {
    /// Snapshots the workdir's solution and scores the snapshot.
    pub fn score_now(&self) -> anyhow::Result<ScoreResult> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        std::fs::create_dir_all(&self.snapshots)?;
        let index = std::fs::read_dir(&self.snapshots)?.count();
        let label = format!("snapshot-{index:04}");
        let dir = self.snapshots.join(&label);
        fsutil::copy_tree(&self.workdir.join("solution"), &dir)
            .with_context(|| format!("cannot snapshot {}", self.workdir.join("solution").display()))?;
        let options = ScoreOptions { seed: None, params: self.params.clone(), log: Some(self.log.clone()), origin: Some(self.started) };
        let result = score::score(&self.ws, &self.task, &self.variant, &Target::Solution { dir, label }, &options, &self.scorer_bin)?;
        self.progress.scored(&self.trial_id, &result.entry);
        Ok(result)
    }

    /// What the agent is told about a scoring.
    fn answer(&self, result: &anyhow::Result<ScoreResult>) -> Value {
        match result {
            Err(err) => json!({"valid": false, "message": format!("scoring failed: {err:#}")}),
            Ok(r) if self.task.manifest.metric.hidden => json!({
                "valid": r.entry.valid,
                "message": if r.entry.valid { "scored; this task keeps its scores hidden".to_owned() } else { r.entry.message.clone() },
            }),
            Ok(r) => json!({"valid": r.entry.valid, "message": r.entry.message, "raw": r.entry.raw, "normalized": r.entry.normalized}),
        }
    }
}

/// A running socket server; dropping it stops the server and removes the socket.
#[derive(Debug)]
pub struct ScoreServer {
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScoreServer {
    pub fn start(socket: &Path, scoring: Arc<TrialScoring>) -> anyhow::Result<ScoreServer> {
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = handle(stream, &scoring);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Ok(ScoreServer { socket: socket.to_owned(), stop, thread: Some(thread) })
    }
}

impl Drop for ScoreServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn handle(stream: UnixStream, scoring: &TrialScoring) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = String::new();
    // The request carries nothing the harness trusts; it only has to be a request.
    BufReader::new(stream.try_clone()?.take(4096)).read_line(&mut request)?;
    let reply = match serde_json::from_str::<Value>(request.trim()) {
        Ok(v) if v["op"] == "score" => scoring.answer(&scoring.score_now()),
        _ => json!({"valid": false, "message": "unknown request: send {\"op\":\"score\"}"}),
    };
    let mut stream = stream;
    writeln!(stream, "{reply}")
}

/// The agent's `score` command: asks the harness to score the solution and prints the answer.
/// Exits 0 for a valid score, 3 for an invalid one, 2 when the harness cannot be reached.
pub fn client() -> std::process::ExitCode {
    let Some(socket) = std::env::var_os(SOCKET_VAR) else {
        eprintln!("score: {SOCKET_VAR} is not set: scoring is available inside a trial started by the harness");
        return std::process::ExitCode::from(2);
    };
    let reply = (|| -> std::io::Result<String> {
        let mut stream = UnixStream::connect(&socket)?;
        writeln!(stream, "{}", json!({"op": "score"}))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        Ok(line)
    })();
    match reply.map(|line| serde_json::from_str::<Value>(&line)) {
        Ok(Ok(answer)) => {
            let valid = answer["valid"].as_bool().unwrap_or(false);
            let mut line = format!("{}: {}", if valid { "valid" } else { "INVALID" }, answer["message"].as_str().unwrap_or(""));
            if let Some(n) = answer["normalized"].as_f64() {
                line.push_str(&format!(" (normalized score {n:.3})"));
            }
            println!("{line}");
            std::process::ExitCode::from(if valid { 0 } else { 3 })
        }
        Ok(Err(err)) => {
            eprintln!("score: the harness's answer is not valid JSON: {err}");
            std::process::ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("score: cannot reach the harness at {}: {err}", PathBuf::from(socket).display());
            std::process::ExitCode::from(2)
        }
    }
}
