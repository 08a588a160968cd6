//! The sandbox an agent runs in.
//!
//! With [bubblewrap](https://github.com/containers/bubblewrap) (`bwrap`), an agent sees a
//! filesystem built from an allow-list, nothing else of the host:
//!
//! | what                                                        | how                     |
//! |-------------------------------------------------------------|-------------------------|
//! | its workdir (also the cwd)                                  | read-write, same path   |
//! | [`SandboxSpec::read_only`] (public data, the `score` client) | read-only, same path    |
//! | [`SandboxSpec::read_write`] (the scoring socket's directory) | read-write, same path   |
//! | `/usr`, `/bin`, `/lib*`, `/sbin` and a few `/etc` files      | read-only               |
//! | the Rust toolchain: `$RUSTUP_HOME`, `$CARGO_HOME/{bin,registry,git,config.toml}` | read-only |
//! | `/tmp` (with `HOME=/tmp/home`)                              | a private, empty tmpfs  |
//! | `/proc`                                                     | the sandbox's own PIDs  |
//! | `/dev`                                                      | null, zero, random, tty, shm; `/dev/nvidia*` only when [`SandboxSpec::gpu`] |
//! | everything else: `/work`, `$REBENCH_HOME` (asset store, score logs), other trials, `/root`, `/home`, `/sys` (but for GPU runs) | absent |
//!
//! The rest of the root is read-only, so a write outside the workdir, `/tmp` and the
//! read-write extras fails. All namespaces are new (`--unshare-all`): no network unless
//! [`SandboxSpec::network`] (then `--share-net` and `/etc/resolv.conf`), a PID namespace whose
//! init ends every process in it, daemons that called `setsid` included, when the agent exits or
//! its sandbox is killed (`--unshare-pid`, `--die-with-parent`), and a new session (`--new-session`,
//! no terminal injection). bwrap drops every capability, so an agent that is uid 0 inside cannot
//! mount, change its limits or leave.
//!
//! **Process limit.** As root, `RLIMIT_NPROC` is not enforced (the kernel exempts uid 0 and
//! `CAP_SYS_ADMIN`), so a fork bomb is contained by a **pids cgroup** of the sandbox's own:
//! [`command`] creates `rebench-sandbox-<pidns>-<pid>-<n>` under the harness's own cgroup (v2 when the
//! `pids` controller is available there, else the v1 `pids` hierarchy), sets `pids.max`, and the
//! child joins it before it execs (so bwrap and everything it starts are counted). The same cgroup
//! tracks the whole process tree: when the [`Sandboxed`] value is dropped, whatever is still in it
//! is killed and the cgroup removed. Where no pids cgroup can be created, a non-root harness falls
//! back to `RLIMIT_NPROC` (set to the user's current task count plus the limit, since the count is
//! per user); root with no writable cgroup gets no process limit, which
//! [`Sandboxed::process_limit`] says. Both count threads as well as processes.
//!
//! **Memory:** [`Limits::memory`] puts the sandbox in a memory cgroup of its own (made like the
//! pids one, v2 or v1): it counts resident memory, not address space, so it does not break CUDA;
//! past it the kernel's OOM killer ends a process of the sandbox, never the harness.
//!
//! **Other limits:** open files (`RLIMIT_NOFILE`), no core dumps (`RLIMIT_CORE` 0) and, only when
//! asked, address space (`RLIMIT_AS`, which breaks CUDA's large virtual reservations: leave it
//! unset for GPU variants).
//!
//! **Unsandboxed** ([`Isolation::Unsandboxed`], only with the user's explicit consent): the same
//! clean environment, limits and cgroup, its own process group, cwd = workdir, and nothing else;
//! the caller shows [`what_unsandboxed_gives_up`].
//!
//! Either way the child also gets `PR_SET_PDEATHSIG = SIGKILL`: if the harness dies, its agents
//! die with it. The signal follows the *thread* that spawned the child, so spawn from a thread
//! that lives as long as the agent (as [`rebench_scoring::subprocess::run`] does).
//!
//! ```no_run
//! # use rebench_harness::sandbox::{self, SandboxSpec};
//! # fn main() -> anyhow::Result<()> {
//! let isolation = sandbox::detect()?; // or Isolation::Unsandboxed, with the user's explicit flag
//! let spec = SandboxSpec::new("/runs/r1/trials/t1/workdir");
//! let argv = vec!["sh".to_owned(), "-c".to_owned(), "cargo build --offline".to_owned()];
//! let mut sandboxed = sandbox::command(&spec, &isolation, &argv);
//! let limits = rebench_scoring::subprocess::Limits { timeout: Some(std::time::Duration::from_secs(60)), address_space: None };
//! let finished = rebench_scoring::subprocess::run(&mut sandboxed, b"", &limits)?;
//! drop(sandboxed); // ends anything left in the sandbox and removes its cgroup
//! # let _ = finished; Ok(()) }
//! ```

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where `HOME` points inside a bubblewrap sandbox (on its private `/tmp`).
pub const SANDBOX_HOME: &str = "/tmp/home";

