//! The Slurm executor: runs many commands (one trial each) as one Slurm array job, on whatever
//! nodes Slurm picks, and waits for them.
//!
//! It knows nothing about trials: [`submit`] takes one argv per array element and a working
//! directory; the run orchestration decides what the argv is (e.g. `rebench run-trial --run-dir
//! DIR --trial ID`). Everything shared between the submitting machine and the nodes goes
//! through the filesystem: the directory given to `submit` (the batch script, each element's
//! stdout/stderr and exit status) and whatever the commands read and write (a results directory
//! on a shared filesystem). See docs/slurm.md.
//!
//! Element states come from the controller (`scontrol show job`, which keeps finished jobs for
//! `MinJobAge`, 300 s by default), then from accounting (`sacct`, when the cluster has it), then
//! from the exit-status files the batch script writes; so `wait` works on clusters with and
//! without an accounting database.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rebench_scoring::subprocess::{self, Finished, Limits};

/// How long one Slurm client command (sbatch, scontrol, sacct, scancel) may take; the clients
/// retry an unreachable controller for a while (`MessageTimeout`), but must not hang a run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// How long `wait` keeps trying while every status query fails (a controller restarting or
/// failing over, a network blip) before giving up.
const QUERY_FAILURE_GRACE: Duration = Duration::from_secs(600);

/// Resources and limits of every element of an array job.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmOptions {
    /// `--partition`; the cluster's default partition when `None`.
    pub partition: Option<String>,
    /// `--time`, per element. Slurm counts whole minutes: rounded up, at least one minute.
    pub time_limit: Duration,
    /// `--cpus-per-task` (each element is one task on one node).
    pub cpus_per_task: u32,
    /// `--mem`, per element (i.e. per node), in GiB; the partition's default when `None`.
    pub mem_gib: Option<f64>,
    /// GPUs per element, as `--gres=gpu:N`; none when 0.
    pub gpus_per_task: u32,
    /// Passed to sbatch as they are, after the options above (so they can override them):
    /// `--account=...`, `--qos=...`, `--constraint=...`, `--gres=gpu:a100:1`, `--exclusive`.
    pub extra_args: Vec<String>,
    /// At most this many elements run at once (`--array=0-N%P`).
    pub max_parallel: Option<u32>,
}

impl Default for SlurmOptions {
    fn default() -> Self {
        SlurmOptions {
            partition: None,
            time_limit: Duration::from_secs(3600),
            cpus_per_task: 1,
            mem_gib: None,
            gpus_per_task: 0,
            extra_args: Vec::new(),
            max_parallel: None,
        }
    }
}

impl SlurmOptions {
    /// The sbatch options for an array of `elements` elements (without the output paths, the
    /// working directory and the script).
    pub fn sbatch_args(&self, elements: usize) -> anyhow::Result<Vec<String>> {
        ensure!(elements > 0, "an array job needs at least one element");
        ensure!(self.cpus_per_task > 0, "cpus_per_task must be at least 1");
        let mut array = format!("--array=0-{}", elements - 1);
        if let Some(p) = self.max_parallel {
            ensure!(p > 0, "max_parallel must be at least 1");
            array.push_str(&format!("%{p}"));
        }
        let mut args = vec![
            array,
            format!("--time={}", format_time_limit(self.time_limit)),
            "--nodes=1".to_owned(),
            "--ntasks=1".to_owned(),
            format!("--cpus-per-task={}", self.cpus_per_task),
        ];
        if let Some(gib) = self.mem_gib {
            ensure!(gib.is_finite() && gib > 0.0, "mem_gib must be a positive number of GiB, not {gib}");
            args.push(format!("--mem={}M", (gib * 1024.0).ceil() as u64));
        }
        if self.gpus_per_task > 0 {
            args.push(format!("--gres=gpu:{}", self.gpus_per_task));
        }
        if let Some(partition) = &self.partition {
            ensure!(!partition.is_empty(), "the partition name is empty");
            args.push(format!("--partition={partition}"));
        }
        args.extend(self.extra_args.iter().cloned());
        Ok(args)
    }
}

