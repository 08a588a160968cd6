// The starting solution's kernels: one per tensor operation of the PyTorch original
// (src/gpu.rs launches them).
//
//     is_positive = x > 0                                   positive_mask
//     positive_count = is_positive.cumsum(0)                block_scan + add_block_offsets
//     selected = where(odd(positive_count[:-1]), x[1:], 0)  select_counted
//     prefix_sum = selected.cumsum(0)                       block_scan + add_block_offsets
//
// Sums are computed on unsigned int, which wraps around like the int32 arithmetic the task
// asks for (signed overflow is undefined behaviour in C++).

#define BLOCK 1024

// mask[i] = 1 if x[i] > 0, else 0
extern "C" __global__ void positive_mask(const int* x, int* mask, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        mask[i] = x[i] > 0 ? 1 : 0;
    }
}

// selected[0] = 0; selected[j] = x[j] where the number of positives before j is odd, else 0.
extern "C" __global__ void select_counted(const int* x, const int* positive_count, int* selected, long long n) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j < n) {
        selected[j] = (j > 0 && (positive_count[j - 1] & 1)) ? x[j] : 0;
    }
}

// Scans each block of BLOCK values of `data` in place (inclusive, Hillis-Steele in shared
// memory) and writes the block's total to block_sums[blockIdx.x]. Launched with BLOCK threads.
extern "C" __global__ void block_scan(int* data, int* block_sums, long long n) {
    __shared__ unsigned int s[BLOCK];
    long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    s[threadIdx.x] = i < n ? (unsigned int)data[i] : 0u;
    __syncthreads();
    for (int offset = 1; offset < BLOCK; offset <<= 1) {
        unsigned int before = threadIdx.x >= offset ? s[threadIdx.x - offset] : 0u;
        __syncthreads();
        s[threadIdx.x] += before;
        __syncthreads();
    }
    if (i < n) {
        data[i] = (int)s[threadIdx.x];
    }
    if (threadIdx.x == BLOCK - 1) {
        block_sums[blockIdx.x] = (int)s[BLOCK - 1];
    }
}

// Adds the total of all earlier blocks (scanned_block_sums[b - 1]) to every value of block b.
extern "C" __global__ void add_block_offsets(int* data, const int* scanned_block_sums, long long n) {
    long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (blockIdx.x > 0 && i < n) {
        data[i] = (int)((unsigned int)data[i] + (unsigned int)scanned_block_sums[blockIdx.x - 1]);
    }
}
