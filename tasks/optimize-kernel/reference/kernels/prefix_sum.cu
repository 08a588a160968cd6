// The reference solution's kernels: reduce, then scan, in 1.5 passes over memory
// (src/gpu.rs launches them).
//
// The state of the scan between two values is (odd, acc): whether the number of positive
// values so far is odd, and the running sum. What a segment of the input does to that state
// is summarised by (odd: its positives are odd in number, sum_even: the sum of the values it
// counts when the incoming parity is even, total: the sum of all its values); with an odd
// incoming parity it counts exactly the other values, which sum to total - sum_even.
// Summaries compose associatively (not commutatively), so segments can be reduced in parallel.
//
//   1. tile_summaries: one block per tile of TILE values reads the tile and writes its summary.
//   2. tile_states:    one block scans the tile summaries into the state before each tile.
//   3. scan_tiles:     one block per tile reads the tile again and writes its outputs.
//
// Within a tile, warp w owns the WARP_TILE values from w * WARP_TILE; in round r its lane l
// loads the 4 values from r * 128 + 4 * l with one 16-byte load (coalesced), so the warp's
// values are in order round by round, lane by lane. Lanes combine their summaries with
// shuffles, warps through shared memory.
//
// Values past n are read as 0, which changes nothing: 0 is not positive and adds nothing.
// Sums are unsigned: they wrap around like int32 arithmetic, without undefined behaviour.

#define WARPS 8
#define THREADS (WARPS * 32)
#define ROUNDS 4
#define WARP_TILE (ROUNDS * 32 * 4)
#define TILE (WARPS * WARP_TILE)
#define FULL_MASK 0xffffffffu

typedef unsigned int u32;

struct Summary {
    u32 odd;
    u32 sum_even;
    u32 total;
};

struct State {
    u32 odd;
    u32 acc;
};

__device__ __forceinline__ Summary identity() {
    Summary s = {0u, 0u, 0u};
    return s;
}

// One value: with an even incoming parity it is not counted.
__device__ __forceinline__ Summary element(int v) {
    Summary s = {v > 0 ? 1u : 0u, 0u, (u32)v};
    return s;
}

// `a`, then `b`.
__device__ __forceinline__ Summary combine(Summary a, Summary b) {
    Summary r;
    r.odd = a.odd ^ b.odd;
    r.sum_even = a.sum_even + (a.odd ? b.total - b.sum_even : b.sum_even);
    r.total = a.total + b.total;
    return r;
}

__device__ __forceinline__ State apply(State s, Summary x) {
    State r;
    r.acc = s.acc + (s.odd ? x.total - x.sum_even : x.sum_even);
    r.odd = s.odd ^ x.odd;
    return r;
}

// The state after value v, which is also the output there.
__device__ __forceinline__ int step(State& s, int v) {
    if (s.odd) {
        s.acc += (u32)v;
    }
    if (v > 0) {
        s.odd ^= 1u;
    }
    return (int)s.acc;
}

__device__ __forceinline__ Summary shfl_up(Summary s, int delta) {
    Summary r;
    r.odd = __shfl_up_sync(FULL_MASK, s.odd, delta);
    r.sum_even = __shfl_up_sync(FULL_MASK, s.sum_even, delta);
    r.total = __shfl_up_sync(FULL_MASK, s.total, delta);
    return r;
}

__device__ __forceinline__ Summary shfl(Summary s, int lane) {
    Summary r;
    r.odd = __shfl_sync(FULL_MASK, s.odd, lane);
    r.sum_even = __shfl_sync(FULL_MASK, s.sum_even, lane);
    r.total = __shfl_sync(FULL_MASK, s.total, lane);
    return r;
}

// Inclusive scan over the lanes of a warp, in lane order (all 32 lanes must call it).
__device__ __forceinline__ Summary warp_scan(Summary s, int lane) {
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
        Summary before = shfl_up(s, d);
        if (lane >= d) {
            s = combine(before, s);
        }
    }
    return s;
}

// The lane's values of round r: x[base + r * 128 + 4 * lane + 0..3], 0 past n.
__device__ __forceinline__ void load(const int* x, long long n, long long warp_base, int lane, int4 v[ROUNDS]) {
#pragma unroll
    for (int r = 0; r < ROUNDS; ++r) {
        long long i = warp_base + r * 128 + 4 * lane;
        if (i + 3 < n) {
            v[r] = reinterpret_cast<const int4*>(x)[i / 4];
        } else {
            v[r].x = i < n ? x[i] : 0;
            v[r].y = i + 1 < n ? x[i + 1] : 0;
            v[r].z = i + 2 < n ? x[i + 2] : 0;
            v[r].w = i + 3 < n ? x[i + 3] : 0;
        }
    }
}

