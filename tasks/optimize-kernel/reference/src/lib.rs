//! The reference solution: a fused, parallel, blocked scan.
//!
//! `Y_i = sum over j <= i of x_j`, counting `x_j` only when the number of positive `x_k` with
//! `k < j` is odd; wrapping `i32` arithmetic.
//!
//! Design (one pass over main memory):
//!
//! * The input is split into chunks of `CHUNK` elements (256 KiB), small enough to stay in a
//!   core's L2 cache between the two passes made over it.
//! * A chunk's effect on the running state `(odd, acc)` is summarised by
//!   `(parity of its positive count, sum of the elements it selects when the incoming parity
//!   is even, sum of all its elements)`: with an odd incoming parity the selected elements
//!   are exactly the complement, so they sum to `total - sum_even`.
//! * Every rayon thread repeatedly claims the next chunk (an atomic counter, so chunks are
//!   claimed in order), reduces it to its summary (reading it from memory into L2), waits
//!   for the previous chunk's outgoing state, publishes its own outgoing state at once, and
//!   then scans the chunk from L2, writing the output. While one thread scans chunk k, the
//!   other is already reducing chunk k + 1. Claiming in order means that the chunk a thread
//!   waits for was claimed earlier by a thread that is running and never blocks on anything
//!   later, so there is no deadlock, whatever the number of threads (including one).
//! * The output is allocated with `Vec::with_capacity` (no zero-fill of the whole array)
//!   and its pages are first touched by the threads that write them, i.e. in parallel.
//! * The inner loops use AVX2 when the CPU has it (detected at run time): the positive mask
//!   of 8 lanes becomes 8 bits (`movemask`), its exclusive prefix parity comes from a
//!   256-entry table, the selected lanes are masked with another table, and an in-register
//!   8-lane prefix sum finishes the scan. Elsewhere, a scalar loop does the same work.
//!
//! The gpu variant's reference solution is in `src/gpu.rs` and `kernels/`, behind the `cuda`
//! feature.

/// The gpu variant: reduce-then-scan CUDA kernels (`kernels/*.cu`) compiled at run time.
#[cfg(feature = "cuda")]
pub mod gpu;

/// The cudarc the GPU code is written against (the scorer's driver uses this one).
#[cfg(feature = "cuda")]
pub use cudarc;

use std::mem::MaybeUninit;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Elements per chunk: 256 KiB of input (and as much output) per chunk.
const CHUNK: usize = 1 << 16;

/// Inputs shorter than this are scanned sequentially in one pass.
const SEQUENTIAL_BELOW: usize = 4 * CHUNK;

/// The running state of the scan between two elements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct State {
    /// The number of positive elements seen so far is odd.
    odd: bool,
    /// The running sum of the counted elements.
    acc: i32,
}

impl State {
    const READY: u64 = 1 << 63;

    /// Packs the state into a non-zero word (zero means "not published yet").
    fn encode(self) -> u64 {
        Self::READY | (u64::from(self.odd) << 32) | u64::from(self.acc as u32)
    }

    fn decode(word: u64) -> Self {
        State {
            odd: word & (1 << 32) != 0,
            acc: word as u32 as i32,
        }
    }
}

/// What a chunk does to the running state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Summary {
    /// The chunk holds an odd number of positive elements.
    odd: bool,
    /// Sum of the elements counted when the incoming parity is even.
    sum_even: i32,
    /// Sum of all elements.
    total: i32,
}

impl Summary {
    fn apply(self, s: State) -> State {
        let add = if s.odd {
            self.total.wrapping_sub(self.sum_even)
        } else {
            self.sum_even
        };
        State {
            odd: s.odd ^ self.odd,
            acc: s.acc.wrapping_add(add),
        }
    }
}

/// `Y_i = sum over j <= i of x_j`, counting `x_j` only when the number of positive `x_k` with
/// `k < j` is odd (so `x_0` never counts); wrapping `i32` arithmetic.
pub fn prefix_sum(x: &[i32]) -> Vec<i32> {
    if x.len() < SEQUENTIAL_BELOW {
        let mut out = Vec::with_capacity(x.len());
        kernels::scan(
            x,
            State::default(),
            &mut out.spare_capacity_mut()[..x.len()],
        );
        // SAFETY: `scan` initialised all `x.len()` slots of the spare capacity (it writes
        // exactly one value per input element), and the capacity is at least `x.len()`.
        unsafe { out.set_len(x.len()) };
        out
    } else {
        chunked(x, CHUNK)
    }
}