/// The environment variable that tells the agent how it is isolated: `bubblewrap` or `none`.
pub const ISOLATION_VAR: &str = "REBENCH_SANDBOX";

/// What an agent may see and use.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// Read-write, mounted at the same path; the agent's working directory.
    pub workdir: PathBuf,
    /// Extra read-only binds at the same path (public data, the `score` client, toolchain
    /// extras). Files or directories; a missing one makes bwrap fail at start, loudly.
    pub read_only: Vec<PathBuf>,
    /// Extra read-write binds at the same path (e.g. the directory holding the scoring socket).
    pub read_write: Vec<PathBuf>,
    /// Whether the agent may reach the network. Off: a network namespace with only a loopback
    /// of its own, no `/etc/resolv.conf`, and `CARGO_NET_OFFLINE=true`.
    pub network: bool,
    /// Whether `/dev/nvidia*` (and, for the driver's libraries, a read-only `/sys`) are bound.
    pub gpu: bool,
    /// Environment variables set inside, over the base environment (see [`base_env`]); they
    /// win over it, `PATH` included.
    pub env: Vec<(String, String)>,
    /// Directories put in front of `PATH`. Only on `PATH`: bind them with `read_only` too.
    pub path_prefix: Vec<PathBuf>,
    pub limits: Limits,
}

impl SandboxSpec {
    /// A sandbox for `workdir` with no extras, no network, no GPU and [`Limits::default`].
    pub fn new(workdir: impl Into<PathBuf>) -> SandboxSpec {
        SandboxSpec {
            workdir: workdir.into(),
            read_only: Vec::new(),
            read_write: Vec::new(),
            network: false,
            gpu: false,
            env: Vec::new(),
            path_prefix: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Resource limits for everything in a sandbox. `None` is no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tasks (processes and threads) alive at once in the sandbox: a pids cgroup, or
    /// `RLIMIT_NPROC` where that is all there is (see the module docs).
    pub max_processes: Option<u64>,
    /// `RLIMIT_NOFILE` (soft and hard), capped at the harness's own hard limit.
    pub max_open_files: Option<u64>,
    /// `RLIMIT_AS` in bytes, per process. Breaks CUDA: leave it unset for GPU variants.
    pub address_space: Option<u64>,
    /// Memory of the whole sandbox in bytes, as a memory cgroup counts it (resident pages, not
    /// address space, so CUDA's reservations are fine): past it the kernel's OOM killer ends a
    /// process of the sandbox, never the harness. Not enforced where no memory cgroup can be
    /// made ([`Sandboxed::memory_limit`] says).
    pub memory: Option<u64>,
}

impl Default for Limits {
    /// 4096 tasks, 4096 open files, no address-space or memory limit.
    fn default() -> Limits {
        Limits { max_processes: Some(4096), max_open_files: Some(4096), address_space: None, memory: None }
    }
}

/// How agents are isolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap, at this path, probed to work.
    Bubblewrap(PathBuf),
    /// No sandbox: only a clean environment, limits and a process group. Only with the user's
    /// explicit consent; see [`what_unsandboxed_gives_up`].
    Unsandboxed,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Isolation::Bubblewrap(path) => write!(f, "bubblewrap ({})", path.display()),
            Isolation::Unsandboxed => f.write_str("none (unsandboxed)"),
        }
    }
}

