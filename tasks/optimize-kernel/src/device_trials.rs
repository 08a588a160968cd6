//! The GPU driver's trial loop, generic over where the buffers live (std only).
//!
//! The GPU driver (`driver/gpu.rs`) implements [`Device`] with cudarc; the tests below implement
//! it in host memory, with a "kernel" per kind of bad solution, so that every rejection the GPU
//! driver makes is exercised on a machine without a GPU. Like `checks.rs`, the file is compiled
//! into the task crate and copied verbatim into the GPU driver; it refers to `crate::spec` and
//! `crate::checks` only.
//!
//! Every call of the solution, warm-ups and the precision probe included, goes:
//! generate the input on the device (and check it against `spec.rs` on the host) -> poison the
//! output and its guard -> flush the caches -> time the call -> read input and output back ->
//! check the input is unchanged, the guards intact, and every output value exact.

use crate::{checks, spec};

/// How long one call took: by events on the driver's stream, and by the host clock from just
/// before the call until a synchronize of the whole device (which counts work the solution
/// launched on streams of its own).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub host_ms: f64,
    pub event_ms: f64,
}

/// The device side of a trial. Input and output hold `n + GUARD` values each; the solution sees
/// the first `n`.
pub trait Device {
    /// Writes `spec`'s input for `seed` (full range or not) into the input's first `n` values and
    /// `guard` into the rest.
    fn generate(&mut self, seed: u64, full_range: bool, guard: i32) -> Result<(), String>;
    /// Writes `value` into every element of the output, guard included.
    fn poison(&mut self, value: i32) -> Result<(), String>;
    /// Evicts the input and output from the device's caches.
    fn flush_caches(&mut self) -> Result<(), String>;
    /// Calls the solution once and times it; `Err` is the solution's failure (error or panic).
    fn call(&mut self) -> Result<Timing, String>;
    /// The whole input (`n + GUARD` values).
    fn read_input(&mut self) -> Result<Vec<i32>, String>;
    /// The whole output (`n + GUARD` values).
    fn read_output(&mut self) -> Result<Vec<i32>, String>;
}

/// Why a series of trials stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The solution did something wrong: the outcome is invalid, for this reason.
    Solution(String),
    /// The driver or the device failed before the solution ran: an infrastructure fault.
    Driver(String),
}

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub seed: u64,
    pub n: usize,
    pub warmup: u64,
    pub trials: u64,
}

/// The timed calls, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    pub timings: Vec<Timing>,
    /// Digests of the timed calls' outputs, for the scorer's out-of-process check.
    pub digests: Vec<u64>,
}

/// The value written after the input's end.
const INPUT_GUARD: i32 = -0x2152_4111;

