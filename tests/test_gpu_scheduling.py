"""Safe GPU scheduling: every job that runs a network declares resource gpu, and without a limit
on the command line or in a profile the limit is the number of GPUs the machine shows, so no
invocation starts more GPU ranks than it has (workflow/rules/common.smk)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from snakemake_probe import probe as probe_workflow

ROOT = Path(__file__).resolve().parents[1]


def probe(tmp_path: Path, visible: str | None, *resources: str, gpus_per_job: int = 1) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["run"]["gpus_per_job"] = gpus_per_job
    raw["tokenizer"]["phase1"]["batch_size"] = 16 * gpus_per_job
    raw["tokenizer"]["phase2"]["batch_size"] = 16 * gpus_per_job
    raw["transformer"]["ar"]["batch_size"] = 16 * gpus_per_job
    raw["transformer"]["nar"]["batch_size"] = 16 * gpus_per_job
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    # no nvidia-smi: the count comes from CUDA_VISIBLE_DEVICES alone. `which` stays: the SLURM
    # executor plugin, loaded with Snakemake's plugin registry, runs it at import time.
    bin_dir = tmp_path / "bin"
    if not bin_dir.is_dir():
        bin_dir.mkdir()
        (bin_dir / "which").symlink_to(shutil.which("which") or "/usr/bin/which")
    env["PATH"] = str(bin_dir)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return probe_workflow(tmp_path, *resources, env=env)


def test_the_gpu_limit_defaults_to_the_gpus_the_machine_shows(tmp_path):
    assert probe(tmp_path, "0,1,2")["limit"] == 3
    assert probe(tmp_path, "1")["limit"] == 1


def test_no_limit_without_gpus_and_an_explicit_limit_wins(tmp_path):
    assert probe(tmp_path, "")["limit"] is None  # a CPU machine: jobs side by side on the cores
    assert probe(tmp_path, None)["limit"] is None  # no CUDA_VISIBLE_DEVICES, no nvidia-smi
    assert probe(tmp_path, "0,1,2,3", "gpu=1")["limit"] == 1  # --resources gpu=1 (as the gpu-local profile)


@pytest.mark.parametrize("gpus_per_job", [1, 2])
def test_every_network_job_declares_its_gpus(tmp_path, gpus_per_job):
    gpu = probe(tmp_path, "0,1", gpus_per_job=gpus_per_job)["gpu"]
    for rule in (
        "encode_tokens",
        "fid_reference",
        "eval_tokenizer",
        "sample",
        "eval_samples",
        "fig1_phase2_decoder",
        "fig3_visualization",
        "train_semantic",
    ):
        assert gpu.get(rule) == 1, rule
    for rule in ("tokenizer_phase1", "tokenizer_phase2", "train_ar", "train_nar"):
        assert gpu.get(rule) == gpus_per_job, rule
    assert "prepare_data" not in gpu and "claims" not in gpu