/// The parallel chunked scan (any `x.len()`, any chunk size >= 1, any number of threads).
fn chunked(x: &[i32], chunk: usize) -> Vec<i32> {
    let n = x.len();
    let chunks = n.div_ceil(chunk);
    let mut out: Vec<i32> = Vec::with_capacity(n);
    {
        // One slot per chunk, each taken exactly once by the thread that claims the chunk.
        let slots: Vec<Mutex<&mut [MaybeUninit<i32>]>> = out.spare_capacity_mut()[..n]
            .chunks_mut(chunk)
            .map(Mutex::new)
            .collect();
        // The state after each chunk, published by the thread that claimed it.
        let states: Vec<AtomicU64> = (0..chunks).map(|_| AtomicU64::new(0)).collect();
        let next = AtomicUsize::new(0);
        rayon::broadcast(|_| {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= chunks {
                    break;
                }
                let xs = &x[k * chunk..n.min((k + 1) * chunk)];
                let summary = kernels::reduce(xs);
                let incoming = if k == 0 {
                    State::default()
                } else {
                    wait_for(&states[k - 1])
                };
                states[k].store(summary.apply(incoming).encode(), Ordering::Release);
                let mut slot = slots[k].lock().unwrap_or_else(|e| e.into_inner());
                kernels::scan(xs, incoming, &mut slot);
            }
        });
    }
    // SAFETY: the capacity is at least `n`; the slots cover the first `n` spare elements and
    // every slot was scanned (each chunk index below `chunks` was claimed by exactly one
    // thread, which wrote one value per element of its chunk) before `broadcast` returned.
    // A panic in a worker propagates out of `broadcast` before this point.
    unsafe { out.set_len(n) };
    out
}

/// Spins until the previous chunk's state is published (it normally already is, or is
/// about to be: that chunk was claimed earlier and only needs to finish its reduce pass).
fn wait_for(word: &AtomicU64) -> State {
    let mut spins = 0u32;
    loop {
        let v = word.load(Ordering::Acquire);
        if v != 0 {
            return State::decode(v);
        }
        spins = spins.saturating_add(1);
        if spins < 1 << 12 {
            std::hint::spin_loop();
        } else {
            // The thread we wait for may have been descheduled: give it the core.
            std::thread::yield_now();
        }
    }
}

mod kernels {
    use super::{State, Summary};
    use std::mem::MaybeUninit;

