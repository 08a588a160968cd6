//! Runs: agents on tasks under a wall-clock budget, many trials side by side, resumable.
//!
//! A run directory is the whole record (the contract `report` reads):
//!
//! ```text
//! <run>/run.json                       RunConfig
//! <run>/trials/<id>/trial.json         TrialSpec
//! <run>/trials/<id>/state.json         TrialState, while the trial is under way
//! <run>/trials/<id>/workdir/           the agent's workdir (instructions.md, solution/, data/)
//! <run>/trials/<id>/score_log.jsonl    every scoring, appended and fsync'd
//! <run>/trials/<id>/snapshots/<n>/     the solution as scored by scoring n
//! <run>/trials/<id>/agent.log          the agent's output
//! <run>/trials/<id>/result.json        TrialResult, written last and atomically
//! ```
//!
//! Resuming: a trial with result.json is done and kept. One without is resumed: a process
//! group left from a killed harness is ended, the agent is restarted in the same workdir with
//! what is left of its budget (counted from the trial's first start), or, when nothing is left,
//! the trial is finalized from its workdir and log. Logged scores are never rewritten.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rebench_scoring::aggregate::final_entry;
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::log::{LogEntry, now_rfc3339, read_log};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::{Agent, AgentKind};
use crate::progress::Progress;
use crate::sandbox::{self, Isolation, SandboxSpec};
use crate::score_server::{SOCKET_VAR, ScoreServer, TrialScoring};
use crate::tasks::{self, TaskEntry};
use crate::workspace::Workspace;
use crate::{reset, score, scorer, solve};

/// `run.json`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RunConfig {
    pub version: u32,
    pub run_id: String,
    pub created: String,
    pub agent: Agent,
    pub variant: String,
    pub seeds: u32,
    pub time_limit_secs: f64,
    pub tasks: Vec<String>,
    pub executor: String,
    /// Overrides of the variants' params, as with `score --param`.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

impl RunConfig {
    /// A new run, its id from the current time.
    pub fn new(agent: Agent, variant: &str, seeds: u32, time_limit: Duration, tasks: Vec<String>, executor: &str) -> RunConfig {
        RunConfig {
            version: 1,
            run_id: new_run_id(),
            created: now_rfc3339(),
            agent,
            variant: variant.to_owned(),
            seeds,
            time_limit_secs: time_limit.as_secs_f64(),
            tasks,
            executor: executor.to_owned(),
            params: BTreeMap::new(),
        }
    }

    /// Whether `other` asks for the same run (the creation time and id aside).
    fn same_run(&self, other: &RunConfig) -> bool {
        (&self.agent, &self.variant, self.seeds, self.time_limit_secs, &self.tasks, &self.params)
            == (&other.agent, &other.variant, other.seeds, other.time_limit_secs, &other.tasks, &other.params)
    }

    pub fn trial_ids(&self) -> Vec<TrialSpec> {
        let mut specs = Vec::new();
        for task in &self.tasks {
            for seed in 0..self.seeds {
                specs.push(TrialSpec {
                    trial_id: format!("{task}-{}-s{seed}", self.variant),
                    task: task.clone(),
                    variant: self.variant.clone(),
                    seed,
                    agent: self.agent.name.clone(),
                    time_limit_secs: self.time_limit_secs,
                });
            }
        }
        specs
    }
}

/// `trial.json`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct TrialSpec {
    pub trial_id: String,
    pub task: String,
    pub variant: String,
    pub seed: u32,
    pub agent: String,
    pub time_limit_secs: f64,
}

/// `state.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TrialState {
    /// Seconds since the Unix epoch of the trial's first start: the budget counts from it.
    pub started_unix: f64,
    pub attempts: u32,
    /// The agent's process group while it runs.
    pub agent_group: Option<i32>,
}

/// `result.json`.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TrialResult {
    pub trial_id: String,
    pub task: String,
    pub variant: String,
    pub seed: u32,
    pub agent: String,
    /// `agent-exited`, `budget`, or `error: ...`.
    pub end_reason: String,
    pub wall_secs: f64,
    /// Wall time of the agent in this attempt, from its start (sandbox set-up included) to the
    /// end of its process tree.
    #[serde(default)]
    pub agent_secs: f64,
    /// Wall time of this attempt outside the agent and the final scoring: reset, scoring server,
    /// bookkeeping.
    pub overhead_secs: f64,
    pub scorings: usize,
    #[serde(rename = "final")]
    pub final_entry: Option<LogEntry>,
    /// The final normalized score; 0 when no scoring was valid, as RE-Bench counts it.
    pub normalized: f64,
}

