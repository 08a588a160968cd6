#!/bin/bash
# The second device run: the ground-truth rows again (the first run's files did not come back),
# and the scaling check at 3000 steps; every result in one file.
set -u
D=$(cd "$(dirname "$0")" && pwd)
G=$D/grid
export REBENCH_HOME=/tmp/rebench-home
mkdir -p /tmp/logs
$G --threads 1 check --steps 1 --widths 16 --log /tmp/warm.jsonl > /dev/null 2> $OUT/warm.txt
B=5e12
{
echo "truth --budget $B --widths 24 --fractions 1.0 --seeds 1 --log $OUT/all.jsonl"
echo "truth --budget $B --widths 32 --fractions 1.0 --seeds 1 --log $OUT/all.jsonl"
echo "check --steps 2500 --widths 128 --seeds 1 --log $OUT/all.jsonl"
echo "check --steps 3000 --widths 64 --seeds 1 --log $OUT/all.jsonl"
for w in 48 64 96 128 192; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 1 --log $OUT/all.jsonl"; done
for w in 24 32 48 64 96 128 192; do echo "truth --budget $B --widths $w --fractions 0.5 --seeds 1 --log $OUT/all.jsonl"; done
for w in 32 48 64 96; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 2 --log $OUT/all.jsonl"; done
echo "check --steps 3000 --widths 32 --seeds 1 --log $OUT/all.jsonl"
echo "check --steps 3000 --widths 16 --seeds 1 --log $OUT/all.jsonl"
} > /tmp/ordered.txt
start=$(date +%s)
xargs -P 16 -I{} bash -c "timeout ${LIMIT:-400} $G --threads 1 {} > /dev/null 2>> /tmp/progress.txt" < /tmp/ordered.txt
echo "all done in $(( $(date +%s) - start )) s" > $OUT/done.txt

