//! The models on a CUDA device (`--features cuda`): losses and gradients equal the CPU's, training
//! lowers the loss to a source's floor, checkpoints move between devices, and the training step
//! of the benchmark GPT is timed (tokens per second, printed).
//!
//! Without a device every test is skipped and says why (`REBENCH_REQUIRE_GPU=1` makes that a
//! failure). On a CUDA device the fused kernels are CPU-only, so the model runs candle's own ops
//! (`Kernels::Plain`) whatever its `Kernels` says, and AdamW updates with tensor ops there.
//!
//! Built here without a GPU: `. "$(scripts/install-nvcc.sh)"` then
//! `CARGO_TARGET_DIR=target/cuda cargo test -p rebench-models --features cuda --release --test gpu`.
#![cfg(feature = "cuda")]

mod common;

use std::io::Write;
use std::time::Instant;

use candle_core::{Device, Tensor};
use common::{random_tokens, train_config};
use rebench_models::sources::MarkovChain;
use rebench_models::train::Trainer;
use rebench_models::{
    Gpt, Kernels, LanguageModel, MaskedLm, Masking, ModelConfig, Rng, StepTimes, evaluate,
};

/// The CUDA device, or `None` after saying on the terminal (past libtest's capture) why the test
/// is skipped.
fn cuda_or_skip(test: &str) -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(device) => Some(device),
        Err(why) if std::env::var("REBENCH_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("REBENCH_REQUIRE_GPU=1 but there is no CUDA device: {why}")
        }
        Err(why) => {
            // candle's error carries a backtrace where RUST_BACKTRACE is set: its first line says it.
            let why = why.to_string();
            let why = why.lines().next().unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "skipped gpu::{test}: no CUDA device ({why}); REBENCH_REQUIRE_GPU=1 turns this skip into a failure"
            );
            None
        }
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The largest difference between two tensors' elements, relative to the largest magnitude in
/// `reference` (so that tiny gradients are judged against their own scale).
fn relative_difference(reference: &Tensor, other: &Tensor) -> f32 {
    let (a, b) = (values(reference), values(other));
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-30);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    worst / scale
}

/// The loss of one batch and every parameter's gradient, in the model's creation order.
fn loss_and_grads<M: LanguageModel>(model: &M, tokens: &[u32], batch: usize) -> (f32, Vec<Tensor>) {
    let (loss, _) = model.loss(tokens, batch, &mut Rng::new(5)).unwrap();
    let grads = loss.backward().unwrap();
    let all = model
        .transformer()
        .params()
        .iter()
        .map(|(name, var)| {
            grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} has no gradient"))
                .clone()
        })
        .collect();
    (loss.to_scalar::<f32>().unwrap(), all)
}

/// The same model on the CPU (fused kernels, the default) and on the GPU agree in loss and in
/// every gradient; on the GPU the fused kernels fall back to the plain ones, bit for bit.
fn check_against_cpu<M: LanguageModel>(
    make: impl Fn(&Device) -> M,
    set: impl Fn(&mut M, Kernels),
    gpu: &Device,
) {
    let on_cpu = make(&Device::Cpu);
    let batch = 4;
    let tokens = random_tokens(
        batch * on_cpu.window(),
        on_cpu.transformer().config().vocab,
        11,
    );
    let (cpu_loss, cpu_grads) = loss_and_grads(&on_cpu, &tokens, batch);
    let on_gpu = make(gpu);
    assert!(on_gpu.transformer().device().is_cuda());
    let (gpu_loss, gpu_grads) = loss_and_grads(&on_gpu, &tokens, batch);
    assert!(
        (cpu_loss - gpu_loss).abs() <= 1e-5 * cpu_loss.abs(),
        "loss: cpu {cpu_loss}, gpu {gpu_loss}"
    );
    let names: Vec<String> = on_gpu
        .transformer()
        .params()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    for ((name, c), g) in names.iter().zip(&cpu_grads).zip(&gpu_grads) {
        assert!(g.device().is_cuda(), "{name}: gradient not on the GPU");
        let d = relative_difference(c, g);
        assert!(
            d < 1e-4,
            "{name}: gpu gradient differs from the cpu's by {d} of its scale"
        );
    }
    let mut plain = make(gpu);
    set(&mut plain, Kernels::Plain);
    let (plain_loss, plain_grads) = loss_and_grads(&plain, &tokens, batch);
    assert_eq!(
        plain_loss.to_bits(),
        gpu_loss.to_bits(),
        "Fused on the GPU is Plain"
    );
    for ((name, p), g) in names.iter().zip(&plain_grads).zip(&gpu_grads) {
        assert_eq!(
            relative_difference(p, g),
            0.0,
            "{name}: Fused on the GPU is Plain"
        );
    }
    eprintln!("loss cpu {cpu_loss}, gpu {gpu_loss}");
}

