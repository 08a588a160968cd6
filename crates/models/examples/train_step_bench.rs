//! Throughput of the CPU training step of the default benchmark GPT (vocab 512, context 128,
//! width 256, 4 layers, 4 heads, batch 16, f32), against the measured f32 matmul rate.
//!
//! ```sh
//! cargo run --release -p rebench-models --example train_step_bench -- [--threads 2] [--steps 10] [--kernels plain|fused|both] [--json]
//! REBENCH_ALLOC=system cargo run --release ...   # glibc malloc instead of mimalloc
//! REBENCH_ALLOC_TUNE=0 cargo run --release ...    # the allocator's defaults (see `keep_freed_memory`)
//! ```

use std::time::{Duration, Instant};

use rebench_models::candle_core::{Device, Tensor};
use rebench_models::sources::UniformTokens;
use rebench_models::train::{AdamWConfig, LrSchedule, TrainConfig, Trainer};
use rebench_models::{Gpt, Kernels, ModelConfig, StepTimes};

/// The global allocator, chosen once by `REBENCH_ALLOC` (`mimalloc`, the default, or `system`)
/// at the first allocation, before anything can be freed by the other one.
mod alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU8, Ordering};

    static CHOICE: AtomicU8 = AtomicU8::new(0); // 0 undecided, 1 system, 2 mimalloc

    pub struct Switch;

    fn use_system() -> bool {
        match CHOICE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                // SAFETY: getenv with a NUL-terminated name; it allocates nothing.
                let v = unsafe { libc_getenv(c"REBENCH_ALLOC".as_ptr()) };
                let system =
                    !v.is_null() && unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes() == b"system";
                let choice = if system { 1 } else { 2 };
                match CHOICE.compare_exchange(0, choice, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => system,
                    Err(other) => other == 1,
                }
            }
        }
    }

    unsafe extern "C" {
        #[link_name = "getenv"]
        fn libc_getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
    }

    unsafe extern "C" {
        /// mimalloc's option setter (in the library whether or not the crate's `extended`
        /// feature declares it).
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }

    /// `mi_option_purge_delay` in the mimalloc v2 that libmimalloc-sys 0.1.49 builds by default
    /// (its 16th option; the Rust bindings declare no constant for it).
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

    /// Makes the allocator keep freed memory for reuse instead of handing it back to the kernel,
    /// which would have to fault in and zero fresh pages on the next allocation of that size
    /// (a training step allocates and frees hundreds of MB).
    pub fn keep_freed_memory() {
        // SAFETY: plain option setters, called before the work starts.
        unsafe {
            if use_system() {
                // glibc: serve blocks up to 32 MiB (the largest threshold it accepts) from the
                // heap instead of mmap, and never trim the heap.
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            } else {
                mi_option_set(MI_OPTION_PURGE_DELAY, -1);
            }
        }
    }

    pub fn name(tuned: bool) -> &'static str {
        match (use_system(), tuned) {
            (true, false) => "glibc malloc",
            (true, true) => "glibc malloc, mmap threshold 32 MiB, no trim",
            (false, false) => "mimalloc",
            (false, true) => "mimalloc, no purge",
        }
    }

    // SAFETY: every call forwards to one allocator, the same for the whole process.
    unsafe impl GlobalAlloc for Switch {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if use_system() {
                unsafe { System.alloc(l) }
            } else {
                unsafe { mimalloc::MiMalloc.alloc(l) }
            }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            if use_system() {
                unsafe { System.dealloc(p, l) }
            } else {
                unsafe { mimalloc::MiMalloc.dealloc(p, l) }
            }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            if use_system() {
                unsafe { System.alloc_zeroed(l) }
            } else {
                unsafe { mimalloc::MiMalloc.alloc_zeroed(l) }
            }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            if use_system() {
                unsafe { System.realloc(p, l, n) }
            } else {
                unsafe { mimalloc::MiMalloc.realloc(p, l, n) }
            }
        }
    }
}

#[global_allocator]
static GLOBAL: alloc::Switch = alloc::Switch;

