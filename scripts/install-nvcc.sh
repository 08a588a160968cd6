#!/usr/bin/env bash
# The CUDA 13.0 compiler, headers and link-time libraries from their PyPI wheels, for machines
# without the CUDA toolkit or a GPU. With them `cargo build -p rebench-models --features cuda`
# compiles: candle-kernels runs nvcc at build time (its PTX and a static MoE library), and
# candle's cudarc links dynamically against libcuda, libcudart, libnvrtc, libcublas(Lt) and
# libcurand. The executables it makes run on a machine with a CUDA 13 driver and those libraries
# (a CUDA 13.0 toolkit, or python's nvidia-* cu13 wheels) on LD_LIBRARY_PATH.
#
# Usage: . "$(scripts/install-nvcc.sh [DIR])"    (default DIR target/cuda-toolkit)
# Prints the path of an env file that sets CUDA_HOME, PATH, CUDA_COMPUTE_CAP and
# CUDARC_CUDA_VERSION for cargo. Needs python3 with pip, gcc, and PyPI. About 1.2 GiB unpacked.
#
# CUDA_COMPUTE_CAP (default 90, the H100's and H200's) is the architecture candle-kernels compiles
# for: there is no nvidia-smi here to ask. Kernels for 90 run on compute capability 9.0 only.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-target/cuda-toolkit}"
# CUDA 13.0, the release whose libraries the GPU machine has (toolkit 13.0, driver 580): the
# versions of its libcudart, libcublas and libcurand, so that what is built here links against
# the same sonames it will load there.
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.1.0.3
    nvidia-curand==10.4.0.35
)
home="$dest/nvidia/cu13"
stamp="$dest/.installed-$(printf '%s\n' "${wheels[@]}" | sha256sum | cut -c1-16)"
if [[ ! -e "$stamp" ]]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    python3 -m pip download --quiet --no-deps --dest "$dest/wheel" "${wheels[@]}" >&2
    for wheel in "$dest"/wheel/*.whl; do
        python3 -m zipfile -e "$wheel" "$dest"
    done
    rm -rf "$dest/wheel"
    # zipfile drops the execute bits.
    chmod +x "$home"/bin/* "$home"/nvvm/bin/*
    # The wheels ship only the versioned sonames; the linker's -lNAME wants libNAME.so.
    for lib in "$home"/lib/lib{cudart,nvrtc,cublas,cublasLt,curand}.so.*; do
        ln -sf "$(basename "$lib")" "${lib%.so.*}.so"
    done
    # libcuda is the driver's, in no wheel: a stub with every driver entry point cudarc may
    # call, its soname libcuda.so.1 like the real one's, which the executable loads at run time
    # where there is a driver. Every stub function returns CUDA_ERROR_NO_DEVICE (100), so that
    # with lib/stubs on LD_LIBRARY_PATH the executables also run here and find no device.
    mkdir -p "$home/lib/stubs"
    cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10 2>/dev/null | head -1)
    if [[ -z "$cudarc" ]]; then
        cargo fetch --quiet
        cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10 | head -1)
    fi
    grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys/mod.rs" |
        sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/int \1(void) { return 100; }/' | sort -u >"$home/lib/stubs/cuda.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$home/lib/stubs/libcuda.so" "$home/lib/stubs/cuda.c"
    ln -sf libcuda.so "$home/lib/stubs/libcuda.so.1"
    touch "$stamp"
fi
home=$(realpath "$home")
cat >"$dest/env.sh" <<EOF
export CUDA_HOME="$home"
export PATH="$home/bin:\$PATH"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION=13000
export LIBRARY_PATH="$home/lib/stubs:$home/lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
EOF
realpath "$dest/env.sh"
