//! Compiling and running an answer (a Rust program the scaffold returned) under bubblewrap, as
//! the harness sandboxes agents: new namespaces (no network), the system and the Rust sysroot
//! read-only, a private `/tmp`, and only the answer's own directory besides; a wall-clock limit
//! that kills the sandbox, and an address-space limit.
//!
//! The answer is code the agent's scaffold chose, so it runs with nothing of the scorer's
//! within reach: no harness home, no protected store, no environment (the endpoint's key).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use rebench_scoring::subprocess::{self, Finished};

/// The limits an answer is compiled and run under.
#[derive(Clone, Debug)]
pub struct JudgeLimits {
    pub compile_time: Duration,
    /// RLIMIT_AS of rustc.
    pub compile_memory: u64,
    /// Per test.
    pub run_time: Duration,
    /// RLIMIT_AS of the program.
    pub run_memory: u64,
}

/// rustc and bubblewrap, found and probed.
#[derive(Clone, Debug)]
pub struct Judge {
    sysroot: PathBuf,
    bwrap: PathBuf,
}

/// Why an answer failed a test, or `Ok` with what it printed.
pub type Run = Result<String, String>;

impl Judge {
    /// Finds the toolchain (`$RUSTC`, else `rustc`, and its sysroot) and checks that bubblewrap
    /// can make a sandbox here. `Err`: the machine cannot judge (never the solution's fault).
    pub fn new() -> anyhow::Result<Judge> {
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(&rustc).args(["--print", "sysroot"]).output().with_context(|| format!("cannot run {}", rustc.to_string_lossy()))?;
        anyhow::ensure!(out.status.success(), "`rustc --print sysroot` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        anyhow::ensure!(sysroot.join("bin/rustc").is_file(), "no rustc in the sysroot {}", sysroot.display());
        let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("the endpoint variant runs answers under bubblewrap (bwrap), which is not installed")?;
        let judge = Judge { sysroot, bwrap };
        let probe = judge.command(None, &[], Path::new("/"), &["/bin/true".into()]);
        let finished = run(probe, b"", Duration::from_secs(20), None)?;
        anyhow::ensure!(
            finished.success(),
            "bubblewrap cannot make a sandbox here ({}: {}); it needs user namespaces or root",
            finished.describe_exit(),
            finished.stderr_tail(3).trim()
        );
        Ok(judge)
    }

    /// A sandboxed command: `rw` (if any) writable, `ro` read-only, the system and sysroot
    /// read-only, the working directory `cwd`.
    fn command(&self, rw: Option<&Path>, ro: &[&Path], cwd: &Path, argv: &[OsString]) -> Command {
        let mut c = Command::new(&self.bwrap);
        c.args(["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "rebench-judge"]);
        c.args(["--ro-bind", "/usr", "/usr"]);
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            match std::fs::symlink_metadata(top) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(top) {
                        c.arg("--symlink").arg(target).arg(top);
                    }
                }
                Ok(m) if m.is_dir() => {
                    c.args(["--ro-bind", top, top]);
                }
                _ => {}
            }
        }
        for etc in ["/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"] {
            c.args(["--ro-bind-try", etc, etc]);
        }
        c.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        c.arg("--ro-bind").arg(&self.sysroot).arg(&self.sysroot);
        for p in ro {
            c.arg("--ro-bind").arg(p).arg(p);
        }
        if let Some(p) = rw {
            c.arg("--bind").arg(p).arg(p);
        }
        c.arg("--remount-ro").arg("/").arg("--chdir").arg(cwd).arg("--").args(argv);
        c.env_clear().env("PATH", "/usr/bin:/bin").env("HOME", "/tmp").env("TMPDIR", "/tmp").env("LANG", "C.UTF-8");
        c.current_dir("/");
        c
    }

    /// Compiles `source` in `dir` (made empty first): the binary, or why it does not compile.
    pub fn compile(&self, source: &str, dir: &Path, limits: &JudgeLimits) -> anyhow::Result<Result<PathBuf, String>> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = std::path::absolute(dir)?;
        std::fs::write(dir.join("main.rs"), source)?;
        let argv: Vec<OsString> = [
            self.sysroot.join("bin/rustc").into_os_string(),
            "--edition".into(),
            "2021".into(),
            "-C".into(),
            "opt-level=1".into(),
            "-C".into(),
            "debuginfo=0".into(),
            "--crate-name".into(),
            "main".into(),
            "-o".into(),
            "main".into(),
            "main.rs".into(),
        ]
        .into();
        let finished = run(self.command(Some(&dir), &[], &dir, &argv), b"", limits.compile_time, Some(limits.compile_memory))?;
        if finished.success() && dir.join("main").is_file() {
            return Ok(Ok(dir.join("main")));
        }
        let errors: Vec<&str> = finished.stderr.split(|&b| b == b'\n').filter_map(|l| std::str::from_utf8(l).ok()).filter(|l| l.starts_with("error")).take(3).collect();
        let why = if finished.timed_out() {
            format!("rustc ran past {:.0} s", limits.compile_time.as_secs_f64())
        } else if errors.is_empty() {
            format!("rustc {}: {}", finished.describe_exit(), finished.stderr_tail(3).trim())
        } else {
            errors.join("; ")
        };
        Ok(Err(format!("the program does not compile: {why}")))
    }

    /// Runs a compiled answer on one test's `input`: what it printed, or how it failed.
    pub fn run(&self, binary: &Path, input: &str, limits: &JudgeLimits) -> anyhow::Result<Run> {
        let dir = binary.parent().context("the binary has no directory")?;
        let finished = run(self.command(None, &[dir], dir, &[binary.as_os_str().to_owned()]), input.as_bytes(), limits.run_time, Some(limits.run_memory))?;
        Ok(if finished.timed_out() {
            Err(format!("ran past the time limit of {:.1} s and was killed", limits.run_time.as_secs_f64()))
        } else if !finished.success() {
            let tail = finished.stderr_tail(2);
            Err(format!("{}{}", finished.describe_exit(), if tail.trim().is_empty() { String::new() } else { format!("; its stderr ends: {}", tail.trim()) }))
        } else {
            Ok(finished.stdout_text())
        })
    }
}

fn run(mut command: Command, stdin: &[u8], timeout: Duration, memory: Option<u64>) -> anyhow::Result<Finished> {
    let limits = subprocess::Limits { timeout: Some(timeout), address_space: memory };
    subprocess::run(&mut command, stdin, &limits).context("cannot start bubblewrap")
}
