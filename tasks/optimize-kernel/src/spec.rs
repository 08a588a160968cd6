//! The optimize-kernel specification: ground truth, inputs, seeds and digests (std only).
//!
//! The function: for an `i32` input `x`,
//!
//! ```text
//! Y_i = sum over j <= i of x_j, counting x_j only when the number of
//!       positive x_k with k < j is odd            (so x_0 never counts)
//! ```
//!
//! with wrapping `i32` arithmetic. Everything in this file depends on `std` only and uses no
//! `crate::` paths, because the same file is compiled both as a module of the task crate and
//! as `src/spec.rs` of the driver crate that the scorer generates.
//!
//! Determinism contract: `generate_input`, `digest` and `trial_seed` give the same result on
//! every machine and for every thread count (they are split into fixed-size chunks whose
//! results depend only on the chunk's index, never on which thread computed them).

use std::thread;

/// The ground truth: a plain sequential scan over `x`.
pub fn reference(x: &[i32]) -> Vec<i32> {
    scan(x).collect()
}

/// The ground truth as a stream, one value per element of `x`.
///
/// `odd` is the parity of the number of positive elements seen *before* the current one, so
/// it is updated after the element has (or has not) been added.
fn scan(x: &[i32]) -> impl Iterator<Item = i32> + '_ {
    let mut odd = false; // the number of positive x_k with k < j is odd
    let mut acc: i32 = 0; // the running sum of the counted x_j
    x.iter().map(move |&v| {
        if odd {
            acc = acc.wrapping_add(v);
        }
        if v > 0 {
            odd = !odd;
        }
        acc
    })
}

/// Elements per generation / digest chunk. Each chunk's content (or hash) depends only on the
/// seed and the chunk's index, which makes the results independent of the thread count.
const CHUNK: usize = 1 << 20;

/// The splitmix64 finalizer (a bijective 64-bit mixer).
#[inline(always)]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The splitmix64 increment (the fractional part of the golden ratio, odd).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Number of worker threads to use for `work_items` independent items.
fn threads_for(work_items: usize) -> usize {
    let available = thread::available_parallelism().map_or(1, |n| n.get());
    available.clamp(1, work_items.max(1))
}

/// The wyrand stream's increment and xor constant.
const INCREMENT: u64 = 0xA076_1D64_78BD_642F;
const XOR: u64 = 0xE703_7ED1_A0B4_28DB;

/// The start of chunk `chunk_index`'s stream.
#[inline(always)]
fn chunk_state(seed: u64, chunk_index: u64) -> u64 {
    mix64(seed ^ mix64(chunk_index.wrapping_add(0x6A09_E667_F3BC_C909)))
}

/// One wyrand output for a given counter state: a 64x64->128-bit multiply, halves xor-folded.
#[inline(always)]
fn wyrand(state: u64) -> u64 {
    let t = u128::from(state) * u128::from(state ^ XOR);
    (t >> 64) as u64 ^ t as u64
}

/// Maps a 32-bit draw to a value: [-10, 10) by a multiply-high by 20 (bias at most 16 / 2^32
/// per value), or, for the full-range probe, the draw itself as an `i32`.
#[inline(always)]
fn map_draw(r: u32, full_range: bool) -> i32 {
    if full_range { r as i32 } else { ((u64::from(r) * 20) >> 32) as i32 - 10 }
}

/// Fills one chunk from a wyrand stream (a 64-bit additive counter) whose start is derived
/// from `(seed, chunk_index)`. Each 64-bit output gives two 32-bit draws.
fn fill_chunk(seed: u64, chunk_index: u64, full_range: bool, out: &mut [i32]) {
    let mut state = chunk_state(seed, chunk_index);
    let mut pairs = out.chunks_exact_mut(2);
    for pair in &mut pairs {
        state = state.wrapping_add(INCREMENT);
        let r = wyrand(state);
        pair[0] = map_draw(r as u32, full_range);
        pair[1] = map_draw((r >> 32) as u32, full_range);
    }
    if let [last] = pairs.into_remainder() {
        *last = map_draw(wyrand(state.wrapping_add(INCREMENT)) as u32, full_range);
    }
}

