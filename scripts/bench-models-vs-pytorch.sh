#!/usr/bin/env bash
# The CPU training step of rebench-models' benchmark GPT (vocab 512, context 128, width 256,
# 4 layers, 4 heads, batch 16, f32) against the same model and batch in PyTorch, on this machine,
# as a ratio. Installs torch with pip into target/torch-venv the first time (PyPI's Linux wheel
# brings its CUDA libraries: about 5 GB). Never run in CI.
#
#   scripts/bench-models-vs-pytorch.sh            # THREADS=2 STEPS=10 ROUNDS=3 by default
#
# Rust and PyTorch runs alternate, ROUNDS times each, so that both see the same machine; the
# medians of their per-run medians are compared. Other load on the machine skews both: the load
# average is printed with each run.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
STEPS=${STEPS:-10}
ROUNDS=${ROUNDS:-3}
TORCH=${TORCH:-torch==2.15.0}
venv=target/torch-venv

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "== installing $TORCH into $venv (pip, from PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "$TORCH" numpy
fi
echo "== building the Rust benchmark"
cargo build --release --quiet -p rebench-models --example train_step_bench
bench=target/release/examples/train_step_bench

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$ROUNDS"); do
    echo "== round $round of $ROUNDS (load average $(cut -d' ' -f1 /proc/loadavg))"
    "$bench" --threads "$THREADS" --steps "$STEPS" --kernels fused --json | tee -a "$results"
    "$venv/bin/python" crates/models/bench/torch_step.py --threads "$THREADS" --steps "$STEPS" 2>/dev/null | tee -a "$results"
done
echo "== one run of the plain candle kernels, for reference"
"$bench" --threads "$THREADS" --steps "$((STEPS / 2 > 2 ? STEPS / 2 : 2))" --kernels plain --json | tee -a "$results"

python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in runs:
    by.setdefault(r["impl"], []).append(r)
print(f"\n{'implementation':<36} {'runs':>4} {'step s':>7} {'fwd+loss':>8} {'backward':>8} {'optim':>7} {'tokens/s':>9} {'GFLOP/s':>8}")
med = {}
for name, rs in by.items():
    m = {k: statistics.median(r[k] for r in rs) for k in ("step_s", "forward_s", "backward_s", "optimizer_s", "tokens_per_s", "gflops")}
    med[name] = m
    print(f"{name:<36} {len(rs):>4} {m['step_s']:>7.3f} {m['forward_s']:>8.3f} {m['backward_s']:>8.3f} {m['optimizer_s']:>7.3f} {m['tokens_per_s']:>9.0f} {m['gflops']:>8.1f}")
torch = next(v for k, v in med.items() if k.startswith("pytorch"))
for name in ("candle-fused", "candle-plain"):
    if name in med:
        print(f"{name} / pytorch step time: {med[name]['step_s'] / torch['step_s']:.2f}")
PY
