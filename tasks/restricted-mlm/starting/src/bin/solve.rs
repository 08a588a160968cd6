//! `solve`: trains the model on `../data/train.tok` and writes `out/model.safetensors`, the
//! weights the scorer loads into `src/model.rs`, on the variant's device (`REBENCH_PARAM_DEVICE`:
//! `cpu` where unset, `cuda` for the gpu variant).

use std::path::Path;

use restricted::Device;
use solution::train::{Settings, train};

/// Windows per step on the CPU, and the budget on a CUDA device (the gpu variant): four times
/// the windows per step and ten times the steps, about 1.2 passes over its 40M-token train split
/// for the reference. Not yet run on a GPU: sized so that the models' small kernels (launch-bound
/// at this width) train in minutes.
const CPU_BATCH: usize = 32;
const CUDA_BATCH: usize = 128;
const CUDA_STEPS_FACTOR: usize = 10;

fn main() -> std::process::ExitCode {
    let threads = std::env::var("REBENCH_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    if let Err(err) = restricted::init_threads(threads) {
        eprintln!("{err}");
    }
    let device_name = std::env::var("REBENCH_PARAM_DEVICE").unwrap_or_else(|_| "cpu".to_owned());
    let device = match Device::named(&device_name) {
        Ok(device) => device,
        Err(err) => {
            eprintln!("solve: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (steps, batch) = match device_name.as_str() {
        "cuda" => (solution::model::TRAIN_STEPS * CUDA_STEPS_FACTOR, CUDA_BATCH),
        _ => (solution::model::TRAIN_STEPS, CPU_BATCH),
    };
    let settings = Settings { steps, batch, peak_lr: 3e-3, warmup: 20, weight_decay: 0.01, seed: 1, device };
    match train(&settings, Path::new("../data"), Path::new("out/model.safetensors")) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("solve: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
