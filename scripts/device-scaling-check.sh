#!/usr/bin/env bash
# The scaling check on a GPU (crates/pretrained/examples/scaling.rs), for a lent device machine
# that has the CUDA driver and libraries but no Rust toolchain: built here, run there.
#
#   scripts/device-scaling-check.sh build   # here: .device/scaling/scaling (about 50 MiB, stripped)
#   scripts/device-scaling-check.sh run     # there, carrying .device/scaling: rows to $OUT/rows.jsonl
#
# The grid: GPTs of depth 4, context 256, 32 windows per step, widths 64-512, at 600 and 2,000
# steps (4.9M and 16.4M predicted tokens), two processes at a time. SCALING_JOBS overrides it
# ("width steps" pairs, comma-separated).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=.device/scaling

build() {
    # shellcheck disable=SC1090  # the env file install-nvcc.sh writes
    . "$(bash scripts/install-nvcc.sh)"
    CARGO_TARGET_DIR=target/cuda cargo build --release --quiet -p rebench-pretrained --features cuda --example scaling
    mkdir -p "$dev"
    cp target/cuda/release/examples/scaling "$dev/scaling"
    strip "$dev/scaling"
    git rev-parse HEAD >"$dev/commit"
    du -sh "$dev"
}

run() {
    local out=${OUT:-target/device-out} start=$SECONDS
    mkdir -p "$out"
    export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} RUST_BACKTRACE=0
    local log="$out/grid.log"
    { echo "built from $(cat "$dev/commit" 2>/dev/null)"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; } >>"$log"
    # The corpus, once, before the jobs read it.
    "$dev/scaling" --device cpu --widths 16 --steps 1 --context 16 --batch 1 --assets /tmp/scaling-corpus >>"$log" 2>&1
    job() {
        timeout 400 "$dev/scaling" --device cuda --threads 1 --widths "$1" --steps "$2" --assets /tmp/scaling-corpus \
            --log "$out/rows.jsonl" >"/tmp/scaling-$1-$2.log" 2>&1
        local rc=$?
        { echo "== width $1 steps $2: exit $rc at $((SECONDS - start)) s, GPU memory $(nvidia-smi --query-gpu=memory.used --format=csv,noheader)"
          grep -v '^[ {]' "/tmp/scaling-$1-$2.log" | head -3; } >>"$log"
    }
    local jobs running=0 spec
    IFS=, read -ra jobs <<<"${SCALING_JOBS:-512 2000,256 2000,128 2000,64 2000,512 600,256 600,128 600,64 600}"
    for spec in "${jobs[@]}"; do
        if ((running >= 2)); then wait -n || true; running=$((running - 1)); fi
        # shellcheck disable=SC2086  # "width steps"
        job $spec &
        running=$((running + 1))
    done
    wait
    cat "$log" "$out/rows.jsonl"
}

case "${1:-build}" in
    build) build ;;
    run) run ;;
    *) echo "usage: $0 [build|run]" >&2; exit 2 ;;
esac
