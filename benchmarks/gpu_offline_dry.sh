#!/usr/bin/env bash
# The offline-GPU-node path of the smoke run, tried on a CPU: an environment built like the GPU
# image (CPython 3.12, PyPI's torch 2.11.0 -- its CUDA build, which runs on a CPU -- torchvision
# 0.26.0 and the image's other packages, nothing else), the wheels of benchmarks/gpu_wheels.py, and
# benchmarks/gpu_smoke.sh --dry --wheels with that environment's Python. What it checks: that the
# carried wheels are complete, install beside the image's torch and import, and that every stage's
# code runs under the oldest torch (and the newest SciPy) the GPU image has. What it cannot check:
# CUDA, bf16 autocast, TF32, torch.compile (the full mode on a GPU).
#
#   bash benchmarks/gpu_offline_dry.sh [ENV_DIR] [OUT_DIR]
#
# ENV_DIR (default /tmp/gpu_image_env) is made once with network: about 5 GB, the CUDA libraries
# included. OUT_DIR (default logs/gpu_offline_dry) receives the smoke's log and summary. Needs
# python3.12 on PATH, or its path in $PYTHON312; $PYTHON (default .venv/bin/python) runs
# gpu_wheels.py, which makes the wheels into .whl/ unless it has some.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=${1:-/tmp/gpu_image_env}
out=${2:-logs/gpu_offline_dry}
python312=${PYTHON312:-python3.12}
py=${PYTHON:-.venv/bin/python}
# the image as the project's GPU machine has it: the one list, gpu_wheels.py's default
mapfile -t image < <("$py" benchmarks/gpu_wheels.py --print-image)

if [[ ! -x "$env_dir/bin/python" ]]; then
    "$python312" -m venv "$env_dir"
    "$env_dir/bin/python" -m pip install --quiet "${image[@]}"
fi
if ! compgen -G ".whl/*.whl" >/dev/null; then
    "$py" benchmarks/gpu_wheels.py --dest .whl
fi
echo "# environment like the GPU image: $("$env_dir/bin/python" -c 'import sys, torch, scipy; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, SciPy {scipy.__version__}")')"
echo "# image packages: ${image[*]} (and what they need); wheels: .whl ($(compgen -G '.whl/*.whl' | wc -l) files)"
PYTHON="$env_dir/bin/python" OMP_NUM_THREADS=1 bash benchmarks/gpu_smoke.sh --dry --wheels .whl --out "$out"
