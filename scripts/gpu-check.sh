#!/usr/bin/env bash
# On a GPU machine with the CUDA toolkit (13.x; the NVIDIA driver and NVRTC are what is used):
# build the gpu variants, check them on random inputs of awkward sizes, time the starting and
# reference solutions against a device-to-device copy, print one table per task and write it
# to docs/gpu-results/<date>-<card>.md. A few minutes from a bare machine.
#
# Usage: scripts/gpu-check.sh [TASK...]     (default: every task with a gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    if [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "gpu-check: no Rust toolchain; installing one with rustup" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi
# NVRTC from the toolkit, wherever the usual places put it.
for dir in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    if [[ -e "$dir/libnvrtc.so.13" || -e "$dir/libnvrtc.so" ]]; then
        export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        break
    fi
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

time cargo xtask gpu-check "$@"
