#!/usr/bin/env bash
# Stop what tests/cluster/start_slurm.sh started: cancel remaining jobs, stop slurmd and slurmctld,
# and munged if that script started it. Safe to run when nothing is running.
set -uo pipefail
STATE=${SEQGAN_SLURM_STATE:-/tmp/seqgan-slurm}
scancel --user "$(id -un)" >/dev/null 2>&1 || true
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
pkill -x slurmstepd 2>/dev/null || true
# a job's processes that escaped the process tracking (proctrack/linuxproc follows parent links
# only): Snakemake's job-step processes of this cluster's jobs
pkill -KILL -f -- "--executor slurm-jobstep" 2>/dev/null || true
if [[ -f "$STATE/munged.started" ]]; then
    pkill -x munged 2>/dev/null || true
    rm -f "$STATE/munged.started"
fi
rm -f "$STATE/ready"
echo "slurm: stopped"
