//! The scaling check at sizes a CPU cannot reach: GPTs of several widths trained for equal token
//! budgets on the default synthetic language, on a CUDA device (or the CPU, for a smoke run),
//! each row's validation loss against the split's exact entropy floor, one JSON line per row.
//!
//! ```sh
//! # on a GPU (built with --features cuda):
//! scaling --device cuda --widths 64,128,256,512 --steps 600 --log rows.jsonl
//! # a smoke run here:
//! cargo run --release -p rebench-pretrained --example scaling -- --widths 16,32 --steps 20 --context 32 --batch 4 --train-tokens 300000
//! ```
//!
//! Everything but the width is fixed by the arguments: depth, heads, context, windows per step,
//! the schedule (linear warm-up over `--warmup` steps, cosine to a tenth of the peak), AdamW and
//! the gradient clip of `rebench_pretrained`'s pretraining. The peak learning rate is
//! `--lr × √(128 / width)`, the scaling-law task's rule. The corpus is the default language with
//! `--train-tokens` train tokens and the default validation split (its floor does not depend on
//! the train split's size); batches are drawn at seeded random offsets of the train split.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use rebench_models::{AdamWConfig, Gpt, Kernels, LrSchedule, ModelConfig, TrainConfig, Trainer};
use rebench_pretrained::{Split, TokenBatches, default_splits, evaluate_split, synthetic_corpus};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    device: String,
    widths: Vec<usize>,
    steps: usize,
    depth: usize,
    heads: usize,
    context: usize,
    batch: usize,
    lr: f64,
    warmup: usize,
    train_tokens: usize,
    threads: usize,
    assets: Option<PathBuf>,
    log: Option<PathBuf>,
    /// The CUDA code path on the CPU: plain candle ops and AdamW's tensor-op update.
    plain: bool,
    /// Seeds the weights; the batch order comes from `seed + 1`.
    seed: u64,
}

fn parse() -> anyhow::Result<Args> {
    let mut a = Args {
        device: "cpu".into(),
        widths: vec![64, 128, 256, 512],
        steps: 600,
        depth: 4,
        heads: 4,
        context: 256,
        batch: 32,
        lr: 3e-3,
        warmup: 100,
        train_tokens: 20_000_000,
        threads: 2,
        assets: None,
        log: None,
        plain: false,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--device" => a.device = value()?,
            "--widths" => {
                a.widths = value()?.split(',').map(str::parse).collect::<Result<_, _>>().context("--widths: a list like 64,128")?;
            }
            "--steps" => a.steps = value()?.parse()?,
            "--depth" => a.depth = value()?.parse()?,
            "--heads" => a.heads = value()?.parse()?,
            "--context" => a.context = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--lr" => a.lr = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--train-tokens" => a.train_tokens = value()?.parse()?,
            "--threads" => a.threads = value()?.parse()?,
            "--assets" => a.assets = Some(value()?.into()),
            "--log" => a.log = Some(value()?.into()),
            "--plain" => a.plain = true,
            "--seed" => a.seed = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other} (see the example's doc comment)"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let a = parse()?;
    // SAFETY: no other thread runs yet.
    unsafe { rebench_models::cpu::init_threads(a.threads)? };
    let device = rebench_pretrained::device::by_name(&a.device)?;
    let tmp = tempfile::tempdir()?;
    let store = a.assets.clone().unwrap_or_else(|| tmp.path().to_owned());
    let mut splits = default_splits();
    splits.train = a.train_tokens;
    let corpus = synthetic_corpus(&store, &splits)?;
    let floor = corpus.floor(Split::Validation);
    let train = corpus.tokens(Split::Train)?;
    eprintln!("corpus: {} train tokens, validation floor {floor:.4}", train.len());
    for &width in &a.widths {
        let cfg = ModelConfig::gpt(corpus.vocab_size(), a.context, width, a.depth, a.heads);
        let peak = a.lr * (128.0 / width as f64).sqrt();
        let mut model = Gpt::new(cfg.clone(), a.seed, &device)?;
        if a.plain {
            model.body.set_kernels(Kernels::Plain);
        }
        let mut trainer = Trainer::new(
            &model,
            TrainConfig {
                batch_size: a.batch,
                schedule: LrSchedule { peak, min: peak / 10.0, warmup: a.warmup, total: a.steps },
                adamw: AdamWConfig::default(),
                grad_clip: Some(1.0),
                seed: a.seed,
            },
        );
        trainer.optimizer_mut().force_tensor_path = a.plain;
        let mut batches = TokenBatches::new(train.clone(), a.seed + 1);
        let start = Instant::now();
        let mut last = Vec::new();
        trainer.run(&model, &mut batches, a.steps, |s| {
            if s.step > a.steps - a.steps.div_ceil(20) {
                last.push(f64::from(s.loss));
            }
        })?;
        let train_seconds = start.elapsed().as_secs_f64();
        let validation_loss = evaluate_split(&model, &corpus, Split::Validation)?;
        anyhow::ensure!(validation_loss.is_finite(), "width {width}: the validation loss is {validation_loss}");
        let tokens = a.steps * a.batch * a.context;
        let row = serde_json::json!({
            "device": a.device, "seed": a.seed, "width": width, "depth": a.depth, "heads": a.heads, "context": a.context,
            "batch": a.batch, "steps": a.steps, "peak_lr": peak, "params_matmul": cfg.params_matmul(),
            "params_total": cfg.params_total(), "train_tokens": tokens, "train_flops": cfg.train_flops(tokens as u64),
            "final_train_loss": last.iter().sum::<f64>() / last.len().max(1) as f64,
            "validation_loss": validation_loss, "floor": floor, "train_seconds": train_seconds,
        });
        println!("{row}");
        if let Some(log) = &a.log {
            let mut f = OpenOptions::new().create(true).append(true).open(log)?;
            writeln!(f, "{row}")?;
        }
    }
    Ok(())
}
