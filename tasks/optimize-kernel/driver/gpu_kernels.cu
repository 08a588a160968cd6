// The GPU driver's own kernels: the scorer's, out of the agent's reach.

typedef unsigned long long u64;

// spec.rs's mix64 (the splitmix64 finalizer).
__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// out[i] = spec::value_at(seed, i, full_range) for i < n: the value of element i of the
// chunked wyrand stream of spec.rs, computed on its own (the stream is a counter).
extern "C" __global__ void generate(int* out, u64 seed, long long n, int full_range) {
    const u64 CHUNK = 1ull << 20;
    const u64 INCREMENT = 0xA0761D6478BD642Full;
    const u64 XOR = 0xE7037ED1A0B428DBull;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        u64 chunk = (u64)i / CHUNK;
        u64 j = (u64)i % CHUNK;
        u64 state = mix64(seed ^ mix64(chunk + 0x6A09E667F3BCC909ull)) + (j / 2 + 1) * INCREMENT;
        u64 b = state ^ XOR;
        u64 r = __umul64hi(state, b) ^ (state * b);
        unsigned int draw = (j % 2 == 0) ? (unsigned int)r : (unsigned int)(r >> 32);
        out[i] = full_range ? (int)draw : (int)(((u64)draw * 20ull) >> 32) - 10;
    }
}

// out[i] = value for i < n.
extern "C" __global__ void fill(int* out, int value, long long n) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        out[i] = value;
    }
}