/// A submitted array job.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayJob {
    /// The array's job id (`SLURM_ARRAY_JOB_ID`); element `i` is `<job_id>_<i>`.
    pub job_id: String,
    /// The batch script as submitted (`<dir>/<job_id>.sbatch`).
    pub script: PathBuf,
    /// The directory given to `submit` (absolute): script, outputs and exit-status files.
    pub dir: PathBuf,
    /// The number of elements (`0..elements`, in the order of the commands).
    pub elements: usize,
}

impl ArrayJob {
    /// The stdout file of element `index`.
    pub fn stdout(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{}_{index}.out", self.job_id))
    }

    /// The stderr file of element `index`.
    pub fn stderr(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{}_{index}.err", self.job_id))
    }

    /// The file in which the batch script records the exit status of element `index`'s command
    /// (absent when the element was killed: time limit, cancellation, node failure).
    pub fn exit_file(&self, index: usize) -> PathBuf {
        self.dir.join(format!("{}_{index}.exit", self.job_id))
    }
}

/// How an element ended, in Slurm's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Completed,
    Failed,
    Timeout,
    Cancelled,
    OutOfMemory,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    /// Nothing is known any more: the controller forgot the job (`MinJobAge`), there is no
    /// accounting, and the element left no exit-status file.
    Unknown,
    /// Any other state Slurm reports, as it spells it.
    Other(String),
}

