//! `report`: what a set of run directories amounts to.
//!
//! [`load`] reads one or more run directories (the layout below, written by `run`) into a
//! [`Report`]: every trial with its result and score log, grouped by (task, variant, agent).
//! Groups pool trials across run directories, so `report runs/a runs/b` compares the agents of
//! both runs. From a report come a terminal [`table`], a static HTML page with one SVG
//! score-over-time plot per task ([`write_html`]), one-row-per-trial exports ([`write_csv`],
//! [`write_jsonl`]) and every trial's score log in METR's CSV layout ([`export_metr_logs`]).
//!
//! ```text
//! <run-dir>/run.json                          RunConfig
//! <run-dir>/trials/<trial-id>/trial.json      TrialSpec
//! <run-dir>/trials/<trial-id>/score_log.jsonl rebench_scoring::log::LogEntry lines
//! <run-dir>/trials/<trial-id>/result.json     TrialResult; absent while the trial is unfinished
//! ```
//!
//! Statistics follow RE-Bench: a trial's score is its final normalized score (0 when it has no
//! valid scoring); over the seeds of a group we report the mean with a 95% Student-t confidence
//! interval and best-of-k for every k up to the number of finished trials. Unfinished trials
//! (a trial directory without result.json, or a trial that run.json plans but that has no
//! directory yet) are counted and shown, never scored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use rebench_scoring::log::{LogEntry, export_metr_csv, read_log};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::run::{RunConfig, TrialResult, TrialSpec};

/// The run-directory format version this module reads.
pub const RUN_FORMAT_VERSION: u32 = 1;

/// One run directory.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    pub meta: RunConfig,
}

/// One trial of one run.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The `run_id` of the run it belongs to.
    pub run_id: String,
    pub dir: PathBuf,
    pub meta: TrialSpec,
    /// `None` while the trial is unfinished.
    pub result: Option<TrialResult>,
    /// Every complete entry of its score log, in file order.
    pub log: Vec<LogEntry>,
    /// Whether the log ended in a torn line (ignored).
    pub torn_tail: bool,
}

impl Trial {
    pub fn finished(&self) -> bool {
        self.result.is_some()
    }

    /// The trial's score: the final normalized score, `None` while unfinished.
    pub fn score(&self) -> Option<f64> {
        self.result.as_ref().map(|r| r.normalized)
    }

    /// The best normalized score so far as a step function of elapsed seconds: the points
    /// `(t, best)` where it changes, starting at `(0, 0)` (a trial scores 0 until its first valid
    /// scoring, RE-Bench's convention) and ending at the end of the trial (its wall time, or its
    /// last log entry while unfinished) with the final value.
    pub fn best_so_far(&self) -> Vec<(f64, f64)> {
        let mut entries: Vec<&LogEntry> = self.log.iter().collect();
        entries.sort_by(|a, b| a.elapsed_secs.total_cmp(&b.elapsed_secs));
        let mut points = vec![(0.0, 0.0)];
        let mut best = 0.0_f64;
        let mut end = 0.0_f64;
        for entry in entries {
            let t = entry.elapsed_secs.max(0.0);
            end = end.max(t);
            if let (true, Some(n)) = (entry.valid, entry.normalized)
                && n.is_finite()
                && n > best
            {
                best = n;
                points.push((t, best));
            }
        }
        if let Some(result) = &self.result {
            end = end.max(result.wall_secs);
        }
        points.push((end, best));
        points
    }
}

/// The trials of one (task, variant, agent), pooled over run directories.
#[derive(Clone, Debug)]
pub struct Group {
    pub task: String,
    pub variant: String,
    pub agent: String,
    /// The finished trials' scores, in trial order.
    pub scores: Vec<f64>,
    /// Trial directories without result.json.
    pub unfinished: usize,
    /// Trials that run.json plans (its seeds) but that have no directory yet.
    pub not_started: usize,
    pub stats: Stats,
}

/// Statistics of a group's scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    /// `None` when n = 0.
    pub mean: Option<f64>,
    /// Half-width of the 95% confidence interval of the mean; `None` when n < 2.
    pub ci95: Option<f64>,
    /// `best_of[k - 1]` is the expected best of k trials, k = 1..=n.
    pub best_of: Vec<f64>,
}

