//! Running foreign code (a scorer, a solution's driver) as a child process that cannot take its
//! parent down: its own process group, a wall-clock limit, an optional address-space limit,
//! bounded output capture, and the whole group killed when it is done.

use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Output beyond this many bytes per stream is read and dropped, so a chatty child cannot
/// exhaust the parent's memory.
pub const MAX_CAPTURE: usize = 8 << 20;

#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// RLIMIT_AS for the child, in bytes.
    pub address_space: Option<u64>,
}

/// How a child ended.
#[derive(Debug)]
pub struct Finished {
    /// `None` when the child was killed at the time limit.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub wall: Duration,
}

impl Finished {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The last `n` lines of stderr, for error messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        tail_lines(&self.stderr_text(), n)
    }

    /// A human description of how the child ended: exit code, signal or time-out.
    pub fn describe_exit(&self) -> String {
        match self.status {
            None => format!("timed out after {:.1} s and was killed", self.wall.as_secs_f64()),
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with status {code}"),
                (None, Some(signal)) => format!("was killed by signal {signal} ({})", signal_name(signal)),
                (None, None) => "ended in an unknown way".to_owned(),
            },
        }
    }
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGTERM => "SIGTERM",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        _ => "signal",
    }
}

/// Runs `command` to completion (or to its time limit) with `stdin` as its input.
///
/// `Err` only when the child cannot be started: everything the child itself does is reported
/// in `Finished`.
pub fn run(command: &mut Command, stdin: &[u8], limits: &Limits) -> io::Result<Finished> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A group of its own, so the time limit ends grandchildren (build scripts, rayon pools,
    // daemons) too.
    command.process_group(0);
    if let Some(bytes) = limits.address_space {
        // SAFETY: between fork and exec only async-signal-safe calls are allowed; setrlimit is one.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let start = Instant::now();
    let mut child = command.spawn()?;
    let group = child.id() as i32;

    let input = stdin.to_vec();
    let mut child_stdin = child.stdin.take().expect("stdin is piped");
    // A child that never reads its input must not block us: write from a thread, ignore EPIPE.
    let writer = thread::spawn(move || {
        let _ = child_stdin.write_all(&input);
    });
    let stdout = capture(child.stdout.take().expect("stdout is piped"));
    let stderr = capture(child.stderr.take().expect("stderr is piped"));

    let status = wait_with_deadline(&mut child, limits.timeout.map(|t| start + t))?;
    let wall = start.elapsed();
    // Whatever the child left running in its group goes with it.
    kill_group(group);
    if status.is_none() {
        let _ = child.wait();
    }
    drop(writer);
    let grace = Duration::from_secs(2);
    Ok(Finished { status, stdout: stdout.finish(grace), stderr: stderr.finish(grace), wall })
}

/// A stream being read on its own thread.
struct Capture {
    kept: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Capture {
    /// What was read, waiting at most `grace` for the end of the stream: a process that left
    /// the group (setsid) may hold the pipe open forever, and must not hang the caller.
    fn finish(self, grace: Duration) -> Vec<u8> {
        let _ = self.done.recv_timeout(grace);
        std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn capture(mut stream: impl Read + Send + 'static) -> Capture {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let (tx, done) = mpsc::channel();
    let sink = Arc::clone(&kept);
    thread::spawn(move || {
        let mut buf = [0u8; 64 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
                    let room = MAX_CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(());
    });
    Capture { kept, done }
}

fn wait_with_deadline(child: &mut Child, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Sends SIGKILL to every process of group `group`.
pub fn kill_group(group: i32) {
    // SAFETY: kill has no memory-safety preconditions; a group that is already gone gives ESRCH.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}
