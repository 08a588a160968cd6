//! Running a scaffold: the driver (the solution's `solve` in a child process) gets one problem's
//! visible examples at a time and asks for samples; the model runs here, in the scorer, which
//! counts every call against the problem's budget. The returned program is checked here, on
//! the held-out examples, with the scorer's own interpreter.
//!
//! Failures stay with their problem: a budget overrun, a panic, a malformed or looping program
//! fails that problem with its reason. A scaffold that hangs, exhausts its memory or kills its
//! process is killed (its whole process group) and the driver restarted for the next problem.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use dsl::{Budget, Example, Program, Prompt};
use rebench_models::Rng;
use serde::Serialize;

use crate::generate::HiddenProblem;
use crate::infer::Engine;

// Starts every driver line meant for the scorer (see `driver/wire.rs`).
use crate::endpoint::wire::MARK;
/// A line longer than this ends the driver: nothing the protocol sends is near it.
const MAX_LINE: usize = 1 << 20;
/// How much of the driver's stderr is kept, for failure reasons.
const STDERR_KEEP: usize = 16 << 10;

/// The scorer's side of a problem's model requests: the `endpoint` variant relays chat
/// requests, the default variant samples its own model.
pub trait Relay {
    /// The first field of the driver's requests this relay answers (`sample`, `chat`).
    fn kind(&self) -> &'static str;
    /// The lines to send back for one request.
    fn reply(&mut self, fields: &[String]) -> Vec<String>;
    /// The model's time so far on this problem (not counted against the scaffold).
    fn model_time(&self) -> Duration;
}

/// The limits a scaffold runs under.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Per problem.
    pub budget: Budget,
    /// The scaffold's own time per problem (the model's time not counted).
    pub scaffold_time: Duration,
    /// RLIMIT_AS of the driver process, in bytes.
    pub memory: u64,
}

/// What happened on one problem.
#[derive(Clone, Debug, Serialize)]
pub struct ProblemResult {
    pub depth: usize,
    pub solved: bool,
    /// The program the scaffold returned, as it sent it.
    pub answer: Option<String>,
    /// Why the problem is not solved.
    pub failure: Option<String>,
    pub calls: u32,
    pub tokens: u32,
    pub scaffold_seconds: f64,
    pub model_seconds: f64,
}

enum Event {
    Line(Vec<String>),
    Overlong,
    Closed,
}

/// A running driver.
pub struct Driver {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Event>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Signalled when stderr ends, so that a dead driver's last words are read before use.
    stderr_done: mpsc::Receiver<()>,
}

impl Driver {
    fn start(binary: &Path, cwd: &Path, limits: &Limits) -> anyhow::Result<Driver> {
        let mut command = Command::new(binary);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).env("RUST_BACKTRACE", "0").current_dir(cwd);
        // The endpoint's key is the scorer's (`main` takes it out of the environment first;
        // this is for a scorer embedded elsewhere, as in tests).
        command.env_remove(crate::endpoint::KEY_VAR);
        // A group of its own, so that killing it ends whatever the scaffold started too.
        command.process_group(0);
        let bytes = limits.memory;
        // SAFETY: between fork and exec only async-signal-safe calls are allowed; setrlimit is one.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| anyhow::anyhow!("cannot start the driver {}: {e}", binary.display()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || read_lines(stdout, &tx));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let (done, stderr_done) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * STDERR_KEEP {
                    let cut = kept.len() - STDERR_KEEP;
                    kept.drain(..cut);
                }
            }
            let _ = done.send(());
        });
        Ok(Driver { child, stdin, events, stderr, stderr_done })
    }

    fn send(&mut self, line: &str) -> bool {
        self.stdin.write_all(line.as_bytes()).and_then(|()| self.stdin.write_all(b"\n")).and_then(|()| self.stdin.flush()).is_ok()
    }

    fn kill(mut self) {
        // SAFETY: kill has no memory-safety preconditions; a group that is gone gives ESRCH.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }

    /// How the process ended (it is gone or going) and the end of its stderr.
    fn death(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => break None,
            }
        };
        // A process that left the group may hold stderr open: wait a little, not forever.
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        let how = match status {
            Some(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(code), _) => format!("exited with status {code}"),
                    (None, Some(signal)) => format!("was killed by signal {signal}"),
                    _ => "ended".to_owned(),
                }
            }
            None => "stopped answering".to_owned(),
        };
        self.kill();
        let memory = if stderr.contains("memory allocation of") { " (out of memory)" } else { "" };
        format!("the scaffold's process {how}{memory}; its stderr ends: {}", tail.join(" | "))
    }
}

fn read_lines(stdout: impl Read, tx: &mpsc::Sender<Event>) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds a line that never ends.
        match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_LINE => {
                let _ = tx.send(Event::Overlong);
                return;
            }
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                // Whatever the scaffold printed itself before the mark is not for us.
                if let Some(at) = text.rfind(MARK) {
                    let fields = text[at + MARK.len()..].trim_end_matches(['\n', '\r']).split('\t').map(str::to_owned).collect();
                    if tx.send(Event::Line(fields)).is_err() {
                        return;
                    }
                }
            }
        }
    }
    let _ = tx.send(Event::Closed);
}

