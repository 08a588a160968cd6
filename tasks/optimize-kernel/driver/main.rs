//! The optimize-kernel timing driver.
//!
//! The scorer compiles this file, outside the agent's reach, into a scratch crate named
//! `driver` whose only dependency is the agent's `solution` package (a path dependency) and
//! whose `src/spec.rs` is the task's specification file, copied verbatim. It is built with
//! `cargo build --release` and run as a subprocess:
//!
//! ```text
//! driver run   --seed S --n N --warmup W --trials T
//! driver floor --seed S --n N --warmup W --trials T
//! ```
//!
//! `run` generates a fresh input per trial, times only the call to `solution::prefix_sum`,
//! and checks every trial (warm-up included): the input is unchanged, the output has N
//! values and every value equals the ground truth. Its last stdout line is
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

mod spec;

use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::thread;
use std::time::Instant;

const USAGE: &str = "usage: driver (run|floor) --seed S --n N --warmup W --trials T";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Run,
    Floor,
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    seed: u64,
    n: usize,
    warmup: u64,
    trials: u64,
}

/// Parses a non-negative integer; `1e8`-style exact powers are accepted for convenience.
fn parse_u64(name: &str, value: &str) -> Result<u64, String> {
    let cleaned = value.replace('_', "");
    if let Ok(v) = cleaned.parse::<u64>() {
        return Ok(v);
    }
    if let Some((mantissa, exponent)) = cleaned.split_once(['e', 'E'])
        && let (Ok(m), Ok(e)) = (mantissa.parse::<u64>(), exponent.parse::<u32>())
        && let Some(v) = 10u64.checked_pow(e).and_then(|p| p.checked_mul(m))
    {
        return Ok(v);
    }
    Err(format!(
        "{name}: expected a non-negative integer, got {value:?}"
    ))
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mode = match argv.first().map(String::as_str) {
        Some("run") => Mode::Run,
        Some("floor") => Mode::Floor,
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("missing command".to_owned()),
    };
    let (mut seed, mut n, mut warmup, mut trials) = (None, None, None, None);
    let mut rest = argv[1..].iter();
    while let Some(flag) = rest.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag.as_str(), None),
        };
        let slot = match name {
            "--seed" => &mut seed,
            "--n" => &mut n,
            "--warmup" => &mut warmup,
            "--trials" => &mut trials,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = match inline {
            Some(v) => v,
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))?,
        };
        if slot.is_some() {
            return Err(format!("{name} given twice"));
        }
        *slot = Some(parse_u64(name, &value)?);
    }
    let required = |v: Option<u64>, name: &str| v.ok_or_else(|| format!("missing {name}"));
    let args = Args {
        mode,
        seed: required(seed, "--seed")?,
        n: usize::try_from(required(n, "--n")?).map_err(|_| "--n: too large".to_owned())?,
        warmup: required(warmup, "--warmup")?,
        trials: required(trials, "--trials")?,
    };
    if args.trials == 0 {
        return Err("--trials must be at least 1".to_owned());
    }
    Ok(args)
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON array of milliseconds (finite floats; Rust's `{:?}` of an f64 is valid JSON).
fn json_ms(values: &[f64]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", items.join(","))
}

fn print_result(json: &str) {
    println!("REBENCH-DRIVER {json}");
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Checks one trial's output; `Err` is the reason it is invalid.
fn check(trial: u64, input: &[i32], digest_before: u64, output: &[i32]) -> Result<(), String> {
    if spec::digest(input) != digest_before {
        return Err(format!("trial {trial}: solution mutated its input"));
    }
    if output.len() != input.len() {
        return Err(format!(
            "trial {trial}: returned {} values for an input of {}",
            output.len(),
            input.len()
        ));
    }
    if let Some((i, expected)) = spec::first_error(input, output) {
        return Err(format!(
            "trial {trial}: wrong value at index {i}: expected {expected}, got {}",
            output[i]
        ));
    }
    Ok(())
}

fn run(args: &Args) -> String {
    let total = args.warmup + args.trials;
    let mut trials_ms = Vec::new();
    let mut digests = Vec::new();
    for t in 0..total {
        let input = spec::generate_input(spec::trial_seed(args.seed, t), args.n);
        let digest_before = spec::digest(&input);

        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            black_box(solution::prefix_sum(black_box(&input)))
        }));
        let elapsed = start.elapsed();

        let output = match result {
            Ok(output) => output,
            Err(payload) => {
                let reason = format!("trial {t}: solution panicked: {}", panic_message(&*payload));
                return format!("{{\"invalid\":{}}}", json_string(&reason));
            }
        };
        if let Err(reason) = check(t, &input, digest_before, &output) {
            return format!("{{\"invalid\":{}}}", json_string(&reason));
        }
        let ms = elapsed.as_secs_f64() * 1e3;
        let warm_up = t < args.warmup;
        eprintln!(
            "driver: trial {}/{total}{}: {ms:.3} ms, correct",
            t + 1,
            if warm_up { " (warm-up)" } else { "" }
        );
        if !warm_up {
            trials_ms.push(ms);
            digests.push(format!("\"{:016x}\"", spec::digest(&output)));
        }
        // Freed before the next trial, as a program calling `prefix_sum` in a loop would.
        // (Keeping every buffer alive instead made each fresh page cost more on a virtual
        // machine, whose host backs never-touched guest memory lazily: 150 ms became 350 ms.)
        drop(output);
        drop(input);
    }
    format!(
        "{{\"trials_ms\":{},\"digests\":[{}]}}",
        json_ms(&trials_ms),
        digests.join(",")
    )
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
        json_ms(&fresh),
        json_ms(&fresh_par),
        json_ms(&warm),
        json_ms(&warm_par)
    )
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("driver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "driver: {:?} seed={} n={} warmup={} trials={}",
        args.mode, args.seed, args.n, args.warmup, args.trials
    );
    let json = match args.mode {
        Mode::Run => run(&args),
        Mode::Floor => floor(&args),
    };
    print_result(&json);
    ExitCode::SUCCESS
}
