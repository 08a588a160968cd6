//! `validate` and `check`: the starting solution of every task must score about 0 and its
//! reference about 1, freshly measured on this machine.

use std::process::Command;

use anyhow::{Context, bail};
use rebench_scoring::fsutil::Solution;
use rebench_scoring::manifest::CalibrationSpec;

use crate::score::{self, ScoreOptions, ScoreResult, Target};
use crate::tasks::{self, TaskEntry};
use crate::workspace::Workspace;

/// One row of the validation table.
#[derive(Debug)]
pub struct Row {
    pub task: String,
    pub variant: String,
    pub starting: Option<ScoreResult>,
    pub reference: Option<ScoreResult>,
    /// Empty when the row passed.
    pub problems: Vec<String>,
    /// Why the variant was not scored on this machine (`Variant::unmet`); such a row passes.
    pub skipped: Option<String>,
}

impl Row {
    fn new(task: &str, variant: &str) -> Self {
        Row { task: task.to_owned(), variant: variant.to_owned(), starting: None, reference: None, problems: Vec::new(), skipped: None }
    }

    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Why `variant` of `task` cannot run here, if it cannot.
fn unmet(task: &TaskEntry, variant: &str) -> Option<String> {
    task.manifest.variant(variant).and_then(|v| v.unmet())
}

fn skipped(task: &TaskEntry, variant: &str, why: String) -> Row {
    eprintln!("skipping {} [{variant}]: {why}", task.id);
    Row { skipped: Some(why), ..Row::new(&task.id, variant) }
}

/// Scores the starting and reference solutions of `task` and judges them against its tolerance.
pub fn validate_task(ws: &Workspace, task: &TaskEntry, variant: &str, options: &ScoreOptions, scorer_bin: &std::path::Path) -> Row {
    if let Some(why) = unmet(task, variant) {
        return skipped(task, variant, why);
    }
    let mut row = Row::new(&task.id, variant);
    let tolerance = task.manifest.scoring.tolerance;
    for (which, expected) in [(Solution::Starting, 0.0), (Solution::Reference, 1.0)] {
        match score::score(ws, task, variant, &Target::Named(which), options, scorer_bin) {
            Err(err) => row.problems.push(format!("{}: {err:#}", which.name())),
            Ok(result) => {
                match (result.entry.valid, result.entry.normalized) {
                    (false, _) => row.problems.push(format!("{} is invalid: {}", which.name(), result.entry.message)),
                    (true, None) => row.problems.push(match task.manifest.calibration(variant) {
                        CalibrationSpec::Pending { why } => {
                            format!("{} has no normalized score: the variant's calibration is pending ({why})", which.name())
                        }
                        _ => format!("{} has no normalized score", which.name()),
                    }),
                    (true, Some(n)) if (n - expected).abs() > tolerance => row.problems.push(format!(
                        "{} normalized {n:.3}, expected {expected} within {tolerance}",
                        which.name()
                    )),
                    _ => {}
                }
                match which {
                    Solution::Starting => row.starting = Some(result),
                    Solution::Reference => row.reference = Some(result),
                }
            }
        }
    }
    row
}

/// Validates every task that has `variant`; a task with a broken manifest is a failed row.
pub fn validate(ws: &Workspace, variant: &str, options: &ScoreOptions) -> anyhow::Result<Vec<Row>> {
    let found = tasks::discover(ws)?;
    let mut rows: Vec<Row> = found
        .broken
        .iter()
        .map(|(dir, why)| Row {
            problems: vec![why.clone()],
            ..Row::new(&dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), variant)
        })
        .collect();
    let mut selected = Vec::new();
    for task in found.tasks.iter().filter(|t| t.manifest.variant(variant).is_some()) {
        match unmet(task, variant) {
            // Not even its scorer is built: a GPU or endpoint variant's features may not build here.
            Some(why) => rows.push(skipped(task, variant, why)),
            None => selected.push(task),
        }
    }
    let features = selected.first().map(|t| t.manifest.variants[variant].features.clone()).unwrap_or_default();
    let binaries = crate::scorer::build(ws, &selected, &features)?;
    for (task, binary) in selected.iter().zip(&binaries) {
        eprintln!("validating {} [{variant}]...", task.id);
        rows.push(validate_task(ws, task, variant, options, binary));
    }
    Ok(rows)
}

/// `check <id>`: the task's own tests pass, then it validates.
pub fn check(ws: &Workspace, id: &str, variant: &str, options: &ScoreOptions) -> anyhow::Result<Row> {
    let task = tasks::find(ws, id)?;
    task.variant(variant)?;
    eprintln!("running the tests of {id}...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&ws.root)
        .args(["test", "--quiet", "--package", id])
        .env("CARGO_TARGET_DIR", ws.target_dir())
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the tests of `{id}` fail");
    }
    if let Some(why) = unmet(&task, variant) {
        return Ok(skipped(&task, variant, why));
    }
    let features = task.manifest.variants[variant].features.clone();
    let binary = crate::scorer::build(ws, &[&task], &features)?.remove(0);
    Ok(validate_task(ws, &task, variant, options, &binary))
}

/// The validation table, for people.
pub fn table(rows: &[Row]) -> String {
    let fmt = |r: &Option<ScoreResult>, normalized: bool| -> String {
        match r {
            None => "-".into(),
            Some(r) if !r.entry.valid => "invalid".into(),
            Some(r) if normalized => r.entry.normalized.map_or("-".into(), |n| format!("{n:.3}")),
            Some(r) => r.entry.raw.map_or("-".into(), |x| format!("{x:.4}")),
        }
    };
    let mut out = format!(
        "{:<20} {:<8} {:>14} {:>14} {:>10} {:>10}  {}\n",
        "task", "variant", "starting raw", "reference raw", "start norm", "ref norm", "status"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<20} {:<8} {:>14} {:>14} {:>10} {:>10}  {}\n",
            row.task,
            row.variant,
            fmt(&row.starting, false),
            fmt(&row.reference, false),
            fmt(&row.starting, true),
            fmt(&row.reference, true),
            match (&row.skipped, row.passed()) {
                (Some(why), _) => format!("skipped: {why}"),
                (None, true) => "ok".to_owned(),
                (None, false) => format!("FAIL: {}", row.problems.join("; ")),
            }
        ));
    }
    out
}
