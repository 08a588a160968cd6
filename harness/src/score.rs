//! Scoring a solution of a task: prepare the assets if needed, call the scorer, turn whatever it
//! does into an outcome, normalize, and append to the score log before returning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rebench_scoring::fsutil::{self, Solution};
use rebench_scoring::log::{LogEntry, ScoreLog};
use rebench_scoring::manifest::CalibrationSpec;
use rebench_scoring::protocol::{Request, Response};
use rebench_scoring::task::{BenchReport, Environment, PrepareRequest, ScoreRequest};
use rebench_scoring::{Calibration, Outcome};
use serde_json::{Value, json};

use crate::{scorer, solve};
use crate::tasks::TaskEntry;
use crate::workspace::Workspace;

/// What to score.
#[derive(Clone, Debug)]
pub enum Target {
    /// The task's own starting or reference solution.
    Named(Solution),
    /// The `solution/` of a workdir made by `reset`.
    Workdir(PathBuf),
    /// A solution directory itself (a trial's snapshot), logged under `label`.
    Solution { dir: PathBuf, label: String },
}

impl Target {
    /// A label for logs: `starting`, `reference`, or `workdir-<hash of its path>`.
    pub fn label(&self) -> String {
        match self {
            Target::Named(s) => s.name().to_owned(),
            Target::Workdir(dir) => {
                let path = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                format!("workdir-{}", &fsutil::hash_bytes(path.to_string_lossy().as_bytes())[..12])
            }
            Target::Solution { label, .. } => label.clone(),
        }
    }
}

/// Options of one scoring.
#[derive(Clone, Debug, Default)]
pub struct ScoreOptions {
    /// Hidden-input seed; random when `None`.
    pub seed: Option<u64>,
    /// Overrides of the variant's params (`--param n=1000`).
    pub params: BTreeMap<String, Value>,
    /// Log file; the default is under the harness home.
    pub log: Option<PathBuf>,
    /// When the trial started: logged `elapsed_secs` count from it (default: the scoring's start).
    pub origin: Option<SystemTime>,
}

/// The result of one scoring, as logged, with where the time went.
#[derive(Debug)]
pub struct ScoreResult {
    pub entry: LogEntry,
    pub log: PathBuf,
    /// Wall-clock seconds of the whole scoring as the harness saw it.
    pub wall_secs: f64,
    /// The scorer's own phases (build, run, verify, calibrate...).
    pub phases: BTreeMap<String, f64>,
}

impl ScoreResult {
    /// One line for people.
    pub fn human_line(&self) -> String {
        let e = &self.entry;
        let score = match (e.valid, e.raw, e.normalized) {
            (true, Some(raw), Some(n)) => format!("raw {raw:.4}, normalized {n:.3}"),
            (true, Some(raw), None) => format!("raw {raw:.4}, not normalized"),
            _ => "INVALID".to_owned(),
        };
        format!("{} [{}] {}: {score} ({:.1} s): {}", e.task, e.variant, e.solution, self.wall_secs, e.message)
    }

    /// The `--json` object.
    pub fn json(&self) -> Value {
        let e = &self.entry;
        json!({
            "task": e.task, "variant": e.variant, "solution": e.solution,
            "raw": e.raw, "transformed": e.transformed, "normalized": e.normalized,
            "valid": e.valid, "message": e.message,
        })
    }
}

/// Parameters after overrides; an override of a parameter the variant does not have is an error
/// (a typo must not silently score something else).
pub fn resolve_params(task: &TaskEntry, variant: &str, overrides: &BTreeMap<String, Value>) -> anyhow::Result<BTreeMap<String, Value>> {
    task.variant(variant)?; // an unknown variant's error names those there are
    let mut params = task.manifest.variant_params(variant)?;
    for (key, value) in overrides {
        if !params.contains_key(key) {
            let known: Vec<&str> = params.keys().map(String::as_str).collect();
            bail!("variant `{variant}` of `{}` has no parameter `{key}` (it has: {})", task.id, known.join(", "));
        }
        params.insert(key.clone(), value.clone());
    }
    Ok(params)
}

pub fn environment(ws: &Workspace, task: &TaskEntry, variant: &str, label: &str) -> Environment {
    Environment {
        task_dir: task.dir.clone(),
        store: ws.store(&task.id, variant),
        scratch: ws.scratch(&task.id, variant, label),
        target_dir: ws.solutions_target_dir(),
        assets: ws.assets(),
    }
}

