//! The optimize-kernel timing driver.
//!
//! The scorer compiles this file, outside the agent's reach, into a scratch crate named
//! `driver` whose only dependency is the agent's `solution` package (a path dependency) and
//! whose `src/spec.rs`, `src/checks.rs` and `src/common.rs` are the task's specification, its
//! checks and `driver/common.rs`, copied verbatim. It is built with `cargo build --release` and
//! run as a subprocess:
//!
//! ```text
//! driver run   --seed S --n N --warmup W --trials T
//! driver floor --seed S --n N --warmup W --trials T
//! ```
//!
//! `run` generates a fresh input per trial, times only the call to `solution::prefix_sum`,
//! and checks every call (warm-ups and the untimed full-range precision probe between warm-ups
//! and timed trials included): the input is unchanged, the output has N values and every value
//! equals the ground truth. Its last stdout line is
//! `REBENCH-DRIVER {"trials_ms":[...],"digests":[...]}` (timed trials only, in order), or
//! `REBENCH-DRIVER {"invalid":"<reason>"}` on a failed check (exit status 0 in both cases).
//!
//! The solution's code runs inside this process, so it could in principle tamper with the
//! checks made here (overwrite memory, patch the reference, print its own result line). The
//! scorer therefore does not trust this process's verdict alone: it regenerates each trial's
//! input in its own process, computes the ground truth there and compares its digest with
//! the `digests` reported here. The in-process checks give precise error messages; the
//! out-of-process digest comparison is the one that cannot be subverted from here.
//!
//! `floor` measures the memory-bandwidth floor on the same bytes: copying the input into a
//! freshly allocated buffer (one thread, and all available threads) and into an
//! already-touched buffer; it prints
//! `REBENCH-DRIVER {"fresh_ms":[...],"fresh_parallel_ms":[...],"warm_ms":[...],"warm_parallel_ms":[...]}`.
//!
//! Bad arguments: a message on stderr and exit status 2. Progress goes to stderr.

// The shared files hold what the other driver and the scorer use too.
#[allow(dead_code)]
mod checks;
mod common;
#[allow(dead_code)]
mod spec;

use std::hint::black_box;
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

use common::Args;

const USAGE: &str = "usage: driver (run|floor) --seed S --n N --warmup W --trials T";

/// Calls the solution on `input` and checks the result; `Ok` holds the time and the output's
/// digest.
fn call_and_check(label: &str, input: &[i32], previous: Option<u64>) -> Result<(f64, u64), String> {
    let digest_before = spec::digest(input);
    let start = Instant::now();
    let result = checks::guarded(|| black_box(solution::prefix_sum(black_box(input))));
    let elapsed = start.elapsed();
    let output = result.map_err(|message| format!("{label}: solution panicked: {message}"))?;
    checks::check_input(label, digest_before, input)?;
    let digest = checks::check_output(label, input, &output, None, previous)?;
    // Freed before the next trial, as a program calling `prefix_sum` in a loop would.
    // (Keeping every buffer alive instead made each fresh page cost more on a virtual
    // machine, whose host backs never-touched guest memory lazily: 150 ms became 350 ms.)
    drop(output);
    Ok((elapsed.as_secs_f64() * 1e3, digest))
}

fn run(args: &Args) -> String {
    let total = args.warmup + args.trials;
    let mut trials_ms = Vec::new();
    let mut digests = Vec::new();
    let mut previous = None;
    for t in 0..total {
        if t == args.warmup {
            // Untimed: values over the whole i32 range, whose sums wrap.
            let label = "the full-range precision probe";
            let input = spec::generate_full_range_input(spec::probe_seed(args.seed), args.n);
            match call_and_check(label, &input, previous) {
                Ok((ms, digest)) => {
                    eprintln!("driver: {label}: {ms:.3} ms, correct");
                    previous = Some(digest);
                }
                Err(reason) => return common::json_invalid(&reason),
            }
        }
        let input = spec::generate_input(spec::trial_seed(args.seed, t), args.n);
        let (ms, digest) = match call_and_check(&format!("trial {t}"), &input, previous) {
            Ok(done) => done,
            Err(reason) => return common::json_invalid(&reason),
        };
        previous = Some(digest);
        let warm_up = t < args.warmup;
        eprintln!("driver: trial {}/{total}{}: {ms:.3} ms, correct", t + 1, if warm_up { " (warm-up)" } else { "" });
        if !warm_up {
            trials_ms.push(ms);
            digests.push(digest);
        }
    }
    format!("{{\"trials_ms\":{},\"digests\":{}}}", common::json_ms(&trials_ms), common::json_digests(&digests))
}

