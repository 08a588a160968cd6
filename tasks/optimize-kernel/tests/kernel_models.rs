//! CPU models of the gpu variant's kernels, transliterated from `starting/kernels/prefix_sum.cu`
//! and `reference/kernels/prefix_sum.cu` (and the launches in their `src/gpu.rs`): the same
//! blocks, warps, lanes, rounds, shuffles and levels, run one thread after another. They check
//! the kernels' index arithmetic and the order in which they combine values against `spec.rs`,
//! on sizes around every block and tile boundary, on machines without a GPU. (Whether the CUDA
//! compiles is tests/gpu.rs's business; whether it runs as modelled, gpu-check's.)

use optimize_kernel::spec;

/// Sizes around the starting kernels' blocks (1024) and the reference's lanes (4 values),
/// warps' rounds (128), warp tiles (512) and tiles (4096).
const SIZES: [usize; 22] =
    [0, 1, 2, 3, 4, 5, 127, 128, 129, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 4097, 3 * 4096 + 17, 100_003, 1_048_577, 2_100_000];

fn check(model: fn(&[i32]) -> Vec<i32>, name: &str) {
    for (k, &n) in SIZES.iter().enumerate() {
        for full_range in [false, true] {
            let seed = 100 + k as u64;
            let x = if full_range { spec::generate_full_range_input(seed, n) } else { spec::generate_input(seed, n) };
            let y = model(&x);
            assert_eq!(y.len(), n, "{name}, n = {n}");
            if let Some((i, expected)) = spec::first_error(&x, &y) {
                panic!("{name}, n = {n}, full range {full_range}: index {i}: expected {expected}, got {}", y[i]);
            }
        }
    }
}

mod reference {
    //! reduce-then-scan: tile_summaries, tile_states, scan_tiles.

    const WARPS: usize = 8;
    const ROUNDS: usize = 4;
    const WARP_TILE: usize = ROUNDS * 32 * 4;
    pub const TILE: usize = WARPS * WARP_TILE;

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct Summary {
        odd: u32,
        sum_even: u32,
        total: u32,
    }

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct State {
        odd: u32,
        acc: u32,
    }

    const IDENTITY: Summary = Summary { odd: 0, sum_even: 0, total: 0 };

    fn element(v: i32) -> Summary {
        Summary { odd: u32::from(v > 0), sum_even: 0, total: v as u32 }
    }

    fn combine(a: Summary, b: Summary) -> Summary {
        Summary {
            odd: a.odd ^ b.odd,
            sum_even: a.sum_even.wrapping_add(if a.odd != 0 { b.total.wrapping_sub(b.sum_even) } else { b.sum_even }),
            total: a.total.wrapping_add(b.total),
        }
    }

    fn apply(s: State, x: Summary) -> State {
        State { acc: s.acc.wrapping_add(if s.odd != 0 { x.total.wrapping_sub(x.sum_even) } else { x.sum_even }), odd: s.odd ^ x.odd }
    }

    fn step(s: &mut State, v: i32) -> i32 {
        if s.odd != 0 {
            s.acc = s.acc.wrapping_add(v as u32);
        }
        if v > 0 {
            s.odd ^= 1;
        }
        s.acc as i32
    }

    /// `__shfl_up_sync(FULL_MASK, s, d)` on every lane: lane l gets lane l - d's value, and
    /// lanes below d their own.
    fn shfl_up(lanes: &[Summary; 32], d: usize) -> [Summary; 32] {
        std::array::from_fn(|l| if l >= d { lanes[l - d] } else { lanes[l] })
    }

    fn warp_scan(mut lanes: [Summary; 32]) -> [Summary; 32] {
        let mut d = 1;
        while d < 32 {
            let before = shfl_up(&lanes, d);
            for l in d..32 {
                lanes[l] = combine(before[l], lanes[l]);
            }
            d <<= 1;
        }
        lanes
    }

    type Values = [[[i32; 4]; 32]; ROUNDS];

    fn load(x: &[i32], warp_base: usize) -> Values {
        std::array::from_fn(|r| std::array::from_fn(|lane| std::array::from_fn(|k| *x.get(warp_base + r * 128 + 4 * lane + k).unwrap_or(&0))))
    }