/// What a prepared store is made from: the variant, the task's folder (its scorer's code and
/// manifest, its solutions: `prepare` may run the reference; tests, docs, benches and examples
/// aside), and the shared code its scorer builds on (`crates/`, `scoring/src`, `Cargo.lock`).
/// Whatever of these a workspace lacks is left out.
pub fn prepare_key(ws: &Workspace, task: &TaskEntry, variant: &str) -> anyhow::Result<String> {
    const ASIDE: &[&str] = &["tests", "docs", "benches", "examples", "target"];
    let mut key = format!("{variant}\n");
    let mut entries: Vec<_> = std::fs::read_dir(&task.dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if ASIDE.iter().any(|a| name == *a) {
            continue;
        }
        let hash = if entry.file_type()?.is_dir() { fsutil::hash_tree(&entry.path())? } else { fsutil::hash_bytes(&std::fs::read(entry.path())?) };
        key.push_str(&format!("{} {hash}\n", name.to_string_lossy()));
    }
    for shared in ["crates", "scoring/src", "Cargo.lock"] {
        let path = ws.root.join(shared);
        if path.is_dir() {
            key.push_str(&format!("{shared} {}\n", fsutil::hash_tree(&path)?));
        } else if path.is_file() {
            key.push_str(&format!("{shared} {}\n", fsutil::hash_bytes(&std::fs::read(&path)?)));
        }
    }
    Ok(fsutil::hash_bytes(key.as_bytes()))
}

/// Runs the task's `prepare` unless its store is marked prepared from the same inputs
/// ([`prepare_key`]). A store prepared from other code or another manifest is stale: its data
/// are removed and prepared again, so that no score is computed against data the current code
/// would not make.
pub fn ensure_prepared(ws: &Workspace, task: &TaskEntry, variant: &str, scorer_bin: &Path) -> anyhow::Result<()> {
    let store = ws.store(&task.id, variant);
    let marker = store.join(".prepared");
    let key = prepare_key(ws, task, variant).with_context(|| format!("cannot hash the sources of `{}`", task.id))?;
    let key_line = format!("key {key}");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        if text.lines().any(|l| l == key_line) {
            return Ok(());
        }
        eprintln!(
            "prepare: the store of {} [{variant}] was prepared from other sources or another manifest; preparing it again",
            task.id
        );
        std::fs::remove_file(&marker)?;
        for part in ["public", "protected"] {
            fsutil::remove_tree(&store.join(part))?;
        }
    }
    std::fs::create_dir_all(store.join("public"))?;
    std::fs::create_dir_all(store.join("protected"))?;
    let request = Request::Prepare(PrepareRequest { variant: variant.to_owned(), env: environment(ws, task, variant, "prepare") });
    // Preparing may train models: allow it much longer than one scoring.
    let timeout = task.manifest.scoring.timeout * 6;
    match scorer::call(scorer_bin, &request, timeout)? {
        Ok(Response::Prepared { message }) => {
            std::fs::write(&marker, format!("{}\n{key_line}\n{message}\n", rebench_scoring::log::now_rfc3339()))?;
            Ok(())
        }
        Ok(other) => bail!("prepare of `{}`: unexpected response {other:?}", task.id),
        Err(failure) => bail!("prepare of `{}` failed: {}", task.id, failure.0),
    }
}

