"""benchmarks/gpu_smoke.sh in its CPU-sized dry mode: every stage of the GPU smoke run works.

The full mode needs a GPU and runs by hand; this checks the script itself on every CI run -- the
timed steps of each paper code path (tokenizer phase 1 at alpha 0 and 1 with the GAN, phase 2, AR
and NAR large with the compile switch), the kill-and-resume of a real training process (bit-identical
weights on a CPU), and a reduced paper configuration of JPEG folders through Snakemake with the GPU
profile up to fig2.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_smoke_dry_mode_runs_every_stage() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_smoke.sh"), "--dry"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    for stage in ("steps", "resume", "workflow"):
        assert re.search(rf"^# stage {stage}: exit 0 after \d+ s", out, re.M), stage
    timed = re.findall(
        r"^(tokenizer phase \d alpha [\d.]+ GAN on|transformer n?ar large compile=\w+) .*?"
        r"([\d.]+) s/step .* peak ([\d.]+) GiB$",
        out,
        re.M,
    )
    names = [name for name, _, _ in timed]
    assert names == [
        "tokenizer phase 1 alpha 0.0 GAN on",
        "tokenizer phase 1 alpha 1.0 GAN on",
        "tokenizer phase 2 alpha 0.0 GAN on",
        "transformer ar large compile=False",
        "transformer ar large compile=True",
        "transformer nar large compile=False",
        "transformer nar large compile=True",
    ]
    assert all(float(seconds) > 0 and float(peak) > 0 for _, seconds, peak in timed)
    assert re.search(r"^resumed_from_step (\d+); weights vs the uninterrupted run: bit-identical$", out, re.M)
    assert int(re.search(r"^resumed_from_step (\d+)", out, re.M).group(1)) > 0
    assert re.search(r"^fig2 written in \d+ s \(\d+ of \d+ steps \(100%\) done\)$", out, re.M)
    # both objectives of the paper configuration were trained, each on the CPU in fp32
    trained = re.findall(r"^  models/transformer/(n?ar)/base/alpha[\d.]+/seed0/model.json: cpu, fp32", out, re.M)
    assert sorted(set(trained)) == ["ar", "nar"]
