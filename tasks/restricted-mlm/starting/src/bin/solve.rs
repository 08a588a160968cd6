//! `solve`: trains the model on `../data/train.tok` and writes `out/model.safetensors`, the
//! weights the scorer loads into `src/model.rs`.

use std::path::Path;

use solution::train::{Settings, train};

fn main() -> std::process::ExitCode {
    let threads = std::env::var("REBENCH_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    if let Err(err) = restricted::init_threads(threads) {
        eprintln!("{err}");
    }
    let settings = Settings { steps: solution::model::TRAIN_STEPS, batch: 32, peak_lr: 3e-3, warmup: 20, weight_decay: 0.01, seed: 1 };
    match train(&settings, Path::new("../data"), Path::new("out/model.safetensors")) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("solve: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
