"""`seqgan preflight` and the workflow's onstart check: a paper configuration without its data,
weights or GPUs stops before any job with one report saying what is missing and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from seqgan.config import validate_params
from seqgan.nets.pretrained import inception_weights_path
from seqgan.preflight import disk_estimate, needs_preflight, preflight

ROOT = Path(__file__).resolve().parents[1]


def paper_raw(name: str = "imagenet") -> dict:
    return yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())


def test_only_configurations_with_outside_needs_are_checked():
    assert not needs_preflight(validate_params(yaml.safe_load((ROOT / "params.yaml").read_text())))
    for name in ("imagenet", "ffhq", "lsun_cat"):
        assert needs_preflight(validate_params(paper_raw(name)))


def test_a_paper_configuration_stops_before_any_job_with_one_report(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "configs" / "imagenet.yaml").read_text())
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}  # no VGG16 there
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "results/fig2_val_loss.pdf",
            "--cores",
            "all",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert out.count("preflight of params.yaml") == 1  # one report
    assert "data.folder.train_dir = data/raw/imagenet/train: no such folder" in out
    assert "data.folder.val_dir = data/raw/imagenet/val: no such folder" in out
    assert "Pretrained weights 'vgg16' not found" in out and "seqgan fetch-weights --only vgg16" in out
    if not inception_weights_path().is_file():
        assert "Pretrained weights 'inception' not found" in out
    if not torch.cuda.is_available():
        assert "CUDA is not usable here" in out and "run.device: cpu" in out
    assert "Nothing was started" in out
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["params.yaml", "torch_home"] or (
        sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == ["params.yaml"]
    )  # no data/, models/, results/ or logs/: no job ran


def _image_folder(root: Path, classes: int, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")


def test_the_report_counts_images_checks_init_from_and_estimates_disk(tmp_path, monkeypatch):
    _image_folder(tmp_path / "raw" / "train", classes=2, per_class=3)
    _image_folder(tmp_path / "raw" / "val", classes=2, per_class=1)
    raw = paper_raw("imagenet")
    raw["data"]["folder"].update(train_dir=str(tmp_path / "raw" / "train"), val_dir=str(tmp_path / "raw" / "val"))
    raw["run"]["device"] = "cpu"
    raw["tokenizer"]["phase1"]["init_from"] = str(tmp_path / "missing" / "tokenizer.safetensors")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    vgg = tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg16-397923af.pth"
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b"weights")
    report = preflight(validate_params(raw), root=tmp_path)
    text = report.text()
    assert "data train: 6 images in 2 class folders" in text and "data val: 2 images in 2 class folders" in text
    assert f"weights vgg16: {vgg}" in text
    assert "device: run.device = cpu" in text
    assert any(p.startswith("tokenizer.phase1.init_from = ") for p in report.problems)
    # the paper's checkpoints alone may exceed this machine's disk: a fact or a problem, but there
    disk = [line for line in report.facts + report.problems if line.startswith("disk: about ")]
    assert len(disk) == 1 and " GB free under " in disk[0]
    assert not any("data.folder" in p or "vgg16" in p or "CUDA" in p for p in report.problems)


def test_disk_estimate_grows_with_the_images_and_doubles_with_dvc_copies():
    params = validate_params(paper_raw("imagenet"))
    small = disk_estimate(params, {"train": 1000, "val": 100}, dvc_copies=False)
    large = disk_estimate(params, {"train": 2000, "val": 200}, dvc_copies=False)
    assert large["prepared data"] == pytest.approx(2 * small["prepared data"])
    assert small["prepared data"] == 1100 * 256 * 256 * 3
    copies = disk_estimate(params, {"train": 1000, "val": 100}, dvc_copies=True)
    assert copies["DVC cache copies"] == pytest.approx(sum(small.values()))


def test_the_embedded_default_passes_by_hand(tmp_path, monkeypatch, capsys):
    from seqgan import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    assert cli.main(["preflight"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