struct Args {
    threads: usize,
    steps: usize,
    kernels: Vec<Kernels>,
    json: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: 2,
        steps: 10,
        kernels: Kernels::ALL.to_vec(),
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--threads" => args.threads = value().parse().expect("--threads N"),
            "--steps" => args.steps = value().parse().expect("--steps N"),
            "--kernels" => {
                args.kernels = match value().as_str() {
                    "plain" => vec![Kernels::Plain],
                    "fused" => vec![Kernels::Fused],
                    "both" => Kernels::ALL.to_vec(),
                    other => panic!("--kernels plain|fused|both, not {other}"),
                }
            }
            "--json" => args.json = true,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// CPU seconds this process has used (all threads, user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The 1-minute load average: other work on the machine skews every number here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().next().unwrap_or("?").to_string())
        .unwrap_or_else(|_| "?".into())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

/// GFLOP/s of a 1024³ f32 matmul through candle (median of 10 after 2 warm-ups).
fn matmul_gflops() -> f64 {
    let n = 1024;
    let a = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu).unwrap();
    let b = Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu).unwrap();
    let times: Vec<f64> = (0..12)
        .map(|_| {
            let t = Instant::now();
            let c = a.matmul(&b).unwrap();
            let s = t.elapsed().as_secs_f64();
            drop(c);
            s
        })
        .skip(2)
        .collect();
    2.0 * (n as f64).powi(3) / median(times) / 1e9
}

fn main() {
    let args = parse_args();
    // SAFETY: no other thread exists yet.
    unsafe { rebench_models::cpu::init_threads(args.threads) }.unwrap();
    let tuned = std::env::var("REBENCH_ALLOC_TUNE").map_or(true, |v| v != "0");
    if tuned {
        alloc::keep_freed_memory();
    }
    let batch = 16;
    let cfg = ModelConfig::gpt(512, 128, 256, 4, 4);
    let tokens_per_step = (batch * cfg.context) as f64;
    let flops_per_step = cfg.train_flops(tokens_per_step as u64) as f64;
    let mm = matmul_gflops();
    if !args.json {
        println!(
            "threads {}, allocator {}, {} timed steps after 2 warm-ups",
            args.threads,
            alloc::name(tuned),
            args.steps
        );
        println!(
            "1024^3 f32 matmul: {mm:.1} GFLOP/s; load average {}",
            load_average()
        );
        println!(
            "model: {cfg:?}, batch {batch}; {:.2} GFLOP per step (6ND + attention)",
            flops_per_step / 1e9
        );
        println!(
            "{:<7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>7} {:>6}",
            "kernels",
            "step s",
            "fwd+loss",
            "backward",
            "optim",
            "cpu s",
            "tokens/s",
            "GFLOP/s",
            "of mm",
            "load"
        );
    }
    for &kernels in &args.kernels {
        let mut model = Gpt::new(cfg.clone(), 0, &Device::Cpu).unwrap();
        model.body.set_kernels(kernels);
        let train = TrainConfig {
            batch_size: batch,
            schedule: LrSchedule {
                peak: 3e-4,
                min: 3e-5,
                warmup: 2,
                total: args.steps + 2,
            },
            adamw: AdamWConfig::default(),
            grad_clip: Some(1.0),
            seed: 0,
        };
        let mut source = UniformTokens::new(cfg.vocab, 1);
        let mut trainer = Trainer::new(&model, train);
        let mut stats = trainer.run(&model, &mut source, 2, |_| {}).unwrap();
        let cpu0 = cpu_seconds();
        stats.extend(
            trainer
                .run(&model, &mut source, args.steps, |_| {})
                .unwrap(),
        );
        let cpu = (cpu_seconds() - cpu0) / args.steps as f64;
        let timed: Vec<StepTimes> = stats[2..].iter().map(|s| s.times).collect();
        let med = |f: &dyn Fn(&StepTimes) -> Duration| {
            median(timed.iter().map(|t| f(t).as_secs_f64()).collect())
        };
        let (step, fwd, bwd, opt) = (
            med(&|t| t.total()),
            med(&|t| t.forward),
            med(&|t| t.backward),
            med(&|t| t.optimizer),
        );
        let gflops = flops_per_step / step / 1e9;
        let name = format!("{kernels:?}").to_lowercase();
        if args.json {
            println!(
                "{{\"impl\":\"candle-{name}\",\"threads\":{},\"allocator\":\"{}\",\"step_s\":{step:.4},\"forward_s\":{fwd:.4},\"backward_s\":{bwd:.4},\"optimizer_s\":{opt:.4},\"cpu_s\":{cpu:.4},\"load\":\"{}\",\"tokens_per_s\":{:.0},\"gflops\":{gflops:.1},\"matmul_gflops\":{mm:.1},\"final_loss\":{:.4}}}",
                args.threads,
                alloc::name(tuned),
                load_average(),
                tokens_per_step / step,
                stats.last().unwrap().loss
            );
        } else {
            println!(
                "{name:<7} {step:>9.3} {fwd:>9.3} {bwd:>9.3} {opt:>9.3} {cpu:>9.3} {:>10.0} {gflops:>8.1} {:>6.0}% {:>6}",
                tokens_per_step / step,
                100.0 * gflops / mm,
                load_average()
            );
        }
    }
}
