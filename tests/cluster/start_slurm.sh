#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine for the cluster tests (tests/test_slurm.py):
# munged, slurmctld and slurmd with a minimal slurm.conf -- one node (localhost, its real CPU count
# and memory), one partition -- installing Debian's slurm-wlm and munge first if they are missing.
# Waits until `sinfo` shows the node idle. Needs root (the daemons and the package install).
# It leaves a machine's own SLURM alone: the config is $STATE/slurm.conf, linked from SLURM's default
# path /etc/slurm/slurm.conf only where that path is free (the tests also set SLURM_CONF), and it
# refuses to start beside SLURM daemons it did not start.
#
#   bash tests/cluster/start_slurm.sh      # prints "slurm: ready ..." or "slurm: unavailable: <why>"
#   bash tests/cluster/stop_slurm.sh       # stops exactly what this script started
#
# Exit status 0 = the cluster is up; 2 = it cannot be started here (no root, no package, a daemon
# that does not come up); the reason is printed and written to $STATE/unavailable so the tests skip
# with it. Everything lives under $STATE (default /tmp/seqgan-slurm): config, spool, logs, pids.
#
# Job status: without accounting storage (slurmdbd) `sacct` knows no jobs, so the workflow profile
# for this cluster uses `squeue` (slurm_status_command) and slurm.conf keeps finished jobs visible
# to it for MinJobAge = 600 s.
set -uo pipefail
STATE=${SEQGAN_SLURM_STATE:-/tmp/seqgan-slurm}
PARTITION=${SEQGAN_SLURM_PARTITION:-debug}
mkdir -p "$STATE"
rm -f "$STATE/unavailable" "$STATE/ready"

unavailable() {
    echo "slurm: unavailable: $1"
    echo "$1" > "$STATE/unavailable"
    exit 2
}

[[ $(id -u) -eq 0 ]] || unavailable "not root (the SLURM daemons and the package install need root)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || unavailable "slurm-wlm is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1
        apt-get install -y -q slurm-wlm munge >>"$STATE/apt.log" 2>&1 \
            || unavailable "installing slurm-wlm and munge failed (see $STATE/apt.log)"
    fi
fi

# The config is also reached through SLURM's default path: Snakemake's job-step executor
# (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes SLURM_CONF, with every SLURM_* variable
# but the job's identity, from the environment of the srun it runs inside each job, and that srun
# then finds no configuration ("Could not establish a configuration source"). A real cluster keeps
# its config at the default path (or runs configless), so its jobs are not hit. The link is made
# only where the path is free, and stop_slurm.sh removes it.
DEFAULT_CONF=${SEQGAN_SLURM_DEFAULT_CONF:-/etc/slurm/slurm.conf}
if [[ -e "$DEFAULT_CONF" || -L "$DEFAULT_CONF" ]] && [[ "$(readlink "$DEFAULT_CONF")" != "$STATE/slurm.conf" ]]; then
    unavailable "$DEFAULT_CONF exists and is not this script's link (a machine's own SLURM configuration is left alone)"
fi

if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    unavailable "SLURM daemons not started by this script are running (stop them, or tests/cluster/stop_slurm.sh)"
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
real_mem=$(( mem_mb * 9 / 10 ))  # leave room for the daemons; slurmd refuses a node claiming more than it has
mkdir -p "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"

# munge (unless one runs already): the package's key, or one of its own where there is none
if ! pgrep -x munged >/dev/null; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown -R munge:munge /etc/munge 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
fi

cat > "$STATE/slurm.conf" <<CONF
ClusterName=seqgan-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF="$STATE/slurm.conf"
mkdir -p "$(dirname "$DEFAULT_CONF")"
ln -sfn "$STATE/slurm.conf" "$DEFAULT_CONF" || unavailable "cannot link $DEFAULT_CONF to $STATE/slurm.conf"

start_munged() {
    if runuser -u munge -- /usr/sbin/munged --force 2>"$STATE/log/munged.err" \
        || /usr/sbin/munged --force 2>>"$STATE/log/munged.err"; then
        echo started > "$STATE/munged.started"
    else
        unavailable "munged did not start (see $STATE/log/munged.err)"
    fi
}
round_trip() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
pgrep -x munged >/dev/null || start_munged
for _ in $(seq 1 20); do  # munged creates its socket a moment after it returns
    round_trip && break
    # a munged that was stopping when this script looked has gone: start one
    pgrep -x munged >/dev/null || start_munged
    sleep 0.5
done
round_trip || unavailable "munge does not round-trip a credential (see $STATE/log/munged.err, /var/log/munge/)"

/usr/sbin/slurmctld -c -f "$SLURM_CONF" 2>"$STATE/log/slurmctld.err" || unavailable "slurmctld did not start (see $STATE/log/)"
/usr/sbin/slurmd -c -f "$SLURM_CONF" 2>"$STATE/log/slurmd.err" || unavailable "slurmd did not start (see $STATE/log/)"

for _ in $(seq 1 60); do
    if sinfo -h -N -o "%T" 2>/dev/null | grep -qx idle; then
        echo "$host $cpus CPUs ${real_mem} MB, partition $PARTITION, $(sinfo --version)" > "$STATE/ready"
        echo "slurm: ready: $(cat "$STATE/ready")"
        exit 0
    fi
    sleep 1
done
unavailable "the node did not become idle within 60 s: $(sinfo -h -N -o '%T %E' 2>&1 | head -1)"