impl Stats {
    pub fn of(scores: &[f64]) -> Stats {
        let n = scores.len();
        Stats { n, mean: mean(scores), ci95: ci95_half_width(scores), best_of: best_of_k(scores) }
    }
}

/// Everything the run directories hold.
#[derive(Clone, Debug)]
pub struct Report {
    pub runs: Vec<Run>,
    /// Sorted by task, variant, agent, seed, run.
    pub trials: Vec<Trial>,
    /// Sorted by task, variant, agent.
    pub groups: Vec<Group>,
    /// Things a reader should know that did not stop the report (torn log tails, odd trial
    /// directories, repeated run ids).
    pub notes: Vec<String>,
}

impl Report {
    pub fn unfinished(&self) -> usize {
        self.groups.iter().map(|g| g.unfinished).sum()
    }

    pub fn not_started(&self) -> usize {
        self.groups.iter().map(|g| g.not_started).sum()
    }

    /// The tasks with their variants, in order: one plot each.
    pub fn task_variants(&self) -> Vec<(String, String)> {
        let set: BTreeSet<(String, String)> = self.groups.iter().map(|g| (g.task.clone(), g.variant.clone())).collect();
        set.into_iter().collect()
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| anyhow!("{}: malformed JSON: {err}", path.display()))
}

/// Reads run directories into a report. Every run directory must hold a readable run.json of
/// this format version; malformed JSON anywhere is an error naming the file. A torn last line of
/// a score log (a crash mid-write) is tolerated and noted. The same directory given twice is read
/// once.
pub fn load(run_dirs: &[PathBuf]) -> anyhow::Result<Report> {
    if run_dirs.is_empty() {
        bail!("no run directory given");
    }
    let mut runs = Vec::new();
    let mut trials = Vec::new();
    let mut notes = Vec::new();
    let mut seen_dirs = BTreeSet::new();
    let mut seen_ids = BTreeSet::new();
    for dir in run_dirs {
        let canonical = dir.canonicalize().with_context(|| format!("cannot open run directory {}", dir.display()))?;
        if !seen_dirs.insert(canonical) {
            continue;
        }
        let run_json = dir.join("run.json");
        if !run_json.is_file() {
            bail!("{} is not a run directory: it has no run.json", dir.display());
        }
        let meta: RunConfig = read_json(&run_json)?;
        if meta.version != RUN_FORMAT_VERSION {
            bail!(
                "{}: run format version {} (this rebench reads version {RUN_FORMAT_VERSION})",
                run_json.display(),
                meta.version
            );
        }
        if !seen_ids.insert(meta.run_id.clone()) {
            notes.push(format!(
                "run id `{}` appears in more than one run directory ({}); their trials are pooled",
                meta.run_id,
                dir.display()
            ));
        }
        trials.extend(load_trials(dir, &meta, &mut notes)?);
        runs.push(Run { dir: dir.clone(), meta });
    }
    trials.sort_by(|a, b| {
        (&a.meta.task, &a.meta.variant, &a.meta.agent, a.meta.seed, &a.run_id, &a.meta.trial_id).cmp(&(
            &b.meta.task,
            &b.meta.variant,
            &b.meta.agent,
            b.meta.seed,
            &b.run_id,
            &b.meta.trial_id,
        ))
    });
    let groups = group(&runs, &trials);
    Ok(Report { runs, trials, groups, notes })
}

