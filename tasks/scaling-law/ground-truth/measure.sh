#!/bin/bash
# Measures the scaling-law cpu variant's ground-truth grid (and the equal-token scaling check of
# docs/scaling-check.md): one single-threaded process per grid point, $P at once, every result
# appended to $OUT/all.jsonl (rerunning skips the points already there). Then assemble the table:
#
#   cargo build --release -p scaling-law --bin grid
#   OUT=/tmp/gt P=16 tasks/scaling-law/ground-truth/measure.sh
#   target/release/grid table --budget 5e12 --widths 24,32,48,64,96,128,192 --fractions 0.5,1.0 \
#       --log /tmp/gt/all.jsonl --hardware ... --threads 1 --command ... --git-rev ... --out tasks/scaling-law/ground-truth/cpu.json
#
# The committed table came from this script on a 16-core machine in 321 s (16 at once); on
# 2 cores (2 at once) the same points take about 45 minutes of CPU per core.
set -u
G=${GRID:-target/release/grid}
OUT=${OUT:?set OUT to the output directory}
P=${P:-2}
mkdir -p "$OUT"
# The corpus assets, once, before the parallel jobs.
$G --threads 1 check --steps 1 --widths 16 --log /tmp/warm.jsonl > /dev/null
B=5e12
{
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
} | xargs -P "$P" -I{} bash -c "$G --threads 1 {} --log $OUT/all.jsonl > /dev/null 2>> $OUT/progress.txt"
