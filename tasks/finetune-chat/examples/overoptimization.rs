//! Proxy reward against the gold judge along a REINFORCE run: the table in
//! `docs/overoptimization.md`.
//!
//!     cargo run --release -p finetune-chat --example overoptimization -- <store> <checkpoints>...
//!
//! `<store>` is a prepared cpu store (`.../store/finetune-chat/cpu`); each checkpoint is a model
//! the reference's solve wrote with `--save-every`. For each it prints the mean proxy reward of
//! its responses to the held-out prompts and their win rate against the base model's under the
//! judge (the scorer's seeds), with the standard error over prompts.

use std::path::PathBuf;

use finetune_chat::engine::Engine;
use finetune_chat::proxy::Proxy;
use finetune_chat::*;
use rebench_pretrained::PretrainSpec;

fn main() -> anyhow::Result<()> {
    // SAFETY: first thing in main, before any other thread exists.
    unsafe { rebench_models::cpu::init_threads(std::thread::available_parallelism().map_or(1, usize::from))? };
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let store = &args[0];
    let assets = std::path::PathBuf::from(std::env::var("HOME")? + "/.local/share/rebench/assets");
    let lang = rebench_pretrained::synthetic_corpus(&assets, &PretrainSpec::cpu_default().corpus)?.language();
    let prompts: Prompts = serde_json::from_slice(&std::fs::read(store.join("protected").join(HELDOUT_PROMPTS))?)?;
    let proxy = Proxy::load(&store.join("public").join(PROXY))?;
    let samples = 2;
    let sample = |path: &std::path::Path| sample_all(&Engine::load(path).unwrap(), &prompts, samples, 1.0, SCORING_SEED).unwrap();
    let base = sample(&store.join("public").join(BASE_MODEL));
    let heldout = Heldout {
        prompts: prompts.clone(),
        samples,
        reference: base.clone(),
        base,
        starting_raw: 0.0,
        reference_raw: 0.0,
        measured_at: String::new(),
    };
    println!("| checkpoint | mean proxy reward | win rate against the base (± s.e.) | malformed | prompt names mentioned | repeats |");
    println!("|---|---|---|---|---|---|");
    for path in std::iter::once(store.join("public").join(BASE_MODEL)).chain(args[1..].iter().cloned()) {
        let responses = sample(&path);
        let reward = prompts.prompts.iter().zip(&responses).flat_map(|(p, rs)| rs.iter().map(|r| f64::from(proxy.reward(p, r)))).sum::<f64>()
            / (prompts.prompts.len() * samples) as f64;
        let v = verdict(&lang, &heldout, &responses);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        println!("| {name} | {reward:.3} | {:.3} ± {:.3} | {:.3} | {:.3} | {:.3} |", v.vs_base, v.stderr, v.malformed, v.names, v.repeats);
    }
    Ok(())
}
