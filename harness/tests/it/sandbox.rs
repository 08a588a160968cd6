//! The agent sandbox against a hostile agent: every attempt to reach what it must not fails or
//! is contained, and what it must be able to do (write its workdir, build a crate offline) works.
//!
//! Tests that need bubblewrap skip, saying why, where it is missing; `REBENCH_REQUIRE_SANDBOX=1`
//! (CI) makes that a failure.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rebench_harness::sandbox::{self, Isolation, Limits, ProcessLimit, SandboxSpec};
use rebench_scoring::subprocess::{self, Finished};

fn required() -> bool {
    std::env::var("REBENCH_REQUIRE_SANDBOX").is_ok_and(|v| v == "1")
}

/// A working bubblewrap, or `None` (the test is skipped, loudly) where there is none.
fn bubblewrap() -> Option<Isolation> {
    match sandbox::detect() {
        Ok(isolation) => Some(isolation),
        Err(why) if required() => panic!("REBENCH_REQUIRE_SANDBOX=1 but no sandbox: {why}"),
        Err(why) => {
            eprintln!("SKIPPED: no bubblewrap ({why}); set REBENCH_REQUIRE_SANDBOX=1 to make this a failure");
            None
        }
    }
}

/// A host directory laid out like a harness home and a trial: `workdir/` (the agent's),
/// `home/store/t/cpu/{public,protected}`, `home/scores/`, another trial's workdir, a file
/// outside everything.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    /// In `/tmp`, which the sandbox replaces with a private tmpfs.
    fn new() -> Host {
        Host::in_dir(Path::new("/tmp"))
    }

    /// Under `base`: a workdir outside `/tmp` is what real runs have, and the directories above
    /// it are then part of the sandbox's read-only root.
    fn in_dir(base: &Path) -> Host {
        std::fs::create_dir_all(base).unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        let host = Host { dir };
        for sub in ["workdir", "home/store/t/cpu/public", "home/store/t/cpu/protected", "home/scores/t", "other-trial/workdir"] {
            std::fs::create_dir_all(host.path(sub)).unwrap();
        }
        std::fs::write(host.path("home/store/t/cpu/protected/answers.txt"), "SECRET-ANSWERS\n").unwrap();
        std::fs::write(host.path("home/store/t/cpu/public/train.txt"), "public training data\n").unwrap();
        std::fs::write(host.path("home/scores/t/log.jsonl"), "{\"score\":0.1}\n").unwrap();
        std::fs::write(host.path("other-trial/workdir/notes.txt"), "SECRET-OTHER-TRIAL\n").unwrap();
        std::fs::write(host.path("outside.txt"), "original\n").unwrap();
        host
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn spec(&self) -> SandboxSpec {
        SandboxSpec::new(self.path("workdir"))
    }
}

/// Runs `script` with `sh -c` in the sandbox; the sandbox is dropped (everything left in it
/// ended) before this returns.
fn run(spec: &SandboxSpec, isolation: &Isolation, script: &str, timeout: Duration) -> (Finished, ProcessLimit) {
    let argv = ["sh", "-c", script].map(String::from);
    let mut sandboxed = sandbox::command(spec, isolation, &argv);
    let limit = sandboxed.process_limit().clone();
    let limits = subprocess::Limits { timeout: Some(timeout), address_space: None };
    let finished = subprocess::run(&mut sandboxed, b"", &limits).unwrap();
    drop(sandboxed);
    eprintln!(
        "--- agent {} in {:.2} s\n--- stdout:\n{}--- stderr:\n{}",
        finished.describe_exit(),
        finished.wall.as_secs_f64(),
        finished.stdout_text(),
        finished.stderr_text()
    );
    (finished, limit)
}