__device__ __forceinline__ void store(int* y, long long n, long long i, int4 out) {
    if (i + 3 < n) {
        reinterpret_cast<int4*>(y)[i / 4] = out;
    } else {
        if (i < n) y[i] = out.x;
        if (i + 1 < n) y[i + 1] = out.y;
        if (i + 2 < n) y[i + 2] = out.z;
    }
}

__device__ __forceinline__ Summary summary4(int4 v) {
    return combine(combine(element(v.x), element(v.y)), combine(element(v.z), element(v.w)));
}

// The summary of the warp's WARP_TILE values; incl[r] gets the inclusive scan, over lanes, of
// the lanes' summaries in round r.
__device__ __forceinline__ Summary warp_summary(const int4 v[ROUNDS], int lane, Summary incl[ROUNDS]) {
    Summary total = identity();
#pragma unroll
    for (int r = 0; r < ROUNDS; ++r) {
        incl[r] = warp_scan(summary4(v[r]), lane);
        total = combine(total, shfl(incl[r], 31));
    }
    return total;
}

// Pass 1: tiles[t] = the summary of tile t.
extern "C" __global__ void __launch_bounds__(THREADS) tile_summaries(const int* x, long long n, Summary* tiles) {
    __shared__ Summary warp_totals[WARPS];
    int warp = threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    long long warp_base = (long long)blockIdx.x * TILE + warp * WARP_TILE;
    int4 v[ROUNDS];
    Summary incl[ROUNDS];
    load(x, n, warp_base, lane, v);
    Summary total = warp_summary(v, lane, incl);
    if (lane == 0) {
        warp_totals[warp] = total;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        Summary t = identity();
        for (int w = 0; w < WARPS; ++w) {
            t = combine(t, warp_totals[w]);
        }
        tiles[blockIdx.x] = t;
    }
}

// Pass 2, one block of 1024 threads: states[t] = the state before tile t. Thread i folds a
// contiguous run of tiles; the block scans the runs' summaries; each thread walks its run.
extern "C" __global__ void __launch_bounds__(1024) tile_states(const Summary* tiles, long long num_tiles, State* states) {
    __shared__ Summary warp_totals[32];
    int warp = threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    long long per_thread = (num_tiles + 1023) / 1024;
    long long begin = threadIdx.x * per_thread;
    long long end = begin + per_thread < num_tiles ? begin + per_thread : num_tiles;
    Summary mine = identity();
    for (long long t = begin; t < end; ++t) {
        mine = combine(mine, tiles[t]);
    }
    Summary incl = warp_scan(mine, lane);
    if (lane == 31) {
        warp_totals[warp] = incl;
    }
    __syncthreads();
    if (warp == 0) {
        warp_totals[lane] = warp_scan(warp_totals[lane], lane);
    }
    __syncthreads();
    Summary before_lane = shfl_up(incl, 1);
    if (lane == 0) {
        before_lane = identity();
    }
    Summary before = warp > 0 ? combine(warp_totals[warp - 1], before_lane) : before_lane;
    State s = {0u, 0u};
    s = apply(s, before);
    for (long long t = begin; t < end; ++t) {
        states[t] = s;
        s = apply(s, tiles[t]);
    }
}

// Pass 3: the outputs of each tile, from the state before it.
extern "C" __global__ void __launch_bounds__(THREADS) scan_tiles(const int* x, long long n, const State* states, int* y) {
    __shared__ Summary warp_totals[WARPS];
    // The first blocks to run take the last tiles: pass 1 read those last, so some may still
    // be in L2.
    long long tile = (long long)gridDim.x - 1 - blockIdx.x;
    int warp = threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    long long warp_base = tile * TILE + warp * WARP_TILE;
    int4 v[ROUNDS];
    Summary incl[ROUNDS];
    load(x, n, warp_base, lane, v);
    Summary total = warp_summary(v, lane, incl);
    if (lane == 0) {
        warp_totals[warp] = total;
    }
    __syncthreads();
    State s = states[tile];
    for (int w = 0; w < warp; ++w) {
        s = apply(s, warp_totals[w]);
    }
#pragma unroll
    for (int r = 0; r < ROUNDS; ++r) {
        Summary before = shfl_up(incl[r], 1);
        if (lane == 0) {
            before = identity();
        }
        State t = apply(s, before);
        int4 out;
        out.x = step(t, v[r].x);
        out.y = step(t, v[r].y);
        out.z = step(t, v[r].z);
        out.w = step(t, v[r].w);
        store(y, n, warp_base + r * 128 + 4 * lane, out);
        s = apply(s, shfl(incl[r], 31));
    }
}
