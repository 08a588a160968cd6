//! Runs the starting and reference scaffolds (or any solution directories) on the same
//! held-out problems with a trained model, as a scoring would, and prints their solve rates.
//!
//! `cargo run --release -p scaffold-synthesis --example compare -- MODEL.safetensors SEED PROBLEMS [SOLUTION_DIR...]`
//!
//! MODEL is the `model.safetensors` of a `weak-model-*` asset in the task's protected store
//! (`cargo xtask prepare scaffold-synthesis` makes it). Without solution directories it runs
//! the task's own starting and reference scaffolds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dsl::Budget;
use rebench_scoring::driver::{self, BuildPlan, DriverSource};
use rebench_scoring::fsutil::Solution;
use scaffold_synthesis::generate::{self, Shape};
use scaffold_synthesis::infer::Engine;
use scaffold_synthesis::session::{self, Limits};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() >= 3, "usage: compare MODEL SEED PROBLEMS [SOLUTION_DIR...]");
    let engine = Engine::load(&PathBuf::from(&args[0]))?;
    let seed: u64 = args[1].parse()?;
    let count: usize = args[2].parse()?;
    let scratch = tempfile::tempdir()?;
    let mut solutions: Vec<(String, PathBuf)> = args[3..].iter().map(|d| (d.clone(), PathBuf::from(d))).collect();
    if solutions.is_empty() {
        for which in [Solution::Starting, Solution::Reference] {
            let dir = scaffold_synthesis::materialize(which, &scratch.path().join(which.name()))?;
            solutions.push((which.name().to_owned(), dir));
        }
    }
    let source = include_str!("../driver/main.rs");
    let files = [("src/main.rs", source)];
    let problems = generate::held_out(seed, count, &Shape::default());
    let limits = Limits { budget: Budget { calls: 16, tokens: 256 }, scaffold_time: Duration::from_secs(10), memory: 4 << 30 };
    for (i, (name, dir)) in solutions.iter().enumerate() {
        let plan = BuildPlan {
            scratch: scratch.path().join(format!("build-{i}")),
            solution: dir.clone(),
            target_dir: std::env::temp_dir().join("scaffold-synthesis-compare"),
            timeout: Duration::from_secs(600),
        };
        let binary = driver::build(&plan, DriverSource { files: &files })?.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        let start = Instant::now();
        let results = session::run(&binary, &plan.scratch, &problems, &engine, seed, &limits)?;
        let mut by_depth = [0usize; 4];
        for r in results.iter().filter(|r| r.solved) {
            by_depth[r.depth - 1] += 1;
        }
        let solved: usize = by_depth.iter().sum();
        let samples: u32 = results.iter().map(|r| r.calls).sum();
        println!(
            "{name}: solved {solved} of {count} ({:.3}); by depth {by_depth:?} of {} each; {samples} samples; {:.1} s",
            solved as f64 / count as f64,
            count / 4,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
