//! The grid runner: trains one model per grid point with the task's own experiment code
//! ([`crate::experiment`]) and appends each result to a JSON Lines log as soon as it is done,
//! so a long grid can be stopped and resumed, and a partial grid is still a table.
//!
//! Two grids use it: the ground truth (widths × fractions of the target budget, evaluated on
//! the protected validation split) and the scaling check (widths at one token budget).

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use rebench_models::candle_core::Device;

use crate::experiment::{self, Experiment, Family};

/// One measured grid point: a line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Measured {
    pub width: usize,
    pub steps: usize,
    pub seed: u64,
    /// The point's nominal fraction of the target budget (ground truth), or 0.
    #[serde(default)]
    pub fraction: f64,
    pub flops: f64,
    pub params: usize,
    pub tokens: u64,
    pub train_loss: f64,
    /// Mean loss on the evaluation split (the protected validation split).
    pub eval_loss: f64,
    pub seconds: f64,
}

/// A grid point to measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub exp: Experiment,
    pub fraction: f64,
}

/// The results already in `log` (none when it does not exist); a torn last line is ignored.
pub fn read_log(log: &Path) -> anyhow::Result<Vec<Measured>> {
    let text = match fs::read_to_string(log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", log.display())),
    };
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Measures every point of `points` not yet in `log`, in order, on `device`, appending each
/// result.
pub fn run(points: &[Point], vocab: usize, train: &[u32], eval: &[u32], device: &Device, log: &Path) -> anyhow::Result<Vec<Measured>> {
    let done: BTreeSet<(usize, usize, u64)> = read_log(log)?.iter().map(|m| (m.width, m.steps, m.seed)).collect();
    for (i, p) in points.iter().enumerate() {
        let e = p.exp;
        if done.contains(&(e.width, e.steps, e.seed)) {
            continue;
        }
        eprintln!(
            "[{}/{}] width {} steps {} seed {} ({:.3e} FLOPs)",
            i + 1,
            points.len(),
            e.width,
            e.steps,
            e.seed,
            e.flops(vocab)
        );
        let report = experiment::run(&e, vocab, train, eval, None, device, |_, _| {})
            .map_err(|err| anyhow::anyhow!("width {} steps {}: {err}", e.width, e.steps))?;
        let m = Measured {
            width: e.width,
            steps: e.steps,
            seed: e.seed,
            fraction: p.fraction,
            flops: report.flops,
            params: report.params,
            tokens: report.tokens,
            train_loss: report.train_loss,
            eval_loss: report.eval_loss,
            seconds: report.seconds,
        };
        eprintln!("    eval loss {:.4} in {:.0} s", m.eval_loss, m.seconds);
        let mut file = OpenOptions::new().create(true).append(true).open(log).with_context(|| format!("cannot open {}", log.display()))?;
        file.write_all(format!("{}\n", serde_json::to_string(&m)?).as_bytes())?;
        file.sync_all()?;
    }
    let wanted: BTreeSet<(usize, usize, u64)> = points.iter().map(|p| (p.exp.width, p.exp.steps, p.exp.seed)).collect();
    Ok(read_log(log)?.into_iter().filter(|m| wanted.contains(&(m.width, m.steps, m.seed))).collect())
}

/// The steps that spend `fraction` of `budget` FLOPs at `width` of `family` (at least one).
pub fn steps_for(family: Family, width: usize, vocab: usize, budget: f64, fraction: f64) -> usize {
    let per_step = Experiment { family, width, steps: 1, seed: 0 }.flops(vocab);
    ((budget * fraction / per_step).round() as usize).max(1)
}

/// The ground-truth table of a grid of `family`: every (width, fraction) cell with the losses of
/// its seeds. Fails when a cell of `widths` × `fractions` was not measured.
pub fn assemble(
    measured: &[Measured],
    family: Family,
    budget: f64,
    widths: &[usize],
    fractions: &[f64],
    provenance: crate::truth::Provenance,
) -> anyhow::Result<crate::truth::Truth> {
    let mut cells = Vec::new();
    let mut spread = 0.0f64;
    for &fraction in fractions {
        for &width in widths {
            let steps = steps_for(family, width, crate::vocab(), budget, fraction);
            let mut runs: Vec<&Measured> = measured.iter().filter(|m| m.width == width && m.steps == steps).collect();
            runs.sort_by_key(|m| m.seed);
            runs.dedup_by_key(|m| m.seed);
            anyhow::ensure!(!runs.is_empty(), "no run of width {width} for {steps} steps ({fraction} of the budget)");
            let losses: Vec<f64> = runs.iter().map(|m| m.eval_loss).collect();
            let (lo, hi) = losses.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &l| (a.min(l), b.max(l)));
            spread = spread.max(hi - lo);
            cells.push(crate::truth::Cell {
                width,
                fraction,
                steps,
                flops: runs[0].flops,
                mean: losses.iter().sum::<f64>() / losses.len() as f64,
                seeds: runs.iter().map(|m| m.seed).collect(),
                losses,
            });
        }
    }
    let truth = crate::truth::Truth {
        format: crate::truth::FORMAT,
        family,
        budget,
        widths: widths.to_vec(),
        fractions: fractions.to_vec(),
        cells,
        provenance: crate::truth::Provenance { max_seed_spread: spread, ..provenance },
    };
    truth.check()?;
    Ok(truth)
}