/// What every trial of a run shares.
#[derive(Debug)]
pub struct TrialEnv {
    /// Task id to scorer binary.
    pub scorers: BTreeMap<String, PathBuf>,
    pub isolation: Isolation,
    /// The binary the agent's `score` command runs (`<client> agent-score`): this harness.
    pub client: PathBuf,
    pub progress: Arc<Progress>,
}

impl TrialEnv {
    /// The usual environment: the scorers built, this very binary as the `score` client.
    pub fn new(scorers: BTreeMap<String, PathBuf>, isolation: Isolation, trial_ids: &[String]) -> anyhow::Result<TrialEnv> {
        let client = std::env::current_exe().context("cannot find the harness's own binary for the score command")?;
        Ok(TrialEnv { scorers, isolation, client, progress: Arc::new(Progress::new(trial_ids)) })
    }
}

/// Creates the run directory, or checks that an existing one is the same run.
pub fn create(run_dir: &Path, config: &RunConfig) -> anyhow::Result<()> {
    let path = run_dir.join("run.json");
    if path.is_file() {
        let existing: RunConfig = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("{} is not a run configuration", path.display()))?;
        if !existing.same_run(config) {
            bail!(
                "{} holds a different run (agent {}, tasks {}, {} seeds, {} s); use another --out to start a new one",
                run_dir.display(),
                existing.agent.name,
                existing.tasks.join(","),
                existing.seeds,
                existing.time_limit_secs
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(run_dir.join("trials"))?;
    for spec in config.trial_ids() {
        let dir = run_dir.join("trials").join(&spec.trial_id);
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir.join("trial.json"), &serde_json::to_vec_pretty(&spec)?)?;
    }
    // Written last: a run.json means every trial.json exists.
    write_atomic(&path, &serde_json::to_vec_pretty(config)?)
}

pub fn load_config(run_dir: &Path) -> anyhow::Result<RunConfig> {
    let path = run_dir.join("run.json");
    serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?)
        .with_context(|| format!("{} is not a run configuration", path.display()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))?)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn result_of(run_dir: &Path, trial_id: &str) -> anyhow::Result<Option<TrialResult>> {
    read_json(&run_dir.join("trials").join(trial_id).join("result.json"))
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}

/// Names prebuilt scorers, `task=path[,task=path...]`, used instead of building them (scorers
/// built elsewhere, and tests that drive the harness with fake scorers).
pub const SCORER_OVERRIDE_VAR: &str = "REBENCH_SCORER_OVERRIDE";

/// Builds the scorers a run needs; a map from task id to binary.
pub fn build_scorers(ws: &Workspace, config: &RunConfig) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut scorers = BTreeMap::new();
    if let Ok(spec) = std::env::var(SCORER_OVERRIDE_VAR) {
        for pair in spec.split(',').filter(|p| !p.is_empty()) {
            let (task, path) = pair.split_once('=').with_context(|| format!("{SCORER_OVERRIDE_VAR}: expected task=path, got `{pair}`"))?;
            scorers.insert(task.to_owned(), PathBuf::from(path));
        }
    }
    let entries: Vec<TaskEntry> = config
        .tasks
        .iter()
        .filter(|id| !scorers.contains_key(*id))
        .map(|id| tasks::find(ws, id))
        .collect::<anyhow::Result<_>>()?;
    let refs: Vec<&TaskEntry> = entries.iter().collect();
    let features = entries.first().map(|t| t.variant(&config.variant).map(|v| v.features.clone())).transpose()?.unwrap_or_default();
    let bins = scorer::build(ws, &refs, &features)?;
    scorers.extend(entries.iter().map(|t| t.id.clone()).zip(bins));
    Ok(scorers)
}

/// Prepares `task`'s store for `variant` unless it is prepared from the current sources
/// ([`score::ensure_prepared`]): the public data a workdir gets at reset come from it. The
/// trials of a local run share stores and run on threads, so one at a time checks and prepares.
pub fn prepare_store(ws: &Workspace, task: &TaskEntry, variant: &str, scorer_bin: &Path) -> anyhow::Result<()> {
    static PREPARING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = PREPARING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    score::ensure_prepared(ws, task, variant, scorer_bin).with_context(|| format!("cannot prepare the data of `{}` [{variant}]", task.id))
}