impl JobState {
    /// Parses Slurm's spelling (`COMPLETED`, `CANCELLED by 0`, `OUT_OF_MEMORY`, ...).
    pub fn parse(text: &str) -> JobState {
        let word = text.split_whitespace().next().unwrap_or("").trim_end_matches('+');
        match word {
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "TIMEOUT" => JobState::Timeout,
            "CANCELLED" => JobState::Cancelled,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "NODE_FAIL" => JobState::NodeFail,
            "PREEMPTED" => JobState::Preempted,
            "BOOT_FAIL" => JobState::BootFail,
            "DEADLINE" => JobState::Deadline,
            "UNKNOWN" | "" => JobState::Unknown,
            other => JobState::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Timeout => "TIMEOUT",
            JobState::Cancelled => "CANCELLED",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Unknown => "UNKNOWN",
            JobState::Other(s) => s,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Slurm states after which a job does not run again.
fn is_final(state: &str) -> bool {
    let word = state.split_whitespace().next().unwrap_or("").trim_end_matches('+');
    matches!(
        word,
        "COMPLETED"
            | "FAILED"
            | "TIMEOUT"
            | "CANCELLED"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "PREEMPTED"
            | "BOOT_FAIL"
            | "DEADLINE"
    )
}

/// How one element ended.
#[derive(Clone, Debug, PartialEq)]
pub struct ElementState {
    /// The element's index: the position of its command in `submit`'s `commands`.
    pub index: usize,
    /// `<array job id>_<index>`.
    pub job_id: String,
    pub state: JobState,
    /// The batch script's exit status (that of the element's command when it exited), when
    /// known. 0 with `signal` set when the script was killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended the script, if one did (15 at a time limit or scancel).
    pub signal: Option<i32>,
    /// Slurm's reason (`NonZeroExitCode`, `TimeLimit`, ...), when it gives one.
    pub reason: Option<String>,
    /// The node it ran on, when known.
    pub node: Option<String>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl ElementState {
    /// Completed with exit status 0.
    pub fn success(&self) -> bool {
        self.state == JobState::Completed && self.exit_code == Some(0)
    }

    /// One line for people: `123_4 FAILED, exit status 7 on node3`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}", self.job_id, self.state);
        match (self.exit_code, self.signal) {
            (_, Some(signal)) if signal != 0 => text.push_str(&format!(", signal {signal}")),
            (Some(code), _) => text.push_str(&format!(", exit status {code}")),
            _ => {}
        }
        if let Some(reason) = self.reason.as_deref().filter(|r| *r != "None") {
            text.push_str(&format!(" ({reason})"));
        }
        if let Some(node) = &self.node {
            text.push_str(&format!(" on {node}"));
        }
        text
    }
}

/// Writes an sbatch array script into `dir` (one element per entry of `commands`, each an argv
/// run with `cwd` as its working directory) and submits it.
///
/// Element `i`'s stdout and stderr go to `<dir>/<job>_<i>.out` and `.err` (Slurm's `%A_%a`), and
/// the exit status of its command to `<dir>/<job>_<i>.exit`. `dir` and `cwd` must be on a
/// filesystem the nodes share. The script is kept as `<dir>/<job>.sbatch`. `name` becomes the
/// job name, with characters other than ASCII letters, digits, `.`, `_`, `-` replaced by `_`.
/// An sbatch failure is an `Err` carrying sbatch's stderr.
pub fn submit(
    dir: &Path,
    name: &str,
    commands: &[Vec<String>],
    cwd: &Path,
    options: &SlurmOptions,
) -> anyhow::Result<ArrayJob> {
    ensure!(!commands.is_empty(), "nothing to submit: no commands");
    let name = job_name(name);
    for (i, argv) in commands.iter().enumerate() {
        ensure!(!argv.is_empty(), "command {i} is empty");
        if let Some(arg) = argv.iter().find(|a| a.contains('\0')) {
            bail!("command {i} has an argument with a NUL byte: {arg:?}");
        }
    }
    let mut args = options.sbatch_args(commands.len())?;

    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let cwd = fs::canonicalize(cwd).with_context(|| format!("the working directory {} is unusable", cwd.display()))?;
    let dir_text = utf8(&dir)?;
    let cwd_text = utf8(&cwd)?;
    // Slurm expands `%` in --output/--error; a literal one cannot be written portably.
    ensure!(!dir_text.contains('%'), "Slurm would expand the '%' in {dir_text}: use a directory without one");

    args.extend([
        format!("--job-name={name}"),
        format!("--output={dir_text}/%A_%a.out"),
        format!("--error={dir_text}/%A_%a.err"),
        format!("--chdir={cwd_text}"),
        "--parsable".to_owned(),
    ]);
    // Written under a temporary name, renamed after the job id once Slurm gave one.
    static SUBMISSIONS: AtomicUsize = AtomicUsize::new(0);
    let serial = SUBMISSIONS.fetch_add(1, Ordering::Relaxed);
    let pending = dir.join(format!(".{name}.{}-{serial}.sbatch", std::process::id()));
    let script = batch_script(&name, commands, &cwd_text, &dir_text, &args);
    fs::write(&pending, script).with_context(|| format!("cannot write {}", pending.display()))?;

    let mut sbatch = Command::new("sbatch");
    sbatch.args(&args).arg(&pending).current_dir(&cwd);
    let out = client(&mut sbatch, "sbatch")?;
    if !out.success() {
        let _ = fs::remove_file(&pending);
        bail!("sbatch {}: {}", out.describe_exit(), out.stderr_text().trim());
    }
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let stdout = out.stdout_text();
    let job_id = stdout.trim().split(';').next().unwrap_or("").to_owned();
    if job_id.is_empty() || !job_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("sbatch printed no job id: stdout {:?}, stderr {:?}", stdout.trim(), out.stderr_text().trim());
    }
    let script = dir.join(format!("{job_id}.sbatch"));
    // The job is submitted: a failed rename must not lose it, so keep the temporary name then.
    let script = if fs::rename(&pending, &script).is_ok() { script } else { pending };
    Ok(ArrayJob { job_id, script, dir, elements: commands.len() })
}

/// `name` as a job name that is also safe in a file name: characters other than ASCII letters,
/// digits, `.`, `_` and `-` become `_`; `rebench` when empty.
fn job_name(name: &str) -> String {
    let name: String =
        name.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with('.') { format!("rebench{name}") } else { name }
}

/// The batch script: picks element `SLURM_ARRAY_TASK_ID`'s argv (single-quoted, so any
/// argument survives), runs it in `cwd`, records its exit status, exits with it.
fn batch_script(name: &str, commands: &[Vec<String>], cwd: &str, dir: &str, args: &[String]) -> String {
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!("# rebench Slurm array job {name:?}: {} element(s), one command each.\n", commands.len()));
    s.push_str("# Submitted by rebench-harness (harness/src/slurm.rs) as:\n#   sbatch");
    for arg in args {
        s.push(' ');
        s.push_str(&shell_quote(arg));
    }
    s.push_str(" <this file>\nset -u\n");
    s.push_str(&format!(
        "cd -- {} || {{ echo \"rebench: cannot enter the working directory on $(hostname)\" >&2; exit 125; }}\n",
        shell_quote(cwd)
    ));
    s.push_str("case \"${SLURM_ARRAY_TASK_ID:-}\" in\n");
    for (i, argv) in commands.iter().enumerate() {
        let quoted: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
        s.push_str(&format!("    {i}) command=({}) ;;\n", quoted.join(" ")));
    }
    s.push_str(&format!(
        "    *) echo \"rebench: no command for array element '${{SLURM_ARRAY_TASK_ID:-}}' (this script has {})\" >&2; exit 125 ;;\n",
        commands.len()
    ));
    s.push_str("esac\n");
    s.push_str("\"${command[@]}\"\nstatus=$?\n");
    s.push_str(&format!("exit_file={}/\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}.exit\"\n", shell_quote(dir)));
    s.push_str("printf '%d\\n' \"$status\" > \"$exit_file.tmp\" && mv -f -- \"$exit_file.tmp\" \"$exit_file\"\n");
    s.push_str("exit \"$status\"\n");
    s
}

/// Waits until every element of `job` has ended, polling the controller every `poll`, and
/// returns their states in element order. With a `deadline`, gives up with an error once it
/// has passed (the job keeps running: [`cancel`] it if it must stop).
pub fn wait(job: &ArrayJob, poll: Duration, deadline: Option<Duration>) -> anyhow::Result<Vec<ElementState>> {
    let start = Instant::now();
    let mut failing_since: Option<Instant> = None;
    loop {
        match poll_states(job) {
            Ok(Some(states)) => return Ok(states),
            Ok(None) => failing_since = None,
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= QUERY_FAILURE_GRACE {
                    return Err(e.context(format!(
                        "cannot get the state of job {} (every query failed for {} s)",
                        job.job_id,
                        since.elapsed().as_secs()
                    )));
                }
            }
        }
        if let Some(limit) = deadline
            && start.elapsed() >= limit
        {
            let pending = unfinished(job).unwrap_or_else(|e| format!("unknown ({e:#})"));
            bail!(
                "job {} did not end within {:.0} s; unfinished elements: {pending}; it was not cancelled",
                job.job_id,
                limit.as_secs_f64()
            );
        }
        thread::sleep(poll);
    }
}

