#!/usr/bin/env bash
# optimize-kernel's gpu-check on a GPU machine that has the CUDA driver and toolkit but no Rust
# toolchain: everything is built here, ahead, and carried there in `.device/`.
#
#   scripts/device-gpu-check.sh build   # here (cargo, no GPU): fills .device/ (a few MiB)
#   scripts/device-gpu-check.sh run     # there (no cargo): checks, timings, one table
#
# build: gpu-check (release, --features cuda); the GPU drivers of the starting and reference
# solutions, built by `gpu-check --build-drivers` through the scorer's own build code (the same
# scratch crate, features and profile a scoring uses; named by a hash of the driver's sources
# and the solution's files, so a driver from other sources is refused there); the criterion
# bench executable. All stripped. Nothing else is read at run time but the repository's
# tasks/optimize-kernel (carried with the working tree).
#
# run: NVRTC from the toolkit on LD_LIBRARY_PATH; nvidia-smi's card line; gpu-check with the
# prebuilt drivers (every size checked value by value, then the starting and reference
# solutions and the copy floor timed at N = 10^8, the scores' own code path: out-of-process
# digest verification, the floor check); the GPU group of the criterion bench. Writes
# summary.txt, the results file (<date>-<card>.md) and the logs to $OUT (default
# target/device-out). Exits non-zero on any failure. At most 170 s + 45 s (time limits); about
# 1.5 minutes expected on an H100.
#
# GPU_CHECK_ARGS overrides the timing parameters (default: --trials 10 --warmup 2).
set -euo pipefail
cd "$(dirname "$0")/.."
dev=.device

build() {
    # The drivers are named after the solutions' files: with an uncommitted change there, the
    # carried tree and the drivers would still agree, but say so.
    git status --porcelain -- tasks/optimize-kernel | sed 's/^/device-gpu-check: note, not committed: /'
    cargo build --release --quiet -p optimize-kernel --features cuda --bin gpu-check
    local bench
    bench=$(cargo bench --quiet -p optimize-kernel --features cuda --bench prefix_sum --no-run --message-format=json |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "prefix_sum" and m.get("executable"):
        print(m["executable"])')
    [[ -x "$bench" ]] || { echo "device-gpu-check: no bench executable found" >&2; exit 1; }
    rm -rf "$dev"
    mkdir -p "$dev/drivers"
    target/release/gpu-check --build-drivers "$dev/drivers"
    cp target/release/gpu-check "$dev/gpu-check"
    cp "$bench" "$dev/prefix_sum-bench"
    strip "$dev/gpu-check" "$dev/prefix_sum-bench" "$dev"/drivers/*
    git rev-parse HEAD >"$dev/commit"
    ls -l "$dev" "$dev/drivers"
    local kib
    kib=$(du -sk "$dev" | cut -f1)
    echo "device-gpu-check: $dev is $((kib / 1024)) MiB ($kib KiB); carry [\"$dev\"]"
    ((kib < 60 * 1024)) || { echo "device-gpu-check: $dev is too large to carry" >&2; exit 1; }
}

# The directory holding libnvrtc.so.13, or nothing.
find_nvrtc() {
    local dir
    for dir in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 \
        /usr/local/cuda*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
        [[ -e "$dir/libnvrtc.so.13" ]] && { echo "$dir"; return; }
    done
    # The PyPI wheel (CUDA 13: nvidia/cu13/lib; older layouts: nvidia/cuda_nvrtc/lib).
    python3 - 2>/dev/null <<'EOF' || true
import glob, os
import nvidia
for base in nvidia.__path__:
    for lib in glob.glob(os.path.join(base, "*", "lib", "libnvrtc.so.13")):
        print(os.path.dirname(lib)); raise SystemExit
EOF
}

run() {
    local out=${OUT:-target/device-out}
    mkdir -p "$out"
    out=$(realpath "$out")
    [[ -x "$dev/gpu-check" ]] || { echo "device-gpu-check: no $dev/gpu-check: run '$0 build' first and carry $dev" >&2; exit 1; }
    local started=$SECONDS status=0 nvrtc
    nvrtc=$(find_nvrtc)
    [[ -n "$nvrtc" ]] && export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    {
        echo "built from commit $(cat "$dev/commit" 2>/dev/null); $(ldd --version 2>/dev/null | head -1)"
        echo "nvrtc: ${nvrtc:-not found (gpu-check will say so)}"
        if command -v nvidia-smi >/dev/null; then
            echo "card: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | head -1)"
        else
            echo "card: no nvidia-smi"
        fi
    } | tee "$out/summary.txt"

    # shellcheck disable=SC2086  # GPU_CHECK_ARGS is a list of arguments
    timeout 170 "$dev/gpu-check" --drivers "$dev/drivers" --root "$PWD" --results-dir "$out" \
        ${GPU_CHECK_ARGS:---trials 10 --warmup 2} >"$out/gpu-check.log" 2>&1 || status=$?
    cat "$out/gpu-check.log"
    echo "gpu-check: exit $status" | tee -a "$out/summary.txt"
    if ((status == 0)); then
        # The table and the correctness lines, from the results file gpu-check wrote.
        cat "$out"/20*.md >>"$out/summary.txt"
        # Criterion's GPU group, briefly (the CPU group is filtered out).
        local bench=0
        CRITERION_HOME="$out/criterion" timeout 45 "$dev/prefix_sum-bench" --bench '^gpu' \
            --warm-up-time 1 --measurement-time 2 --noplot >"$out/bench.log" 2>&1 || bench=$?
        grep -q '^skipping the gpu benchmarks' "$out/bench.log" && bench=1
        local lines
        lines=$(grep -E '^gpu|time:|skipping' "$out/bench.log" || tail -5 "$out/bench.log")
        echo "$lines"
        { echo; echo "criterion (exit $bench):"; echo "$lines"; } >>"$out/summary.txt"
        # The results file gets criterion's numbers too: one file to commit.
        local results=("$out"/20*.md)
        # shellcheck disable=SC2016  # the backquotes are Markdown
        printf '\nCriterion, GPU group (`prefix_sum-bench --bench ^gpu --warm-up-time 1 --measurement-time 2`; the\nsolutions and a copy, on the same input, each call followed by a stream synchronize; exit %s):\n\n```\n%s\n```\n' \
            "$bench" "$lines" >>"${results[0]}"
        ((bench == 0)) || status=$bench
    fi
    echo "device-gpu-check: $( ((status == 0)) && echo ok || echo FAILED) in $((SECONDS - started)) s; results in $out" | tee -a "$out/summary.txt"
    echo "===== summary.txt"
    cat "$out/summary.txt"
    return "$status"
}

case "${1:-build}" in
    build) build ;;
    run) run ;;
    *) echo "usage: $0 [build|run]" >&2; exit 2 ;;
esac
