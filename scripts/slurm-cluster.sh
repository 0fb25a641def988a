#!/usr/bin/env bash
# A single-node Slurm cluster for tests, reachable only from inside a private network namespace.
#
#   scripts/slurm-cluster.sh start DIR   start munged, slurmctld and slurmd with state, logs and config in DIR
#   scripts/slurm-cluster.sh stop DIR    stop them by the process ids recorded in DIR and remove the namespace
#
# After `start`, DIR/env holds SLURM_CONF, PRESCALE_NETNS (the namespace's name) and RUN_IN (the command prefix
# that enters the namespace): run `sbatch`, `squeue` and `prescale slurm --submit` as `$RUN_IN cmd …`.
#
# Why a namespace (measured, ../shared/notes/live-and-cluster-setup.md §4): Slurm's daemons listen on 0.0.0.0
# with no option to bind loopback only, so they run in a network namespace whose only interface is `lo`;
# glibc then needs a second loopback address (127.0.0.2) to resolve IPv4 names; `nsenter --net=` (not
# `ip netns exec`, which remounts /sys and hides the cgroup filesystem from slurmd). munged runs with its own
# socket in DIR, so a munged of the machine (if any) is neither used nor disturbed. Needs root.
set -euo pipefail

cmd=${1:-}
D=${2:-}
if [ -z "$cmd" ] || [ -z "$D" ]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi
export PATH="$PATH:/usr/sbin:/sbin"

stop() {
    for p in slurmd slurmctld munged; do
        if [ -s "$D/$p.pid" ]; then
            pid=$(cat "$D/$p.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$D/$p.pid"
        fi
    done
    if [ -s "$D/netns" ]; then
        ip netns del "$(cat "$D/netns")" 2>/dev/null || true
        rm -f "$D/netns"
    fi
}

case "$cmd" in
stop)
    stop
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac

if [ "$(id -u)" != 0 ]; then
    echo "slurm-cluster: needs root (a network namespace, and Slurm daemons running as root)" >&2
    exit 3
fi
for c in slurmctld slurmd sbatch munged nsenter ip; do
    command -v "$c" >/dev/null || { echo "slurm-cluster: '$c' not found (run scripts/setup-slurm.sh)" >&2; exit 4; }
done
mkdir -p "$D"
D=$(cd "$D" && pwd)
trap 'stop' ERR

# The namespace: only lo, with 127.0.0.1 and 127.0.0.2.
ns="prescale-slurm-$$"
if ! ip netns add "$ns" 2>"$D/netns.err"; then
    echo "slurm-cluster: cannot create a network namespace: $(cat "$D/netns.err")" >&2
    exit 3
fi
echo "$ns" >"$D/netns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 127.0.0.2/8 dev lo
RUN_IN="nsenter --net=/run/netns/$ns"

# munge: its own socket, pid and seed files in DIR (owned by the munge user, as munged demands).
mkdir -p "$D/munge"
chown munge:munge "$D/munge"
chmod 0700 "$D/munge"
runuser -u munge -- munged --force --socket="$D/munge/socket" --pid-file="$D/munge/munged.pid" \
    --seed-file="$D/munge/seed" --log-file="$D/munge/munged.log" --key-file=/etc/munge/munge.key
for _ in $(seq 50); do [ -s "$D/munge/munged.pid" ] && break; sleep 0.1; done
cp "$D/munge/munged.pid" "$D/munged.pid"

host=$(hostname -s)
mkdir -p "$D/state" "$D/slurmd"
cat >"$D/slurm.conf" <<EOF
ClusterName=prescale
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
AuthInfo=socket=$D/munge/socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmdSpoolDir=$D/slurmd
StateSaveLocation=$D/state
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MaxArraySize=100001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$D/slurm.conf"
# Daemonised (no -D): each writes its pid file, which `stop` reads.
$RUN_IN slurmctld -i
$RUN_IN slurmd
ok=0
for _ in $(seq 100); do
    if $RUN_IN sinfo -h -o %t 2>/dev/null | grep -qx idle; then ok=1; break; fi
    sleep 0.2
done
if [ "$ok" != 1 ]; then
    echo "slurm-cluster: the node did not become idle in 20 s; logs: $D/slurmctld.log $D/slurmd.log" >&2
    tail -5 "$D/slurmctld.log" "$D/slurmd.log" >&2 || true
    stop
    exit 5
fi
cat >"$D/env" <<EOF
SLURM_CONF=$D/slurm.conf
PRESCALE_NETNS=$ns
RUN_IN=$RUN_IN
EOF
echo "slurm-cluster: up in namespace $ns (config $D/slurm.conf)" >&2