/// Element `index` of `generate_input(seed, _)` (or of `generate_full_range_input`), computed
/// on its own: the stream is a counter, so the k-th pair of a chunk comes from the chunk's
/// start plus (k + 1) increments. This is the formula the GPU driver's generator kernel
/// (`driver/gpu_kernels.cu`) evaluates per element.
pub fn value_at(seed: u64, index: usize, full_range: bool) -> i32 {
    let (chunk, j) = ((index / CHUNK) as u64, (index % CHUNK) as u64);
    let state = chunk_state(seed, chunk).wrapping_add((j / 2 + 1).wrapping_mul(INCREMENT));
    let r = wyrand(state);
    map_draw(if j % 2 == 0 { r as u32 } else { (r >> 32) as u32 }, full_range)
}

/// `n` values uniform in [-10, 10), deterministic in `(seed, n)` and independent of the number
/// of threads used (the n-element result is a prefix of the (n+k)-element one).
pub fn generate_input(seed: u64, n: usize) -> Vec<i32> {
    generate_input_with_threads(seed, n, false, threads_for(n.div_ceil(CHUNK)))
}

/// `n` values uniform over all of `i32`: the precision probe. Running sums of such values
/// wrap around constantly, so only exact wrapping `i32` arithmetic gets them right (floating
/// point, saturating or narrower integer arithmetic does not).
pub fn generate_full_range_input(seed: u64, n: usize) -> Vec<i32> {
    generate_input_with_threads(seed, n, true, threads_for(n.div_ceil(CHUNK)))
}

fn generate_input_with_threads(seed: u64, n: usize, full_range: bool, threads: usize) -> Vec<i32> {
    // `vec![0; n]` is a calloc: large blocks come from fresh zero pages that are faulted in
    // by the threads that first write them, i.e. in parallel below.
    let mut out = vec![0i32; n];
    let chunks = n.div_ceil(CHUNK);
    let threads = threads.clamp(1, chunks.max(1));
    if threads <= 1 {
        for (k, chunk) in out.chunks_mut(CHUNK).enumerate() {
            fill_chunk(seed, k as u64, full_range, chunk);
        }
        return out;
    }
    let per_thread = chunks.div_ceil(threads);
    thread::scope(|s| {
        for (g, group) in out.chunks_mut(per_thread * CHUNK).enumerate() {
            s.spawn(move || {
                for (k, chunk) in group.chunks_mut(CHUNK).enumerate() {
                    fill_chunk(seed, (g * per_thread + k) as u64, full_range, chunk);
                }
            });
        }
    });
    out
}

/// The seed of trial `trial` of a scoring run with seed `seed`.
pub fn trial_seed(seed: u64, trial: u64) -> u64 {
    mix64(seed.wrapping_add(GAMMA) ^ mix64(trial.wrapping_add(0x3C6E_F372_FE94_F82B)))
}

/// The seed of the full-range precision probe's input in a scoring run with seed `seed`: a
/// stream of its own, never one of the trials'.
pub fn probe_seed(seed: u64) -> u64 {
    trial_seed(seed ^ 0x00f1_0a75_0000_0000, u64::MAX)
}