/// Cancels every element of `job` that has not ended (`scancel`).
pub fn cancel(job: &ArrayJob) -> anyhow::Result<()> {
    let out = client(Command::new("scancel").arg(&job.job_id), "scancel")?;
    ensure!(out.success(), "scancel {}: {}", out.describe_exit(), out.stderr_text().trim());
    Ok(())
}

/// Ok when jobs can be submitted from here: `sbatch` is on PATH and a controller answers.
/// Otherwise the reason, for people.
pub fn available() -> Result<(), String> {
    for tool in ["sbatch", "scontrol", "scancel"] {
        if find_in_path(tool).is_none() {
            return Err(format!("{tool} is not on PATH (no Slurm client installed here)"));
        }
    }
    let out = client(Command::new("scontrol").arg("ping"), "scontrol").map_err(|e| format!("{e:#}"))?;
    let text = out.stdout_text();
    if out.success() && text.lines().any(|l| l.trim_end().ends_with("is UP")) {
        Ok(())
    } else {
        // `Slurmctld(primary) at HOST is DOWN`, without the banner around it.
        let status: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("Slurmctld")).collect();
        let said =
            if status.is_empty() { format!("{} {}", text.trim(), out.stderr_text().trim()) } else { status.join("; ") };
        Err(format!("no Slurm controller answers (scontrol ping {}): {}", out.describe_exit(), said.trim()))
    }
}

