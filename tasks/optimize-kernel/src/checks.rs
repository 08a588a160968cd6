//! The verdicts both drivers give on a call of the solution (std only).
//!
//! Like `spec.rs`, this file is compiled into the task crate (where the tests below exercise
//! every rejection on the CPU) and copied verbatim into the drivers the scorer generates. It
//! may refer to `crate::spec` only: every crate that includes it has `spec` at its root.
//!
//! Each check returns `Err(reason)` with a sentence that says what the solution did wrong and
//! where, for the invalid outcome.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::spec;

/// Elements past the end of the input and of the output that the GPU driver allocates and
/// watches: a solution that writes there overruns its buffers.
pub const GUARD: usize = 256;

/// How much faster than copying the same bytes a solution may seem before its time is taken for
/// a measuring error rather than a result: a copy reads n values and writes n values, the least
/// any prefix sum must do, so only noise (and a copy that is not quite the card's best) can put
/// a solution below it.
pub const MIN_FRACTION_OF_FLOOR: f64 = 0.8;

/// Runs `f`, turning a panic into its message.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The value the GPU driver writes over the whole output (and its guard) before each call: an
/// output element that still holds it was not written by that call. It lies in [2^30, 2^31),
/// beyond any running sum of up to 10^8 values in [-10, 10), and changes with every trial.
pub fn poison_value(trial_seed: u64) -> i32 {
    let r = (spec::trial_seed(trial_seed, 0x0090_150a) >> 32) as u32;
    (0x4000_0000 | (r & 0x3FFF_FFFF)) as i32
}

/// The input must be as it was before the call.
pub fn check_input(label: &str, digest_before: u64, input: &[i32]) -> Result<(), String> {
    if spec::digest(input) != digest_before {
        return Err(format!("{label}: solution mutated its input"));
    }
    Ok(())
}

/// A guard region (after the input or the output) must still hold `value` everywhere.
pub fn check_guard(label: &str, buffer: &str, n: usize, guard: &[i32], value: i32) -> Result<(), String> {
    match guard.iter().position(|&v| v != value) {
        Some(k) => Err(format!("{label}: solution wrote past the end of its {buffer} (index {})", n + k)),
        None => Ok(()),
    }
}

/// Checks every value of `output` against the ground truth for `input` and returns the
/// output's digest.
///
/// `poison` is the value the output held before the call (GPU driver), `previous` the digest of
/// the previous call's output: they turn a plain "wrong value" into what most likely happened,
/// an output the call never wrote or the answer of an earlier call handed back again.
pub fn check_output(label: &str, input: &[i32], output: &[i32], poison: Option<i32>, previous: Option<u64>) -> Result<u64, String> {
    if output.len() != input.len() {
        return Err(format!("{label}: returned {} values for an input of {}", output.len(), input.len()));
    }
    let digest = spec::digest(output);
    let Some((i, expected)) = spec::first_error(input, output) else {
        return Ok(digest);
    };
    let got = output[i];
    if previous == Some(digest) {
        return Err(format!(
            "{label}: returned the output of an earlier call (a stale or cached answer): wrong value at index {i}: expected {expected}, got {got}"
        ));
    }
    if poison == Some(got) {
        let unwritten = output.iter().filter(|&&v| v == got).count();
        return Err(format!(
            "{label}: the output was not written by this call: index {i} (and {} more) still holds the value the driver put there before the call",
            unwritten - 1
        ));
    }
    Err(format!("{label}: wrong value at index {i}: expected {expected}, got {got}"))
}

