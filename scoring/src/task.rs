//! The `Task` trait every scorer implements, its requests, and live calibration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fsutil::{self, Solution};
use crate::log::now_rfc3339;
use crate::manifest::Manifest;
use crate::measure::{CalibrationCache, Fingerprint};
use crate::normalize::{Calibration, CalibrationSource};
use crate::outcome::Outcome;

/// A task's scorer. Object-safe, so the protocol server and tests can hold `&dyn Task`.
///
/// Contract: `score` returns `Ok` with an invalid outcome for anything the solution does wrong;
/// `Err` only when the scorer itself cannot work (a missing asset, a full disk).
pub trait Task {
    /// The task's manifest, embedded in the scorer so scorer and harness agree on it.
    fn manifest(&self) -> &Manifest;

    /// Produces the task's assets (public and protected) in `request.store`, deterministically.
    fn prepare(&self, request: &PrepareRequest) -> anyhow::Result<String> {
        let _ = request;
        Ok("nothing to prepare".to_owned())
    }

    fn score(&self, request: &ScoreRequest) -> anyhow::Result<Scored>;

    /// A task-specific benchmark (e.g. the starting and reference solutions against a physical
    /// floor); the request's `solution` is ignored.
    fn bench(&self, request: &ScoreRequest) -> anyhow::Result<BenchReport> {
        let _ = request;
        anyhow::bail!("task `{}` has no benchmark", self.manifest().task.id)
    }
}

/// A benchmark's result: a small table and notes, printed by the harness and kept as JSON.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BenchReport {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl BenchReport {
    /// The title, an aligned table and the notes, as text.
    pub fn table(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.len());
            }
        }
        let line = |cells: &[String]| -> String {
            let padded: Vec<String> =
                cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))).collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = format!("{}\n", self.title);
        out.push_str(&line(&self.header));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

/// Directories and settings common to prepare and score.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The task crate's directory (holds starting/ and reference/).
    pub task_dir: PathBuf,
    /// This task's asset store: `public/` may reach an agent, `protected/` never does.
    pub store: PathBuf,
    /// Scratch space the scorer may clear and fill at will.
    pub scratch: PathBuf,
    /// Shared cargo target directory for building solutions.
    pub target_dir: PathBuf,
    /// The shared asset store (`$REBENCH_HOME/assets`): assets several tasks use (a corpus, a
    /// pretrained model), keyed by a hash of their inputs; never copied into a workdir (copy
    /// what an agent may see into `store/public/`).
    pub assets: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareRequest {
    pub variant: String,
    pub env: Environment,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    pub variant: String,
    /// The solution directory to score (a workdir's solution/ or a materialized one).
    pub solution: PathBuf,
    pub env: Environment,
    /// Seed for the scorer's hidden inputs; the agent never sees it.
    pub seed: u64,
    /// The variant's params with any overrides applied.
    pub params: BTreeMap<String, Value>,
    /// Where live calibrations are cached; `None` measures afresh every time.
    pub calibration_cache: Option<PathBuf>,
    /// Whether to calibrate live (the harness sets it for tasks whose calibration is live).
    pub calibrate: bool,
    /// Overrides the manifest's limit on one run of the solution, in seconds (tests use short
    /// ones to exercise solutions that never finish).
    #[serde(default)]
    pub solution_timeout_secs: Option<f64>,
}

impl ScoreRequest {
    /// A required unsigned integer parameter.
    pub fn param_u64(&self, key: &str) -> anyhow::Result<u64> {
        let value = self.params.get(key).with_context(|| format!("the variant has no parameter `{key}`"))?;
        value.as_u64().with_context(|| format!("parameter `{key}` must be a non-negative integer, got {value}"))
    }
}

/// What scoring returns: the outcome, the calibration it used when live, and where time went.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scored {
    pub outcome: Outcome,
    pub calibration: Option<Calibration>,
    /// Seconds per phase (`build`, `run`, `verify`, `calibrate`...), for overhead reports.
    /// By convention `timed` is the task's own timed work; the rest of a scoring is overhead.
    pub phases: BTreeMap<String, f64>,
}

/// A stopwatch that records named phases.
#[derive(Debug, Default)]
pub struct Phases(pub BTreeMap<String, f64>);

impl Phases {
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let value = f();
        *self.0.entry(name.to_owned()).or_default() += start.elapsed().as_secs_f64();
        value
    }
}

/// Live calibration: the raw scores of the task's own starting and reference solutions, measured
/// by `measure` on this machine, or taken from the cache when this machine, these parameters and
/// these solution sources were measured before.
///
/// `extra_key` names anything else that changes the measurement (the driver's source, say).
/// An invalid outcome for the task's own solutions is an infrastructure fault.
pub fn calibrate_live(
    request: &ScoreRequest,
    extra_key: &str,
    mut measure: impl FnMut(&Path, Solution) -> anyhow::Result<Outcome>,
) -> anyhow::Result<Calibration> {
    let fingerprint = Fingerprint::current();
    let root = request.env.scratch.join("calibration");
    let mut dirs = Vec::new();
    let mut key = format!("{}|{}|{}|{extra_key}", fingerprint.key(), request.variant, serde_json::to_string(&request.params)?);
    for solution in [Solution::Starting, Solution::Reference] {
        let dir = root.join(solution.name());
        fsutil::materialize(&request.env.task_dir, solution, &dir)
            .with_context(|| format!("cannot materialize the {} solution", solution.name()))?;
        key.push('|');
        key.push_str(&fsutil::hash_tree(&dir)?);
        dirs.push((solution, dir));
    }
    let key = fsutil::hash_bytes(key.as_bytes());
    let cache = request.calibration_cache.as_deref().map(CalibrationCache::new);
    if let Some(hit) = cache.as_ref().and_then(|c| c.get(&key)) {
        return Ok(hit);
    }
    let mut raws = Vec::new();
    for (solution, dir) in &dirs {
        match measure(dir, *solution)? {
            Outcome::Valid { raw, .. } => raws.push(raw),
            Outcome::Invalid { reason, .. } => {
                bail!("calibration failed: the task's own {} solution is invalid: {reason}", solution.name())
            }
        }
    }
    let calibration = Calibration {
        starting: raws[0],
        reference: raws[1],
        source: CalibrationSource::Live { fingerprint: fingerprint.describe(), measured_at: now_rfc3339() },
    };
    if let Some(cache) = cache {
        cache.put(&key, &calibration).context("cannot write the calibration cache")?;
    }
    Ok(calibration)
}