/// Quotes `arg` for bash: as it is when it has only characters no shell treats specially,
/// otherwise single-quoted (`it's` becomes `'it'\''s'`).
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-+=:,./@".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// Slurm's `--time` for `limit`: `D-HH:MM:SS`, rounded up to whole minutes (Slurm's unit), at
/// least one minute (`0` would mean no limit).
pub fn format_time_limit(limit: Duration) -> String {
    let seconds = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
    let minutes = seconds.div_ceil(60).max(1);
    let (days, rest) = (minutes / (24 * 60), minutes % (24 * 60));
    format!("{days}-{:02}:{:02}:00", rest / 60, rest % 60)
}

/// One query: all states when every element has ended, `None` while some have not.
fn poll_states(job: &ArrayJob) -> anyhow::Result<Option<Vec<ElementState>>> {
    let mut known = BTreeMap::new();
    let mut running = false;
    // `None`: the controller no longer knows the job, so it has ended.
    if let Some(records) = scontrol_records(&job.job_id)? {
        for record in records {
            let Some(task) = record.get("ArrayTaskId") else { continue };
            let state = record.get("JobState").map(String::as_str).unwrap_or("");
            match task.parse::<usize>() {
                Ok(index) if index < job.elements => {
                    if is_final(state) {
                        known.insert(index, element_from_scontrol(job, index, &record));
                    } else {
                        running = true;
                    }
                }
                // A range of pending elements (`3-9%2`), or one we did not submit.
                _ => running = !is_final(state) || running,
            }
        }
    }
    if running {
        return Ok(None);
    }
    if known.len() < job.elements {
        // Elements the controller forgot (MinJobAge): accounting, then the exit-status files.
        for record in sacct_records(&job.job_id).unwrap_or_default() {
            if let Some(index) = record.index.filter(|i| *i < job.elements && !known.contains_key(i)) {
                if !is_final(&record.state) {
                    return Ok(None);
                }
                known.insert(index, element_from_sacct(job, index, &record));
            }
        }
    }
    Ok(Some(
        (0..job.elements)
            .map(|index| known.remove(&index).unwrap_or_else(|| element_from_exit_file(job, index)))
            .collect(),
    ))
}

fn element(job: &ArrayJob, index: usize, state: JobState) -> ElementState {
    ElementState {
        index,
        job_id: format!("{}_{index}", job.job_id),
        state,
        exit_code: None,
        signal: None,
        reason: None,
        node: None,
        stdout: job.stdout(index),
        stderr: job.stderr(index),
    }
}

fn element_from_scontrol(job: &ArrayJob, index: usize, record: &BTreeMap<String, String>) -> ElementState {
    let mut e = element(job, index, JobState::parse(record.get("JobState").map(String::as_str).unwrap_or("")));
    (e.exit_code, e.signal) = parse_exit_code(record.get("ExitCode").map(String::as_str).unwrap_or(""));
    e.reason = record.get("Reason").cloned();
    e.node = record.get("BatchHost").or_else(|| record.get("NodeList")).filter(|n| *n != "(null)").cloned();
    e
}

fn element_from_sacct(job: &ArrayJob, index: usize, record: &SacctRecord) -> ElementState {
    let mut e = element(job, index, JobState::parse(&record.state));
    (e.exit_code, e.signal) = parse_exit_code(&record.exit_code);
    e.node = Some(record.node.clone()).filter(|n| !n.is_empty() && n != "None assigned");
    e
}

fn element_from_exit_file(job: &ArrayJob, index: usize) -> ElementState {
    let code = fs::read_to_string(job.exit_file(index)).ok().and_then(|t| t.trim().parse::<i32>().ok());
    let state = match code {
        Some(0) => JobState::Completed,
        Some(_) => JobState::Failed,
        None => JobState::Unknown,
    };
    let mut e = element(job, index, state);
    e.exit_code = code;
    e
}