/// Hash of one chunk: four multiply-rotate lanes over 64-bit words (two values per word),
/// then the tail, the chunk index and the chunk length.
fn digest_chunk(chunk_index: u64, xs: &[i32]) -> u64 {
    const K: u64 = 0x9FB2_1C65_1E98_DF25;
    #[inline(always)]
    fn word(a: i32, b: i32) -> u64 {
        u64::from(a as u32) | (u64::from(b as u32) << 32)
    }
    #[inline(always)]
    fn step(h: u64, w: u64) -> u64 {
        (h ^ w).wrapping_mul(K).rotate_left(29)
    }
    let mut h = [
        mix64(chunk_index.wrapping_mul(4).wrapping_add(1)),
        mix64(chunk_index.wrapping_mul(4).wrapping_add(2)),
        mix64(chunk_index.wrapping_mul(4).wrapping_add(3)),
        mix64(chunk_index.wrapping_mul(4).wrapping_add(4)),
    ];
    let mut blocks = xs.chunks_exact(8);
    for b in &mut blocks {
        h[0] = step(h[0], word(b[0], b[1]));
        h[1] = step(h[1], word(b[2], b[3]));
        h[2] = step(h[2], word(b[4], b[5]));
        h[3] = step(h[3], word(b[6], b[7]));
    }
    for &v in blocks.remainder() {
        h[0] = step(h[0], u64::from(v as u32) | (1 << 40));
    }
    let mut r = mix64(xs.len() as u64 ^ chunk_index.rotate_left(32));
    for lane in h {
        r = mix64(r.wrapping_mul(K) ^ lane);
    }
    r
}

/// A fast, order-sensitive 64-bit hash of `xs` (not cryptographic). Used to verify outputs
/// out of process and to detect mutation of the input. Independent of the thread count.
pub fn digest(xs: &[i32]) -> u64 {
    digest_with_threads(xs, threads_for(xs.len().div_ceil(CHUNK)))
}

fn digest_with_threads(xs: &[i32], threads: usize) -> u64 {
    let chunks = xs.len().div_ceil(CHUNK);
    let mut hashes = vec![0u64; chunks];
    let threads = threads.clamp(1, chunks.max(1));
    if threads <= 1 {
        for (k, (h, c)) in hashes.iter_mut().zip(xs.chunks(CHUNK)).enumerate() {
            *h = digest_chunk(k as u64, c);
        }
    } else {
        let per_thread = chunks.div_ceil(threads);
        thread::scope(|s| {
            for (g, (hs, group)) in hashes
                .chunks_mut(per_thread)
                .zip(xs.chunks(per_thread * CHUNK))
                .enumerate()
            {
                s.spawn(move || {
                    for (k, (h, c)) in hs.iter_mut().zip(group.chunks(CHUNK)).enumerate() {
                        *h = digest_chunk((g * per_thread + k) as u64, c);
                    }
                });
            }
        });
    }
    combine(xs.len(), hashes)
}

/// Folds per-chunk hashes, in order, into the digest of `len` values.
fn combine(len: usize, chunk_hashes: impl IntoIterator<Item = u64>) -> u64 {
    let mut acc = mix64(len as u64 ^ 0x243F_6A88_85A3_08D3);
    for h in chunk_hashes {
        acc = mix64(acc.wrapping_add(GAMMA) ^ h);
    }
    acc
}

/// `digest(&reference(x))` without materializing the reference: the scan runs chunk by chunk
/// through one reused buffer, which saves the scorer a 400 MB allocation per verified trial.
pub fn reference_digest(x: &[i32]) -> u64 {
    let mut values = scan(x);
    let mut buffer = Vec::with_capacity(CHUNK.min(x.len()));
    let hashes = (0..x.len().div_ceil(CHUNK)).map(|k| {
        buffer.clear();
        buffer.extend(values.by_ref().take(CHUNK));
        digest_chunk(k as u64, &buffer)
    });
    combine(x.len(), hashes.collect::<Vec<_>>())
}