/// The scorer's side of one problem.
struct Serving<'a> {
    engine: &'a Engine,
    seed: u64,
    index: usize,
    left: Budget,
    calls: u32,
    tokens: u32,
    requests: u32,
    overrun: Option<String>,
    model_time: Duration,
}

impl Relay for Serving<'_> {
    fn kind(&self) -> &'static str {
        "sample"
    }

    fn reply(&mut self, fields: &[String]) -> Vec<String> {
        self.sample(fields)
    }

    fn model_time(&self) -> Duration {
        self.model_time
    }
}

impl Serving<'_> {
    /// The reply to a `sample` line: the lines to send back.
    fn sample(&mut self, fields: &[String]) -> Vec<String> {
        let start = Instant::now();
        let reply = self.sample_inner(fields);
        self.model_time += start.elapsed();
        reply
    }

    fn refuse(&self, kind: &str, why: &str) -> Vec<String> {
        vec![format!("err\t{kind}\t{}\t{}\t{}", self.left.calls, self.left.tokens, why.replace(['\t', '\n'], " "))]
    }

    fn sample_inner(&mut self, fields: &[String]) -> Vec<String> {
        if fields.len() != 6 {
            return self.refuse("refused", &format!("a sample request has 6 fields, not {}", fields.len()));
        }
        let (Ok(n), Ok(temperature), Ok(max_tokens)) = (fields[1].parse::<u32>(), fields[2].parse::<f64>(), fields[3].parse::<u32>()) else {
            return self.refuse("refused", "n, temperature and max_tokens must be numbers");
        };
        if n == 0 || max_tokens == 0 || !temperature.is_finite() || temperature < 0.0 {
            return self.refuse("refused", "n and max_tokens must be positive, the temperature finite and not negative");
        }
        let examples: Result<Vec<Example>, _> = fields[5].split_whitespace().map(str::parse).collect();
        let Ok(examples) = examples else {
            return self.refuse("refused", "malformed examples");
        };
        let attempt = (!fields[4].trim().is_empty()).then(|| fields[4].clone());
        let tokens = self.engine.vocab().prompt(&Prompt { examples, attempt });
        if tokens.len() >= self.engine.cfg.context {
            return self.refuse(
                "refused",
                &format!("the prompt has {} tokens; the model reads {} in all, the program included", tokens.len(), self.engine.cfg.context),
            );
        }
        if let Some(why) = &self.overrun {
            return self.refuse("budget", &format!("the budget was already exceeded ({why})"));
        }
        let cost = u64::from(n) * u64::from(max_tokens);
        if n > self.left.calls || cost > u64::from(self.left.tokens) {
            let why = format!(
                "asked for {n} samples of up to {max_tokens} tokens ({cost} tokens) with {} calls and {} tokens left",
                self.left.calls, self.left.tokens
            );
            self.overrun = Some(why.clone());
            return self.refuse("budget", &why);
        }
        let prompt = self.engine.prefill(&tokens);
        let mut lines = Vec::with_capacity(n as usize + 1);
        for j in 0..n {
            let mut rng = Rng::for_stream(self.seed, &format!("problem/{}/request/{}/sample/{j}", self.index, self.requests));
            let s = self.engine.sample(&prompt, temperature, max_tokens, &mut rng);
            self.left.calls -= 1;
            self.left.tokens -= s.tokens;
            self.calls += 1;
            self.tokens += s.tokens;
            lines.push(format!("{}\t{}\t{}\t{}", s.tokens, s.logprob, u8::from(s.finished), s.text));
        }
        self.requests += 1;
        lines.insert(0, format!("ok\t{}\t{}\t{n}", self.left.calls, self.left.tokens));
        lines
    }
}

/// How one problem ended on the driver's side.
pub enum End {
    Answer(String),
    Nothing,
    Failed(String),
}