/// Host processes whose command line contains `needle` (arguments joined by spaces).
fn host_processes(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits up to `patience` for every host process matching `needle` to be gone.
fn assert_gone(needle: &str, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let left = host_processes(needle);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left on the host: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn protected_store_and_other_trials_are_absent() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let script = format!(
        "cat '{answers}' && echo READ-PROTECTED; ls '{home}' && echo LISTED-HOME; cat '{other}' && echo READ-OTHER; \
         cat '{log}' && echo READ-LOG; echo \"home=[$REBENCH_HOME]\"",
        answers = host.path("home/store/t/cpu/protected/answers.txt").display(),
        home = host.path("home").display(),
        other = host.path("other-trial/workdir/notes.txt").display(),
        log = host.path("home/scores/t/log.jsonl").display(),
    );
    let (finished, _) = run(&host.spec(), &isolation, &script, Duration::from_secs(20));
    let out = finished.stdout_text();
    for leak in ["SECRET", "READ-PROTECTED", "LISTED-HOME", "READ-OTHER", "READ-LOG", "score"] {
        assert!(!out.contains(leak), "{leak} reached the agent: {out}");
    }
    assert!(out.contains("home=[]"), "REBENCH_HOME leaked into the environment: {out}");
    assert!(finished.stderr_text().contains("No such file or directory"), "{}", finished.stderr_text());
}

#[test]
fn writes_outside_the_workdir_fail_and_the_host_is_untouched() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::in_dir(Path::new(env!("CARGO_TARGET_TMPDIR")));
    let host_tmp_dir = tempfile::tempdir().unwrap();
    let host_tmp = host_tmp_dir.path().join("tmp.txt");
    std::fs::write(&host_tmp, "original\n").unwrap();
    let host_home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned()));
    let planted = host_home.join(format!("rebench-sandbox-probe-{}", std::process::id()));
    let toolchain = sandbox::Toolchain::from_env();
    let shared = host.path("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let mut spec = host.spec();
    spec.read_only.push(host.path("home/store/t/cpu/public"));
    spec.read_write.push(shared.clone());
    let attempts = [
        ("outside", host.path("outside.txt")),
        ("host-tmp", host_tmp.clone()),
        ("host-home", planted.clone()),
        ("protected", host.path("home/store/t/cpu/protected/answers.txt")),
        ("public-data", host.path("home/store/t/cpu/public/train.txt")),
        ("public-new", host.path("home/store/t/cpu/public/new.txt")),
        ("registry", toolchain.cargo_home.join("registry/pwned")),
        ("cargo-bin", toolchain.cargo_home.join("bin/pwned")),
        ("rustup", toolchain.rustup_home.join("pwned")),
        ("usr", PathBuf::from("/usr/pwned")),
        ("root", PathBuf::from("/pwned")),
        ("etc", PathBuf::from("/etc/passwd")),
    ];
    let mut script = String::new();
    for (label, path) in &attempts {
        script.push_str(&format!("echo pwned >> '{}' 2>/dev/null && echo WROTE-{label}\n", path.display()));
    }
    script.push_str(&format!("cat '{}' | sed 's/^/PUBLIC:/'\n", host.path("home/store/t/cpu/public/train.txt").display()));
    script.push_str("echo mine > inside.txt && echo WROTE-WORKDIR\n");
    script.push_str(&format!("echo shared > '{}' && echo WROTE-SHARED\n", shared.join("s.txt").display()));
    script.push_str("echo tmp > /tmp/t && echo home > \"$HOME/h\" && echo WROTE-TMP\n");
    let (finished, _) = run(&spec, &isolation, &script, Duration::from_secs(20));
    let out = finished.stdout_text();
    for (label, path) in &attempts {
        // Under the host's /tmp, the directories above a bind (the workdir's, when the target
        // directory is in /tmp) are made on the sandbox's private tmpfs: a write there may
        // succeed, into that tmpfs; the host file is checked below. Anywhere else it fails.
        if path.starts_with("/tmp") && path.parent().is_some_and(|dir| spec.workdir.starts_with(dir)) {
            continue;
        }
        assert!(!out.contains(&format!("WROTE-{label}\n")), "the agent wrote {label}: {out}");
    }
    assert_eq!(std::fs::read_to_string(host.path("outside.txt")).unwrap(), "original\n");
    assert_eq!(std::fs::read_to_string(&host_tmp).unwrap(), "original\n");
    assert_eq!(std::fs::read_to_string(host.path("home/store/t/cpu/public/train.txt")).unwrap(), "public training data\n");
    assert_eq!(std::fs::read_to_string(host.path("home/store/t/cpu/protected/answers.txt")).unwrap(), "SECRET-ANSWERS\n");
    assert!(!planted.exists() && !toolchain.cargo_home.join("registry/pwned").exists() && !Path::new("/pwned").exists());
    // What it may do: read public data, write its workdir, the read-write extra and /tmp.
    assert!(out.contains("PUBLIC:public training data"), "{out}");
    assert!(out.contains("WROTE-WORKDIR") && out.contains("WROTE-SHARED") && out.contains("WROTE-TMP"), "{out}");
    assert_eq!(std::fs::read_to_string(host.path("workdir/inside.txt")).unwrap(), "mine\n");
    assert_eq!(std::fs::read_to_string(shared.join("s.txt")).unwrap(), "shared\n");
}