/// A median time below `MIN_FRACTION_OF_FLOOR` of the time it takes to copy the same bytes
/// cannot be a measurement of the whole work (it ran outside the timed region, or the clock was
/// tampered with).
pub fn check_physically_possible(median_ms: f64, floor_ms: f64) -> Result<(), String> {
    if median_ms < floor_ms * MIN_FRACTION_OF_FLOOR {
        return Err(format!(
            "a median of {median_ms:.4} ms is physically impossible: copying the same bytes takes {floor_ms:.4} ms on this device, \
             and a prefix sum reads and writes at least as much (limit: {:.0}% of the copy); part of the work was not timed",
            MIN_FRACTION_OF_FLOOR * 100.0
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case() -> (Vec<i32>, Vec<i32>) {
        let x = spec::generate_input(3, 5_000);
        let y = spec::reference(&x);
        (x, y)
    }

    #[test]
    fn a_right_output_passes_and_gives_its_digest() {
        let (x, y) = case();
        assert_eq!(check_output("trial 0", &x, &y, Some(poison_value(1)), None), Ok(spec::digest(&y)));
        assert_eq!(check_input("trial 0", spec::digest(&x), &x), Ok(()));
    }

    #[test]
    fn a_wrong_value_at_one_index_is_named() {
        let (x, mut y) = case();
        let right = y[2_500];
        y[2_500] = right.wrapping_add(1);
        let reason = check_output("trial 4", &x, &y, Some(poison_value(1)), None).unwrap_err();
        assert_eq!(reason, format!("trial 4: wrong value at index 2500: expected {right}, got {}", right + 1));
    }

    #[test]
    fn a_wrong_length_is_named() {
        let (x, mut y) = case();
        y.pop();
        assert_eq!(check_output("trial 1", &x, &y, None, None).unwrap_err(), "trial 1: returned 4999 values for an input of 5000");
    }

    #[test]
    fn a_mutated_input_is_caught_by_its_digest() {
        let (mut x, _) = case();
        let before = spec::digest(&x);
        x[4_999] = x[4_999].wrapping_add(1);
        assert_eq!(check_input("trial 2", before, &x).unwrap_err(), "trial 2: solution mutated its input");
    }

    #[test]
    fn a_stale_answer_is_told_apart_from_a_wrong_one() {
        let (x, y) = case();
        let other = spec::generate_input(4, 5_000);
        let reason = check_output("trial 3", &other, &y, Some(poison_value(2)), Some(spec::digest(&y))).unwrap_err();
        assert!(reason.starts_with("trial 3: returned the output of an earlier call"), "{reason}");
        assert!(reason.contains("index"), "{reason}");
        // Without the previous digest the same output is just wrong.
        let reason = check_output("trial 3", &other, &y, Some(poison_value(2)), None).unwrap_err();
        assert!(reason.contains("wrong value at index"), "{reason}");
        assert!(spec::first_error(&x, &y).is_none());
    }

    #[test]
    fn an_unwritten_output_still_holds_the_poison() {
        let (x, _) = case();
        let poison = poison_value(9);
        let untouched = vec![poison; x.len()];
        let reason = check_output("trial 5", &x, &untouched, Some(poison), None).unwrap_err();
        assert!(reason.starts_with("trial 5: the output was not written by this call: index 0 (and 4999 more)"), "{reason}");
    }

    #[test]
    fn poison_never_looks_like_a_running_sum_of_small_values() {
        for seed in 0..1_000 {
            let p = poison_value(seed);
            assert!(p >= 1 << 30, "{p}");
            assert!(p > 100_000_000 * 10);
        }
        assert_ne!(poison_value(1), poison_value(2));
    }

    #[test]
    fn guards_catch_writes_past_the_end() {
        let mut guard = vec![-7; GUARD];
        assert_eq!(check_guard("trial 0", "output", 100, &guard, -7), Ok(()));
        guard[3] = 0;
        assert_eq!(check_guard("trial 0", "output", 100, &guard, -7).unwrap_err(), "trial 0: solution wrote past the end of its output (index 103)");
    }

    #[test]
    fn panics_become_their_message() {
        assert_eq!(guarded(|| 5), Ok(5));
        let text = guarded(|| -> i32 { panic!("kernel {} failed", 3) }).unwrap_err();
        assert_eq!(text, "kernel 3 failed");
        assert_eq!(guarded(|| std::panic::panic_any(7u8)).unwrap_err(), "non-string panic payload");
    }

    #[test]
    fn faster_than_the_copy_floor_is_impossible() {
        assert!(check_physically_possible(0.30, 0.27).is_ok());
        assert!(check_physically_possible(0.22, 0.27).is_ok());
        let reason = check_physically_possible(0.05, 0.27).unwrap_err();
        assert!(reason.contains("physically impossible") && reason.contains("0.2700 ms"), "{reason}");
    }
}