/// Why no working bubblewrap was found; its `Display` is the reason and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Unavailable {}

/// Finds a *working* bubblewrap: `bwrap` on `PATH` (or in `/usr/bin`, `/usr/local/bin`), probed
/// by running `true` in a sandbox made with the flags [`command`] uses. The error says why not
/// and what to install.
pub fn detect() -> Result<Isolation, Unavailable> {
    let Some(bwrap) = find_bwrap() else {
        return Err(Unavailable {
            reason: "bubblewrap is not installed (no `bwrap` on PATH); install it with scripts/install-sandbox.sh \
                     or `apt-get install bubblewrap`"
                .to_owned(),
        });
    };
    probe(&bwrap)?;
    Ok(Isolation::Bubblewrap(bwrap))
}

/// The text shown when a user runs agents without a sandbox: what that gives up.
pub fn what_unsandboxed_gives_up() -> &'static str {
    "without bubblewrap the agent runs as you, with your rights: it can read everything you can \
     (the protected asset store with held-out data and reference answers, score logs, other \
     trials' workdirs, your home and credentials) and write everything you can (its own score \
     logs, the harness, other trials, your files); the network is not blocked (CARGO_NET_OFFLINE \
     is only advice to cargo); GPUs are not hidden from CPU variants; a daemon it starts with \
     setsid is ended only where the harness can create a pids cgroup, which is also the only \
     process limit for root. Its scores are not comparable with sandboxed runs: use it for \
     trusted agents and debugging only."
}

/// A sandboxed command, ready to spawn: dereferences to the [`Command`].
///
/// It owns the sandbox's pids cgroup, so keep it alive until the agent is done: dropping it
/// ends every process still in the sandbox (daemons included) and removes the cgroup. Spawning
/// from a temporary (`sandbox::command(..).spawn()`) would kill the agent at once.
#[must_use = "dropping the sandbox ends every process in it"]
#[derive(Debug)]
pub struct Sandboxed {
    command: Command,
    cgroup: Option<Cgroup>,
    process_limit: ProcessLimit,
    /// The memory cgroup, or why there is none when a limit was asked for.
    memory: Result<Option<Cgroup>, String>,
}

impl Sandboxed {
    /// How [`Limits::max_processes`] is enforced for this sandbox.
    pub fn process_limit(&self) -> &ProcessLimit {
        &self.process_limit
    }

    /// The memory cgroup enforcing [`Limits::memory`] (`Ok(None)` when none was asked for), or
    /// why it could not be made.
    pub fn memory_limit(&self) -> Result<Option<&Path>, &str> {
        match &self.memory {
            Ok(cgroup) => Ok(cgroup.as_ref().map(|c| c.dir.as_path())),
            Err(why) => Err(why),
        }
    }

    /// Kills every process still in the sandbox's cgroup (daemons included) and waits, up to a
    /// few seconds, until they are gone. Without a cgroup this does nothing: bubblewrap's PID
    /// namespace ends the tree when its init is killed with the process group.
    pub fn end_all(&self) {
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all(Duration::from_secs(5));
        }
    }
}

impl Deref for Sandboxed {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.command
    }
}

impl DerefMut for Sandboxed {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.command
    }
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        for cgroup in [self.cgroup.take(), self.memory.as_mut().ok().and_then(Option::take)].into_iter().flatten() {
            cgroup.kill_all(Duration::from_secs(5));
            cgroup.remove(Duration::from_secs(2));
        }
    }
}

/// How the process limit of a sandbox is enforced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessLimit {
    /// No limit was asked for.
    Unlimited,
    /// `pids.max` of a cgroup of the sandbox's own: an exact cap on the sandbox's tasks.
    Cgroup { dir: PathBuf, max: u64 },
    /// `RLIMIT_NPROC`, counted over every task of the (non-root) user: `max` is the user's task
    /// count when the sandbox was made plus the limit asked for.
    Rlimit { max: u64 },
    /// Asked for, but nothing here can enforce it; the reason.
    NotEnforced(String),
}

