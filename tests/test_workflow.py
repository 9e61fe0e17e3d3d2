"""The Snakemake workflow end to end on a tiny params file, in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def tiny_params() -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["synthetic"].update(train_images=200, val_images=60)
    raw["semantic"].update(iterations=40, batch_size=32, warmup_steps=5, eval_every=20, checkpoint_every=20)
    return raw


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_jobs(workdir: Path) -> set[str]:
    out = run_snakemake(workdir, "-n", "--quiet", "rules").stdout
    rules = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in {"job", "total"}:
            rules.add(parts[0])
    return rules


@pytest.mark.slow
def test_default_target_builds_and_reruns_only_what_params_changed(tmp_path):
    params = tiny_params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_snakemake(tmp_path, "--cores", "2")

    manifest = json.loads((tmp_path / "data/shapes32/train/manifest.json").read_text())
    assert manifest["count"] == 200 and manifest["num_classes"] == 10
    metrics = json.loads((tmp_path / "results/metrics/semantic.json").read_text())
    assert metrics["val_count"] == 60 and 0.0 <= metrics["val_accuracy"] <= 1.0
    sidecar = json.loads((tmp_path / "models/semantic/net.json").read_text())
    assert sidecar["kind"] == "semantic_net" and sidecar["step"] == 40
    curve = (tmp_path / "results/curves/semantic/val.csv").read_text().splitlines()
    assert curve[0] == "step,val_loss,val_accuracy" and [row.split(",")[0] for row in curve[1:]] == ["20", "40"]
    assert (tmp_path / "results/tables/model_sizes.csv").is_file()

    assert planned_jobs(tmp_path) == set()  # nothing left to do

    params["semantic"]["lr"] = 0.001  # a semantic-network parameter: only that rule reruns
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert planned_jobs(tmp_path) == {"train_semantic", "all"}

    params["data"]["synthetic"]["seed"] = 7  # a data parameter: data and everything on it rerun
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert planned_jobs(tmp_path) == {"prepare_data", "train_semantic", "all"}


def test_invalid_params_stop_the_workflow_before_any_job(tmp_path):
    params = tiny_params()
    params["tokenizer"]["alphas"][2] = 1.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert "tokenizer.alphas[2] = 1.5: must be within [0, 1]" in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_config_overrides_are_refused(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    result = run_snakemake(tmp_path, "-n", "--config", "run={'name': 'x', 'seed': 0, 'device': 'cpu'}", check=False)
    assert result.returncode != 0
    assert "overrides are not supported" in result.stdout + result.stderr
