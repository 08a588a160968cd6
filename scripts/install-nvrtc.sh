#!/usr/bin/env bash
# NVRTC, CUDA's run-time compiler, from its PyPI wheel, for machines without the CUDA toolkit.
# It compiles CUDA C++ to PTX with no GPU and no driver, which lets
# `cargo test -p optimize-kernel --features cuda` check that every kernel compiles
# (tests/gpu.rs; REBENCH_REQUIRE_NVRTC=1 makes that check mandatory).
#
# Usage: scripts/install-nvrtc.sh [DIR]   (default target/nvrtc)
# Prints the directory to put on LD_LIBRARY_PATH. Needs python3 with pip, and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-target/nvrtc}"
# CUDA 13.0, the version cudarc is pinned to (cuda-13000): its PTX loads on any CUDA 13 driver.
version=13.0.88
lib="$dest/nvidia/cu13/lib"
if [[ ! -e "$lib/libnvrtc.so.13" ]]; then
    mkdir -p "$dest"
    python3 -m pip download --quiet --no-deps --dest "$dest/wheel" "nvidia-cuda-nvrtc==$version" >&2
    python3 -m zipfile -e "$dest"/wheel/nvidia_cuda_nvrtc-"$version"-*.whl "$dest"
    rm -rf "$dest/wheel"
fi
realpath "$lib"