#[test]
fn gpt_loss_and_gradients_on_the_gpu_equal_the_cpus() {
    let Some(gpu) = cuda_or_skip("gpt_loss_and_gradients_on_the_gpu_equal_the_cpus") else {
        return;
    };
    check_against_cpu(
        |d| Gpt::new(ModelConfig::gpt(64, 16, 32, 2, 2), 7, d).unwrap(),
        |m, k| m.body.set_kernels(k),
        &gpu,
    );
}

#[test]
fn masked_lm_loss_and_gradients_on_the_gpu_equal_the_cpus() {
    let Some(gpu) = cuda_or_skip("masked_lm_loss_and_gradients_on_the_gpu_equal_the_cpus") else {
        return;
    };
    check_against_cpu(
        |d| {
            MaskedLm::new(
                ModelConfig::masked(64, 16, 32, 2, 2),
                Masking::bert(63),
                7,
                d,
            )
            .unwrap()
        },
        |m, k| m.body.set_kernels(k),
        &gpu,
    );
}

/// The CPU test's training run (tests/it/training.rs), on the GPU: the loss falls to the Markov
/// chain's floor and not below; the first steps follow the CPU's run.
#[test]
fn gpt_training_on_the_gpu_reaches_the_floor_and_follows_the_cpu() {
    let Some(gpu) = cuda_or_skip("gpt_training_on_the_gpu_reaches_the_floor_and_follows_the_cpu")
    else {
        return;
    };
    let vocab = 16;
    let cfg = ModelConfig::gpt(vocab, 16, 32, 1, 2);
    let floor = MarkovChain::new(vocab, 3, 42).entropy_rate();
    let held_out = MarkovChain::new(vocab, 3, 42).take(4000);
    let model = Gpt::new(cfg.clone(), 0, &gpu).unwrap();
    let cpu_model = Gpt::new(cfg, 0, &Device::Cpu).unwrap();
    let before = evaluate(&model, &held_out, 32, 0).unwrap();
    assert!(
        (before.loss - (vocab as f64).ln()).abs() < 0.1,
        "starts near ln V: {}",
        before.loss
    );

    let steps = 150;
    let mut trainer = Trainer::new(&model, train_config(steps, 16, 1e-2));
    let mut cpu_trainer = Trainer::new(&cpu_model, train_config(steps, 16, 1e-2));
    let mut source = MarkovChain::new(vocab, 3, 42);
    let mut cpu_source = MarkovChain::new(vocab, 3, 42);
    // Rounding differences between the devices grow with every step; the first ones agree.
    for step in 0..5 {
        let g = trainer.step(&model, &mut source).unwrap();
        let c = cpu_trainer.step(&cpu_model, &mut cpu_source).unwrap();
        assert!(
            (g.loss - c.loss).abs() < 1e-4 * c.loss,
            "step {step}: loss gpu {} cpu {}",
            g.loss,
            c.loss
        );
        assert!(
            (g.grad_norm - c.grad_norm).abs() < 1e-3 * c.grad_norm,
            "step {step}: grad norm gpu {} cpu {}",
            g.grad_norm,
            c.grad_norm
        );
    }
    let t = Instant::now();
    let stats = trainer.run(&model, &mut source, steps - 5, |_| {}).unwrap();
    let elapsed = t.elapsed();
    assert!(
        stats
            .iter()
            .all(|s| s.loss.is_finite() && s.grad_norm.is_finite())
    );
    for (name, var) in model.body.params().iter() {
        assert!(var.device().is_cuda(), "{name} left the GPU");
    }
    let after = evaluate(&model, &held_out, 32, 0).unwrap();
    eprintln!(
        "gpu: held-out loss {:.4} -> {:.4}, floor {floor:.4}; {} steps in {:.2?}",
        before.loss,
        after.loss,
        steps - 5,
        elapsed
    );
    assert!(
        after.loss < floor + 0.1,
        "close to the floor {floor}: {}",
        after.loss
    );
    assert!(
        after.loss > floor - 0.05,
        "not below the floor {floor} beyond noise: {}",
        after.loss
    );
}