    fn summary4(v: [i32; 4]) -> Summary {
        combine(combine(element(v[0]), element(v[1])), combine(element(v[2]), element(v[3])))
    }

    fn warp_summary(v: &Values) -> (Summary, [[Summary; 32]; ROUNDS]) {
        let mut total = IDENTITY;
        let incl: [[Summary; 32]; ROUNDS] = std::array::from_fn(|r| warp_scan(std::array::from_fn(|l| summary4(v[r][l]))));
        for round in &incl {
            total = combine(total, round[31]);
        }
        (total, incl)
    }

    pub fn tile_summaries(x: &[i32], tiles: usize) -> Vec<Summary> {
        (0..tiles)
            .map(|block| {
                let warp_totals: Vec<Summary> = (0..WARPS).map(|warp| warp_summary(&load(x, block * TILE + warp * WARP_TILE)).0).collect();
                warp_totals.iter().fold(IDENTITY, |t, &w| combine(t, w))
            })
            .collect()
    }

    /// One block of 1024 threads (32 warps of 32 lanes).
    pub fn tile_states(tiles: &[Summary]) -> Vec<State> {
        let num_tiles = tiles.len();
        let per_thread = num_tiles.div_ceil(1024);
        let run = |thread: usize| (thread * per_thread).min(num_tiles)..(thread * per_thread + per_thread).min(num_tiles);
        let mine: Vec<Summary> = (0..1024).map(|t| tiles[run(t)].iter().fold(IDENTITY, |m, &s| combine(m, s))).collect();
        let incl: Vec<[Summary; 32]> = (0..32).map(|w| warp_scan(std::array::from_fn(|l| mine[w * 32 + l]))).collect();
        let warp_totals = warp_scan(std::array::from_fn(|w| incl[w][31]));
        let mut states = vec![State::default(); num_tiles];
        for warp in 0..32 {
            let before_lane = shfl_up(&incl[warp], 1);
            for lane in 0..32 {
                let before_lane = if lane == 0 { IDENTITY } else { before_lane[lane] };
                let before = if warp > 0 { combine(warp_totals[warp - 1], before_lane) } else { before_lane };
                let mut s = apply(State::default(), before);
                for t in run(warp * 32 + lane) {
                    states[t] = s;
                    s = apply(s, tiles[t]);
                }
            }
        }
        states
    }

    pub fn scan_tiles(x: &[i32], states: &[State]) -> Vec<i32> {
        let n = x.len();
        let mut y = vec![0x5EED; n];
        let grid = states.len();
        for block in 0..grid {
            let tile = grid - 1 - block;
            let warps: Vec<(Values, Summary, [[Summary; 32]; ROUNDS])> = (0..WARPS)
                .map(|warp| {
                    let v = load(x, tile * TILE + warp * WARP_TILE);
                    let (total, incl) = warp_summary(&v);
                    (v, total, incl)
                })
                .collect();
            for (warp, (v, _, incl)) in warps.iter().enumerate() {
                let mut s = warps[..warp].iter().fold(states[tile], |s, w| apply(s, w.1));
                let warp_base = tile * TILE + warp * WARP_TILE;
                for r in 0..ROUNDS {
                    let before = shfl_up(&incl[r], 1);
                    for lane in 0..32 {
                        let mut t = apply(s, if lane == 0 { IDENTITY } else { before[lane] });
                        let out = v[r][lane].map(|value| step(&mut t, value));
                        let i = warp_base + r * 128 + 4 * lane;
                        for (k, value) in out.into_iter().enumerate() {
                            if i + k < n {
                                y[i + k] = value;
                            }
                        }
                    }
                    s = apply(s, incl[r][31]);
                }
            }
        }
        y
    }
}

/// `reference/src/gpu.rs`'s `run`: nothing for n = 0, else the three kernels.
fn reference_model(x: &[i32]) -> Vec<i32> {
    if x.is_empty() {
        return Vec::new();
    }
    let tiles = x.len().div_ceil(reference::TILE);
    let summaries = reference::tile_summaries(x, tiles);
    let states = reference::tile_states(&summaries);
    reference::scan_tiles(x, &states)
}

