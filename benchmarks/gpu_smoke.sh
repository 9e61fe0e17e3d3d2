#!/usr/bin/env bash
# GPU smoke run: what runs where (check), a few paper-shape training steps (tokenizer phase 1 at
# alpha 0 and 1 with the GAN on, phase 2, AR and NAR large with torch.compile off and on; s/step,
# peak memory, MFU), a kill and resume of a training job, and a reduced paper configuration
# through Snakemake with the GPU profile up to fig2. The stages are benchmarks/gpu_smoke_record.py
# check and benchmarks/gpu_smoke.py <stage>; their docstrings have the details.
#
#   bash benchmarks/gpu_smoke.sh [--wheels DIR] [--out DIR] [--stages steps,resume,workflow]
#   bash benchmarks/gpu_smoke.sh --dry    # CPU-sized shapes: checks the script (CI runs this)
#
# --wheels DIR  wheels for an offline node whose image lacks packages (benchmarks/gpu_wheels.py
#               makes them on a machine with network): installed with pip --no-index --no-deps
#               --target into a temporary folder put first on PYTHONPATH, beside the image's torch
# --out DIR     where the log (gpu_smoke.log) and the JSON summary (summary.json) go
#               (default logs/gpu_smoke/<UTC time>)
# --stages LIST the stages to run after the check (default all three); a rerun names the failed ones
#
# Python: $PYTHON, else the repository's .venv, else python3; this checkout's seqgan is put on
# PYTHONPATH. Every stage runs under its own time limit even when an earlier one failed; the exit
# status is non-zero if any failed. The limits add up to 6 minutes with the wheel install, so on a
# GPU lent for 15 minutes (start-up included) a whole rerun still fits. A stage that cannot run here
# (the workflow stage without Snakemake) says "skipped".
set -uo pipefail
dry=""
wheels=""
out=""
stages="steps resume workflow"
while (($#)); do
    case "$1" in
    --dry) dry="--dry" ;;
    --wheels) wheels=${2:?--wheels needs a folder}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --stages) stages=${2//,/ }; shift ;;
    *) echo "gpu_smoke.sh: unknown argument '$1' (usage: the comment at the top of $0)" >&2; exit 2 ;;
    esac
    shift
done
for stage in $stages; do
    case "$stage" in
    check | steps | resume | workflow) ;;
    *) echo "gpu_smoke.sh: unknown stage '$stage' in --stages (check, steps, resume, workflow)" >&2; exit 2 ;;
    esac
done
# folders given relative to where the script was called from
[[ -n "$wheels" ]] && wheels=$(realpath -m "$wheels")
[[ -n "$out" ]] && out=$(realpath -m "$out")
cd "$(dirname "$0")/.."
root=$PWD
if [[ -n "$wheels" ]] && ! compgen -G "$wheels/*.whl" >/dev/null; then
    echo "gpu_smoke.sh: no wheels in '$wheels' (make them with: .venv/bin/python benchmarks/gpu_wheels.py --dest $wheels)" >&2
    exit 2
fi
mode=full
[[ -n "$dry" ]] && mode=dry
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then py=.venv/bin/python
else py=python3; fi
out=${out:-logs/gpu_smoke/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out" || exit 2
rm -f "$out/records.jsonl" "$out/summary.json"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# one JSON line per stage status for the summary (bash writes only numbers and fixed names here)
status_record() {
    printf '{"stage": "%s", "kind": "status", "exit": %d, "seconds": %d, "limit_s": %d}\n' "$@" >>"$out/records.jsonl"
}

run_stage() {  # name limit-on-a-GPU command...
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    # the dry run's CPU-sized work on a busy 2-core CI machine takes longer than the GPU run
    [[ -n "$dry" ]] && limit=$((limit * 3))
    # TERM first (the stage's temporary folder is removed), KILL 10 s later
    timeout --kill-after=10 "$limit" env PYTHONUNBUFFERED=1 "$@"
    status=$?
    status_record "$name" "$status" "$((SECONDS - start))" "$limit"
    if [[ $status -eq 3 ]]; then
        echo "# stage $name: skipped after $((SECONDS - start)) s (see its line above)"
        return 0
    fi
    echo "# stage $name: exit $status after $((SECONDS - start)) s (limit $limit s)"
    return "$status"
}

smoke() {
    local commit failed=0
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    echo "# gpu_smoke $mode $(date -u +%Y-%m-%dT%H:%M:%SZ), git ${commit:0:7}$(git diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
    printf '{"stage": "run", "mode": "%s", "commit": "%s", "started": "%s", "wheels": "%s", "stages": "%s"}\n' \
        "$mode" "$commit" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$wheels" "$stages" >>"$out/records.jsonl"
    nvidia-smi -L 2>/dev/null || echo "# nvidia-smi: none"
    if [[ -n "$wheels" ]]; then
        local start=$SECONDS
        "$py" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
            --target "$scratch/site" "$wheels"/*.whl || { echo "# pip could not install the wheels of $wheels"; return 1; }
        echo "# installed $(compgen -G "$wheels/*.whl" | wc -l) wheels from $wheels in $((SECONDS - start)) s"
        export PYTHONPATH="$scratch/site${PYTHONPATH:+:$PYTHONPATH}"
        export PATH="$scratch/site/bin:$PATH"
    fi
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
    run_stage check 30 "$py" benchmarks/gpu_smoke_record.py check --out "$out" || failed=1
    for stage in $stages; do
        case "$stage" in
        steps) run_stage steps 150 "$py" benchmarks/gpu_smoke.py steps $dry --out "$out" || failed=1 ;;
        resume) run_stage resume 60 "$py" benchmarks/gpu_smoke.py resume $dry --out "$out" || failed=1 ;;
        workflow) run_stage workflow 120 "$py" benchmarks/gpu_smoke.py workflow $dry --out "$out" || failed=1 ;;
        esac
    done
    "$py" benchmarks/gpu_smoke_record.py summary --out "$out" && rm -f "$out/records.jsonl"
    echo "# log $out/gpu_smoke.log, summary $out/summary.json; $([[ $failed -eq 0 ]] && echo 'every stage passed' || echo 'a stage FAILED')"
    return $failed
}

smoke 2>&1 | tee "$out/gpu_smoke.log"
exit "${PIPESTATUS[0]}"
