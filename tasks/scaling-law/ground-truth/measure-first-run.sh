#!/bin/bash
# One device run: the scaling-law ground-truth grid and the scaling check, one single-thread
# process per grid point, longest first, as many at once as there are physical cores.
set -u
D=$(cd "$(dirname "$0")" && pwd)
G=$D/grid
export REBENCH_HOME=/tmp/rebench-home
lscpu | grep -E "Model name|^CPU\(s\)|Thread|Core|Socket" > $OUT/lscpu.txt
PHYS=$(lscpu -p=CORE | grep -v '^#' | sort -u | wc -l)
P=${P:-$PHYS}
echo "physical cores $PHYS, parallel $P" >> $OUT/lscpu.txt
# The corpus assets, once, before the parallel jobs.
$G --threads 1 check --steps 1 --widths 16 --log /tmp/warm.jsonl > /dev/null 2> $OUT/warm.txt
B=5e12
{
for f in 1.0 0.5; do for w in 24 32 48 64 96 128 192; do echo "truth --budget $B --widths $w --fractions $f --seeds 1 --log $OUT/truth-w$w-f$f-s1.jsonl"; done; done
for w in 48 64 96 32; do echo "truth --budget $B --widths $w --fractions 1.0 --seeds 2 --log $OUT/truth-w$w-f1.0-s2.jsonl"; done
for w in 16 32 64 128 256; do echo "check --steps 1000 --widths $w --seeds 1 --log $OUT/check-w$w-s1.jsonl"; done
} > /tmp/jobs.txt
# Longest first: the check at width 256, then the truth rows by width ascending (small widths
# take longest at a fixed budget).
(grep "check.*256" /tmp/jobs.txt; grep "truth.*f1.0-s1" /tmp/jobs.txt; grep "check.*128" /tmp/jobs.txt; grep "truth.*f0.5" /tmp/jobs.txt; grep "s2.jsonl" /tmp/jobs.txt; grep "check" /tmp/jobs.txt | grep -v -E "w(256|128)-") > /tmp/ordered.txt
wc -l /tmp/jobs.txt /tmp/ordered.txt >> $OUT/lscpu.txt
start=$(date +%s)
xargs -P "$P" -L 1 -I{} bash -c "timeout ${LIMIT:-480} $G --threads 1 {} > /dev/null 2>> $OUT/progress.txt" < /tmp/ordered.txt
echo "all done in $(( $(date +%s) - start )) s" >> $OUT/lscpu.txt
