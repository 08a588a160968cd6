//! The optimize-kernel GPU timing driver.
//!
//! The scorer compiles this file, outside the agent's reach, into a scratch crate whose only
//! dependency is the agent's `solution` package built with its `cuda` feature; cudarc is the
//! solution's (`solution::cudarc`), so the two always agree on its types. The crate's other
//! files are the task's `spec.rs`, `checks.rs`, `device_trials.rs`, `cuda.rs`,
//! `driver/common.rs` and `driver/gpu_kernels.cu`, copied verbatim.
//!
//! ```text
//! driver run --seed S --n N --warmup W --trials T
//! ```
//!
//! It owns the device buffers (input and output, each `n` values plus a watched guard), a
//! stream and two timing events. Every call of the solution, warm-ups and the full-range
//! precision probe included, runs as `device_trials::run` says: a fresh input generated on the
//! device from the hidden seed (and checked against `spec.rs`), the output poisoned, the L2
//! cache flushed, the call timed by events on the driver's stream and by the host clock up to
//! a synchronize of the whole context (so work on the solution's own streams counts), then
//! input and output read back and every value checked on the host. After the trials it times
//! the floor: a device-to-device copy of the same bytes, after the same flush.
//!
//! The last stdout line is one of
//! `REBENCH-DRIVER {"trials_ms":[...],"events_ms":[...],"digests":[...],"floor_ms":[...],"device":"..."}`,
//! `REBENCH-DRIVER {"invalid":"<reason>"}` (the solution's fault) or
//! `REBENCH-DRIVER {"error":"<message>"}` (no device, or the driver failed before the solution
//! ran: not the solution's fault). The exit status is 0 in all three cases.
//! Bad arguments: a message on stderr and exit status 2. Progress goes to stderr.

// The shared files hold what the other driver and the scorer use too.
#[allow(dead_code)]
mod checks;
mod common;
mod cuda;
mod device_trials;
#[allow(dead_code)]
mod spec;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use cudarc::driver::{CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, CudaViewMut, DriverError, LaunchConfig, PushKernelArg, sys};
use cudarc::nvrtc::CompileOptions;
use device_trials::{Device, Fault, Timing};
use solution::cudarc;

const USAGE: &str = "usage: driver run --seed S --n N --warmup W --trials T";
const KERNELS: &str = include_str!("gpu_kernels.cu");
const THREADS: u32 = 256;
/// Timed copies for the floor (after one untimed).
const FLOOR_COPIES: usize = 10;

fn cuda_error(what: &'static str) -> impl Fn(DriverError) -> String {
    move |e| format!("{what}: {e}")
}

/// The device, the driver's buffers and kernels, and the solution.
struct Gpu {
    context: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    generate: CudaFunction,
    fill: CudaFunction,
    n: usize,
    input: CudaSlice<i32>,
    output: CudaSlice<i32>,
    /// Written before each call, to evict input and output from L2.
    flush: CudaSlice<i32>,
    flushes: i32,
    start: CudaEvent,
    end: CudaEvent,
    solution: solution::gpu::PrefixSum,
}