/// `N:S` (exit status, signal) as scontrol and sacct print it.
fn parse_exit_code(text: &str) -> (Option<i32>, Option<i32>) {
    let mut parts = text.splitn(2, ':');
    let code = parts.next().and_then(|c| c.trim().parse().ok());
    let signal = parts.next().and_then(|s| s.trim().parse().ok()).filter(|s| *s != 0);
    (code, signal)
}

/// `scontrol -o show job ID`: one map of `Key=Value` per job record (an array's pending
/// elements share one record), or `None` when the controller does not know the job.
fn scontrol_records(job_id: &str) -> anyhow::Result<Option<Vec<BTreeMap<String, String>>>> {
    let out = client(Command::new("scontrol").args(["-o", "show", "job", job_id]), "scontrol")?;
    if !out.success() {
        let stderr = out.stderr_text();
        if stderr.contains("Invalid job id") {
            return Ok(None);
        }
        bail!("scontrol show job {job_id} {}: {}", out.describe_exit(), stderr.trim());
    }
    let records = out
        .stdout_text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut map = BTreeMap::new();
            // Values with spaces (Command=, WorkDir=) come after the fields read here, and a
            // word of theirs without '=' is skipped; the first occurrence of a key wins.
            for word in line.split_whitespace() {
                if let Some((key, value)) = word.split_once('=') {
                    map.entry(key.to_owned()).or_insert_with(|| value.to_owned());
                }
            }
            map
        })
        .filter(|map| map.get("ArrayJobId").is_some_and(|id| id == job_id))
        .collect();
    Ok(Some(records))
}

struct SacctRecord {
    index: Option<usize>,
    state: String,
    exit_code: String,
    node: String,
}

/// `sacct` for the array's elements; `Err` where the cluster has no accounting.
fn sacct_records(job_id: &str) -> anyhow::Result<Vec<SacctRecord>> {
    if find_in_path("sacct").is_none() {
        bail!("no sacct");
    }
    let mut command = Command::new("sacct");
    command.args(["-n", "-P", "-X", "-j", job_id, "--format=JobID,State,ExitCode,NodeList"]);
    let out = client(&mut command, "sacct")?;
    ensure!(out.success(), "sacct {}: {}", out.describe_exit(), out.stderr_text().trim());
    Ok(out
        .stdout_text()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let [id, state, exit_code, node] = fields[..] else { return None };
            let (array, task) = id.split_once('_')?;
            (array == job_id).then(|| SacctRecord {
                index: task.parse().ok(),
                state: state.to_owned(),
                exit_code: exit_code.to_owned(),
                node: node.to_owned(),
            })
        })
        .collect())
}

/// The elements of `job` that have not ended, for messages.
fn unfinished(job: &ArrayJob) -> anyhow::Result<String> {
    let Some(records) = scontrol_records(&job.job_id)? else { return Ok("none".to_owned()) };
    let list: Vec<String> = records
        .iter()
        .filter(|r| !is_final(r.get("JobState").map(String::as_str).unwrap_or("")))
        .map(|r| {
            format!(
                "{}_{} {}",
                job.job_id,
                r.get("ArrayTaskId").map(String::as_str).unwrap_or("?"),
                r.get("JobState").map(String::as_str).unwrap_or("?")
            )
        })
        .collect();
    Ok(if list.is_empty() { "none".to_owned() } else { list.join(", ") })
}

/// Runs a Slurm client with a time limit; `Err` when it cannot be started or hangs.
fn client(command: &mut Command, what: &str) -> anyhow::Result<Finished> {
    let limits = Limits { timeout: Some(CLIENT_TIMEOUT), address_space: None };
    let out = subprocess::run(command, b"", &limits).with_context(|| format!("cannot run {what}"))?;
    if out.timed_out() {
        bail!("{what} did not answer within {} s (is the Slurm controller reachable?)", CLIENT_TIMEOUT.as_secs());
    }
    Ok(out)
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(tool)).find(|p| p.is_file())
}