impl fmt::Display for ProcessLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessLimit::Unlimited => f.write_str("no process limit"),
            ProcessLimit::Cgroup { dir, max } => write!(f, "pids cgroup {} (pids.max = {max})", dir.display()),
            ProcessLimit::Rlimit { max } => write!(f, "RLIMIT_NPROC = {max} (counted over the whole user)"),
            ProcessLimit::NotEnforced(why) => write!(f, "process limit NOT enforced: {why}"),
        }
    }
}

/// The Rust toolchain the harness itself uses: `$CARGO_HOME` (else `~/.cargo`) and
/// `$RUSTUP_HOME` (else `~/.rustup`), made absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Toolchain {
    pub cargo_home: PathBuf,
    pub rustup_home: PathBuf,
}

impl Toolchain {
    pub fn from_env() -> Toolchain {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        let dir = |var: &str, default: &str| {
            let path = std::env::var_os(var).filter(|v| !v.is_empty()).map_or_else(|| home.join(default), PathBuf::from);
            std::path::absolute(&path).unwrap_or(path)
        };
        Toolchain { cargo_home: dir("CARGO_HOME", ".cargo"), rustup_home: dir("RUSTUP_HOME", ".rustup") }
    }
}

/// The environment every sandbox starts from (before [`SandboxSpec::env`]): `PATH` (the
/// `path_prefix`, cargo's bin, the system), `HOME`, `CARGO_HOME`, `RUSTUP_HOME`,
/// `CARGO_TARGET_DIR` (`<workdir>/target`), `CARGO_NET_OFFLINE=true` without network, `TMPDIR`,
/// `LANG`, and [`ISOLATION_VAR`]. Nothing of the harness's own environment leaks in.
pub fn base_env(spec: &SandboxSpec, isolation: &Isolation) -> Vec<(String, String)> {
    let toolchain = Toolchain::from_env();
    let workdir = absolute(&spec.workdir);
    let mut path: Vec<String> = spec.path_prefix.iter().map(|p| absolute(p).display().to_string()).collect();
    path.push(toolchain.cargo_home.join("bin").display().to_string());
    path.extend(["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(String::from));
    let (home, tmp, which) = match isolation {
        Isolation::Bubblewrap(_) => (SANDBOX_HOME.to_owned(), "/tmp".to_owned(), "bubblewrap"),
        Isolation::Unsandboxed => (
            std::env::var("HOME").unwrap_or_else(|_| "/tmp".to_owned()),
            std::env::var("TMPDIR").unwrap_or_else(|_| "/tmp".to_owned()),
            "none",
        ),
    };
    let mut env = vec![
        ("PATH".to_owned(), path.join(":")),
        ("HOME".to_owned(), home),
        ("TMPDIR".to_owned(), tmp),
        ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ("CARGO_HOME".to_owned(), toolchain.cargo_home.display().to_string()),
        ("RUSTUP_HOME".to_owned(), toolchain.rustup_home.display().to_string()),
        ("CARGO_TARGET_DIR".to_owned(), workdir.join("target").display().to_string()),
        (ISOLATION_VAR.to_owned(), which.to_owned()),
    ];
    if !spec.network {
        env.push(("CARGO_NET_OFFLINE".to_owned(), "true".to_owned()));
    }
    env
}

/// The command that runs `argv` (program first, looked up on the sandbox's `PATH`) in the
/// sandbox `spec` describes. Starting it cannot fail here: a missing bind or a broken bwrap
/// shows when it is spawned (bwrap says which path on stderr).
///
/// The command has a clean environment ([`base_env`] + `spec.env`), its own process group,
/// the limits of `spec.limits`, and `PR_SET_PDEATHSIG`. With bubblewrap, killing its process
/// group (bwrap and the sandbox's init) ends every process in the sandbox.
pub fn command(spec: &SandboxSpec, isolation: &Isolation, argv: &[String]) -> Sandboxed {
    let mut command = match isolation {
        Isolation::Bubblewrap(bwrap) => {
            let mut command = Command::new(bwrap);
            command.args(bwrap_args(spec, &Toolchain::from_env()));
            command.arg("--").args(argv);
            // bwrap's own cwd does not matter (it chdirs inside); the host's may not exist there.
            command.current_dir("/");
            command
        }
        Isolation::Unsandboxed => {
            let mut command = Command::new(argv.first().map_or("true", String::as_str));
            command.args(argv.iter().skip(1));
            command.current_dir(&spec.workdir);
            command
        }
    };
    command.env_clear();
    let mut env = base_env(spec, isolation);
    for (key, value) in &spec.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    command.envs(env);
    command.process_group(0);

    let (cgroup, process_limit, nproc) = process_limit(spec.limits.max_processes);
    let (cgroup, procs) = cgroup.unzip();
    let (memory, memory_procs) = match spec.limits.memory {
        None => (Ok(None), None),
        Some(bytes) => match Cgroup::create(&MEMORY, bytes) {
            Ok((cgroup, procs)) => (Ok(Some(cgroup)), Some(OwnedFd::from(procs))),
            Err(why) => (Err(why), None),
        },
    };
    let setup = ChildSetup {
        parent: std::process::id() as libc::pid_t,
        cgroup_procs: procs.map(OwnedFd::from),
        memory_procs,
        nofile: spec.limits.max_open_files.map(capped_nofile),
        address_space: spec.limits.address_space,
        nproc,
    };
    // SAFETY: the closure only makes async-signal-safe system calls (prctl, getppid, write,
    // setrlimit) on values prepared before the fork; it allocates nothing.
    unsafe {
        command.pre_exec(move || setup.apply());
    }
    Sandboxed { command, cgroup, process_limit, memory }
}

/// The bwrap arguments (before `--` and the command) for `spec`.
fn bwrap_args(spec: &SandboxSpec, toolchain: &Toolchain) -> Vec<OsString> {
    let mut args = base_args(spec.network, spec.gpu);

    args.bind("--ro-bind-try", &toolchain.rustup_home);
    for sub in ["bin", "registry", "git", "config.toml", "config"] {
        args.bind("--ro-bind-try", &toolchain.cargo_home.join(sub));
    }

    // The caller's binds, parents before children (a read-only directory inside the workdir
    // stays read-only; a workdir inside a read-only directory stays writable).
    let mut binds: Vec<(&str, PathBuf)> = vec![("--bind", absolute(&spec.workdir))];
    binds.extend(spec.read_only.iter().map(|p| ("--ro-bind", absolute(p))));
    binds.extend(spec.read_write.iter().map(|p| ("--bind", absolute(p))));
    binds.sort_by_key(|(_, path)| path.components().count());
    for (flag, path) in &binds {
        args.bind(flag, path);
    }
    args.flags(&["--remount-ro", "/"]);
    args.flag("--chdir");
    args.flag(absolute(&spec.workdir));
    args.0
}

/// Namespaces, the system, `/proc`, `/dev` and the private `/tmp`: what every sandbox has.
fn base_args(network: bool, gpu: bool) -> Args {
    let mut args = Args::default();
    args.flags(&["--unshare-all", "--unshare-pid", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    if network {
        args.flags(&["--share-net"]);
    }
    args.flags(&["--hostname", "rebench-sandbox"]);
    system_binds(&mut args, network);
    args.flags(&["--proc", "/proc", "--dev", "/dev"]);
    if gpu {
        gpu_binds(&mut args);
    }
    args.flags(&["--tmpfs", "/tmp", "--dir", SANDBOX_HOME]);
    args
}

/// The system, read-only: `/usr`, the `/bin`, `/sbin` and `/lib*` links (or directories), and the
/// few `/etc` files a toolchain needs. `/etc/resolv.conf` only with network.
fn system_binds(args: &mut Args, network: bool) {
    args.bind("--ro-bind", Path::new("/usr"));
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let path = Path::new(top);
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(path) {
                    args.flag("--symlink");
                    args.flag(target);
                    args.flag(path);
                }
            }
            Ok(meta) if meta.is_dir() => args.bind("--ro-bind", path),
            _ => {}
        }
    }
    let mut etc = vec![
        "/etc/alternatives",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/host.conf",
        "/etc/localtime",
        "/etc/os-release",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/pki",
    ];
    if network {
        etc.extend(["/etc/resolv.conf", "/etc/gai.conf"]);
    }
    for path in etc {
        args.bind("--ro-bind-try", Path::new(path));
    }
}

/// `/dev/nvidia*` (device nodes and the `nvidia-caps` directory) and `/sys`, read-only, which
/// the driver's libraries read.
fn gpu_binds(args: &mut Args) {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().as_bytes().starts_with(b"nvidia"))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_char_device() || t.is_dir()))
        .map(|entry| entry.path())
        .collect();
    nodes.sort();
    for node in &nodes {
        args.bind("--dev-bind", node);
    }
    args.bind("--ro-bind-try", Path::new("/sys"));
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, arg: impl Into<OsString>) {
        self.0.push(arg.into());
    }

    fn flags(&mut self, args: &[&str]) {
        self.0.extend(args.iter().map(OsString::from));
    }

    /// `flag path path`: a bind at the same path.
    fn bind(&mut self, flag: &str, path: &Path) {
        self.0.extend([OsString::from(flag), path.as_os_str().to_owned(), path.as_os_str().to_owned()]);
    }
}

