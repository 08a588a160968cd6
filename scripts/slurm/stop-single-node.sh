#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by scripts/slurm/start-single-node.sh: slurmd,
# slurmctld, then munged. Running jobs are killed. Idempotent; leaves packages, slurm.conf, the
# munge key and the state directory in place (pass --purge-state to remove the state directory,
# which also forgets every job).
set -euo pipefail

STATE=${REBENCH_SLURM_STATE:-/var/spool/rebench-slurm}
say() { printf 'slurm-single-node: %s\n' "$*" >&2; }

stop_pidfile() {  # pidfile, name
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name ($pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name did not stop in 10 s; SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pidfile"
}

stop_pidfile "$STATE/slurmd.pid" slurmd
stop_pidfile "$STATE/slurmctld.pid" slurmctld
stop_pidfile /run/munge/munged.pid munged
if [[ ${1:-} == --purge-state ]]; then
    say "removing $STATE"
    rm -rf "$STATE"
fi
say "stopped"
