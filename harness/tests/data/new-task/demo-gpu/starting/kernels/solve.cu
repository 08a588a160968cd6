// The gpu variant's kernel: sorts the `n` integers of `input` into `output`.
//
// The scorer compiles this file with NVRTC and launches
//     solve<<<(n + 255) / 256, 256>>>(input, output, n)
// once, with `input` and `output` in device memory.
//
// TODO: the task's real starting kernel (and its scorer, in the task's src/lib.rs). This one
// copies its input unchanged, as the cpu starting solution does, and so scores 0.
extern "C" __global__ void solve(const long long* input, long long* output, unsigned long long n) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        output[i] = input[i];
    }
}