/// What each trial of a local run reported, in trial order.
pub fn run_local(ws: &Workspace, run_dir: &Path, jobs: usize, env: &TrialEnv) -> anyhow::Result<Vec<(String, anyhow::Result<TrialResult>)>> {
    let config = load_config(run_dir)?;
    let specs = config.trial_ids();
    let machine = Resources { cores: std::thread::available_parallelism().map_or(1, |n| n.get()), gpus: visible_gpus() };
    let queue = Mutex::new(specs.iter().cloned().collect::<VecDeque<_>>());
    let free = (Mutex::new(machine), Condvar::new());
    let results = Mutex::new(BTreeMap::new());
    let progress = &env.progress;
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(spec) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else { break };
                    // A trial takes the cores and GPUs its variant declares (at most the machine's).
                    let declared = tasks::find(ws, &spec.task).ok().and_then(|t| {
                        t.manifest.variant(&spec.variant).map(|v| (v.resources.cores as usize, v.resources.gpus as usize))
                    });
                    let (cores, gpus) = declared.unwrap_or((1, 0));
                    let need = Resources { cores: cores.clamp(1, machine.cores), gpus: gpus.min(machine.gpus) };
                    {
                        let (lock, ready) = &free;
                        let mut available = lock.lock().unwrap_or_else(|e| e.into_inner());
                        while available.cores < need.cores || available.gpus < need.gpus {
                            available = ready.wait(available).unwrap_or_else(|e| e.into_inner());
                        }
                        available.cores -= need.cores;
                        available.gpus -= need.gpus;
                    }
                    let outcome = run_trial(ws, run_dir, &config, &spec, env);
                    if let Err(err) = &outcome {
                        progress.state(&spec.trial_id, "failed");
                        progress.println(&format!("{}: failed: {err:#}", spec.trial_id));
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner()).insert(spec.trial_id.clone(), outcome);
                    let (lock, ready) = &free;
                    let mut available = lock.lock().unwrap_or_else(|e| e.into_inner());
                    available.cores += need.cores;
                    available.gpus += need.gpus;
                    ready.notify_all();
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(specs.iter().map(|s| (s.trial_id.clone(), results.remove(&s.trial_id).expect("every trial ran"))).collect())
}

/// What trials hold while they run.
#[derive(Clone, Copy, Debug)]
struct Resources {
    cores: usize,
    gpus: usize,
}

/// GPUs this machine shows (`/dev/nvidia0`, `/dev/nvidia1`, ...).
fn visible_gpus() -> usize {
    std::fs::read_dir("/dev").map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("nvidia")).is_some_and(|rest| rest.parse::<u32>().is_ok()))
            .count()
    })
}

