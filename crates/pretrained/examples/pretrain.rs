//! Pretrains a GPT on the synthetic corpus and prints how long it took and how good it is.
//!
//! ```sh
//! cargo run --release -p rebench-pretrained --example pretrain -- [--spec cpu-default|gpu-default|tiny] [--device cpu|cuda] [--threads 2] [--assets DIR]
//! #   overrides for sizing experiments: --steps N --batch N --context N --width N --depth N --heads N --lr X --warmup N
//! ```
//!
//! Without `--assets` it trains into a fresh temporary store (so it always measures a training
//! run); with it, an asset already there is reused and only its recorded numbers are printed.

use std::path::PathBuf;
use std::time::Instant;

use rebench_pretrained::{PretrainSpec, Split, pretrained_on};

/// mimalloc: candle allocates and frees every activation on every step, which glibc's malloc
/// serves more slowly (see crates/models' benchmark).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds this process has used (all threads, user + system): on a loaded machine,
/// `cpu / threads` estimates the wall time the run would take with the cores to itself.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() -> anyhow::Result<()> {
    let mut spec = PretrainSpec::cpu_default();
    let mut name = "cpu-default".to_string();
    let mut threads = 2;
    let mut device = "cpu".to_string();
    let mut assets: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{a} needs a value"));
        match a.as_str() {
            "--spec" => {
                name = value()?;
                spec = PretrainSpec::named(&name)?;
            }
            "--device" => device = value()?,
            "--threads" => threads = value()?.parse()?,
            "--assets" => assets = Some(value()?.into()),
            "--steps" => spec.steps = value()?.parse()?,
            "--batch" => spec.batch_size = value()?.parse()?,
            "--context" => spec.model.context = value()?.parse()?,
            "--width" => spec.model.width = value()?.parse()?,
            "--depth" => spec.model.depth = value()?.parse()?,
            "--heads" => spec.model.heads = value()?.parse()?,
            "--lr" => spec.peak_lr = value()?.parse()?,
            "--warmup" => spec.warmup = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    // SAFETY: no other thread runs yet.
    unsafe { rebench_models::cpu::init_threads(threads)? };
    let tmp = tempfile::tempdir()?;
    let store = assets.unwrap_or_else(|| tmp.path().to_owned());
    let cfg = &spec.model;
    println!(
        "spec {name}: GPT vocab {} context {} width {} depth {} heads {} ({} parameters), {} steps of {} windows, peak lr {}; {threads} threads",
        cfg.vocab,
        cfg.context,
        cfg.width,
        cfg.depth,
        cfg.heads,
        cfg.params_total(),
        spec.steps,
        spec.batch_size,
        spec.peak_lr,
    );
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let p = pretrained_on(&store, &spec, &rebench_pretrained::device::by_name(&device)?)?;
    let total = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let e = &p.eval;
    let predictions = (spec.steps * spec.batch_size * cfg.context) as f64;
    println!("asset {} ({})", p.asset.dir.display(), if p.asset.built { "built now" } else { "already present" });
    println!(
        "total {total:.1} s wall, {cpu:.1} s CPU (corpus, training, evaluation, checkpoint); training {:.1} s = {:.2} steps/s, {:.0} tokens/s, {:.1} GFLOP/s; evaluation {:.1} s",
        e.train_seconds,
        spec.steps as f64 / e.train_seconds,
        predictions / e.train_seconds,
        cfg.train_flops(predictions as u64) as f64 / e.train_seconds / 1e9,
        e.eval_seconds,
    );
    println!(
        "final train loss {:.4}, validation loss {:.4}, floor {:.4} (train split floor {:.4}); {} training tokens, the train split has {}",
        e.final_train_loss,
        e.validation_loss,
        e.floor,
        p.corpus.floor(Split::Train),
        e.train_tokens,
        spec.corpus.train,
    );
    println!("load average {}", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim());
    Ok(())
}