    /// The summary of a chunk.
    pub(super) fn reduce(xs: &[i32]) -> Summary {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2::reduce(xs) };
        }
        scalar_reduce(xs, State::default()).0
    }

    /// Writes the scan of `xs` starting from `state` into `out` (`out.len() == xs.len()`).
    pub(super) fn scan(xs: &[i32], state: State, out: &mut [MaybeUninit<i32>]) {
        assert_eq!(xs.len(), out.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2::scan(xs, state, out) };
        }
        scalar_scan(xs, state, out);
    }

    /// Returns the summary of `xs` and the local state after it, starting from a local
    /// parity of `start.odd` (the running sum in `start.acc` is only carried through).
    pub(super) fn scalar_reduce(xs: &[i32], start: State) -> (Summary, State) {
        let mut mask = -i32::from(start.odd); // all ones while the local parity is odd
        let (mut sum_even, mut total) = (0i32, 0i32);
        for &v in xs {
            sum_even = sum_even.wrapping_add(v & mask);
            total = total.wrapping_add(v);
            mask ^= -i32::from(v > 0);
        }
        let summary = Summary {
            odd: (mask != 0) != start.odd,
            sum_even,
            total,
        };
        (
            summary,
            State {
                odd: mask != 0,
                acc: start.acc,
            },
        )
    }

    pub(super) fn scalar_scan(xs: &[i32], state: State, out: &mut [MaybeUninit<i32>]) -> State {
        let mut mask = -i32::from(state.odd);
        let mut acc = state.acc;
        for (o, &v) in out.iter_mut().zip(xs) {
            acc = acc.wrapping_add(v & mask);
            o.write(acc);
            mask ^= -i32::from(v > 0);
        }
        State {
            odd: mask != 0,
            acc,
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use super::super::{State, Summary};
        use super::{scalar_reduce, scalar_scan};
        use std::arch::x86_64::*;
        use std::mem::MaybeUninit;

        /// For an 8-bit lane mask `m` of positive lanes: bits 0..8 hold the exclusive prefix
        /// parity of each lane (bit i = parity of bits 0..i of `m`), bits 8..16 are all ones
        /// when `m` has an odd number of bits.
        static PARITY: [u16; 256] = {
            let mut t = [0u16; 256];
            let mut m = 0;
            while m < 256 {
                let (mut bits, mut p) = (0u16, 0u16);
                let mut i = 0;
                while i < 8 {
                    bits |= p << i;
                    p ^= (m >> i) as u16 & 1;
                    i += 1;
                }
                t[m] = bits | if p == 1 { 0xff00 } else { 0 };
                m += 1;
            }
            t
        };

        #[repr(align(32))]
        struct Masks([[i32; 8]; 256]);

        /// Lane i of entry `e` is all ones when bit i of `e` is set.
        static MASKS: Masks = {
            let mut t = [[0i32; 8]; 256];
            let mut e = 0;
            while e < 256 {
                let mut i = 0;
                while i < 8 {
                    t[e][i] = if (e >> i) & 1 == 1 { -1 } else { 0 };
                    i += 1;
                }
                e += 1;
            }
            Masks(t)
        };

        /// The lanes of `v` that are counted, given the incoming parity bits `odd` (0 or
        /// 0xff); updates `odd` to the parity after `v`.
        #[inline(always)]
        fn select(v: __m256i, odd: &mut u32) -> __m256i {
            // SAFETY (all intrinsics here): the enclosing functions enable AVX2, and the
            // table index is below 256 by construction (an 8-bit mask xor an 8-bit value).
            unsafe {
                let positive = _mm256_cmpgt_epi32(v, _mm256_setzero_si256());
                let m = _mm256_movemask_ps(_mm256_castsi256_ps(positive)) as usize;
                let p = u32::from(*PARITY.get_unchecked(m));
                let lanes = (p & 0xff) ^ *odd;
                *odd ^= p >> 8;
                let mask = _mm256_load_si256(MASKS.0.get_unchecked(lanes as usize).as_ptr().cast());
                _mm256_and_si256(v, mask)
            }
        }

        #[inline(always)]
        fn hsum(v: __m256i) -> i32 {
            let mut lanes = [0i32; 8];
            // SAFETY: `lanes` is 32 bytes; unaligned store.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
            lanes.iter().fold(0i32, |a, &b| a.wrapping_add(b))
        }

        /// # Safety
        /// The CPU must support AVX2.
        #[target_feature(enable = "avx2")]
        pub(in super::super) unsafe fn reduce(xs: &[i32]) -> Summary {
            let (mut sum_even, mut total) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            let mut odd = 0u32;
            let mut blocks = xs.chunks_exact(8);
            for b in &mut blocks {
                // SAFETY: `b` has 8 elements (32 bytes); unaligned load.
                let v = unsafe { _mm256_loadu_si256(b.as_ptr().cast()) };
                sum_even = _mm256_add_epi32(sum_even, select(v, &mut odd));
                total = _mm256_add_epi32(total, v);
            }
            let (tail, _) = scalar_reduce(
                blocks.remainder(),
                State {
                    odd: odd != 0,
                    acc: 0,
                },
            );
            Summary {
                odd: (odd != 0) ^ tail.odd,
                sum_even: hsum(sum_even).wrapping_add(tail.sum_even),
                total: hsum(total).wrapping_add(tail.total),
            }
        }

        /// # Safety
        /// The CPU must support AVX2, and `out.len() == xs.len()`.
        #[target_feature(enable = "avx2")]
        pub(in super::super) unsafe fn scan(
            xs: &[i32],
            state: State,
            out: &mut [MaybeUninit<i32>],
        ) {
            let mut odd = if state.odd { 0xff } else { 0 };
            let mut acc = _mm256_set1_epi32(state.acc);
            let last = _mm256_set1_epi32(7);
            let mut blocks = xs.chunks_exact(8);
            let mut outs = out.chunks_exact_mut(8);
            for (b, o) in (&mut blocks).zip(&mut outs) {
                // SAFETY: `b` and `o` have 8 elements (32 bytes); unaligned load and store.
                let v = unsafe { _mm256_loadu_si256(b.as_ptr().cast()) };
                let mut s = select(v, &mut odd);
                // In-lane (4 x i32) inclusive prefix sums, then carry the low half's total
                // into the high half.
                s = _mm256_add_epi32(s, _mm256_slli_si256::<4>(s));
                s = _mm256_add_epi32(s, _mm256_slli_si256::<8>(s));
                let low_total = _mm256_shuffle_epi32::<0xff>(s);
                s = _mm256_add_epi32(s, _mm256_permute2x128_si256::<0x08>(low_total, low_total));
                unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), _mm256_add_epi32(s, acc)) };
                acc = _mm256_add_epi32(acc, _mm256_permutevar8x32_epi32(s, last));
            }
            let state = State {
                odd: odd != 0,
                acc: _mm256_cvtsi256_si32(acc),
            };
            scalar_scan(blocks.remainder(), state, outs.into_remainder());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ground_truth(x: &[i32]) -> Vec<i32> {
        let (mut odd, mut acc, mut out) = (false, 0i32, Vec::with_capacity(x.len()));
        for &v in x {
            if odd {
                acc = acc.wrapping_add(v);
            }
            out.push(acc);
            odd ^= v > 0;
        }
        out
    }

    fn input(seed: u64, n: usize) -> Vec<i32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Mostly small values, sometimes extreme ones (to exercise wrapping).
                match s % 64 {
                    0 => i32::MIN,
                    1 => i32::MAX,
                    _ => (s >> 40) as i32 % 10,
                }
            })
            .collect()
    }

    #[test]
    fn worked_example() {
        assert_eq!(prefix_sum(&[1, 2, -3, 4, 5]), vec![0, 2, 2, 2, 7]);
    }

    #[test]
    fn small_and_odd_sizes() {
        for n in [
            0,
            1,
            2,
            7,
            8,
            9,
            15,
            16,
            17,
            100,
            1000,
            SEQUENTIAL_BELOW + 3,
        ] {
            let x = input(n as u64, n);
            assert_eq!(prefix_sum(&x), ground_truth(&x), "n = {n}");
        }
    }

    #[test]
    fn chunked_any_chunk_size() {
        for (n, chunk) in [
            (0, 5),
            (1, 1),
            (7, 3),
            (100, 1),
            (1000, 7),
            (1000, 8),
            (1000, 64),
        ] {
            let x = input(n as u64 + 17, n);
            assert_eq!(
                chunked(&x, chunk),
                ground_truth(&x),
                "n = {n}, chunk = {chunk}"
            );
        }
        let x = input(5, 3 * CHUNK + 11);
        assert_eq!(chunked(&x, CHUNK), ground_truth(&x));
    }

    #[test]
    fn kernels_agree_with_scalar() {
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 1001] {
            let x = input(n as u64 + 3, n);
            for start in [
                State::default(),
                State {
                    odd: true,
                    acc: 12345,
                },
            ] {
                let mut a = vec![MaybeUninit::new(0); n];
                let mut b = vec![MaybeUninit::new(0); n];
                kernels::scan(&x, start, &mut a);
                kernels::scalar_scan(&x, start, &mut b);
                // SAFETY: both buffers were fully initialised.
                let (a, b): (Vec<i32>, Vec<i32>) = unsafe {
                    (
                        a.iter().map(|v| v.assume_init()).collect(),
                        b.iter().map(|v| v.assume_init()).collect(),
                    )
                };
                assert_eq!(a, b, "n = {n}");
            }
            assert_eq!(
                kernels::reduce(&x),
                kernels::scalar_reduce(&x, State::default()).0
            );
        }
    }

    #[test]
    fn one_thread_does_not_deadlock() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let x = input(99, 5 * CHUNK + 5);
        let expected = ground_truth(&x);
        assert_eq!(pool.install(|| prefix_sum(&x)), expected);
        assert_eq!(pool.install(|| chunked(&x, 1000)), expected);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| chunked(&x, 999)), expected);
    }
}