fn utf8(path: &Path) -> anyhow::Result<String> {
    path.to_str().map(str::to_owned).with_context(|| format!("{} is not UTF-8; Slurm paths must be", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(format_time_limit(Duration::ZERO), "0-00:01:00");
        assert_eq!(format_time_limit(Duration::from_secs(1)), "0-00:01:00");
        assert_eq!(format_time_limit(Duration::from_secs(60)), "0-00:01:00");
        assert_eq!(format_time_limit(Duration::from_secs(61)), "0-00:02:00");
        assert_eq!(format_time_limit(Duration::from_millis(60_500)), "0-00:02:00");
        assert_eq!(format_time_limit(Duration::from_secs(2 * 3600)), "0-02:00:00");
        assert_eq!(format_time_limit(Duration::from_secs(3 * 86400 + 3600 + 59)), "3-01:01:00");
    }

    #[test]
    fn quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("--time=0-01:00:00"), "--time=0-01:00:00");
        assert_eq!(shell_quote("%A_%a"), "'%A_%a'");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's a \"test\" $HOME"), r#"'it'\''s a "test" $HOME'"#);
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn job_names_are_safe_in_file_names() {
        assert_eq!(job_name("20261126-181502"), "20261126-181502");
        assert_eq!(job_name("my run: 1/2"), "my_run__1_2");
        assert_eq!(job_name(""), "rebench");
        assert_eq!(job_name(".."), "rebench..");
    }

    #[test]
    fn exit_files_stand_in_for_a_forgotten_job() {
        let dir = std::env::temp_dir().join(format!("rebench-slurm-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let job = ArrayJob { job_id: "5".into(), script: dir.join("5.sbatch"), dir: dir.clone(), elements: 3 };
        fs::write(job.exit_file(0), "0\n").unwrap();
        fs::write(job.exit_file(1), "3\n").unwrap();
        let states: Vec<ElementState> = (0..3).map(|i| element_from_exit_file(&job, i)).collect();
        fs::remove_dir_all(&dir).unwrap();
        assert!(states[0].success());
        assert_eq!((&states[1].state, states[1].exit_code), (&JobState::Failed, Some(3)));
        assert_eq!((&states[2].state, states[2].exit_code), (&JobState::Unknown, None));
        assert_eq!(states[2].stderr, dir.join("5_2.err"));
        assert_eq!(states[1].describe(), "5_1 FAILED, exit status 3");
    }

    #[test]
    fn exit_codes_and_states_parse() {
        assert_eq!(parse_exit_code("7:0"), (Some(7), None));
        assert_eq!(parse_exit_code("0:15"), (Some(0), Some(15)));
        assert_eq!(parse_exit_code(""), (None, None));
        assert_eq!(JobState::parse("CANCELLED by 0"), JobState::Cancelled);
        assert_eq!(JobState::parse("TIMEOUT"), JobState::Timeout);
        assert_eq!(JobState::parse("REQUEUE_HOLD"), JobState::Other("REQUEUE_HOLD".into()));
        assert!(is_final("CANCELLED by 1000") && !is_final("COMPLETING") && !is_final("PENDING"));
    }

    #[test]
    fn sbatch_args_carry_every_option() {
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            time_limit: Duration::from_secs(90 * 60),
            cpus_per_task: 8,
            mem_gib: Some(1.5),
            gpus_per_task: 2,
            extra_args: vec!["--account=lab".into()],
            max_parallel: Some(4),
        };
        assert_eq!(
            options.sbatch_args(10).unwrap(),
            [
                "--array=0-9%4",
                "--time=0-01:30:00",
                "--nodes=1",
                "--ntasks=1",
                "--cpus-per-task=8",
                "--mem=1536M",
                "--gres=gpu:2",
                "--partition=gpu",
                "--account=lab"
            ]
        );
        assert!(SlurmOptions::default().sbatch_args(0).is_err());
        assert!(SlurmOptions { mem_gib: Some(f64::NAN), ..SlurmOptions::default() }.sbatch_args(1).is_err());
    }
}