/// Runs the scaffold in `binary`, in the directory `cwd`, on every problem; `seed` seeds the
/// model's samples.
pub fn run(binary: &Path, cwd: &Path, problems: &[HiddenProblem], engine: &Engine, seed: u64, limits: &Limits) -> anyhow::Result<Vec<ProblemResult>> {
    let mut driver: Option<Driver> = None;
    let mut results = Vec::with_capacity(problems.len());
    for (index, problem) in problems.iter().enumerate() {
        let mut serving = Serving {
            engine,
            seed,
            index,
            left: limits.budget,
            calls: 0,
            tokens: 0,
            requests: 0,
            overrun: None,
            model_time: Duration::ZERO,
        };
        let start = Instant::now();
        let examples: Vec<String> = problem.visible.iter().map(ToString::to_string).collect();
        let line = format!("problem\t{}\t{}\t{}", limits.budget.calls, limits.budget.tokens, examples.join(" "));
        let end = run_one(binary, cwd, &mut driver, &line, &mut serving, limits)?;
        let model_seconds = serving.model_time.as_secs_f64();
        let mut result = ProblemResult {
            depth: problem.depth,
            solved: false,
            answer: None,
            failure: None,
            calls: serving.calls,
            tokens: serving.tokens,
            scaffold_seconds: start.elapsed().as_secs_f64() - model_seconds,
            model_seconds,
        };
        if let End::Answer(text) = &end {
            result.answer = Some(text.clone());
        }
        // A budget overrun fails the problem whatever the scaffold did next.
        result.failure = match (&serving.overrun, end) {
            (Some(why), _) => Some(format!("budget exceeded: {why}")),
            (None, End::Failed(why)) => Some(why),
            (None, End::Nothing) => Some("the scaffold returned no program".into()),
            (None, End::Answer(text)) => match Program::parse(&text) {
                Err(err) => Some(format!("the returned program `{text}` is malformed: {err}")),
                Ok(program) => check(&program, &problem.hidden),
            },
        };
        result.solved = result.failure.is_none();
        results.push(result);
    }
    finish(driver);
    Ok(results)
}

/// Ends a driver that is done with every problem.
pub fn finish(driver: Option<Driver>) {
    if let Some(mut d) = driver {
        d.send("done");
        std::thread::sleep(Duration::from_millis(1));
        d.kill();
    }
}

/// The first held-out example `program` gets wrong, as a reason; `None` when it passes all.
pub fn check(program: &Program, hidden: &[Example]) -> Option<String> {
    hidden.iter().enumerate().find_map(|(i, e)| match program.run(&e.input) {
        Ok(v) if v == e.output => None,
        Ok(v) => Some(format!("held-out example {}: `{program}` gives {v}, not {}", i + 1, e.output)),
        Err(err) => Some(format!("held-out example {}: `{program}` fails: {err}", i + 1)),
    })
}

/// Why a driver gave no line.
enum Lost {
    Overlong,
    Closed,
    Timeout,
}

impl Driver {
    /// The driver's next line, waiting at most `timeout`.
    fn next(&self, timeout: Duration) -> Result<Vec<String>, Lost> {
        match self.events.recv_timeout(timeout) {
            Ok(Event::Line(fields)) => Ok(fields),
            Ok(Event::Overlong) => Err(Lost::Overlong),
            Ok(Event::Closed) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(Lost::Closed),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Lost::Timeout),
        }
    }

    /// Ends a driver that gave no line, and says why.
    fn lost(self, why: Lost, limits: &Limits) -> End {
        End::Failed(match why {
            Lost::Closed => self.death(),
            Lost::Overlong => {
                self.kill();
                "the scaffold wrote a line of over 1 MiB".into()
            }
            Lost::Timeout => {
                self.kill();
                format!(
                    "the scaffold took more than {:.1} s on this problem (the model's time not counted) and was killed",
                    limits.scaffold_time.as_secs_f64()
                )
            }
        })
    }
}

/// Runs one problem (`line`, the `problem` message) on the driver in `slot`, started if it is
/// empty, answering its requests with `relay`; the driver stays in `slot` unless it failed.
pub fn run_one(binary: &Path, cwd: &Path, slot: &mut Option<Driver>, line: &str, relay: &mut dyn Relay, limits: &Limits) -> anyhow::Result<End> {
    let start = Instant::now();
    let over = |relay: &dyn Relay| limits.scaffold_time.saturating_sub(start.elapsed().saturating_sub(relay.model_time()));
    if slot.is_none() {
        let d = Driver::start(binary, cwd, limits)?;
        // The driver says `ready` before the first problem: its start-up counts as scaffold time.
        match d.next(over(relay)) {
            Ok(f) if f.first().map(String::as_str) == Some("ready") => *slot = Some(d),
            Ok(f) => {
                d.kill();
                return Ok(End::Failed(format!("the driver did not start properly (it said {f:?})")));
            }
            Err(why) => return Ok(d.lost(why, limits)),
        }
    }
    let mut d = slot.take().expect("started above");
    if !d.send(line) {
        return Ok(End::Failed(d.death()));
    }
    loop {
        let f = match d.next(over(relay)) {
            Ok(f) => f,
            Err(why) => return Ok(d.lost(why, limits)),
        };
        let end = match f.first().map(String::as_str) {
            Some(kind) if kind == relay.kind() => {
                let reply = relay.reply(&f);
                if !d.send(&reply.join("\n")) {
                    return Ok(End::Failed(d.death()));
                }
                continue;
            }
            Some("answer") => End::Answer(f.get(1).cloned().unwrap_or_default()),
            Some("none") => End::Nothing,
            Some("panic") => End::Failed(format!("the scaffold panicked: {}", f.get(1).map_or("", String::as_str))),
            _ => {
                d.kill();
                return Ok(End::Failed(format!("the driver sent an unknown message: {:?}", f.join(" "))));
            }
        };
        *slot = Some(d);
        return Ok(end);
    }
}