fn load_trials(run_dir: &Path, run: &RunConfig, notes: &mut Vec<String>) -> anyhow::Result<Vec<Trial>> {
    let trials_dir = run_dir.join("trials");
    let mut dirs = Vec::new();
    match std::fs::read_dir(&trials_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", trials_dir.display()))?;
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(entry.path());
                }
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", trials_dir.display())),
    }
    dirs.sort();
    let mut trials = Vec::new();
    for dir in dirs {
        let trial_json = dir.join("trial.json");
        let result_json = dir.join("result.json");
        let result: Option<TrialResult> = if result_json.is_file() { Some(read_json(&result_json)?) } else { None };
        let meta: TrialSpec = if trial_json.is_file() {
            read_json(&trial_json)?
        } else if let Some(r) = &result {
            TrialSpec {
                trial_id: r.trial_id.clone(),
                task: r.task.clone(),
                variant: r.variant.clone(),
                seed: r.seed,
                agent: r.agent.clone(),
                time_limit_secs: run.time_limit_secs,
            }
        } else {
            notes.push(format!("{}: neither trial.json nor result.json; skipped", dir.display()));
            continue;
        };
        if let Some(r) = &result
            && (r.task != meta.task || r.variant != meta.variant || r.seed != meta.seed || r.agent != meta.agent)
        {
            notes.push(format!(
                "{}: result.json says {}/{}/{}/seed {} but trial.json says {}/{}/{}/seed {}; trial.json counts",
                dir.display(),
                r.task,
                r.variant,
                r.agent,
                r.seed,
                meta.task,
                meta.variant,
                meta.agent,
                meta.seed
            ));
        }
        let log_path = dir.join("score_log.jsonl");
        let contents = read_log(&log_path)?;
        let torn_tail = contents.torn_tail.is_some();
        if torn_tail {
            notes.push(format!("{}: torn last line ignored (a crash mid-write)", log_path.display()));
        }
        trials.push(Trial { run_id: run.run_id.clone(), dir, meta, result, log: contents.entries, torn_tail });
    }
    Ok(trials)
}