impl Gpu {
    fn new(n: usize, l2_bytes: usize) -> Result<Gpu, Fault> {
        let driver = |what: &'static str| move |e: DriverError| Fault::Driver(format!("{what}: {e}"));
        let context = CudaContext::new(0).map_err(driver("creating a context"))?;
        // One stream, so no cross-stream tracking: its events would add to every launch the
        // solution makes on the driver's buffers. A solution that uses streams of its own
        // orders them itself (the host clock counts them regardless).
        // SAFETY: no slice exists yet; every later one is used on `stream` or synchronized.
        unsafe { context.disable_event_tracking() };
        let stream = context.new_stream().map_err(driver("creating a stream"))?;
        let (major, minor) = context.compute_capability().map_err(driver("reading the compute capability"))?;
        let options = CompileOptions { options: vec![format!("--gpu-architecture=compute_{major}{minor}")], ..Default::default() };
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(KERNELS, options)
            .map_err(|e| Fault::Driver(format!("compiling the driver's kernels: {e}")))?;
        let module = context.load_module(ptx).map_err(driver("loading the driver's kernels"))?;
        let flush_values = (4 * l2_bytes).max(64 << 20) / 4;
        let gpu = Gpu {
            generate: module.load_function("generate").map_err(driver("loading `generate`"))?,
            fill: module.load_function("fill").map_err(driver("loading `fill`"))?,
            n,
            input: stream.alloc_zeros::<i32>(n + checks::GUARD).map_err(driver("allocating the input"))?,
            output: stream.alloc_zeros::<i32>(n + checks::GUARD).map_err(driver("allocating the output"))?,
            flush: stream.alloc_zeros::<i32>(flush_values).map_err(driver("allocating the cache flush buffer"))?,
            flushes: 0,
            start: context.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(driver("creating an event"))?,
            end: context.new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).map_err(driver("creating an event"))?,
            solution: match checks::guarded(|| solution::gpu::PrefixSum::new(&stream)) {
                Ok(Ok(solution)) => solution,
                Ok(Err(e)) => return Err(Fault::Solution(format!("setting up: PrefixSum::new failed: {e}"))),
                Err(panic) => return Err(Fault::Solution(format!("setting up: PrefixSum::new panicked: {panic}"))),
            },
            context,
            stream,
        };
        gpu.context.synchronize().map_err(|e| Fault::Solution(format!("setting up: a CUDA error after PrefixSum::new: {e}")))?;
        Ok(gpu)
    }

    /// Times `FLOOR_COPIES` device-to-device copies of the input's `n` values by events.
    fn floor(&mut self) -> Result<Vec<f64>, String> {
        let mut times = Vec::new();
        for k in 0..=FLOOR_COPIES {
            if self.n == 0 {
                times.push(0.0);
                continue;
            }
            self.flush_caches()?;
            self.context.synchronize().map_err(cuda_error("synchronizing"))?;
            self.start.record(&self.stream).map_err(cuda_error("recording an event"))?;
            self.stream
                .memcpy_dtod(&self.input.slice(..self.n), &mut self.output.slice_mut(..self.n))
                .map_err(cuda_error("copying for the floor"))?;
            self.end.record(&self.stream).map_err(cuda_error("recording an event"))?;
            self.context.synchronize().map_err(cuda_error("synchronizing"))?;
            let ms = f64::from(self.start.elapsed_ms(&self.end).map_err(cuda_error("reading the events"))?);
            if k > 0 {
                times.push(ms);
            }
        }
        Ok(times)
    }
}

/// Writes `value` into every element of `buffer` with the driver's `fill` kernel.
fn fill(stream: &Arc<CudaStream>, kernel: &CudaFunction, buffer: &mut CudaViewMut<'_, i32>, value: i32) -> Result<(), String> {
    let len = buffer.len();
    if len == 0 {
        return Ok(());
    }
    let len_arg = len as i64;
    let mut launch = stream.launch_builder(kernel);
    launch.arg(buffer).arg(&value).arg(&len_arg);
    // SAFETY: `fill(int* out, int value, long long n)` writes the `len` values of `buffer`.
    unsafe { launch.launch(grid(len)) }.map_err(cuda_error("launching `fill`"))?;
    Ok(())
}