/// Runs (or resumes, or just returns) one trial.
pub fn run_trial(
    ws: &Workspace,
    run_dir: &Path,
    config: &RunConfig,
    spec: &TrialSpec,
    env: &TrialEnv,
) -> anyhow::Result<TrialResult> {
    let progress = &env.progress;
    let dir = run_dir.join("trials").join(&spec.trial_id);
    if let Some(done) = read_json::<TrialResult>(&dir.join("result.json"))? {
        if let Some(entry) = &done.final_entry {
            progress.scored(&spec.trial_id, entry);
        }
        progress.state(&spec.trial_id, "done");
        return Ok(done);
    }
    progress.state(&spec.trial_id, "starting");
    let attempt_start = Instant::now();
    let task = tasks::find(ws, &spec.task)?;
    let scorer_bin = env.scorers.get(&spec.task).with_context(|| format!("no scorer built for `{}`", spec.task))?.clone();
    let state_path = dir.join("state.json");
    let previous: Option<TrialState> = read_json(&state_path)?;
    if let Some(group) = previous.as_ref().and_then(|s| s.agent_group) {
        // Left over from a harness that was killed: end it before anything else.
        rebench_scoring::subprocess::kill_group(group);
    }
    let workdir = dir.join("workdir");
    if previous.is_none() || !workdir.join("solution").is_dir() {
        prepare_store(ws, &task, &spec.variant, &scorer_bin)?;
        fsutil::remove_tree(&workdir)?;
        reset::reset(ws, &task, &spec.variant, Solution::Starting, &workdir)?;
        fetch_dependencies(&workdir.join("solution"))?;
    }
    let mut state = TrialState {
        started_unix: previous.as_ref().map_or_else(unix_now, |s| s.started_unix),
        attempts: previous.as_ref().map_or(0, |s| s.attempts) + 1,
        agent_group: None,
    };
    write_atomic(&state_path, &serde_json::to_vec(&state)?)?;

    let started = UNIX_EPOCH + Duration::from_secs_f64(state.started_unix);
    let scoring = Arc::new(TrialScoring {
        ws: ws.clone(),
        task: task.clone(),
        variant: spec.variant.clone(),
        scorer_bin,
        workdir: workdir.clone(),
        log: dir.join("score_log.jsonl"),
        snapshots: dir.join("snapshots"),
        started,
        params: config.params.clone(),
        lock: Mutex::new(()),
        trial_id: spec.trial_id.clone(),
        progress: Arc::clone(progress),
    });
    progress.state(&spec.trial_id, "agent working");
    let budget = Duration::from_secs_f64(spec.time_limit_secs);
    let remaining = budget.saturating_sub(SystemTime::now().duration_since(started).unwrap_or(Duration::ZERO));
    let agent_start = Instant::now();
    let end_reason = if remaining.is_zero() {
        "budget".to_owned()
    } else {
        match config.agent.kind {
            AgentKind::Nop => "agent-exited".to_owned(),
            AgentKind::Oracle => {
                fsutil::copy_tree(&task.dir.join("reference"), &workdir.join("solution")).context("cannot apply the reference")?;
                // An artifact task: the oracle makes the reference's artifacts as an agent would,
                // in the agent's sandbox and within the agent's budget.
                if let Some(solve) = &task.manifest.solve {
                    let params = score::resolve_params(&task, &spec.variant, &config.params)?;
                    let run = solve::SolveRun {
                        task: &task,
                        variant: &spec.variant,
                        solve,
                        workdir: &workdir,
                        params: &params,
                        read_only: Vec::new(),
                        build_dir: None,
                        limit: remaining,
                        isolation: &env.isolation,
                    };
                    if let Err(why) = solve::execute(&run)? {
                        progress.println(&format!("{}: the oracle's solve failed: {why}", spec.trial_id));
                    }
                }
                "agent-exited".to_owned()
            }
            AgentKind::Human => {
                let socket = dir.join("run").join("score.sock");
                let _server = ScoreServer::start(&socket, Arc::clone(&scoring))?;
                progress.println(&format!(
                    "{}: work in {}; to score, run `{SOCKET_VAR}={} {} agent-score` there; time runs out in {}",
                    spec.trial_id,
                    workdir.display(),
                    socket.display(),
                    env.client.display(),
                    humantime::format_duration(Duration::from_secs(remaining.as_secs()))
                ));
                std::thread::sleep(remaining);
                "budget".to_owned()
            }
            AgentKind::Command => {
                run_agent(&config.agent, &dir, &workdir, remaining, env, &scoring, &task, &spec.variant, |group| {
                    state.agent_group = group;
                    write_atomic(&state_path, &serde_json::to_vec(&state)?)
                })?
            }
        }
    };
    let agent_secs = agent_start.elapsed().as_secs_f64();

    // The final scoring, then the final score by the task's rule.
    progress.state(&spec.trial_id, "final scoring");
    let final_result = scoring.score_now();
    let log = read_log(&scoring.log)?;
    // Intermediate scorings happen while the agent works, inside its time.
    let scoring_secs = final_result.as_ref().map_or(0.0, |r| r.wall_secs);
    let chosen = final_entry(&log.entries, task.manifest.metric.aggregate, task.manifest.metric.direction).cloned();
    let end_reason = match &final_result {
        Err(err) => format!("error: the final scoring failed: {err:#}"),
        Ok(_) => end_reason,
    };
    let wall_secs = attempt_start.elapsed().as_secs_f64();
    let result = TrialResult {
        trial_id: spec.trial_id.clone(),
        task: spec.task.clone(),
        variant: spec.variant.clone(),
        seed: spec.seed,
        agent: spec.agent.clone(),
        end_reason,
        wall_secs,
        agent_secs,
        overhead_secs: wall_secs - agent_secs - scoring_secs,
        scorings: log.entries.len(),
        normalized: chosen.as_ref().and_then(|e| e.normalized).unwrap_or(0.0),
        final_entry: chosen,
    };
    write_atomic(&dir.join("result.json"), &serde_json::to_vec_pretty(&result)?)?;
    let _ = std::fs::remove_file(&state_path);
    progress.state(&spec.trial_id, "done");
    Ok(result)
}

/// Memory an agent's sandbox gets beyond its variant's `memory-gib`, for its own tools and builds.
pub const AGENT_MEMORY_HEADROOM_GIB: f64 = 4.0;

