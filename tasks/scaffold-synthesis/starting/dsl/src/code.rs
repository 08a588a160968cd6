//! The `endpoint` variant's side of the scaffold: problems that ask for a Rust program, the chat
//! model a scaffold may call, and helpers to compile and run candidates locally.
//!
//! The scorer's driver implements [`Chat`]: every request goes to the scorer, which forwards it
//! to the configured OpenAI-compatible endpoint and counts it against the problem's [`Budget`]
//! (one call per completion, the completion tokens the endpoint reports). Your scaffold never
//! sees the endpoint's address or key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::client::{Budget, ModelError};

/// One test of a program: what it reads on stdin and what it must print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Test {
    pub input: String,
    pub output: String,
}

impl Test {
    /// Whether `printed` is this test's output, compared as whitespace-separated words (how the
    /// scorer compares).
    pub fn accepts(&self, printed: &str) -> bool {
        printed.split_whitespace().eq(self.output.split_whitespace())
    }
}

/// A problem as the scaffold gets it: the statement (which shows the public tests) and the
/// public tests. The scorer runs the returned program on held-out tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeProblem {
    pub statement: String,
    pub tests: Vec<Test>,
}

/// One chat message (`role` is `system`, `user` or `assistant`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: "system".into(), content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message { role: "user".into(), content: content.into() }
    }

    pub fn assistant(content: impl Into<String>) -> Message {
        Message { role: "assistant".into(), content: content.into() }
    }
}

/// One call to the chat model: `n` independent completions of one conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    /// Completions to draw; each counts as one call against the budget.
    pub n: u32,
    pub temperature: f64,
    /// The most tokens each completion may have. All `n · max_tokens` must fit in the token
    /// budget left; what is charged is what the endpoint reports it generated.
    pub max_tokens: u32,
}

/// One completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    /// Completion tokens, as the endpoint counted them: what this completion cost.
    pub tokens: u32,
    /// Whether the model stopped by itself (false: cut at `max_tokens`).
    pub finished: bool,
}

/// The chat model, as the scorer's driver provides it.
pub trait Chat {
    /// Draws `request.n` completions, charging `n` calls and their tokens to the budget.
    fn complete(&mut self, request: &ChatRequest) -> Result<Vec<Completion>, ModelError>;

    /// What is left of this problem's budget.
    fn budget(&self) -> Budget;
}

/// The Rust program in a completion: the first fenced code block (```rust or ```), or the
/// whole text when it has no fence.
pub fn extract_code(text: &str) -> Option<String> {
    let Some(start) = text.find("```") else {
        return text.contains("fn main").then(|| text.trim().to_owned());
    };
    let after = &text[start + 3..];
    let body = &after[after.find('\n')? + 1..];
    let end = body.find("```").unwrap_or(body.len());
    let code = body[..end].trim();
    (!code.is_empty()).then(|| code.to_owned())
}

/// A candidate compiled with the local `rustc`, for a scaffold to test on the public tests.
/// (The scorer compiles and runs the answer its own way, in a sandbox, with its own limits.)
#[derive(Debug)]
pub struct Compiled {
    binary: PathBuf,
}

/// Why a local compile or run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    Compile(String),
    TimedOut,
    Failed(String),
}

impl Compiled {
    /// Compiles `source` in `dir` (created if missing) with the `rustc` on `PATH`.
    pub fn build(source: &str, dir: &Path) -> Result<Compiled, RunError> {
        let io = |e: std::io::Error| RunError::Compile(e.to_string());
        std::fs::create_dir_all(dir).map_err(io)?;
        let src = dir.join("main.rs");
        let binary = dir.join("main");
        std::fs::write(&src, source).map_err(io)?;
        let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .args(["--edition", "2021", "-C", "debuginfo=0", "-o"])
            .arg(&binary)
            .arg(&src)
            .stdin(Stdio::null())
            .output()
            .map_err(io)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(RunError::Compile(stderr.lines().take(12).collect::<Vec<_>>().join("\n")));
        }
        Ok(Compiled { binary })
    }

    /// Runs the program on `input`, killing it after `timeout`; its stdout.
    pub fn run(&self, input: &str, timeout: Duration) -> Result<String, RunError> {
        let mut child = Command::new(&self.binary)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| RunError::Failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is not an error here.
            let _ = stdin.write_all(input.as_bytes());
        }
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut out) = stdout {
                use std::io::Read;
                let _ = out.by_ref().take(1 << 20).read_to_string(&mut text);
            }
            text
        });
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let text = reader.join().unwrap_or_default();
                    return if status.success() { Ok(text) } else { Err(RunError::Failed(format!("{status}"))) };
                }
                Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RunError::TimedOut);
                }
            }
        }
    }
}