/// A grid-stride launch: enough blocks to fill the device, never more than the values.
fn grid(len: usize) -> LaunchConfig {
    let blocks = len.div_ceil(THREADS as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

impl Device for Gpu {
    fn generate(&mut self, seed: u64, full_range: bool, guard: i32) -> Result<(), String> {
        let n = self.n;
        if n > 0 {
            let (n_arg, full_arg) = (n as i64, i32::from(full_range));
            let mut values = self.input.slice_mut(..n);
            let mut launch = self.stream.launch_builder(&self.generate);
            launch.arg(&mut values).arg(&seed).arg(&n_arg).arg(&full_arg);
            // SAFETY: `generate(int* out, u64 seed, long long n, int full_range)` writes n values.
            unsafe { launch.launch(grid(n)) }.map_err(cuda_error("launching `generate`"))?;
        }
        fill(&self.stream, &self.fill, &mut self.input.slice_mut(n..), guard)
    }

    fn poison(&mut self, value: i32) -> Result<(), String> {
        fill(&self.stream, &self.fill, &mut self.output.slice_mut(..), value)
    }

    fn flush_caches(&mut self) -> Result<(), String> {
        self.flushes = self.flushes.wrapping_add(1);
        fill(&self.stream, &self.fill, &mut self.flush.slice_mut(..), self.flushes)
    }

    fn call(&mut self) -> Result<Timing, String> {
        self.context.synchronize().map_err(cuda_error("before the call: synchronizing"))?;
        let n = self.n;
        let started = Instant::now();
        self.start.record(&self.stream).map_err(cuda_error("recording the start event"))?;
        let (solution, stream) = (&mut self.solution, &self.stream);
        let (input, output) = (self.input.slice(..n), &mut self.output.slice_mut(..n));
        let returned = checks::guarded(|| solution.run(stream, &input, output));
        let recorded = self.end.record(&self.stream);
        let synchronized = self.context.synchronize();
        let host_ms = started.elapsed().as_secs_f64() * 1e3;
        match returned {
            Err(panic) => return Err(format!("solution panicked: {panic}")),
            Ok(Err(e)) => return Err(format!("solution returned an error: {e}")),
            Ok(Ok(())) => {}
        }
        recorded.and(synchronized).map_err(|e| format!("the solution's kernels failed: {e}"))?;
        let event_ms = f64::from(self.start.elapsed_ms(&self.end).map_err(|e| format!("reading the events: {e}"))?);
        Ok(Timing { host_ms, event_ms })
    }

    fn read_input(&mut self) -> Result<Vec<i32>, String> {
        self.stream.clone_dtoh(&self.input).map_err(|e| format!("reading the input back: {e}"))
    }

    fn read_output(&mut self) -> Result<Vec<i32>, String> {
        self.stream.clone_dtoh(&self.output).map_err(|e| format!("reading the output back: {e}"))
    }
}

/// The report's JSON, or the fault that stopped the run.
fn measure(args: &common::Args) -> Result<String, Fault> {
    let device = cuda::probe().map_err(Fault::Driver)?;
    eprintln!("driver: device {}", device.describe());
    let mut gpu = Gpu::new(args.n, device.l2_bytes)?;
    let plan = device_trials::Plan { seed: args.seed, n: args.n, warmup: args.warmup, trials: args.trials };
    let measured = device_trials::run(&mut gpu, &plan, &mut |line| eprintln!("driver: {line}"))?;
    let floor = gpu.floor().map_err(|e| Fault::Driver(format!("measuring the floor: {e}")))?;
    let host: Vec<f64> = measured.timings.iter().map(|t| t.host_ms).collect();
    let events: Vec<f64> = measured.timings.iter().map(|t| t.event_ms).collect();
    Ok(format!(
        "{{\"trials_ms\":{},\"events_ms\":{},\"digests\":{},\"floor_ms\":{},\"device\":{}}}",
        common::json_ms(&host),
        common::json_ms(&events),
        common::json_digests(&measured.digests),
        common::json_ms(&floor),
        common::json_string(&device.describe())
    ))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match common::parse_args(&argv, &["run"]) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("driver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!("driver: {} seed={} n={} warmup={} trials={}", args.mode, args.seed, args.n, args.warmup, args.trials);
    let json = match measure(&args) {
        Ok(json) => json,
        Err(Fault::Solution(reason)) => common::json_invalid(&reason),
        Err(Fault::Driver(message)) => format!("{{\"error\":{}}}", common::json_string(&message)),
    };
    common::print_result(&json);
    ExitCode::SUCCESS
}