/// Fetches the solution's dependencies (and writes its Cargo.lock) before the agent starts: its
/// sandbox has no network, and sees the cargo registry read-only.
pub(crate) fn fetch_dependencies(solution: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["fetch", "--quiet", "--manifest-path"])
        .arg(solution.join("Cargo.toml"))
        .output()
        .context("cannot run cargo fetch")?;
    if !output.status.success() {
        bail!("cargo fetch for {} failed: {}", solution.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// Runs a command agent in its sandbox until it exits or its budget is spent; returns why it
/// ended. `record_group` persists the agent's process group, so a later harness can end it.
#[allow(clippy::too_many_arguments)]
fn run_agent(
    agent: &Agent,
    trial_dir: &Path,
    workdir: &Path,
    remaining: Duration,
    trial_env: &TrialEnv,
    scoring: &Arc<TrialScoring>,
    task: &TaskEntry,
    variant: &str,
    mut record_group: impl FnMut(Option<i32>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let run_dir = trial_dir.join("run");
    let bin_dir = run_dir.join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let exe = &trial_env.client;
    let shim = bin_dir.join("score");
    std::fs::write(&shim, format!("#!/bin/sh\nexec '{}' agent-score \"$@\"\n", exe.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))?;
    let socket = run_dir.join("sock").join("score.sock");
    let _server = ScoreServer::start(&socket, Arc::clone(scoring))?;

    let v = task.variant(variant)?;
    let mut env = agent.environment();
    env.push((SOCKET_VAR.to_owned(), socket.display().to_string()));
    env.push(("REBENCH_BIN".to_owned(), bin_dir.display().to_string()));
    let spec = SandboxSpec {
        workdir: workdir.to_owned(),
        read_only: vec![exe.clone(), bin_dir.clone()],
        read_write: vec![socket.parent().expect("socket has a directory").to_owned()],
        network: agent.network,
        gpu: v.resources.gpus > 0,
        env,
        path_prefix: vec![bin_dir.clone()],
        limits: sandbox::Limits {
            // The solution's own allowance plus room for the agent's tools and builds.
            memory: Some(((v.resources.memory_gib + AGENT_MEMORY_HEADROOM_GIB) * (1u64 << 30) as f64) as u64),
            ..sandbox::Limits::default()
        },
    };
    let argv = agent.argv(workdir, remaining);
    // Owns the sandbox's pids cgroup: dropping it ends whatever is left in the sandbox.
    let mut sandboxed = sandbox::command(&spec, &trial_env.isolation, &argv);
    let log = std::fs::File::create(trial_dir.join("agent.log"))?;
    sandboxed.stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    let mut child = sandboxed.spawn().with_context(|| format!("cannot start the agent {argv:?}"))?;
    let group = child.id() as i32;
    record_group(Some(group))?;
    let deadline = Instant::now() + remaining;
    let reason = loop {
        if child.try_wait()?.is_some() {
            break "agent-exited";
        }
        if Instant::now() >= deadline {
            break "budget";
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The whole tree goes, daemons included: the sandbox's PID namespace ends with its init,
    // and its cgroup (where one could be made) is emptied.
    rebench_scoring::subprocess::kill_group(group);
    let _ = child.wait();
    sandboxed.end_all();
    record_group(None)?;
    Ok(reason.to_owned())
}

/// The run's table of trial results, for the end of `run`.
pub fn summary(results: &[(String, anyhow::Result<TrialResult>)]) -> String {
    let mut out = format!("{:<36} {:<14} {:>10} {:>9} {:>10} {:>10}\n", "trial", "end", "normalized", "scorings", "agent", "overhead");
    for (id, result) in results {
        match result {
            Ok(r) => out.push_str(&format!(
                "{:<36} {:<14} {:>10.3} {:>9} {:>8.3} s {:>8.3} s\n",
                id,
                r.end_reason.chars().take(14).collect::<String>(),
                r.normalized,
                r.scorings,
                r.agent_secs,
                r.overhead_secs
            )),
            Err(err) => out.push_str(&format!("{id:<36} FAILED: {err:#}\n")),
        }
    }
    out
}

/// A run id from the current time, e.g. `20261126-181502`.
pub fn new_run_id() -> String {
    let now = now_rfc3339();
    now.chars().filter(|c| c.is_ascii_digit()).take(14).enumerate().fold(String::new(), |mut acc, (i, c)| {
        if i == 8 {
            acc.push('-');
        }
        acc.push(c);
        acc
    })
}