/// Scores `target` and appends the entry to the log; an invalid outcome is a normal result.
pub fn score(
    ws: &Workspace,
    task: &TaskEntry,
    variant: &str,
    target: &Target,
    options: &ScoreOptions,
    scorer_bin: &Path,
) -> anyhow::Result<ScoreResult> {
    let start = Instant::now();
    if let Some(why) = task.manifest.variant(variant).and_then(|v| v.unmet()) {
        bail!("skipped: the {variant} variant of `{}` cannot run here: {why}", task.id);
    }
    let params = resolve_params(task, variant, &options.params)?;
    ensure_prepared(ws, task, variant, scorer_bin)?;
    let label = target.label();
    // `Err(reason)`: the task's own solution could not make its artifacts (an invalid score).
    let solution: Result<PathBuf, String> = match target {
        Target::Named(which) => match &task.manifest.solve {
            Some(solve) => solve::solved_named(ws, task, variant, *which, solve, &params)?,
            None => {
                let dir = ws.materialized(&task.id, which.name());
                fsutil::materialize(&task.dir, *which, &dir)
                    .with_context(|| format!("cannot materialize the {} solution of `{}`", which.name(), task.id))?;
                Ok(dir)
            }
        },
        Target::Workdir(dir) => {
            let solution = dir.join("solution");
            if !solution.is_dir() {
                bail!("{} has no solution/ directory (make one with `reset`)", dir.display());
            }
            Ok(solution)
        }
        Target::Solution { dir, .. } => Ok(dir.clone()),
    };
    let spec = task.manifest.calibration(variant);
    let live = matches!(spec, CalibrationSpec::Live);
    let (outcome, calibration, phases) = match solution {
        Err(why) => (Outcome::invalid(format!("the solve step failed: {why}"), json!({"solve_failure": true})), None, BTreeMap::new()),
        Ok(solution) => {
            let request = ScoreRequest {
                variant: variant.to_owned(),
                solution,
                env: environment(ws, task, variant, &label),
                seed: options.seed.unwrap_or_else(fresh_seed),
                params,
                calibration_cache: Some(ws.calibration_cache(&task.id)),
                calibrate: live,
                solution_timeout_secs: None,
            };
            // A live calibration may time the starting and reference solutions within this scoring.
            let timeout = task.manifest.scoring.timeout * if live { 3 } else { 1 };
            match scorer::call(scorer_bin, &Request::Score(request), timeout)? {
                Ok(Response::Scored(scored)) => {
                    let calibration = match (spec, scored.calibration) {
                        (CalibrationSpec::Live, Some(c)) => Some(c),
                        (spec, _) => Calibration::pinned(spec),
                    };
                    (scored.outcome, calibration, scored.phases)
                }
                Ok(other) => (Outcome::invalid(format!("the scorer answered a score request with {other:?}"), json!({})), None, BTreeMap::new()),
                Err(failure) => (Outcome::invalid(failure.0, json!({"scorer_failure": true})), None, BTreeMap::new()),
            }
        }
    };
    let outcome = match (&outcome, &calibration) {
        (Outcome::Valid { .. }, None) if live => {
            Outcome::invalid("the scorer returned no live calibration, so the score cannot be normalized", outcome.details().clone())
        }
        _ => outcome,
    };
    let log_path = options.log.clone().unwrap_or_else(|| ws.default_log(&task.id, variant, &label));
    let elapsed = match options.origin {
        Some(origin) => SystemTime::now().duration_since(origin).unwrap_or(Duration::ZERO).as_secs_f64(),
        None => start.elapsed().as_secs_f64(),
    };
    let mut entry = LogEntry::new(&task.manifest, variant, &label, &outcome, calibration.as_ref(), elapsed);
    if let Value::Object(map) = &mut entry.details {
        map.insert("phases".into(), serde_json::to_value(&phases)?);
        // A raw score without endpoints: the log says why it has no normalized score.
        if let CalibrationSpec::Pending { why } = spec {
            map.insert("calibration_pending".into(), json!(why));
        }
    }
    let mut log = ScoreLog::open(&log_path).with_context(|| format!("cannot open the score log {}", log_path.display()))?;
    log.append(&entry).with_context(|| format!("cannot append to the score log {}", log_path.display()))?;
    Ok(ScoreResult { entry, log: log_path, wall_secs: start.elapsed().as_secs_f64(), phases })
}

/// Runs the task's benchmark.
pub fn bench(ws: &Workspace, task: &TaskEntry, variant: &str, options: &ScoreOptions, scorer_bin: &Path) -> anyhow::Result<BenchReport> {
    let params = resolve_params(task, variant, &options.params)?;
    ensure_prepared(ws, task, variant, scorer_bin)?;
    let request = ScoreRequest {
        variant: variant.to_owned(),
        solution: ws.materialized(&task.id, "bench"),
        env: environment(ws, task, variant, "bench"),
        seed: options.seed.unwrap_or_else(fresh_seed),
        params,
        calibration_cache: None,
        calibrate: false,
        solution_timeout_secs: None,
    };
    match scorer::call(scorer_bin, &Request::Bench(request), task.manifest.scoring.timeout * 4)? {
        Ok(Response::Bench(report)) => Ok(report),
        Ok(other) => bail!("the scorer answered a bench request with {other:?}"),
        Err(failure) => bail!("bench of `{}` failed: {}", task.id, failure.0),
    }
}

/// A seed nobody can predict: the agent must not know the scorer's inputs in advance.
pub fn fresh_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos();
    let text = format!("{nanos}-{}-{:p}", std::process::id(), &nanos);
    u64::from_str_radix(&fsutil::hash_bytes(text.as_bytes())[..16], 16).expect("hex digits")
}