fn group(runs: &[Run], trials: &[Trial]) -> Vec<Group> {
    type Key = (String, String, String);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    fn entry(groups: &mut BTreeMap<Key, Group>, key: Key) -> &mut Group {
        groups.entry(key.clone()).or_insert_with(|| Group {
            task: key.0,
            variant: key.1,
            agent: key.2,
            scores: Vec::new(),
            unfinished: 0,
            not_started: 0,
            stats: Stats::of(&[]),
        })
    }
    for trial in trials {
        let g = entry(&mut groups, (trial.meta.task.clone(), trial.meta.variant.clone(), trial.meta.agent.clone()));
        match trial.score() {
            Some(score) => g.scores.push(score),
            None => g.unfinished += 1,
        }
    }
    // Trials run.json plans that have no directory yet.
    for run in runs {
        for task in &run.meta.tasks {
            let present = trials
                .iter()
                .filter(|t| t.run_id == run.meta.run_id && &t.meta.task == task && t.meta.variant == run.meta.variant)
                .count() as u64;
            let missing = u64::from(run.meta.seeds).saturating_sub(present);
            let g = entry(&mut groups, (task.clone(), run.meta.variant.clone(), run.meta.agent.name.clone()));
            g.not_started += missing as usize;
        }
    }
    groups
        .into_values()
        .map(|mut g| {
            g.stats = Stats::of(&g.scores);
            g
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// The arithmetic mean; `None` for no scores.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The half-width of the two-sided 95% confidence interval of the mean, Student t:
///
/// `t_{0.975, n-1} * s / sqrt(n)`, where `s` is the sample standard deviation
/// `sqrt(sum (x_i - mean)^2 / (n - 1))`. `None` for n < 2 (no interval from one sample).
pub fn ci95_half_width(xs: &[f64]) -> Option<f64> {
    let n = xs.len();
    if n < 2 {
        return None;
    }
    let m = mean(xs)?;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some(student_t_quantile_975(n as u64 - 1) * (var / n as f64).sqrt())
}

/// `P(|T| <= t)` for Student's t with `df` (integer) degrees of freedom, in closed form
/// (Abramowitz & Stegun 26.7.3-4). With `theta = atan(t / sqrt(df))`, `c = cos^2(theta)`:
/// - df odd:  `(2/pi) * (theta + sin(theta) cos(theta) * (1 + 2/3 c + 2*4/(3*5) c^2 + ...
///   + 2*4*...*(df-3) / (3*5*...*(df-2)) c^((df-3)/2)))`, the sum empty for df = 1;
/// - df even: `sin(theta) * (1 + 1/2 c + 1*3/(2*4) c^2 + ... + 1*3*...*(df-3) / (2*4*...*(df-2))
///   c^((df-2)/2))`.
fn student_t_two_sided_cdf(t: f64, df: u64) -> f64 {
    let theta = (t / (df as f64).sqrt()).atan();
    let (s, c) = (theta.sin(), theta.cos());
    let c2 = c * c;
    if df % 2 == 1 {
        let mut sum = 0.0;
        if df > 1 {
            let mut term = 1.0;
            sum = 1.0;
            let mut k = 1;
            while 2 * k < df - 1 {
                // term_k = term_{k-1} * (2k) / (2k + 1) * c2
                term *= (2 * k) as f64 / (2 * k + 1) as f64 * c2;
                sum += term;
                k += 1;
            }
        }
        2.0 / std::f64::consts::PI * (theta + s * c * sum)
    } else {
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1;
        while 2 * k < df {
            // term_k = term_{k-1} * (2k - 1) / (2k) * c2
            term *= (2 * k - 1) as f64 / (2 * k) as f64 * c2;
            sum += term;
            k += 1;
        }
        s * sum
    }
}

/// The 0.975 quantile of Student's t with `df >= 1` degrees of freedom (so the two-sided 95%
/// critical value): the `t` with `P(|T| <= t) = 0.95`, found by bisection on the closed-form
/// CDF above (12.706 for df = 1, 4.303 for df = 2, 1.960 as df grows).
pub fn student_t_quantile_975(df: u64) -> f64 {
    assert!(df >= 1, "Student t needs at least one degree of freedom");
    let (mut lo, mut hi) = (0.0_f64, 1000.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_cdf(mid, df) < 0.95 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Best-of-k for k = 1..=n: the expected maximum of k scores drawn without replacement from the
/// n, computed exactly rather than by sampling.
///
/// Sort the scores ascending, `x_(1) <= ... <= x_(n)`. A draw of k has `x_(i)` as its maximum
/// exactly when it takes `x_(i)` and its other k - 1 from the i - 1 below it (ties broken by
/// position, which does not change the value), so
///
/// ```text
/// E[max of k] = sum_{i=k}^{n} C(i-1, k-1) / C(n, k) * x_(i).
/// ```
///
/// The weights `w_i = C(i-1, k-1) / C(n, k)` are computed without large binomials:
/// `w_n = k / n` and `w_{i-1} = w_i * (i - k) / (i - 1)`. best-of-1 is the mean; best-of-n is the
/// maximum.
pub fn best_of_k(scores: &[f64]) -> Vec<f64> {
    let mut x = scores.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    (1..=n)
        .map(|k| {
            let mut w = k as f64 / n as f64;
            let mut sum = 0.0;
            for i in (k..=n).rev() {
                sum += w * x[i - 1];
                if i > 1 {
                    w *= (i - k) as f64 / (i - 1) as f64;
                }
            }
            sum
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The terminal table

fn fmt_score(x: f64) -> String {
    format!("{x:.3}")
}

fn mean_ci(stats: &Stats) -> String {
    match (stats.mean, stats.ci95) {
        (Some(m), Some(ci)) => format!("{} ± {}", fmt_score(m), fmt_score(ci)),
        (Some(m), None) => fmt_score(m),
        _ => "-".to_owned(),
    }
}

/// The rows of the table as cells, header first; shared by the terminal and HTML tables.
fn table_rows(report: &Report) -> Vec<Vec<String>> {
    let max_n = report.groups.iter().map(|g| g.stats.n).max().unwrap_or(0);
    let mut header: Vec<String> = ["task", "variant", "agent", "n", "mean ± 95% CI"].map(String::from).into();
    header.extend((1..=max_n).map(|k| format!("best@{k}")));
    header.push("unfinished".into());
    let mut rows = vec![header];
    for g in &report.groups {
        let mut row =
            vec![g.task.clone(), g.variant.clone(), g.agent.clone(), g.stats.n.to_string(), mean_ci(&g.stats)];
        row.extend((0..max_n).map(|k| g.stats.best_of.get(k).map_or_else(|| "-".to_owned(), |&b| fmt_score(b))));
        row.push((g.unfinished + g.not_started).to_string());
        rows.push(row);
    }
    rows
}

fn footnotes(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let finished = report.trials.iter().filter(|t| t.finished()).count();
    lines.push(format!(
        "{} run(s), {} trial(s) finished, {} unfinished (no result.json), {} planned but not started; unfinished trials are not scored.",
        report.runs.len(),
        finished,
        report.unfinished(),
        report.not_started()
    ));
    lines.push(
        "Scores are normalized (starting solution 0, reference 1); a trial without a valid scoring scores 0. \
         CI: Student t over seeds (none for n = 1). best@k: expected best of k trials drawn without replacement."
            .to_owned(),
    );
    lines.extend(report.notes.iter().map(|n| format!("note: {n}")));
    lines
}

/// The terminal table: task, variant, agent, n, mean ± 95% CI, best-of-1..k, unfinished
/// (unfinished plus not-started trials), followed by footnotes and notes.
pub fn table(report: &Report) -> String {
    let rows = table_rows(report);
    let columns = rows[0].len();
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            // Text columns left-aligned, numbers right-aligned.
            if c < 3 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            if c + 1 < columns {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (columns - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out.push('\n');
    for line in footnotes(report) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTML and SVG

/// A file-name-safe form of an id: `[A-Za-z0-9._-]` kept, anything else `_`, no leading dot.
fn file_stem(id: &str) -> String {
    let mut s: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// The SVG file name of a task's plot: `<task>.svg`, or `<task>-<variant>.svg` when the report
/// holds the task in more than one variant.
pub fn plot_file_name(report: &Report, task: &str, variant: &str) -> String {
    let variants = report.task_variants().iter().filter(|(t, _)| t == task).count();
    if variants > 1 {
        format!("{}-{}.svg", file_stem(task), file_stem(variant))
    } else {
        format!("{}.svg", file_stem(task))
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours for agents, in order of first appearance (Tableau 10).
const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Picks a time unit for an axis spanning `max_secs`: seconds up to 2 minutes, minutes up to
/// 2 hours, hours beyond.
fn time_unit(max_secs: f64) -> (f64, &'static str) {
    if max_secs <= 120.0 {
        (1.0, "s")
    } else if max_secs <= 7200.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

/// Formats an axis number without trailing zeros: `5`, `2.5`, `0.25`.
fn axis_number(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Draws the plot of one (task, variant) as an SVG document.
///
/// Every trial is a step line of its best normalized score so far over elapsed time
/// ([`Trial::best_so_far`]), one colour per agent, ending in a dot at the end of the trial (a
/// hollow dot and a faded line for an unfinished trial, which ends at its last scoring); a dashed
/// grey line marks the reference solution's score, 1. Text is emitted as SVG `<text>` elements
/// (plotters' SVG backend; without a font feature plotters only estimates text extents for
/// layout), so drawing needs no font file and the viewer's sans-serif font shows it.
pub fn plot_svg(report: &Report, task: &str, variant: &str) -> anyhow::Result<String> {
    use plotters::prelude::*;

    let trials: Vec<&Trial> =
        report.trials.iter().filter(|t| t.meta.task == task && t.meta.variant == variant).collect();
    let agents: Vec<&str> = {
        let mut seen = Vec::new();
        for g in report.groups.iter().filter(|g| g.task == task && g.variant == variant) {
            if !seen.contains(&g.agent.as_str()) {
                seen.push(g.agent.as_str());
            }
        }
        seen
    };
    let color_of = |agent: &str| {
        let index = agents.iter().position(|a| *a == agent).unwrap_or(0);
        let (r, g, b) = PALETTE[index % PALETTE.len()];
        RGBColor(r, g, b)
    };
    let lines: Vec<(&Trial, Vec<(f64, f64)>)> = trials.iter().map(|t| (*t, t.best_so_far())).collect();
    let max_t = lines
        .iter()
        .flat_map(|(t, pts)| pts.iter().map(|p| p.0).chain(std::iter::once(t.meta.time_limit_secs)))
        .filter(|x| x.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let max_y = lines.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)).fold(1.0_f64, f64::max);
    let (unit_secs, unit) = time_unit(max_t);
    let x_max = max_t / unit_secs;
    // Headroom above the highest line for the legend.
    let y_max = max_y * 1.3;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!("{task} ({variant}): best normalized score so far");
        let mut chart = ChartBuilder::on(&root)
            .caption(&title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        let fmt = |x: &f64| axis_number(*x);
        chart
            .configure_mesh()
            .x_desc(format!("elapsed time ({unit})"))
            .y_desc("normalized score (0 = starting, 1 = reference)")
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(240, 240, 240))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;

        let grey = RGBColor(110, 110, 110);
        chart
            .draw_series(DashedLineSeries::new([(0.0, 1.0), (x_max, 1.0)], 6, 4, grey.stroke_width(1)))?
            .label("reference solution (1)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], grey.stroke_width(1)));

        // Lines first (one legend entry per agent), then every trial's end dot on top, so short
        // trials hidden under other lines still show.
        for agent in &agents {
            let color = color_of(agent);
            let mut labelled = false;
            for (trial, points) in lines.iter().filter(|(t, _)| t.meta.agent == *agent) {
                // A step line: hold each value until the next change.
                let mut steps = Vec::with_capacity(points.len() * 2);
                for (i, &(t, y)) in points.iter().enumerate() {
                    if i > 0 {
                        steps.push((t / unit_secs, points[i - 1].1));
                    }
                    steps.push((t / unit_secs, y));
                }
                steps.dedup();
                let style = if trial.finished() { color.stroke_width(2) } else { color.mix(0.35).stroke_width(2) };
                let series = chart.draw_series(LineSeries::new(steps, style))?;
                if !labelled {
                    let of_agent: Vec<&&Trial> = trials.iter().filter(|t| t.meta.agent == *agent).collect();
                    let unfinished = of_agent.iter().filter(|t| !t.finished()).count();
                    let mut label =
                        format!("{agent} ({} trial{}", of_agent.len(), if of_agent.len() == 1 { "" } else { "s" });
                    if unfinished > 0 {
                        label.push_str(&format!(", {unfinished} unfinished, faded"));
                    }
                    label.push(')');
                    series
                        .label(label)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
                    labelled = true;
                }
            }
        }
        chart.draw_series(lines.iter().filter_map(|(trial, points)| {
            let &(t, y) = points.last()?;
            let color = color_of(&trial.meta.agent);
            let style = if trial.finished() { color.filled() } else { color.stroke_width(2) };
            Some(Circle::new((t / unit_secs, y), 4, style))
        }))?;

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// Writes `out_dir/index.html` (static: no script, no external resource) with the table and,
/// per task, its plot (`out_dir/<task>.svg`, see [`plot_file_name`]). Returns the page's path.
pub fn write_html(report: &Report, out_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rebench report</title>\n<style>\n\
         body { font-family: sans-serif; margin: 2em; color: #222; }\n\
         table { border-collapse: collapse; margin-bottom: 1em; }\n\
         th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }\n\
         td.num { text-align: right; font-variant-numeric: tabular-nums; }\n\
         th { background: #f3f3f3; }\n\
         img { max-width: 100%; height: auto; border: 1px solid #ddd; }\n\
         .notes { color: #555; font-size: 0.9em; }\n\
         </style>\n</head>\n<body>\n<h1>rebench report</h1>\n",
    );
    html.push_str("<p>Runs: ");
    let runs: Vec<String> = report
        .runs
        .iter()
        .map(|r| {
            format!(
                "<code>{}</code> (agent {}, {} seed(s))",
                html_escape(&r.meta.run_id),
                html_escape(&r.meta.agent.name),
                r.meta.seeds
            )
        })
        .collect();
    html.push_str(&runs.join(", "));
    html.push_str("</p>\n<h2>Normalized scores</h2>\n<table>\n");
    for (i, row) in table_rows(report).iter().enumerate() {
        html.push_str("<tr>");
        for (c, cell) in row.iter().enumerate() {
            let _ = match (i, c) {
                (0, _) => write!(html, "<th>{}</th>", html_escape(cell)),
                (_, 0..=2) => write!(html, "<td>{}</td>", html_escape(cell)),
                _ => write!(html, "<td class=\"num\">{}</td>", html_escape(cell)),
            };
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<div class=\"notes\">\n");
    for line in footnotes(report) {
        let _ = writeln!(html, "<p>{}</p>", html_escape(&line));
    }
    html.push_str("</div>\n<h2>Score over time</h2>\n");
    for (task, variant) in report.task_variants() {
        let file = plot_file_name(report, &task, &variant);
        let svg = plot_svg(report, &task, &variant).with_context(|| format!("cannot plot {task} ({variant})"))?;
        let path = out_dir.join(&file);
        std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
        let _ = write!(
            html,
            "<h3>{t} ({v})</h3>\n<p><img src=\"{f}\" alt=\"best normalized score so far over elapsed time, {t} ({v})\" width=\"900\" height=\"520\"></p>\n",
            t = html_escape(&task),
            v = html_escape(&variant),
            f = html_escape(&file),
        );
    }
    html.push_str("</body>\n</html>\n");
    let index = out_dir.join("index.html");
    std::fs::write(&index, html).with_context(|| format!("cannot write {}", index.display()))?;
    Ok(index)
}

// ---------------------------------------------------------------------------------------------
// Exports

/// One trial as a CSV / JSON Lines row. Unfinished trials have `end_reason` `unfinished` and no
/// numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    pub run: String,
    pub trial_id: String,
    pub task: String,
    pub variant: String,
    pub agent: String,
    pub seed: u64,
    pub end_reason: String,
    pub normalized: Option<f64>,
    /// The raw score of the final entry; none without a valid scoring.
    pub raw: Option<f64>,
    pub wall_secs: Option<f64>,
    pub overhead_secs: Option<f64>,
    pub scorings: Option<u64>,
}

/// The export rows, one per trial, in the report's trial order.
pub fn rows(report: &Report) -> Vec<TrialRow> {
    report
        .trials
        .iter()
        .map(|t| {
            let r = t.result.as_ref();
            TrialRow {
                run: t.run_id.clone(),
                trial_id: t.meta.trial_id.clone(),
                task: t.meta.task.clone(),
                variant: t.meta.variant.clone(),
                agent: t.meta.agent.clone(),
                seed: u64::from(t.meta.seed),
                end_reason: r.map_or_else(|| "unfinished".to_owned(), |r| r.end_reason.clone()),
                normalized: r.map(|r| r.normalized),
                raw: r.and_then(|r| r.final_entry.as_ref()).filter(|e| e.valid).and_then(|e| e.raw),
                wall_secs: r.map(|r| r.wall_secs),
                overhead_secs: r.map(|r| r.overhead_secs),
                scorings: r.map(|r| r.scorings as u64),
            }
        })
        .collect()
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}

/// Writes one CSV row per trial (header: run, trial_id, task, variant, agent, seed, end_reason,
/// normalized, raw, wall_secs, overhead_secs, scorings; empty cells for missing numbers).
pub fn write_csv(report: &Report, path: &Path) -> anyhow::Result<()> {
    create_parent(path)?;
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))?;
    for row in rows(report) {
        writer.serialize(row).with_context(|| format!("cannot write {}", path.display()))?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes the same rows as [`write_csv`], one JSON object a line (`null` for missing numbers).
pub fn write_jsonl(report: &Report, path: &Path) -> anyhow::Result<()> {
    create_parent(path)?;
    let mut text = String::new();
    for row in rows(report) {
        text.push_str(&serde_json::to_string(&row)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes every trial's score log in METR's CSV layout (`timestamp,score,message,details`) to
/// `out_dir/<run-id>/<trial-id>.csv`, unfinished trials included. Returns the files written.
pub fn export_metr_logs(report: &Report, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for trial in &report.trials {
        let dir = out_dir.join(file_stem(&trial.run_id));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{}.csv", file_stem(&trial.meta.trial_id)));
        let file = std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        export_metr_csv(&trial.log, std::io::BufWriter::new(file))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// What [`write_all`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub html: PathBuf,
    pub csv: PathBuf,
    pub jsonl: PathBuf,
    pub metr_logs: Vec<PathBuf>,
}

/// Everything at once into `out_dir`: index.html and the plots, trials.csv, trials.jsonl and
/// metr/<run-id>/<trial-id>.csv.
pub fn write_all(report: &Report, out_dir: &Path) -> anyhow::Result<Written> {
    let html = write_html(report, out_dir)?;
    let csv = out_dir.join("trials.csv");
    write_csv(report, &csv)?;
    let jsonl = out_dir.join("trials.jsonl");
    write_jsonl(report, &jsonl)?;
    let metr_logs = export_metr_logs(report, &out_dir.join("metr"))?;
    Ok(Written { html, csv, jsonl, metr_logs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95% critical values from standard t tables.
        for (df, t) in [
            (1, 12.7062),
            (2, 4.3027),
            (3, 3.1824),
            (4, 2.7764),
            (5, 2.5706),
            (9, 2.2622),
            (10, 2.2281),
            (30, 2.0423),
            (120, 1.9799),
        ] {
            let q = student_t_quantile_975(df);
            assert!(close(q, t, 1e-4), "df {df}: {q} vs {t}");
        }
        assert!(close(student_t_quantile_975(100_000), 1.95996, 1e-4));
    }

    #[test]
    fn mean_and_ci_by_hand() {
        // 1.0, 0.98, 1.02: mean 1, s = sqrt((0 + 0.0004 + 0.0004) / 2) = 0.02,
        // half-width = 4.302653 * 0.02 / sqrt(3) = 0.0496828.
        let xs = [1.0, 0.98, 1.02];
        assert!(close(mean(&xs).unwrap(), 1.0, 1e-12));
        assert!(close(ci95_half_width(&xs).unwrap(), 0.0496828, 1e-6));
        // 0, 1: mean 0.5, s = sqrt(0.5), half-width = 12.706205 * sqrt(0.5) / sqrt(2) = 6.3531.
        assert!(close(ci95_half_width(&[0.0, 1.0]).unwrap(), 6.353103, 1e-5));
        assert_eq!(ci95_half_width(&[0.0, 0.0, 0.0]), Some(0.0));
        assert_eq!(ci95_half_width(&[0.7]), None);
        assert_eq!(mean(&[]), None);
        let s = Stats::of(&[0.7]);
        assert_eq!((s.n, s.mean, s.ci95, s.best_of), (1, Some(0.7), None, vec![0.7]));
    }

    #[test]
    fn best_of_k_by_hand() {
        // Pairs of {0.98, 1.0, 1.02}: max 1.0, 1.02, 1.02 -> 3.04 / 3.
        let b = best_of_k(&[1.0, 0.98, 1.02]);
        assert_eq!(b.len(), 3);
        assert!(close(b[0], 1.0, 1e-12) && close(b[1], 3.04 / 3.0, 1e-12) && close(b[2], 1.02, 1e-12), "{b:?}");
        // {0, 0, 1, 2}: k=2 pairs (6): maxes 0,1,2,1,2,2 -> 8/6; k=3 triples (4): 1,2,2,2 -> 7/4.
        let b = best_of_k(&[2.0, 0.0, 1.0, 0.0]);
        let want = [0.75, 8.0 / 6.0, 7.0 / 4.0, 2.0];
        for (got, want) in b.iter().zip(want) {
            assert!(close(*got, want, 1e-12), "{b:?}");
        }
        assert!(best_of_k(&[]).is_empty());
        // Large n: no overflow, k = n is the max, k = 1 the mean.
        let many: Vec<f64> = (0..2000).map(|i| i as f64 / 1999.0).collect();
        let b = best_of_k(&many);
        assert!(close(b[0], 0.5, 1e-9) && close(b[1999], 1.0, 1e-12) && b.windows(2).all(|w| w[0] <= w[1] + 1e-12));
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("optimize-kernel"), "optimize-kernel");
        assert_eq!(file_stem("../x y"), "_.._x_y");
        assert_eq!(file_stem(""), "_");
    }
}
