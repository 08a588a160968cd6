//! The `%%id%%` driver, run by the scorer as `driver SEED N`.
//!
//! The scorer builds this file against a snapshot of the agent's `solution` package (its only
//! dependency besides std), out of the agent's reach. It draws the hidden list of N integers
//! from SEED, calls `solution::sort` on it once, and prints as its last stdout line
//! `REBENCH-DRIVER {"n":N,"wrong":W}`, W being the positions where the output differs from the
//! sorted list, or `REBENCH-DRIVER {"invalid":"<reason>"}` when the output cannot be scored.
//! A panic of the solution ends the process without a report; the scorer turns that into an
//! invalid outcome saying so. Bad arguments: a message on stderr and exit status 2.
//!
//! TODO: the real task's driver.

use std::process::ExitCode;

const USAGE: &str = "usage: driver SEED N";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (seed, n) = match args.as_slice() {
        [seed, n] => match (seed.parse::<u64>(), n.parse::<usize>()) {
            (Ok(seed), Ok(n)) => (seed, n),
            _ => return usage(&format!("SEED and N must be non-negative integers, got {args:?}")),
        },
        _ => return usage(&format!("expected 2 arguments, got {}", args.len())),
    };

    let hidden = hidden_list(seed, n);
    let mut expected = hidden.clone();
    expected.sort_unstable();
    let output = solution::sort(&hidden);
    if output.len() != n {
        let reason = format!("the solution returned {} values for a list of {n}", output.len());
        println!("REBENCH-DRIVER {{\"invalid\":\"{reason}\"}}");
        return ExitCode::SUCCESS;
    }
    let wrong = output.iter().zip(&expected).filter(|(got, want)| got != want).count();
    println!("REBENCH-DRIVER {{\"n\":{n},\"wrong\":{wrong}}}");
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("driver: {message}\n{USAGE}");
    ExitCode::from(2)
}

/// `n` integers drawn from `seed` with SplitMix64: the same list for the same seed everywhere.
fn hidden_list(seed: u64, n: usize) -> Vec<i64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as i64
        })
        .collect()
}