/// `path` made absolute against the current directory and lexically normalized (no `.`/`..`),
/// symlinks kept: the sandbox shows it at the path the caller named.
fn absolute(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in abs.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn find_bwrap() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    on_path
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("bwrap"))
        .find(|path| path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Runs `true` in a sandbox made like [`command`]'s (namespaces, system binds, proc, dev, tmpfs,
/// read-only root).
fn probe(bwrap: &Path) -> Result<(), Unavailable> {
    let mut args = base_args(false, false);
    args.flags(&["--remount-ro", "/", "--chdir", "/", "--", "true"]);
    let mut command = Command::new(bwrap);
    command.args(args.0);
    command.env_clear().env("PATH", "/usr/bin:/bin").current_dir("/");
    let limits = rebench_scoring::subprocess::Limits { timeout: Some(Duration::from_secs(20)), address_space: None };
    match rebench_scoring::subprocess::run(&mut command, b"", &limits) {
        Err(err) => Err(Unavailable { reason: format!("cannot run {}: {err}", bwrap.display()) }),
        Ok(finished) if finished.success() => Ok(()),
        Ok(finished) => Err(Unavailable {
            reason: format!(
                "{} is installed but cannot make a sandbox here (a probe {}: {}); it needs user namespaces \
                 (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, no seccomp or \
                 AppArmor rule against them) or root with CAP_SYS_ADMIN",
                bwrap.display(),
                finished.describe_exit(),
                finished.stderr_tail(3).trim()
            ),
        }),
    }
}

/// What the child does between fork and exec.
struct ChildSetup {
    parent: libc::pid_t,
    /// `cgroup.procs` of the sandbox's pids cgroup, opened (close-on-exec) before the fork.
    cgroup_procs: Option<OwnedFd>,
    /// The same for its memory cgroup.
    memory_procs: Option<OwnedFd>,
    nofile: Option<u64>,
    address_space: Option<u64>,
    nproc: Option<u64>,
}

impl ChildSetup {
    fn apply(&self) -> io::Result<()> {
        // SAFETY (all blocks below): plain system calls on integers and a valid file
        // descriptor; async-signal-safe, no allocation.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != self.parent {
                return Err(io::Error::other("the harness exited before the agent started"));
            }
        }
        for fd in [&self.cgroup_procs, &self.memory_procs].into_iter().flatten() {
            // "0" is the writing process itself; the cgroup then holds everything it starts.
            // SAFETY: see above.
            if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        set_rlimit(libc::RLIMIT_CORE, 0)?;
        if let Some(n) = self.nofile {
            set_rlimit(libc::RLIMIT_NOFILE, n)?;
        }
        if let Some(bytes) = self.address_space {
            set_rlimit(libc::RLIMIT_AS, bytes)?;
        }
        if let Some(n) = self.nproc {
            set_rlimit(libc::RLIMIT_NPROC, n)?;
        }
        Ok(())
    }
}

