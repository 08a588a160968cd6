//! The command line shared by the `rebench` binary and `cargo xtask`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rebench_scoring::Direction;
use rebench_scoring::fsutil::Solution;
use serde_json::Value;

use crate::score::{ScoreOptions, Target};
use crate::workspace::Workspace;
use crate::{new_task, reset, score, scorer, tasks, validate};

#[derive(Debug, Parser)]
#[command(about = "rebench-rs: RE-Bench's research-engineering tasks in Rust")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SolutionArg {
    Starting,
    Reference,
}

impl From<SolutionArg> for Solution {
    fn from(s: SolutionArg) -> Solution {
        match s {
            SolutionArg::Starting => Solution::Starting,
            SolutionArg::Reference => Solution::Reference,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DirectionArg {
    Lower,
    Higher,
}

#[derive(Debug, clap::Args)]
pub struct ScoreFlags {
    /// Seed of the scorer's hidden inputs (random by default).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a variant parameter, e.g. `--param n=1000000` (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, Value)>,
}

impl ScoreFlags {
    fn options(&self, log: Option<PathBuf>) -> ScoreOptions {
        ScoreOptions { seed: self.seed, params: self.params.iter().cloned().collect::<BTreeMap<_, _>>(), log }
    }
}

fn parse_param(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))?;
    // Numbers and booleans as JSON; anything else is a string.
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the tasks and their variants.
    List,
    /// Build the scorers of the given tasks (all by default).
    Build {
        tasks: Vec<String>,
        #[arg(long, default_value = "cpu")]
        variant: String,
    },
    /// Run a task's deterministic `prepare` step (assets into the store).
    Prepare {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
    },
    /// Make a fresh agent workdir: instructions.md, solution/, public data.
    Reset {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
        /// Start from the reference (for maintainers) instead of the starting solution.
        #[arg(long, value_enum, default_value = "starting")]
        solution: SolutionArg,
        /// The workdir to create (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a task's named solution or a workdir, and append to the score log.
    Score {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
        #[arg(long, value_enum, conflicts_with = "workdir", required_unless_present = "workdir")]
        solution: Option<SolutionArg>,
        #[arg(long)]
        workdir: Option<PathBuf>,
        #[command(flatten)]
        flags: ScoreFlags,
        /// The score log to append to (default: under $REBENCH_HOME/scores).
        #[arg(long)]
        log: Option<PathBuf>,
        /// Print one JSON object instead of a line for people.
        #[arg(long)]
        json: bool,
    },
    /// Run a task's tests, then check that starting scores ~0 and reference ~1.
    Check {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
        #[command(flatten)]
        flags: ScoreFlags,
    },
    /// Score every task's starting and reference solutions and print a table.
    Validate {
        #[arg(long, default_value = "cpu")]
        variant: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a task's benchmark (e.g. solutions against the memory-bandwidth floor).
    Bench {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
        #[command(flatten)]
        flags: ScoreFlags,
    },
    /// Generate a new task crate under tasks/<id> from the template.
    NewTask {
        id: String,
        #[arg(long, value_enum, default_value = "lower")]
        direction: DirectionArg,
        /// Add a `gpu` variant with a CUDA kernel skeleton.
        #[arg(long)]
        cuda: bool,
    },
    /// Export a score log in METR's CSV layout (timestamp,score,message,details).
    ExportCsv {
        log: PathBuf,
        /// Output file (stdout by default).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Parses the arguments and runs; errors print with their causes and exit non-zero.
pub fn main(ws: anyhow::Result<Workspace>) -> ExitCode {
    let cli = Cli::parse();
    match ws.and_then(|ws| run(&ws, cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(ws: &Workspace, command: Cmd) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::List => {
            let found = tasks::discover(ws)?;
            for t in &found.tasks {
                let variants: Vec<&str> = t.manifest.variants.keys().map(String::as_str).collect();
                println!("{:<20} {:<12} {}", t.id, variants.join(","), t.manifest.task.summary);
            }
            for (dir, why) in &found.broken {
                println!("{:<20} BROKEN       {why}", dir.display());
            }
            return Ok(if found.broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Cmd::Build { tasks: ids, variant } => {
            let all = tasks::discover(ws)?.tasks;
            let selected: Vec<&tasks::TaskEntry> = if ids.is_empty() {
                all.iter().filter(|t| t.manifest.variant(&variant).is_some()).collect()
            } else {
                ids.iter()
                    .map(|id| all.iter().find(|t| &t.id == id).with_context(|| format!("unknown task `{id}`")))
                    .collect::<anyhow::Result<_>>()?
            };
            let features = selected.first().and_then(|t| t.manifest.variant(&variant)).map(|v| v.features.clone()).unwrap_or_default();
            for path in scorer::build(ws, &selected, &features)? {
                println!("{}", path.display());
            }
        }
        Cmd::Prepare { task, variant } => {
            let task = tasks::find(ws, &task)?;
            let features = task.variant(&variant)?.features.clone();
            let bin = scorer::build(ws, &[&task], &features)?.remove(0);
            score::ensure_prepared(ws, &task, &variant, &bin)?;
            println!("{} [{variant}] prepared in {}", task.id, ws.store(&task.id, &variant).display());
        }
        Cmd::Reset { task, variant, solution, out } => {
            let start = Instant::now();
            let task = tasks::find(ws, &task)?;
            reset::reset(ws, &task, &variant, solution.into(), &out)?;
            println!("{} ready in {:.3} s", out.display(), start.elapsed().as_secs_f64());
        }
        Cmd::Score { task, variant, solution, workdir, flags, log, json } => {
            let task = tasks::find(ws, &task)?;
            let features = task.variant(&variant)?.features.clone();
            let target = match (solution, workdir) {
                (_, Some(dir)) => Target::Workdir(dir),
                (Some(s), None) => Target::Named(s.into()),
                (None, None) => bail!("give --solution or --workdir"),
            };
            let bin = scorer::build(ws, &[&task], &features)?.remove(0);
            let result = score::score(ws, &task, &variant, &target, &flags.options(log), &bin)?;
            if json {
                println!("{}", result.json());
            } else {
                println!("{}", result.human_line());
                let phases: Vec<String> = result.phases.iter().map(|(k, v)| format!("{k} {v:.2} s")).collect();
                println!("  phases: {}; log: {}", phases.join(", "), result.log.display());
                if let Some(timed) = result.phases.get("timed") {
                    println!(
                        "  timed work {timed:.2} s of {:.2} s; overhead (building, untimed runs, checks, calibration, harness) {:.2} s",
                        result.wall_secs,
                        result.wall_secs - timed
                    );
                }
            }
            return Ok(if result.entry.valid { ExitCode::SUCCESS } else { ExitCode::from(3) });
        }
        Cmd::Check { task, variant, flags } => {
            let row = validate::check(ws, &task, &variant, &flags.options(None))?;
            print!("{}", validate::table(std::slice::from_ref(&row)));
            return Ok(if row.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Cmd::Validate { variant, json } => {
            let rows = validate::validate(ws, &variant, &ScoreOptions::default())?;
            if json {
                for row in &rows {
                    let side = |r: &Option<score::ScoreResult>| r.as_ref().map(score::ScoreResult::json);
                    println!(
                        "{}",
                        serde_json::json!({"task": row.task, "variant": row.variant, "passed": row.passed(),
                            "starting": side(&row.starting), "reference": side(&row.reference), "problems": row.problems})
                    );
                }
            } else {
                print!("{}", validate::table(&rows));
            }
            if rows.is_empty() {
                bail!("no task has a `{variant}` variant");
            }
            return Ok(if rows.iter().all(validate::Row::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Cmd::Bench { task, variant, flags } => {
            let task = tasks::find(ws, &task)?;
            let features = task.variant(&variant)?.features.clone();
            let bin = scorer::build(ws, &[&task], &features)?.remove(0);
            let report = score::bench(ws, &task, &variant, &flags.options(None), &bin)?;
            print!("{}", format_bench(&report));
            let dir = ws.home.join("bench");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{}-{variant}-{}.json", task.id, score::fresh_seed() % 1_000_000));
            std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
            println!("saved {}", path.display());
        }
        Cmd::NewTask { id, direction, cuda } => {
            let direction = match direction {
                DirectionArg::Lower => Direction::Lower,
                DirectionArg::Higher => Direction::Higher,
            };
            let dest = ws.tasks_dir().join(&id);
            let files = new_task::generate(&new_task::NewTask { id: id.clone(), direction, cuda }, &dest)?;
            println!("created {} ({} files); next: cargo xtask check {id}", dest.display(), files.len());
        }
        Cmd::ExportCsv { log, out } => {
            let contents = rebench_scoring::log::read_log(&log)?;
            if let Some(tail) = &contents.torn_tail {
                eprintln!("warning: {} ends with a torn line (a crash mid-write), skipped: {tail}", log.display());
            }
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
                    rebench_scoring::log::export_metr_csv(&contents.entries, file)?;
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    rebench_scoring::log::export_metr_csv(&contents.entries, &mut stdout)?;
                    stdout.flush()?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A bench report as an aligned table.
pub fn format_bench(report: &rebench_scoring::task::BenchReport) -> String {
    let columns = report.header.len();
    let mut widths: Vec<usize> = report.header.iter().map(String::len).collect();
    for row in &report.rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0))).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = format!("{}\n", report.title);
    out.push_str(&line(&report.header));
    for row in &report.rows {
        out.push_str(&line(row));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