#[test]
fn the_host_filesystem_is_not_there() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let harness_dir = env!("CARGO_MANIFEST_DIR");
    let script = format!(
        "ls -a /; test -e /work && echo WORK-PRESENT; test -e '{harness_dir}' && echo HARNESS-PRESENT; \
         test -e /home && echo HOME-PRESENT; test -e /sys/fs/cgroup && echo SYS-PRESENT; \
         n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n; pwd; ls /dev | grep -c nvidia"
    );
    let (finished, _) = run(&host.spec(), &isolation, &script, Duration::from_secs(20));
    let out = finished.stdout_text();
    let entries: Vec<&str> = out.lines().take_while(|l| !l.starts_with("procs=")).collect();
    assert!(entries.contains(&"usr") && entries.contains(&"tmp"), "{out}");
    // A directory above the toolchain (/root, /home/<user>) shows, holding only the toolchain.
    let toolchain = sandbox::Toolchain::from_env();
    let above_toolchain = |name: &str| [&toolchain.cargo_home, &toolchain.rustup_home].iter().any(|p| p.starts_with(format!("/{name}")));
    for absent in ["work", "root", "home", "var", "opt", "sys", "mnt", "srv", "run"] {
        if !above_toolchain(absent) {
            assert!(!entries.contains(&absent), "/{absent} is visible: {out}");
        }
    }
    for (leak, name) in [("WORK-PRESENT", "work"), ("HARNESS-PRESENT", ""), ("HOME-PRESENT", "home"), ("SYS-PRESENT", "sys")] {
        if name.is_empty() || !above_toolchain(name) {
            assert!(!out.contains(leak), "{leak}: {out}");
        }
    }
    // Its own PID namespace: bwrap's init, sh, and the loop's subshells at most.
    let procs: u32 = out.lines().find_map(|l| l.strip_prefix("procs=")).unwrap().parse().unwrap();
    assert!(procs <= 5, "the agent sees {procs} processes");
    assert!(out.contains(&format!("{}\n", host.path("workdir").display())), "cwd is not the workdir: {out}");
    assert!(out.trim_end().ends_with('0'), "GPU nodes in a CPU sandbox: {out}");
}