/// Runs the warm-ups, the full-range precision probe, then the timed trials, checking each.
/// Trial `t` (warm-ups first) uses `spec::trial_seed(seed, t)`, as in the CPU driver.
pub fn run(device: &mut impl Device, plan: &Plan, progress: &mut dyn FnMut(&str)) -> Result<Measured, Fault> {
    let mut calls: Vec<(String, u64, bool, bool)> = Vec::new(); // label, seed, full range, timed
    for t in 0..plan.warmup {
        calls.push((format!("trial {t}"), spec::trial_seed(plan.seed, t), false, false));
    }
    calls.push(("the full-range precision probe".to_owned(), spec::probe_seed(plan.seed), true, false));
    for t in plan.warmup..plan.warmup + plan.trials {
        calls.push((format!("trial {t}"), spec::trial_seed(plan.seed, t), false, true));
    }
    let mut measured = Measured::default();
    let mut previous = None;
    let mut called = false;
    for (label, seed, full_range, timed) in calls {
        // A CUDA error is sticky: once the solution's kernels have faulted, every later call
        // fails, so failures after its first call are the solution's.
        let fault = |message: String| if called { Fault::Solution(message) } else { Fault::Driver(message) };
        let input = if full_range { spec::generate_full_range_input(seed, plan.n) } else { spec::generate_input(seed, plan.n) };
        device.generate(seed, full_range, INPUT_GUARD).map_err(fault)?;
        let generated = device.read_input().map_err(fault)?;
        if let Some(i) = (0..plan.n).find(|&i| generated[i] != input[i]) {
            return Err(Fault::Driver(format!(
                "{label}: the device's input generator disagrees with spec.rs at index {i} ({} instead of {})",
                generated[i], input[i]
            )));
        }
        let poison = checks::poison_value(seed);
        device.poison(poison).map_err(fault)?;
        device.flush_caches().map_err(fault)?;
        called = true;
        let timing = device.call().map_err(|e| Fault::Solution(format!("{label}: {e}")))?;
        let after = device.read_input().map_err(|e| Fault::Solution(format!("{label}: after the call: {e}")))?;
        let output = device.read_output().map_err(|e| Fault::Solution(format!("{label}: after the call: {e}")))?;
        let check = || -> Result<u64, String> {
            checks::check_input(&label, spec::digest(&input), &after[..plan.n])?;
            checks::check_guard(&label, "input", plan.n, &after[plan.n..], INPUT_GUARD)?;
            checks::check_guard(&label, "output", plan.n, &output[plan.n..], poison)?;
            checks::check_output(&label, &input, &output[..plan.n], Some(poison), previous)
        };
        let digest = check().map_err(Fault::Solution)?;
        previous = Some(digest);
        progress(&format!(
            "{label}{}: {:.4} ms (host), {:.4} ms (events), correct",
            if timed { "" } else { " (untimed)" },
            timing.host_ms,
            timing.event_ms
        ));
        if timed {
            measured.timings.push(timing);
            measured.digests.push(digest);
        }
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checks::GUARD;

    /// What a "kernel" is handed: the input and output as the device holds them (guards
    /// included), `n`, and how many times it was called before.
    type Kernel = Box<dyn FnMut(&mut [i32], &mut [i32], usize, usize)>;

    /// A device in host memory. Its kernels model the GPU fixtures in tests/fixtures/gpu-*.
    struct HostDevice {
        n: usize,
        input: Vec<i32>,
        output: Vec<i32>,
        kernel: Kernel,
        calls: usize,
        broken_generator: bool,
    }

    impl HostDevice {
        fn new(n: usize, kernel: Kernel) -> HostDevice {
            HostDevice { n, input: vec![0; n + GUARD], output: vec![0; n + GUARD], kernel, calls: 0, broken_generator: false }
        }
    }

    impl Device for HostDevice {
        fn generate(&mut self, seed: u64, full_range: bool, guard: i32) -> Result<(), String> {
            for i in 0..self.n {
                self.input[i] = spec::value_at(seed, i, full_range);
            }
            if self.broken_generator && self.n > 1 {
                self.input[1] ^= 1;
            }
            self.input[self.n..].fill(guard);
            Ok(())
        }
        fn poison(&mut self, value: i32) -> Result<(), String> {
            self.output.fill(value);
            Ok(())
        }
        fn flush_caches(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn call(&mut self) -> Result<Timing, String> {
            let (input, output, n, calls) = (&mut self.input, &mut self.output, self.n, self.calls);
            let kernel = &mut self.kernel;
            checks::guarded(|| kernel(input, output, n, calls)).map_err(|m| format!("solution panicked: {m}"))?;
            self.calls += 1;
            Ok(Timing { host_ms: 1.0 + calls as f64, event_ms: 0.9 })
        }
        fn read_input(&mut self) -> Result<Vec<i32>, String> {
            Ok(self.input.clone())
        }
        fn read_output(&mut self) -> Result<Vec<i32>, String> {
            Ok(self.output.clone())
        }
    }

    fn correct(input: &mut [i32], output: &mut [i32], n: usize, _: usize) {
        output[..n].copy_from_slice(&spec::reference(&input[..n]));
    }

    const PLAN: Plan = Plan { seed: 11, n: 3_000, warmup: 2, trials: 3 };

    fn verdict(kernel: Kernel) -> Result<Measured, Fault> {
        run(&mut HostDevice::new(PLAN.n, kernel), &PLAN, &mut |_| {})
    }

    fn invalid(kernel: Kernel) -> String {
        match verdict(kernel) {
            Err(Fault::Solution(reason)) => reason,
            other => panic!("expected the solution to be rejected, got {other:?}"),
        }
    }

    #[test]
    fn a_correct_kernel_is_timed_and_its_outputs_digested() {
        let measured = verdict(Box::new(correct)).unwrap();
        // Calls 0 and 1 are warm-ups and call 2 the probe: the timed ones are calls 3 to 5.
        assert_eq!(measured.timings.iter().map(|t| t.host_ms).collect::<Vec<_>>(), [4.0, 5.0, 6.0]);
        let expected: Vec<u64> =
            (2..5).map(|t| spec::reference_digest(&spec::generate_input(spec::trial_seed(PLAN.seed, t), PLAN.n))).collect();
        assert_eq!(measured.digests, expected);
    }

    #[test]
    fn sizes_that_fill_no_block_evenly_and_the_empty_input_work() {
        for n in [0, 1, 2, 255, 1_025] {
            let plan = Plan { n, ..PLAN };
            let measured = run(&mut HostDevice::new(n, Box::new(correct)), &plan, &mut |_| {}).unwrap();
            assert_eq!(measured.digests.len(), 3, "n = {n}");
        }
    }

    #[test]
    fn a_wrong_value_at_one_index_is_rejected() {
        let reason = invalid(Box::new(|input, output, n, _| {
            correct(input, output, n, 0);
            output[n / 2] = output[n / 2].wrapping_add(1);
        }));
        assert!(reason.starts_with("trial 0: wrong value at index 1500"), "{reason}");
    }

    #[test]
    fn a_mutated_input_is_rejected() {
        let reason = invalid(Box::new(|input, output, n, _| {
            correct(input, output, n, 0);
            input[7] = 99;
        }));
        assert_eq!(reason, "trial 0: solution mutated its input");
    }

    #[test]
    fn a_cached_answer_is_rejected() {
        let mut first: Option<Vec<i32>> = None;
        let reason = invalid(Box::new(move |input, output, n, _| {
            let answer = first.get_or_insert_with(|| spec::reference(&input[..n]));
            output[..n].copy_from_slice(answer);
        }));
        assert!(reason.starts_with("trial 1: returned the output of an earlier call"), "{reason}");
    }

    #[test]
    fn an_output_left_unwritten_after_the_first_call_is_rejected() {
        // Writes only on its first call, as a solution that launched its work on the first call
        // and returned before doing it on later ones would.
        let reason = invalid(Box::new(|input, output, n, calls| {
            if calls == 0 {
                correct(input, output, n, 0);
            }
        }));
        assert!(reason.starts_with("trial 1: the output was not written by this call: index 0"), "{reason}");
    }

    #[test]
    fn writes_past_the_end_are_rejected() {
        let reason = invalid(Box::new(|input, output, n, _| {
            correct(input, output, n, 0);
            output[n] = 0;
        }));
        assert_eq!(reason, "trial 0: solution wrote past the end of its output (index 3000)");
        let reason = invalid(Box::new(|input, output, n, _| {
            correct(input, output, n, 0);
            input[n + GUARD - 1] = 0;
        }));
        assert_eq!(reason, format!("trial 0: solution wrote past the end of its input (index {})", 3000 + GUARD - 1));
    }

    #[test]
    fn a_panic_is_rejected_with_its_message() {
        let reason = invalid(Box::new(|_, _, n, _| panic!("launch failed for n = {n}")));
        assert_eq!(reason, "trial 0: solution panicked: launch failed for n = 3000");
    }

    #[test]
    fn a_lower_precision_is_caught_by_the_full_range_probe() {
        // Accumulates in f64 and converts back with saturation: exact for the small values of
        // the timed inputs, wrong as soon as the sums wrap.
        let reason = invalid(Box::new(|input, output, n, _| {
            let (mut odd, mut acc) = (false, 0f64);
            for i in 0..n {
                if odd {
                    acc += f64::from(input[i]);
                }
                odd ^= input[i] > 0;
                output[i] = acc as i32;
            }
        }));
        assert!(reason.starts_with("the full-range precision probe: wrong value at index"), "{reason}");
    }

    #[test]
    fn a_generator_that_disagrees_with_the_spec_is_the_driver_s_fault() {
        let mut device = HostDevice::new(PLAN.n, Box::new(correct));
        device.broken_generator = true;
        match run(&mut device, &PLAN, &mut |_| {}) {
            Err(Fault::Driver(message)) => assert!(message.contains("disagrees with spec.rs at index 1"), "{message}"),
            other => panic!("{other:?}"),
        }
    }
}
