//! The training program: trains one GPT of the task's family for a number of steps and prints
//! its loss on the dev tokens, refusing before any work an experiment over the FLOP cap.
//!
//!     cargo run --release -p trainer -- --width 64 --steps 400 [--seed 1] [--data ../data]
//!
//! The model family (depth, heads, context, batch) and the device are the variant's, from
//! `data/task.json`; a variant on `cuda` needs the trainer built with `--features cuda`.
//!
//! It prints progress on stderr and one JSON line on stdout (width, steps, seed, flops, params,
//! tokens, train_loss, eval_loss, seconds), and appends the same line to `runs.jsonl`.

mod experiment;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use experiment::{Experiment, Family};
use rebench_models::candle_core::Device;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("trainer: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (mut width, mut steps, mut seed) = (0, 0, 1);
    let mut data = PathBuf::from("../data");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--width" => width = value()?.parse()?,
            "--steps" => steps = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--data" => data = PathBuf::from(value()?),
            _ => return Err(format!("unknown argument {flag} (expected --width, --steps, --seed, --data)").into()),
        }
    }
    let task: serde_json::Value = serde_json::from_slice(&std::fs::read(data.join("task.json"))?)?;
    let cap = task["cap"].as_f64().ok_or("task.json has no cap")?;
    let vocab = task["vocab"].as_u64().ok_or("task.json has no vocab")? as usize;
    let family = Family::from_json(&task)?;
    let exp = Experiment { family, width, steps, seed };
    // The cap is checked before anything is loaded or trained.
    exp.check(vocab, Some(cap))?;
    let threads = std::env::var("REBENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // SAFETY: no other thread runs yet.
    unsafe { rebench_models::cpu::init_threads(threads)? };
    let device = match task["device"].as_str().unwrap_or("cpu") {
        "cpu" => Device::Cpu,
        "cuda" => Device::new_cuda(0).map_err(|e| format!("device cuda (build the trainer with --features cuda): {e}"))?,
        other => return Err(format!("task.json names an unknown device `{other}` (cpu or cuda)").into()),
    };
    let (_, train) = experiment::read_tokens(&data.join("train.tok"))?;
    let (_, dev) = experiment::read_tokens(&data.join("dev.tok"))?;
    let every = (exp.steps / 10).max(1);
    let report = experiment::run(&exp, vocab, &train, &dev, Some(cap), &device, |step, loss| {
        if step % every == 0 {
            eprintln!("step {step}/{}: train loss {loss:.4}", exp.steps);
        }
    })?;
    let line = serde_json::to_string(&report.to_json())?;
    println!("{line}");
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open("runs.jsonl")?;
    writeln!(log, "{line}")?;
    Ok(())
}