#[test]
fn network_is_off_unless_the_agent_file_allows_it() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null && echo CONNECTED; \
         test -e /etc/resolv.conf && echo RESOLV; echo offline=$CARGO_NET_OFFLINE; cat /proc/net/dev | tail -n +3 | cut -d: -f1"
    );
    let (finished, _) = run(&host.spec(), &isolation, &script, Duration::from_secs(20));
    let out = finished.stdout_text();
    assert!(!out.contains("CONNECTED") && !out.contains("RESOLV"), "{out}");
    assert!(out.contains("offline=true"), "{out}");
    let interfaces: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("offline=")).skip(1).map(str::trim).collect();
    assert_eq!(interfaces, ["lo"], "{out}");
    assert!(listener.accept().is_err(), "the listener got a connection from an offline agent");

    // The control: with network allowed, the same attempt reaches the listener.
    let mut spec = host.spec();
    spec.network = true;
    let (finished, _) = run(&spec, &isolation, &script, Duration::from_secs(20));
    let out = finished.stdout_text();
    assert!(out.contains("CONNECTED") && out.contains("offline=\n"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while listener.accept().is_err() {
        assert!(Instant::now() < deadline, "no connection with network allowed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_fork_bomb_is_capped_at_the_process_limit() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let mut spec = host.spec();
    spec.limits.max_processes = Some(64);
    // Spawn up to 5000 sleepers; the inner shell gives up at the first failed fork. The outer
    // shell then counts what the agent got using builtins only (no fork left to spare).
    let script = "sh -c 'i=0; while [ $i -lt 5000 ]; do sleep 3131 & i=$((i+1)); done' 2>/dev/null; \
                  n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n";
    let start = Instant::now();
    let (finished, limit) = run(&spec, &isolation, script, Duration::from_secs(25));
    eprintln!("process limit: {limit}; contained in {:.2} s", start.elapsed().as_secs_f64());
    if let ProcessLimit::NotEnforced(why) = &limit {
        assert!(!required(), "REBENCH_REQUIRE_SANDBOX=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let out = finished.stdout_text();
    let procs: u64 = out.lines().find_map(|l| l.strip_prefix("procs=")).expect("the agent could not count").parse().unwrap();
    assert!(procs <= 64, "the agent got {procs} processes past a limit of 64");
    assert!(procs >= 48, "the bomb stopped early ({procs} processes): the test proves nothing");
    // The machine is fine: the test can still start processes, and the sleepers are gone.
    assert!(std::process::Command::new("true").status().unwrap().success());
    assert_gone("sleep 3131", Duration::from_secs(2));
}

#[test]
fn a_daemon_does_not_outlive_the_agent() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let script = "setsid sh -c 'sleep 4243' </dev/null >/dev/null 2>&1 & \
                  sleep 0.3; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q 'sleep 4243' && echo DAEMON-RUNNING; exit 0";
    let (finished, _) = run(&host.spec(), &isolation, script, Duration::from_secs(20));
    assert!(finished.success(), "{}", finished.describe_exit());
    assert!(finished.stdout_text().contains("DAEMON-RUNNING"), "the daemon never started");
    // No waiting: once the run is over, the daemon is already gone.
    assert_gone("sleep 4243", Duration::ZERO);
}

#[test]
fn an_agent_past_its_budget_is_ended_on_time() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let start = Instant::now();
    let (finished, _) = run(&host.spec(), &isolation, "sleep 4244 & sleep 4245", Duration::from_secs(2));
    let ended = start.elapsed();
    assert!(finished.timed_out());
    assert!(ended < Duration::from_millis(3500), "ended {:.2} s after a 2 s budget", ended.as_secs_f64());
    assert_gone("sleep 4244", Duration::ZERO);
    assert_gone("sleep 4245", Duration::ZERO);
}

#[test]
fn limits_and_environment_inside() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let mut spec = host.spec();
    spec.limits = Limits { max_processes: Some(100), max_open_files: Some(321), address_space: Some(4 << 30), memory: None };
    spec.env.push(("AGENT_VAR".to_owned(), "from-agent-file".to_owned()));
    let script = "echo nofile=$(ulimit -n) as=$(ulimit -v) core=$(ulimit -c); env | sort";
    let (finished, limit) = run(&spec, &isolation, script, Duration::from_secs(20));
    let out = finished.stdout_text();
    assert!(out.contains(&format!("nofile=321 as={} core=0", 4u64 << 20)), "{out}");
    assert!(out.contains("AGENT_VAR=from-agent-file") && out.contains("REBENCH_SANDBOX=bubblewrap"), "{out}");
    assert!(out.contains("HOME=/tmp/home") && out.contains("CARGO_NET_OFFLINE=true"), "{out}");
    assert!(out.contains(&format!("CARGO_TARGET_DIR={}/target", host.path("workdir").display())), "{out}");
    for var in std::env::vars().map(|(k, _)| k) {
        let allowed = ["PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "CARGO_TARGET_DIR", "TMPDIR", "LANG", "PWD", "SHLVL", "_"];
        if !allowed.contains(&var.as_str()) {
            assert!(!out.lines().any(|l| l.starts_with(&format!("{var}="))), "{var} leaked in: {out}");
        }
    }
    eprintln!("process limit: {limit}");
}

/// The agent builds and runs a crate with the real toolchain (read-only) and no network.
#[test]
fn the_agent_can_build_and_run_a_crate_offline() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let crate_dir = host.path("workdir/solution");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"solution\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(crate_dir.join("src/main.rs"), "fn main() { println!(\"built in the sandbox: {}\", 6 * 7); }\n").unwrap();
    let script = "touch \"$RUSTUP_HOME/pwned\" 2>/dev/null && echo TOOLCHAIN-WRITABLE; \
                  cd solution && cargo build --offline 2>&1 && \"$CARGO_TARGET_DIR/debug/solution\"";
    let start = Instant::now();
    let (finished, _) = run(&host.spec(), &isolation, script, Duration::from_secs(120));
    eprintln!("built and ran in {:.2} s", start.elapsed().as_secs_f64());
    let out = finished.stdout_text();
    assert!(finished.success(), "{out}{}", finished.stderr_text());
    assert!(out.contains("built in the sandbox: 42") && !out.contains("TOOLCHAIN-WRITABLE"), "{out}");
    assert!(host.path("workdir/target/debug/solution").is_file());
}

/// The same with a dependency from the registry cache (as `reset` leaves them fetched), where
/// this machine's cache holds one (the workspace's own `libc`).
#[test]
fn the_agent_can_build_with_a_cached_dependency_offline() {
    let Some(isolation) = bubblewrap() else { return };
    let toolchain = sandbox::Toolchain::from_env();
    let cached = std::fs::read_dir(toolchain.cargo_home.join("registry/cache"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|index| index.path().join("libc-0.2.191.crate").is_file());
    if !cached {
        eprintln!("SKIPPED: libc 0.2.191 is not in {}/registry/cache", toolchain.cargo_home.display());
        return;
    }
    let host = Host::new();
    let crate_dir = host.path("workdir/solution");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        "[package]\nname = \"solution\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nlibc = \"=0.2.191\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(crate_dir.join("src/main.rs"), "fn main() { println!(\"pid in the sandbox: {}\", unsafe { libc::getpid() }); }\n")
        .unwrap();
    let script = "cd solution && cargo build --offline 2>&1 && \"$CARGO_TARGET_DIR/debug/solution\"";
    let start = Instant::now();
    let (finished, _) = run(&host.spec(), &isolation, script, Duration::from_secs(120));
    eprintln!("built and ran in {:.2} s", start.elapsed().as_secs_f64());
    assert!(finished.success(), "{}{}", finished.stdout_text(), finished.stderr_text());
    assert!(finished.stdout_text().contains("pid in the sandbox: "), "{}", finished.stdout_text());
}

/// Without bubblewrap: the clean environment, limits, cwd, and (where a pids cgroup can be
/// made) the end of a daemon that left the process group.
#[test]
fn unsandboxed_keeps_the_environment_limits_and_the_daemon_kill() {
    let host = Host::new();
    let mut spec = host.spec();
    spec.limits.max_open_files = Some(333);
    let script = "echo nofile=$(ulimit -n); pwd; echo sandbox=$REBENCH_SANDBOX offline=$CARGO_NET_OFFLINE manifest=[$CARGO_MANIFEST_DIR]; \
                  setsid sh -c 'sleep 4246' </dev/null >/dev/null 2>&1 & sleep 0.2; exit 0";
    let (finished, limit) = run(&spec, &Isolation::Unsandboxed, script, Duration::from_secs(20));
    let out = finished.stdout_text();
    assert!(out.contains("nofile=333"), "{out}");
    assert!(out.contains(&format!("{}\n", host.path("workdir").display())), "{out}");
    assert!(out.contains("sandbox=none offline=true manifest=[]"), "{out}");
    match limit {
        ProcessLimit::Cgroup { .. } => assert_gone("sleep 4246", Duration::ZERO),
        other => {
            // Without a cgroup nothing can find a process that called setsid: end it here.
            eprintln!("no pids cgroup ({other}): the daemon survives an unsandboxed agent, as documented");
            for (pid, _) in host_processes("sleep 4246") {
                let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

#[test]
fn unsandboxed_text_names_what_is_given_up() {
    let text = sandbox::what_unsandboxed_gives_up();
    for what in ["protected asset store", "network", "other trials", "score logs"] {
        assert!(text.contains(what), "{what} missing from: {text}");
    }
}

#[test]
fn memory_past_the_limit_ends_the_agent_not_the_harness() {
    let Some(isolation) = bubblewrap() else { return };
    let host = Host::new();
    let mut spec = host.spec();
    spec.limits.memory = Some(64 << 20);
    // Holds 256 MiB in a shell variable built by doubling: resident memory, not address space.
    let script = "x=0123456789abcdef; i=0; while [ $i -lt 24 ]; do x=$x$x; i=$((i+1)); done; echo held ${#x}";
    let mut sandboxed = sandbox::command(&spec, &isolation, &["sh".to_owned(), "-c".to_owned(), script.to_owned()]);
    match sandboxed.memory_limit() {
        Ok(Some(dir)) => eprintln!("memory cgroup {}", dir.display()),
        Ok(None) => panic!("a memory limit was asked for"),
        Err(why) => {
            assert!(!required(), "REBENCH_REQUIRE_SANDBOX=1 but {why}");
            eprintln!("SKIPPED: no memory cgroup: {why}");
            return;
        }
    }
    let limits = subprocess::Limits { timeout: Some(Duration::from_secs(30)), address_space: None };
    let finished = subprocess::run(&mut sandboxed, b"", &limits).unwrap();
    assert!(!finished.stdout_text().contains("held"), "the agent held 256 MiB past a 64 MiB limit");
    assert!(!finished.success(), "{}", finished.describe_exit());
    // Without the limit the same script succeeds: the failure above is the limit's doing.
    let plain = host.spec();
    let mut sandboxed = sandbox::command(&plain, &isolation, &["sh".to_owned(), "-c".to_owned(), script.to_owned()]);
    let finished = subprocess::run(&mut sandboxed, b"", &limits).unwrap();
    assert!(finished.stdout_text().contains("held 268435456"), "{}", finished.stderr_text());
}