#[test]
fn a_gpu_checkpoint_loads_on_the_cpu_with_equal_outputs() {
    let Some(gpu) = cuda_or_skip("a_gpu_checkpoint_loads_on_the_cpu_with_equal_outputs") else {
        return;
    };
    let model = Gpt::new(ModelConfig::gpt(64, 16, 32, 2, 2), 3, &gpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();
    let on_cpu = Gpt::load(&path, &Device::Cpu).unwrap();
    let back = Gpt::load(&path, &gpu).unwrap();
    for ((name, a), (_, b)) in model.body.params().iter().zip(on_cpu.body.params().iter()) {
        let (a, b) = (values(a.as_tensor()), values(b.as_tensor()));
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name} changed"
        );
    }
    let tokens = Tensor::from_vec(random_tokens(2 * 16, 64, 4), (2, 16), &Device::Cpu).unwrap();
    let cpu_logits = on_cpu.forward(&tokens).unwrap();
    let gpu_logits = back.forward(&tokens.to_device(&gpu).unwrap()).unwrap();
    let d = relative_difference(&cpu_logits, &gpu_logits);
    assert!(d < 1e-4, "logits differ by {d} of their scale");
}

/// The benchmark GPT (vocab 512, context 128, width 256, 4 layers, 4 heads, batch 16,
/// f32): tokens per second of a full training step (batch, forward, backward, clipping, AdamW),
/// and the achieved FLOP rate. Prints; asserts only that training runs and the loss falls (the
/// batches come from a Markov chain whose tokens are far from uniform).
#[test]
fn benchmark_gpt_training_step_throughput() {
    let Some(gpu) = cuda_or_skip("benchmark_gpt_training_step_throughput") else {
        return;
    };
    let cfg = ModelConfig::gpt(512, 128, 256, 4, 4);
    let batch = 16;
    let model = Gpt::new(cfg.clone(), 0, &gpu).unwrap();
    let steps: usize = std::env::var("REBENCH_GPU_BENCH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut trainer = Trainer::new(&model, train_config(steps + 5, batch, 3e-3));
    let mut source = MarkovChain::new(cfg.vocab, 3, 1);
    let warmup = trainer.run(&model, &mut source, 5, |_| {}).unwrap();
    let sync = || {
        model
            .body
            .params()
            .iter()
            .next()
            .unwrap()
            .1
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    sync();
    let t = Instant::now();
    let stats = trainer.run(&model, &mut source, steps, |_| {}).unwrap();
    sync();
    let elapsed = t.elapsed().as_secs_f64();
    let tokens = (steps * batch * cfg.context) as f64;
    let flops = cfg.train_flops(tokens as u64) as f64;
    let mut phases = StepTimes::default();
    for s in &stats {
        phases.data += s.times.data;
        phases.forward += s.times.forward;
        phases.backward += s.times.backward;
        phases.optimizer += s.times.optimizer;
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / steps as f64;
    let _ = writeln!(
        std::io::stderr(),
        "gpu train step, GPT vocab 512 ctx 128 width 256 depth 4 heads 4 batch 16 f32: \
         {:.2} ms/step, {:.0} tokens/s, {:.1} GFLOP/s over {steps} steps \
         (host-side phases per step: data {:.2} ms, forward+loss sync {:.2} ms, backward launch {:.2} ms, \
         grad norm sync + AdamW {:.2} ms); loss {:.4} -> {:.4}",
        elapsed * 1e3 / steps as f64,
        tokens / elapsed,
        flops / elapsed / 1e9,
        ms(phases.data),
        ms(phases.forward),
        ms(phases.backward),
        ms(phases.optimizer),
        warmup[0].loss,
        stats.last().unwrap().loss,
    );
    assert!(stats.iter().all(|s| s.loss.is_finite()));
    let (first, last) = (warmup[0].loss, stats.last().unwrap().loss);
    assert!(last < first - 0.3, "the loss falls: {first} -> {last}");
}
