#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (controller and compute node in one), for
# rebench's Slurm executor tests (`harness/tests/it/slurm.rs`) and CI (.ci/run).
#
# Idempotent: installs what is missing (Debian/Ubuntu packages slurmctld, slurmd, slurm-client,
# munge; `apt-get update` only when a package cannot be found), writes /etc/slurm/slurm.conf for
# this host (refusing to overwrite one it did not write), creates a munge key if there is none,
# starts munged, slurmctld and slurmd in the background without systemd (reusing running
# daemons when the configuration did not change), and waits until the node is idle and a
# trivial job has run. Prints how many seconds all of it took.
#
# Needs root. Environment:
#   REBENCH_SLURM_STATE    state, spool and log directory (default /var/spool/rebench-slurm)
#   REBENCH_SLURM_TIMEOUT  seconds to wait for the node and the probe job (default 120)
#   REBENCH_SLURM_NO_INSTALL=1  fail instead of installing missing packages
# Stop it with scripts/slurm/stop-single-node.sh.
set -euo pipefail

started=$(date +%s.%N)
STATE=${REBENCH_SLURM_STATE:-/var/spool/rebench-slurm}
TIMEOUT=${REBENCH_SLURM_TIMEOUT:-120}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARKER="# written by rebench-rs scripts/slurm/start-single-node.sh"
PACKAGES=(munge slurmctld slurmd slurm-client)

say() { printf 'slurm-single-node: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (it installs packages and starts daemons)"

# --- packages ------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ ${REBENCH_SLURM_NO_INSTALL:-0} == 1 ]] && die "missing packages: ${missing[*]}"
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Update the package lists only when apt does not know a package yet.
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            say "apt-get update (apt does not know $p)"
            apt-get update -qq
            break
        fi
    done
    say "installing ${missing[*]}"
    # policy-rc.d exit 101: the packages' maintainer scripts must not try to start services.
    policy_created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_created=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { ((policy_created)) && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
    ((policy_created)) && rm -f /usr/sbin/policy-rc.d
fi
for bin in munged slurmctld slurmd sbatch sinfo scontrol srun; do
    command -v "$bin" >/dev/null || die "$bin not found after installing ${PACKAGES[*]}"
done
installed=$(date +%s.%N)

# --- slurm.conf ----------------------------------------------------------------------------
host=$(hostname -s)
# `slurmd -C` prints this machine's hardware as a slurm.conf node line:
#   NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23000
hw=$(slurmd -C | head -n1)
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); boards=$(field Boards); sockets=$(field SocketsPerBoard)
cores=$(field CoresPerSocket); threads=$(field ThreadsPerCore); mem=$(field RealMemory)
[[ -n $cpus && -n $mem ]] || die "cannot read the hardware from 'slurmd -C': $hw"
# Leave a little memory to the system; Slurm drains a node that reports less than RealMemory.
mem=$((mem * 95 / 100))
defmem=$((mem / cpus))

mkdir -p "$CONF_DIR" "$STATE"/{ctld,d,log}
new_conf=$(cat <<EOF
$MARKER
# A single-node cluster: this host is the controller and the only compute node.
ClusterName=rebench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No systemd, no cgroups: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$defmem
ReturnToService=2
# Finished jobs stay visible to scontrol this long (there is no accounting database).
MinJobAge=600
# Quick ends: SIGTERM to SIGKILL after 5 s at a time limit or scancel.
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=$host CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=1
if [[ -e $CONF ]]; then
    head -n1 "$CONF" | grep -qxF "$MARKER" \
        || die "$CONF exists and was not written by this script; not touching a real cluster's configuration"
    [[ $(cat "$CONF") == "$new_conf" ]] && changed=0
fi
((changed)) && printf '%s\n' "$new_conf" >"$CONF"

# --- munge -----------------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "no 'munge' user (the munge package creates it)"
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key --force
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- slurm daemons ---------------------------------------------------------------------------
stop_daemon() {  # pidfile, name
    local pidfile=$1 name=$2
    if alive "$pidfile"; then
        say "stopping $name"
        local pid; pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}
if ((changed)); then
    stop_daemon "$STATE/slurmd.pid" slurmd
    stop_daemon "$STATE/slurmctld.pid" slurmctld
fi
if ! alive "$STATE/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld -f "$CONF" || die "slurmctld did not start; $(tail -n 20 "$STATE/log/slurmctld.log" 2>/dev/null)"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping | grep -q 'is UP' || die "slurmctld does not answer; $(tail -n 20 "$STATE/log/slurmctld.log")"
if ! alive "$STATE/slurmd.pid"; then
    say "starting slurmd"
    slurmd -f "$CONF" || die "slurmd did not start; $(tail -n 20 "$STATE/log/slurmd.log" 2>/dev/null)"
fi

# --- wait for the node, then run a job -------------------------------------------------------
deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while (( $(date +%s) < deadline )); do
    state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null | head -n1)
    case $state in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*)
            # A node left down by an earlier (unclean) run: bring it back.
            scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case $state in
    idle|mixed|allocated) ;;
    *) die "node $host is '${state:-unknown}' after ${TIMEOUT}s: $(scontrol show node "$host" | grep -i reason || true)
$(tail -n 20 "$STATE/log/slurmd.log" 2>/dev/null)" ;;
esac
probe=$(timeout "$TIMEOUT" srun -N1 -n1 -t 1 --quiet hostname 2>&1) \
    || die "the probe job failed: $probe
$(tail -n 20 "$STATE/log/slurmd.log" 2>/dev/null)"
done_at=$(date +%s.%N)
printf 'slurm-single-node: ready: node %s (%s CPUs, %s MiB), partition debug; probe job ran on %s\n' \
    "$host" "$cpus" "$mem" "$probe" >&2
printf 'slurm-single-node: started in %.1f s (packages %.1f s, daemons and probe job %.1f s)\n' \
    "$(awk "BEGIN{print $done_at - $started}")" \
    "$(awk "BEGIN{print $installed - $started}")" "$(awk "BEGIN{print $done_at - $installed}")"
