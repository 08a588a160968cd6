//! Trains the weak model with a given configuration and measures its greedy and sampled
//! single-sample solve rates on held-out problems: for sizing the `cpu` variant.
//!
//! `cargo run --release -p scaffold-synthesis --example weak_model -- WIDTH DEPTH STEPS BATCH LR`

use std::time::Instant;

use dsl::{Program, Prompt};
use rebench_models::Rng;
use scaffold_synthesis::generate::{self, Shape};
use scaffold_synthesis::infer::Engine;
use scaffold_synthesis::train::{self, TrainSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| args.get(i).map_or(default, |a| a.parse().expect("a number"));
    // SAFETY: first thing in main, no other thread yet.
    unsafe { rebench_models::cpu::init_threads(std::thread::available_parallelism()?.get().min(2))? };
    let spec = TrainSpec {
        width: arg(0, 96.0) as usize,
        depth: arg(1, 3.0) as usize,
        heads: 4,
        context: arg(5, 80.0) as usize,
        steps: arg(2, 300.0) as usize,
        batch_size: arg(3, 32.0) as usize,
        peak_lr: arg(4, 3e-3),
        warmup: 30,
        repair_share: arg(6, 0.15),
        seed: 1,
    };
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("model.safetensors");
    let report = train::train(&spec, &path, |step, loss| {
        if step % 50 == 0 {
            eprintln!("step {step}: loss {loss:.3}");
        }
    })?;
    println!("{spec:?}\n{report:?}");
    let engine = Engine::load(&path)?;
    let problems = generate::held_out(12345, 200, &Shape::default());
    let start = Instant::now();
    let mut greedy = [0usize; 4];
    let mut sampled = [0usize; 4];
    let mut parsed = 0;
    let mut rng = Rng::new(7);
    for p in &problems {
        let prompt = engine.prefill(&engine.vocab().prompt(&Prompt::new(&p.visible)));
        for (t, tally) in [(0.0, &mut greedy), (1.0, &mut sampled)] {
            let s = engine.sample(&prompt, t, 16, &mut rng);
            if let Ok(program) = Program::parse(&s.text) {
                parsed += 1;
                if p.hidden.iter().all(|e| e.passes(&program)) {
                    tally[p.depth - 1] += 1;
                }
            }
        }
    }
    let per = problems.len() / 4;
    println!(
        "greedy solve rate {:.3} by depth {greedy:?} of {per}; temperature 1: {:.3} by depth {sampled:?}; parsed {parsed} of {}; {:.2} s",
        greedy.iter().sum::<usize>() as f64 / problems.len() as f64,
        sampled.iter().sum::<usize>() as f64 / problems.len() as f64,
        2 * problems.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