/// The type of `setrlimit`'s resource argument, which differs between C libraries.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn set_rlimit(resource: Resource, value: u64) -> io::Result<()> {
    let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: setrlimit reads the struct it is given; async-signal-safe.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn get_rlimit(resource: Resource) -> Option<libc::rlimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given.
    (unsafe { libc::getrlimit(resource, &mut limit) } == 0).then_some(limit)
}

/// `n`, but no more than the current hard limit (which only root could raise).
fn capped_nofile(n: u64) -> u64 {
    get_rlimit(libc::RLIMIT_NOFILE).map_or(n, |l| n.min(l.rlim_max))
}

/// The pids cgroup (or `RLIMIT_NPROC` value) that enforces `max`.
fn process_limit(max: Option<u64>) -> (Option<(Cgroup, File)>, ProcessLimit, Option<u64>) {
    let Some(max) = max else { return (None, ProcessLimit::Unlimited, None) };
    let cgroup_error = match Cgroup::create(&PIDS, max) {
        Ok((cgroup, procs)) => {
            let limit = ProcessLimit::Cgroup { dir: cgroup.dir.clone(), max };
            return (Some((cgroup, procs)), limit, None);
        }
        Err(err) => err,
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let why = format!("running as root, where RLIMIT_NPROC does not apply, and no pids cgroup: {cgroup_error}");
        return (None, ProcessLimit::NotEnforced(why), None);
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let nproc = user_tasks(uid) + max;
    (None, ProcessLimit::Rlimit { max: nproc }, Some(nproc))
}

/// Tasks (threads) of processes whose real uid is `uid`, as `/proc` shows them.
fn user_tasks(uid: libc::uid_t) -> u64 {
    let mut count = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
        if field("Uid:").split_whitespace().next() == Some(uid.to_string().as_str()) {
            count += field("Threads:").parse::<u64>().unwrap_or(1);
        }
    }
    count
}