/// The first index at which `got` differs from the ground truth for `x`, with the expected
/// value there; `None` when `got` is right. Streams the scan, allocating nothing. `got` must
/// have the length of `x` (checked separately).
pub fn first_error(x: &[i32], got: &[i32]) -> Option<(usize, i32)> {
    scan(x).zip(got).enumerate().find_map(|(i, (expected, &g))| (g != expected).then_some((i, expected)))
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, literally: O(n^2), for cross-checking `reference`.
    fn by_definition(x: &[i32]) -> Vec<i32> {
        (0..x.len())
            .map(|i| {
                (0..=i)
                    .filter(|&j| x[..j].iter().filter(|&&v| v > 0).count() % 2 == 1)
                    .fold(0i32, |acc, j| acc.wrapping_add(x[j]))
            })
            .collect()
    }

    #[test]
    fn reference_worked_example() {
        // x = [1, 2, -3, 4, 5]
        // j | x_j | positives before j | counted? | Y_j
        // 0 |  1  | 0 (even)           | no       | 0
        // 1 |  2  | 1 (odd)            | yes      | 2
        // 2 | -3  | 2 (even)           | no       | 2
        // 3 |  4  | 2 (even)           | no       | 2
        // 4 |  5  | 3 (odd)            | yes      | 7
        assert_eq!(reference(&[1, 2, -3, 4, 5]), vec![0, 2, 2, 2, 7]);
    }

    #[test]
    fn reference_second_example() {
        // x = [3, -1, 0, 5, -2, 7, 4]
        // j | x_j | positives before j | counted? | Y_j
        // 0 |  3  | 0 (even)           | no       |  0
        // 1 | -1  | 1 (odd)            | yes      | -1
        // 2 |  0  | 1 (odd)            | yes      | -1   (0 is not positive)
        // 3 |  5  | 1 (odd)            | yes      |  4
        // 4 | -2  | 2 (even)           | no       |  4
        // 5 |  7  | 2 (even)           | no       |  4
        // 6 |  4  | 3 (odd)            | yes      |  8
        assert_eq!(
            reference(&[3, -1, 0, 5, -2, 7, 4]),
            vec![0, -1, -1, 4, 4, 4, 8]
        );
    }

    #[test]
    fn reference_edge_cases() {
        assert_eq!(reference(&[]), Vec::<i32>::new());
        assert_eq!(reference(&[5]), vec![0]); // x_0 never counts
        assert_eq!(reference(&[-5, -6, 7]), vec![0, 0, 0]);
        // Wrapping: i32::MIN is not positive, so the parity stays odd and MIN + MIN wraps to 0.
        assert_eq!(reference(&[1, i32::MIN, i32::MIN]), vec![0, i32::MIN, 0]);
    }

    #[test]
    fn reference_matches_definition() {
        for seed in 0..20 {
            let x = generate_input(seed, (seed as usize * 7) % 60);
            assert_eq!(reference(&x), by_definition(&x), "seed {seed}");
        }
    }

    #[test]
    fn generate_input_is_independent_of_thread_count() {
        let n = 3 * CHUNK + 12_345;
        let one = generate_input_with_threads(42, n, false, 1);
        for threads in [2, 3, 4, 7] {
            assert!(
                one == generate_input_with_threads(42, n, false, threads),
                "{threads} threads"
            );
        }
        assert!(one == generate_input(42, n));
        // A shorter input is a prefix of a longer one with the same seed.
        assert_eq!(generate_input(42, 1001)[..], one[..1001]);
        assert_ne!(generate_input(43, 1000), one[..1000]);
    }

    #[test]
    fn value_at_matches_the_generated_inputs() {
        let n = 2 * CHUNK + 3; // an odd tail in the last chunk
        for full_range in [false, true] {
            let x = generate_input_with_threads(77, n, full_range, 2);
            let indices = (0..64).chain(CHUNK - 3..CHUNK + 3).chain(n - 5..n).chain((0..n).step_by(9973));
            for i in indices {
                assert_eq!(value_at(77, i, full_range), x[i], "index {i}, full range {full_range}");
            }
        }
        assert!(generate_full_range_input(77, n) == generate_input_with_threads(77, n, true, 2));
    }

    #[test]
    fn full_range_inputs_wrap_the_running_sum() {
        let x = generate_full_range_input(5, 100_000);
        let (negative, big) = (x.iter().filter(|&&v| v < 0).count(), x.iter().filter(|&&v| v.unsigned_abs() > 1 << 30).count());
        assert!((45_000..55_000).contains(&negative), "{negative} negative values");
        assert!(big > 40_000, "{big} values beyond 2^30");
        // The exact sums leave the i32 range: arithmetic that does not wrap gets them wrong.
        let wide: Vec<i64> = x.iter().scan(0i64, |acc, &v| { *acc += i64::from(v); Some(*acc) }).collect();
        assert!(wide.iter().any(|&s| s > i64::from(i32::MAX) || s < i64::from(i32::MIN)));
    }

    #[test]
    fn generate_input_range_and_balance() {
        let x = generate_input(7, 2_000_003);
        assert_eq!(x.len(), 2_000_003);
        let mut counts = [0usize; 20];
        for &v in &x {
            assert!((-10..10).contains(&v), "{v} out of range");
            counts[(v + 10) as usize] += 1;
        }
        let expected = x.len() as f64 / 20.0;
        for (i, &c) in counts.iter().enumerate() {
            let rel = (c as f64 - expected).abs() / expected;
            assert!(
                rel < 0.02,
                "value {} appears {c} times, expected ~{expected}",
                i as i32 - 10
            );
        }
        assert!(generate_input(1, 0).is_empty());
        assert_eq!(generate_input(1, 1).len(), 1);
    }

    #[test]
    fn trial_seeds_differ() {
        let seeds: std::collections::HashSet<u64> = (0..100)
            .flat_map(|s| (0..10).map(move |t| trial_seed(s, t)))
            .collect();
        assert_eq!(seeds.len(), 1000);
    }

    #[test]
    fn digest_is_independent_of_thread_count() {
        let x = generate_input(9, 2 * CHUNK + 77);
        let d = digest_with_threads(&x, 1);
        for threads in [2, 3, 5] {
            assert_eq!(d, digest_with_threads(&x, threads), "{threads} threads");
        }
        assert_eq!(d, digest(&x));
    }

    #[test]
    fn digest_detects_changes() {
        let x = generate_input(11, CHUNK + 1003);
        let d = digest(&x);
        // One changed element, anywhere (lanes, tail, second chunk).
        for i in [
            0,
            1,
            5,
            7,
            8,
            1000,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1000,
            CHUNK + 1002,
        ] {
            let mut y = x.clone();
            y[i] = y[i].wrapping_add(1);
            assert_ne!(digest(&y), d, "change at {i}");
        }
        // Order: swapping two different elements.
        for (i, j) in [(0, 1), (0, 2), (3, 4), (1000, 1001), (CHUNK - 1, CHUNK)] {
            let mut y = x.clone();
            if y[i] == y[j] {
                y[j] = y[j].wrapping_add(1);
                y[i] = y[j].wrapping_sub(2);
            }
            let before = digest(&y);
            y.swap(i, j);
            assert_ne!(digest(&y), before, "swap {i} {j}");
        }
        // Swapping whole chunks, length, and the empty input.
        let mut y = generate_input(11, 2 * CHUNK);
        let d2 = digest(&y);
        let (a, b) = y.split_at_mut(CHUNK);
        a.swap_with_slice(b);
        assert_ne!(digest(&y), d2);
        assert_ne!(digest(&x[..x.len() - 1]), d);
        assert_ne!(digest(&[]), digest(&[0]));
        assert_ne!(digest(&[0]), digest(&[0, 0]));
        assert_eq!(digest(&x), d);
    }

    #[test]
    fn reference_digest_matches_the_materialized_reference() {
        for n in [0, 1, 7, CHUNK - 1, CHUNK, 2 * CHUNK + 5] {
            let x = generate_input(5, n);
            assert_eq!(reference_digest(&x), digest(&reference(&x)), "n = {n}");
        }
    }

    #[test]
    fn first_error_finds_the_first_wrong_value() {
        let x = generate_input(11, 10_000);
        let mut y = reference(&x);
        assert_eq!(first_error(&x, &y), None);
        for i in [0, 1, 4_999, 9_999] {
            let right = y[i];
            y[i] = right.wrapping_add(1);
            assert_eq!(first_error(&x, &y), Some((i, right)));
            y[i] = right;
        }
        assert_eq!(first_error(&[], &[]), None);
    }
}
