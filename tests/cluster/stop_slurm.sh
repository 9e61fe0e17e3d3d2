#!/usr/bin/env bash
# Stop what tests/cluster/start_slurm.sh started: cancel this cluster's remaining jobs, stop its
# slurmd and slurmctld (by their pid files), munged if that script started it, and its link at
# /etc/slurm/slurm.conf. Safe to run when nothing is running; leaves anything else on the machine alone.
set -uo pipefail
STATE=${SEQGAN_SLURM_STATE:-/tmp/seqgan-slurm}
export SLURM_CONF="$STATE/slurm.conf"
ours=0
for daemon in slurmd slurmctld; do
    [[ -s "$STATE/$daemon.pid" ]] && kill -0 "$(cat "$STATE/$daemon.pid")" 2>/dev/null && ours=1
done
if [[ $ours -eq 1 ]]; then
    scancel --user "$(id -un)" >/dev/null 2>&1 || true
    sleep 1
fi
for daemon in slurmd slurmctld; do
    pidfile="$STATE/$daemon.pid"
    if [[ -s "$pidfile" ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
done
for _ in $(seq 1 20); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || break
    sleep 0.5
done
# a job's processes that escaped the process tracking (proctrack/linuxproc follows parent links
# only): Snakemake's job steps of THIS cluster's jobs (their environment names its SLURM_CONF).
# SIGKILL: a job step waits on SIGTERM.
for pid in $(pgrep -f -- "--executor slurm-jobstep" 2>/dev/null); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF"; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
if [[ -f "$STATE/munged.started" ]]; then
    pkill -x munged 2>/dev/null || true
    for _ in $(seq 1 20); do pgrep -x munged >/dev/null || break; sleep 0.5; done
    rm -f "$STATE/munged.started"
fi
DEFAULT_CONF=${SEQGAN_SLURM_DEFAULT_CONF:-/etc/slurm/slurm.conf}
if [[ -L "$DEFAULT_CONF" && "$(readlink "$DEFAULT_CONF")" == "$STATE/slurm.conf" ]]; then
    rm -f "$DEFAULT_CONF"  # start_slurm.sh's link, nothing else
fi
rm -f "$STATE/ready"
echo "slurm: stopped"
