#!/bin/bash
# Measures a scaling-law variant's ground-truth grid: one process per grid point, $P at once,
# every result appended to $OUT/all.jsonl (rerunning skips the points already there). Then
# assemble the table with `grid table`.
#
# The cpu variant (the default), with the equal-token scaling check of docs/scaling-check.md:
#
#   cargo build --release -p scaling-law --bin grid
#   OUT=/tmp/gt P=16 tasks/scaling-law/ground-truth/measure.sh
#   target/release/grid table --budget 5e12 --widths 24,32,48,64,96,128,192 --fractions 0.5,1.0 \
#       --log /tmp/gt/all.jsonl --hardware ... --threads 1 --command ... --git-rev ... --out tasks/scaling-law/ground-truth/cpu.json
#
# The committed cpu table came from this script on a 16-core machine in 321 s (16 at once); on
# 2 cores (2 at once) the same points take about 45 minutes of CPU per core.
#
# The gpu variant (not yet measured), one point at a time on CUDA device 0:
#
#   cargo build --release -p scaling-law --bin grid --features cuda
#   VARIANT=gpu OUT=/tmp/gt-gpu tasks/scaling-law/ground-truth/measure.sh
#   target/release/grid --variant gpu table --budget 2e14 --widths 64,96,128,192,256,384,512 \
#       --fractions 0.5,1.0 --log /tmp/gt-gpu/all.jsonl --hardware ... --threads 1 --command ... \
#       --git-rev ... --out tasks/scaling-law/ground-truth/gpu.json
set -u
G=${GRID:-target/release/grid}
OUT=${OUT:?set OUT to the output directory}
VARIANT=${VARIANT:-cpu}
mkdir -p "$OUT"
cpu_points() {
B=5e12
echo "truth --budget $B --widths 24 --fractions 1.0 --seeds 1"
echo "truth --budget $B --widths 32 --fractions 1.0 --seeds 1"
echo "check --steps 2500 --widths 128 --seeds 1"
echo "check --steps 3000 --widths 64 --seeds 1"
for w in 48 64 96 128 192; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 1"; done
for w in 24 32 48 64 96 128 192; do echo "truth --budget $B --widths $w --fractions 0.5 --seeds 1"; done
for w in 32 48 64 96; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 2"; done
echo "check --steps 3000 --widths 32 --seeds 1"
echo "check --steps 3000 --widths 16 --seeds 1"
# docs/scaling-check.md's 1,000-step rows (measured in an earlier run of the same machine).
for w in 16 32 64 128 256; do echo "check --steps 1000 --widths $w --seeds 1"; done
}
# The full budget first, so a grid stopped early still has the most useful row; then half of
# it; then a second seed where the optimum is expected (about width 150 by 20 tokens per
# parameter), for the spread between seeds.
gpu_points() {
B=2e14
for w in 64 96 128 192 256 384 512; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 1"; done
for w in 64 96 128 192 256 384 512; do echo "truth --budget $B --widths $w --fractions 0.5 --seeds 1"; done
for w in 128 192 256; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 2"; done
}
case "$VARIANT" in
    cpu) P=${P:-2}; points=cpu_points; warm=16 ;;
    # One device: the points run one after another.
    gpu) P=${P:-1}; points=gpu_points; warm=64 ;;
    *) echo "measure.sh: no grid for variant '$VARIANT' (cpu or gpu)" >&2; exit 2 ;;
esac
# The corpus assets, once, before the parallel jobs.
$G --variant "$VARIANT" --threads 1 check --steps 1 --widths $warm --log "$OUT/warm.jsonl" > /dev/null || exit 1
$points | xargs -P "$P" -I{} bash -c "$G --variant $VARIANT --threads 1 {} --log $OUT/all.jsonl > /dev/null 2>> $OUT/progress.txt"