/// A cgroup of one sandbox's own (pids or memory).
#[derive(Debug)]
struct Cgroup {
    dir: PathBuf,
}

/// A cgroup controller and the file that holds its limit (cgroup v2's, then v1's).
struct Controller {
    name: &'static str,
    limit_files: [&'static str; 2],
}

const PIDS: Controller = Controller { name: "pids", limit_files: ["pids.max", "pids.max"] };
const MEMORY: Controller = Controller { name: "memory", limit_files: ["memory.max", "memory.limit_in_bytes"] };

impl Controller {
    /// The limit file present in `dir`, if any.
    fn limit_file(&self, dir: &Path) -> Option<PathBuf> {
        self.limit_files.iter().map(|f| dir.join(f)).find(|p| p.exists())
    }
}

static CGROUP_SEQ: AtomicU64 = AtomicU64::new(0);

const CGROUP_PREFIX: &str = "rebench-sandbox-";

/// This process's PID namespace (the inode number of `/proc/self/ns/pid`), so that a harness
/// only judges the liveness of cgroup owners whose PIDs it can see.
fn pid_namespace() -> String {
    let link = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    link.to_string_lossy().chars().filter(char::is_ascii_digit).collect()
}

/// Removes the sandbox cgroups under `parent` made in PID namespace `ns` by a process that no
/// longer exists. `rmdir` refuses a cgroup that still holds processes, so nothing live goes.
fn remove_stale(parent: &Path, ns: &str) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(CGROUP_PREFIX)) else { continue };
        let mut parts = rest.split('-');
        let (Some(owner_ns), Some(pid)) = (parts.next(), parts.next()) else { continue };
        if owner_ns == ns && !ns.is_empty() && pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

