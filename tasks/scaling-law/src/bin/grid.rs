//! Measures the scaling-law task's grids: `truth` (the ground-truth table: widths × fractions of
//! the target budget) and `check` (widths at one token budget, against the entropy floor), each
//! resumable from its JSON Lines log. The variant (`--variant`) decides the model family, the
//! corpus and the device; a variant on `cuda` needs this binary built with `--features cuda`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rebench_pretrained::{Split, synthetic_corpus};
use scaling_law::Variant;
use scaling_law::experiment::Experiment;
use scaling_law::grid::{self, Point};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    /// The shared asset store (default: $REBENCH_HOME/assets, or ~/.local/share/rebench/assets).
    #[arg(long, global = true)]
    assets: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// The task's variant whose family, corpus and device the runs use.
    #[arg(long, global = true, default_value = "cpu")]
    variant: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Widths × fractions of a FLOP budget, one run each per seed.
    Truth {
        #[arg(long)]
        budget: f64,
        #[arg(long, value_delimiter = ',')]
        widths: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "1.0")]
        fractions: Vec<f64>,
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        #[arg(long)]
        log: PathBuf,
    },
    /// Widths at one number of steps (equal token budgets).
    Check {
        #[arg(long)]
        steps: usize,
        #[arg(long, value_delimiter = ',')]
        widths: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "1")]
        seeds: Vec<u64>,
        #[arg(long)]
        log: PathBuf,
    },
    /// Assembles the ground-truth table from `truth` logs (no training).
    Table {
        #[arg(long)]
        budget: f64,
        #[arg(long, value_delimiter = ',')]
        widths: Vec<usize>,
        #[arg(long, value_delimiter = ',')]
        fractions: Vec<f64>,
        /// Logs of `truth` runs (any number).
        #[arg(long, required = true)]
        log: Vec<PathBuf>,
        /// Where the measurement ran, for the provenance.
        #[arg(long)]
        hardware: String,
        #[arg(long)]
        threads: usize,
        /// The commands that measured the logs.
        #[arg(long)]
        command: String,
        #[arg(long)]
        git_rev: String,
        #[arg(long)]
        note: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let variant = Variant::named(&cli.variant)?;
    if let Cmd::Table { budget, widths, fractions, log, hardware, threads, command, git_rev, note, out } = &cli.cmd {
        let mut measured = Vec::new();
        for l in log {
            measured.extend(grid::read_log(l)?);
        }
        let date = std::process::Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output()?;
        let provenance = scaling_law::truth::Provenance {
            command: command.clone(),
            hardware: hardware.clone(),
            threads: *threads,
            date: String::from_utf8_lossy(&date.stdout).trim().to_owned(),
            git_rev: git_rev.clone(),
            max_seed_spread: 0.0,
            floor: synthetic_corpus(&assets_dir(cli.assets.clone())?, &variant.splits)?.floor(Split::Validation),
            notes: note.clone(),
        };
        let truth = grid::assemble(&measured, variant.family, *budget, widths, fractions, provenance)?;
        std::fs::write(out, serde_json::to_string_pretty(&truth)? + "\n")?;
        let (w, f, l) = truth.optimum();
        println!("optimum: width {w} at {f} of the budget, loss {l:.4}; largest seed spread {:.4}", truth.provenance.max_seed_spread);
        return Ok(());
    }
    let threads = cli.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: first thing in main, no other thread yet.
    unsafe { rebench_models::cpu::init_threads(threads)? };
    let device = rebench_pretrained::device::by_name(&variant.device)?;
    let family = variant.family;
    let corpus = synthetic_corpus(&assets_dir(cli.assets.clone())?, &variant.splits)?;
    let vocab = corpus.vocab_size();
    let (train, _dev) = scaling_law::split_train(corpus.tokens(Split::Train)?);
    let validation = corpus.tokens(Split::Validation)?;
    eprintln!("validation floor {:.4} nats/token", corpus.floor(Split::Validation));
    let (points, log) = match cli.cmd {
        Cmd::Truth { budget, widths, fractions, seeds, log } => {
            let mut points = Vec::new();
            // Seed-major, then fraction-major: the first seed's full-budget row comes first,
            // so a grid stopped early still has the most useful points.
            for &seed in &seeds {
                for &fraction in &fractions {
                    for &width in &widths {
                        let steps = grid::steps_for(family, width, vocab, budget, fraction);
                        points.push(Point { exp: Experiment { family, width, steps, seed }, fraction });
                    }
                }
            }
            (points, log)
        }
        Cmd::Table { .. } => unreachable!("handled above"),
        Cmd::Check { steps, widths, seeds, log } => {
            let points = seeds
                .iter()
                .flat_map(|&seed| widths.iter().map(move |&width| Point { exp: Experiment { family, width, steps, seed }, fraction: 0.0 }))
                .collect::<Vec<_>>();
            (points, log)
        }
    };
    let done = grid::run(&points, vocab, &train, &validation, &device, &log)?;
    for m in &done {
        println!("{}", serde_json::to_string(m)?);
    }
    Ok(())
}

fn assets_dir(assets: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(match assets {
        Some(a) => a,
        None => match std::env::var_os("REBENCH_HOME") {
            Some(home) => PathBuf::from(home).join("assets"),
            None => PathBuf::from(std::env::var_os("HOME").context("no HOME")?).join(".local/share/rebench/assets"),
        },
    })
}
