//! Criterion benchmarks of the starting and reference solutions, on the CPU and, with
//! `--features cuda` and a CUDA device, on the GPU, each next to a copy of the same bytes.
//!
//! ```text
//! cargo bench -p optimize-kernel                   # cpu/{copy,starting,reference}
//! cargo bench -p optimize-kernel --features cuda   # and gpu/{copy,starting,reference}
//! ```
//!
//! N is 10^7 on the CPU (the starting solution takes seconds at the task's 10^8) and 10^8 on
//! the GPU; `REBENCH_BENCH_N` sets both. Without a device the gpu group says why and is skipped.
//! The solutions are compiled in as modules, straight from starting/ and reference/.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use optimize_kernel::spec;

#[path = "../starting/src/lib.rs"]
#[allow(unused)]
mod starting;

#[path = "../reference/src/lib.rs"]
#[allow(unused)]
mod reference;

fn size(default: usize) -> usize {
    std::env::var("REBENCH_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cpu(c: &mut Criterion) {
    let n = size(10_000_000);
    let x = spec::generate_input(1, n);
    assert_eq!(reference::prefix_sum(&x), spec::reference(&x), "the reference solution is wrong");
    let mut group = c.benchmark_group(format!("cpu n={n}"));
    group.sample_size(10);
    group.bench_function("copy", |b| b.iter(|| black_box(&x).to_vec()));
    group.bench_function("starting", |b| b.iter(|| starting::prefix_sum(black_box(&x))));
    group.bench_function("reference", |b| b.iter(|| reference::prefix_sum(black_box(&x))));
    group.finish();
}

#[cfg(feature = "cuda")]
fn gpu(c: &mut Criterion) {
    if let Err(why) = optimize_kernel::gpu_device() {
        eprintln!("skipping the gpu benchmarks: {why:#}");
        return;
    }
    if let Err(err) = gpu_benches(c) {
        panic!("gpu benchmarks: {err}");
    }
}

#[cfg(feature = "cuda")]
fn gpu_benches(c: &mut Criterion) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use cudarc::driver::CudaContext;

    let n = size(100_000_000);
    let context = CudaContext::new(0)?;
    let stream = context.new_stream()?;
    let host = spec::generate_input(1, n);
    let input = stream.clone_htod(&host)?;
    let mut output = stream.alloc_zeros::<i32>(n)?;
    let mut starting = starting::gpu::PrefixSum::new(&stream)?;
    let mut reference = reference::gpu::PrefixSum::new(&stream)?;
    reference.run(&stream, &input.slice(..), &mut output.slice_mut(..))?;
    assert!(stream.clone_dtoh(&output)? == spec::reference(&host), "the reference GPU solution is wrong");
    let mut group = c.benchmark_group(format!("gpu n={n}"));
    group.bench_function("copy", |b| {
        b.iter(|| {
            stream.memcpy_dtod(&input, &mut output).unwrap();
            stream.synchronize().unwrap();
        })
    });
    group.bench_function("starting", |b| {
        b.iter(|| {
            starting.run(&stream, &input.slice(..), &mut output.slice_mut(..)).unwrap();
            stream.synchronize().unwrap();
        })
    });
    group.bench_function("reference", |b| {
        b.iter(|| {
            reference.run(&stream, &input.slice(..), &mut output.slice_mut(..)).unwrap();
            stream.synchronize().unwrap();
        })
    });
    group.finish();
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn gpu(_: &mut Criterion) {
    eprintln!("skipping the gpu benchmarks: built without `--features cuda`");
}

criterion_group!(benches, cpu, gpu);
criterion_main!(benches);