impl Cgroup {
    /// Creates `rebench-sandbox-<pidns>-<pid>-<n>` with its `controller` limit set to `limit`
    /// under this process's own cgroup: cgroup v2 where the controller is on there, else the
    /// controller's v1 hierarchy. Returns it with its `cgroup.procs` opened (close-on-exec) for
    /// the child to join. Empty cgroups left by a harness that was killed (whose drop never ran)
    /// are removed first.
    fn create(controller: &Controller, limit: u64) -> Result<(Cgroup, File), String> {
        let ns = pid_namespace();
        let name = format!("{CGROUP_PREFIX}{ns}-{}-{}", std::process::id(), CGROUP_SEQ.fetch_add(1, Ordering::Relaxed));
        let mut tried = Vec::new();
        for parent in own_cgroup_dirs(controller.name) {
            remove_stale(&parent, &ns);
            let dir = parent.join(&name);
            match Cgroup::create_at(controller, &parent, &dir, limit) {
                Ok(cgroup) => return Ok(cgroup),
                Err(err) => tried.push(format!("{}: {err}", parent.display())),
            }
        }
        if tried.is_empty() {
            return Err(format!("no cgroup v2 or v1 {} hierarchy is mounted", controller.name));
        }
        Err(format!("cannot make a {} cgroup ({})", controller.name, tried.join("; ")))
    }

    fn create_at(controller: &Controller, parent: &Path, dir: &Path, limit: u64) -> io::Result<(Cgroup, File)> {
        std::fs::create_dir(dir)?;
        let made = (|| {
            if controller.limit_file(dir).is_none() {
                // cgroup v2: the controller must be on in the parent's subtree_control.
                let controllers = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
                if !controllers.split_whitespace().any(|c| c == controller.name) {
                    return Err(io::Error::other(format!("no {} controller here", controller.name)));
                }
                OpenOptions::new()
                    .write(true)
                    .open(parent.join("cgroup.subtree_control"))?
                    .write_all(format!("+{}", controller.name).as_bytes())?;
            }
            let limit_file = controller
                .limit_file(dir)
                .ok_or_else(|| io::Error::other(format!("the {} controller did not appear", controller.name)))?;
            OpenOptions::new().write(true).open(limit_file)?.write_all(limit.to_string().as_bytes())?;
            let procs = OpenOptions::new().write(true).open(dir.join("cgroup.procs"))?;
            Ok((Cgroup { dir: dir.to_owned() }, procs))
        })();
        if made.is_err() {
            let _ = std::fs::remove_dir(dir);
        }
        made
    }

    fn pids(&self) -> Vec<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// SIGKILLs everything in the cgroup until it is empty (or `patience` runs out).
    fn kill_all(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        // cgroup v2 (Linux 5.14+) kills the whole cgroup atomically.
        if let Ok(mut kill) = OpenOptions::new().write(true).open(self.dir.join("cgroup.kill")) {
            let _ = kill.write_all(b"1");
        }
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() >= deadline {
                return;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn remove(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        while std::fs::remove_dir(&self.dir).is_err() && self.dir.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The directories of this process's own cgroups that may take a child for `controller`: the v2
/// one first, then the controller's v1 one.
fn own_cgroup_dirs(controller: &str) -> Vec<PathBuf> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // (fstype, super options, root, mount point) of every cgroup mount.
    let mounts: Vec<(String, String, String, String)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let (fstype, opts) = (*post.first()?, *post.get(2)?);
            if !fstype.starts_with("cgroup") {
                return None;
            }
            Some((fstype.to_owned(), opts.to_owned(), unescape(pre.get(3)?), unescape(pre.get(4)?)))
        })
        .collect();
    let place = |root: &str, mount_point: &str, path: &str| -> Option<PathBuf> {
        let rel = if root == "/" { path } else { path.strip_prefix(root)? };
        Some(Path::new(mount_point).join(rel.trim_start_matches('/')))
    };
    let mut dirs = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if controllers.is_empty() {
            let found = mounts.iter().filter(|m| m.0 == "cgroup2").find_map(|m| place(&m.2, &m.3, path));
            dirs.splice(0..0, found);
        } else if controllers.split(',').any(|c| c == controller) {
            let found = mounts
                .iter()
                .filter(|m| m.0 == "cgroup" && m.1.split(',').any(|o| o == controller))
                .find_map(|m| place(&m.2, &m.3, path));
            dirs.extend(found);
        }
    }
    dirs
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push((bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