/// Copies `src` into the spare capacity of `dst` using `threads` threads, then sets the length.
fn copy_into_spare(dst: &mut Vec<i32>, src: &[i32], threads: usize) {
    let spare = &mut dst.spare_capacity_mut()[..src.len()];
    if threads <= 1 || src.len() < 2 * threads {
        spare.write_copy_of_slice(src);
    } else {
        let per = src.len().div_ceil(threads);
        thread::scope(|s| {
            for (d, c) in spare.chunks_mut(per).zip(src.chunks(per)) {
                s.spawn(move || {
                    d.write_copy_of_slice(c);
                });
            }
        });
    }
    // SAFETY: `dst` had capacity for at least `src.len()` values, and its first `src.len()`
    // slots were all initialized above (the chunks cover the whole `spare` slice).
    unsafe { dst.set_len(src.len()) };
}

/// Copies `src` into an already-touched buffer of the same length with `threads` threads.
fn copy_into_warm(dst: &mut [i32], src: &[i32], threads: usize) {
    if threads <= 1 || src.len() < 2 * threads {
        dst.copy_from_slice(src);
    } else {
        let per = src.len().div_ceil(threads);
        thread::scope(|s| {
            for (d, c) in dst.chunks_mut(per).zip(src.chunks(per)) {
                s.spawn(move || d.copy_from_slice(c));
            }
        });
    }
}

fn floor(args: &Args) -> String {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let total = args.warmup + args.trials;
    let (mut fresh, mut fresh_par, mut warm, mut warm_par) = (vec![], vec![], vec![], vec![]);
    let mut warm_buf = vec![1i32; args.n]; // touched once, reused by every trial
    for t in 0..total {
        let input = spec::generate_input(spec::trial_seed(args.seed, t), args.n);
        let digest_before = spec::digest(&input);
        let time_fresh = |threads: usize| {
            let start = Instant::now();
            let mut v: Vec<i32> = Vec::with_capacity(input.len());
            copy_into_spare(&mut v, black_box(&input), threads);
            let v = black_box(v);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert!(v == input, "copy is wrong");
            drop(v);
            ms
        };
        let f1 = time_fresh(1);
        let fp = time_fresh(threads);
        let time_warm = |buf: &mut Vec<i32>, threads: usize| {
            let start = Instant::now();
            copy_into_warm(black_box(buf), black_box(&input), threads);
            black_box(&buf);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            assert!(*buf == input, "copy is wrong");
            ms
        };
        let w1 = time_warm(&mut warm_buf, 1);
        let wp = time_warm(&mut warm_buf, threads);
        assert_eq!(spec::digest(&input), digest_before);
        let warm_up = t < args.warmup;
        eprintln!(
            "driver floor: trial {}/{total}{}: fresh {f1:.3} ms, fresh x{threads} {fp:.3} ms, \
             warm {w1:.3} ms, warm x{threads} {wp:.3} ms",
            t + 1,
            if warm_up { " (warm-up)" } else { "" }
        );
        if !warm_up {
            fresh.push(f1);
            fresh_par.push(fp);
            warm.push(w1);
            warm_par.push(wp);
        }
    }
    format!(
        "{{\"fresh_ms\":{},\"fresh_parallel_ms\":{},\"warm_ms\":{},\"warm_parallel_ms\":{}}}",
        common::json_ms(&fresh),
        common::json_ms(&fresh_par),
        common::json_ms(&warm),
        common::json_ms(&warm_par)
    )
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match common::parse_args(&argv, &["run", "floor"]) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("driver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!("driver: {} seed={} n={} warmup={} trials={}", args.mode, args.seed, args.n, args.warmup, args.trials);
    let json = if args.mode == "run" { run(&args) } else { floor(&args) };
    common::print_result(&json);
    ExitCode::SUCCESS
}