#[test]
fn the_reference_kernels_compute_the_prefix_sum() {
    check(reference_model, "reference kernels");
}

#[test]
fn the_reference_tile_scan_handles_many_tiles_per_thread() {
    // More than 1024 tiles, so that each thread of `tile_states` walks a run of several.
    let x = spec::generate_input(9, 1030 * reference::TILE + 5);
    assert!(spec::first_error(&x, &reference_model(&x)).is_none());
}

mod starting {
    //! One kernel per tensor operation, and a multi-level Hillis-Steele block scan.

    pub const BLOCK: usize = 1024;

    pub fn positive_mask(x: &[i32]) -> Vec<i32> {
        x.iter().map(|&v| i32::from(v > 0)).collect()
    }

    pub fn select_counted(x: &[i32], positive_count: &[i32]) -> Vec<i32> {
        (0..x.len()).map(|j| if j > 0 && positive_count[j - 1] & 1 != 0 { x[j] } else { 0 }).collect()
    }

    /// Block b scans data[b * BLOCK..] in place and writes its total to block_sums[b].
    pub fn block_scan(data: &mut [i32], block_sums: &mut [i32], n: usize) {
        for block in 0..n.div_ceil(BLOCK) {
            let mut s: Vec<u32> = (0..BLOCK).map(|t| data.get(block * BLOCK + t).filter(|_| block * BLOCK + t < n).map_or(0, |&v| v as u32)).collect();
            let mut offset = 1;
            while offset < BLOCK {
                let before: Vec<u32> = (0..BLOCK).map(|t| if t >= offset { s[t - offset] } else { 0 }).collect();
                for t in 0..BLOCK {
                    s[t] = s[t].wrapping_add(before[t]);
                }
                offset <<= 1;
            }
            for t in 0..BLOCK {
                if block * BLOCK + t < n {
                    data[block * BLOCK + t] = s[t] as i32;
                }
            }
            block_sums[block] = s[BLOCK - 1] as i32;
        }
    }

    pub fn add_block_offsets(data: &mut [i32], scanned_block_sums: &[i32], n: usize) {
        for (i, value) in data.iter_mut().enumerate().take(n) {
            let block = i / BLOCK;
            if block > 0 {
                *value = (*value as u32).wrapping_add(scanned_block_sums[block - 1] as u32) as i32;
            }
        }
    }

    /// `scan_in_place` of `starting/src/gpu.rs`, level by level.
    pub fn scan_in_place(data: &mut [i32]) {
        let mut lens = vec![data.len()];
        while let Some(&len) = lens.last().filter(|&&len| len > BLOCK) {
            lens.push(len.div_ceil(BLOCK));
        }
        let mut block_sums: Vec<Vec<i32>> = lens.iter().map(|len| vec![0; len.div_ceil(BLOCK).max(1)]).collect();
        for (k, &len) in lens.iter().enumerate() {
            let (below, here) = block_sums.split_at_mut(k);
            match below.last_mut() {
                None => block_scan(data, &mut here[0], len),
                Some(level) => block_scan(level, &mut here[0], len),
            }
        }
        for (k, &len) in lens.iter().enumerate().rev().skip(1) {
            let (below, here) = block_sums.split_at_mut(k);
            match below.last_mut() {
                None => add_block_offsets(data, &here[0], len),
                Some(level) => add_block_offsets(level, &here[0], len),
            }
        }
    }
}

/// `starting/src/gpu.rs`'s `run`.
fn starting_model(x: &[i32]) -> Vec<i32> {
    if x.is_empty() {
        return Vec::new();
    }
    let mut counts = starting::positive_mask(x);
    starting::scan_in_place(&mut counts);
    let mut output = starting::select_counted(x, &counts);
    starting::scan_in_place(&mut output);
    output
}

#[test]
fn the_starting_kernels_compute_the_prefix_sum() {
    check(starting_model, "starting kernels");
}

#[test]
fn the_starting_scan_recurses_over_three_levels() {
    // More than 1024 * 1024 values: the block totals need a level of their own.
    let x = spec::generate_input(3, starting::BLOCK * starting::BLOCK + 1_500);
    assert!(spec::first_error(&x, &starting_model(&x)).is_none());
}
