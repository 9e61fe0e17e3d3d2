#!/usr/bin/env bash
# GPU smoke run: a few paper-shape training steps (tokenizer phase 1 at alpha 0 and 1 with the GAN
# on, phase 2, AR and NAR large with torch.compile off and on; s/step and peak memory), a kill and
# resume of a training job, and a reduced paper configuration through Snakemake with the GPU
# profile up to fig2. Each stage is benchmarks/gpu_smoke.py <stage>; its docstring has the details.
#
#   bash benchmarks/gpu_smoke.sh          # on a GPU machine: at most 10 minutes on one H100 / H200
#   bash benchmarks/gpu_smoke.sh --dry    # CPU-sized shapes: checks the script (CI runs this)
#
# Python: $PYTHON, else the repository's .venv, else python3. Every stage runs (under its own time
# limit; 10 minutes in all) even when an earlier one failed; the exit status is non-zero if any
# failed. A stage that cannot run here (the workflow stage without Snakemake) says "skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
dry=""
if [[ "${1:-}" == "--dry" ]]; then dry="--dry"; fi
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then py=.venv/bin/python
else py=python3; fi

echo "# gpu_smoke ${dry:-full} $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')"
nvidia-smi -L 2>/dev/null || echo "# nvidia-smi: none"
failed=0
for stage in "steps 360" "resume 90" "workflow 150"; do
    set -- $stage
    start=$SECONDS
    # TERM first (the stage's temporary folder is removed), KILL 10 s later
    timeout --kill-after=10 "$2" env PYTHONUNBUFFERED=1 "$py" benchmarks/gpu_smoke.py "$1" $dry
    status=$?
    if [[ $status -eq 3 ]]; then
        echo "# stage $1: skipped after $((SECONDS - start)) s (see its line above)"
        continue
    fi
    echo "# stage $1: exit $status after $((SECONDS - start)) s (limit $2 s)"
    if [[ $status -ne 0 ]]; then failed=1; fi
done
exit $failed
