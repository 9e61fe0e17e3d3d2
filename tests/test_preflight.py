"""`seqgan preflight` and the workflow's onstart check: a paper configuration without its data,
weights or GPUs stops before any job with one report saying what is missing and what to do."""

from __future__ import annotations

import os
import shutil
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


def test_every_rule_of_the_workflow_says_what_it_needs(tmp_path):
    """RULE_NEEDS names every rule (a new rule must say what it needs), and the rules it runs on
    run.device are exactly those that request a GPU under a paper configuration."""
    import sys as _sys

    _sys.path.insert(0, str(ROOT / "tests"))
    from snakemake_probe import probe

    from seqgan.preflight import RULE_NEEDS

    (tmp_path / "params.yaml").write_text((ROOT / "configs" / "imagenet.yaml").read_text())
    loaded = probe(tmp_path)
    assert set(RULE_NEEDS) == set(loaded["rules"])
    assert {name for name, needs in RULE_NEEDS.items() if needs.device} == set(loaded["gpu"])


def _no_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no VGG16 there


def _problems(raw: dict, root: Path, rules: set[str]) -> list[str]:
    return preflight(validate_params(raw), root=root, rules=rules).problems


def test_each_check_runs_only_for_the_rules_that_need_it(tmp_path, monkeypatch):
    """Under a paper configuration with no data, no VGG16 and (here) no usable CUDA: the model-size
    table needs nothing, data preparation only the data, a tokenizer only its weights and the GPU."""
    _no_weights(tmp_path, monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    raw = paper_raw("imagenet")
    assert _problems(raw, tmp_path, {"model_sizes", "fig2_val_loss", "claims"}) == []
    prepare = _problems(raw, tmp_path, {"prepare_data"})
    assert len(prepare) == 2 and all(p.startswith("data.folder.") for p in prepare)
    tokenizer = _problems(raw, tmp_path, {"tokenizer_phase1"})
    assert any("'vgg16' not found" in p for p in tokenizer) and any("CUDA is not usable" in p for p in tokenizer)
    assert not any("data.folder" in p or "'inception'" in p for p in tokenizer)
    samples = _problems(raw, tmp_path, {"sample"})
    assert len(samples) == 1 and "CUDA is not usable" in samples[0]
    raw["run"]["device"] = "cpu"  # on purpose: no GPU needed
    assert not any("CUDA" in p for p in _problems(raw, tmp_path, {"tokenizer_phase1", "sample"}))
    # the whole workflow (no rules given, as `seqgan preflight` without targets) checks everything
    everything = " ".join(preflight(validate_params(paper_raw("imagenet")), root=tmp_path).problems)
    assert "data.folder.train_dir" in everything and "'vgg16' not found" in everything and "CUDA" in everything


def _snakemake(workdir: Path, *targets: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *targets, "--cores", "1"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _seqgan_preflight(workdir: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqgan", "preflight", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_paper_configuration_prepares_data_and_counts_models_on_a_cpu_node(tmp_path):
    """configs/imagenet.yaml with run.device auto on a machine without CUDA: the CPU jobs run
    (`prepare_data`, the model-size table), `seqgan preflight TARGET` agrees, and the main job still
    stops before any job."""
    raw = paper_raw("imagenet")
    _image_folder(tmp_path / "photos" / "train", classes=2, per_class=2)
    _image_folder(tmp_path / "photos" / "val", classes=2, per_class=1)
    raw["data"]["folder"].update(train_dir="photos/train", val_dir="photos/val")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    if not torch.cuda.is_available():
        env["CUDA_VISIBLE_DEVICES"] = ""
    manifests = [f"data/{raw['data']['name']}/{split}/manifest.json" for split in ("train", "val")]

    checked = _seqgan_preflight(tmp_path, *manifests, "results/tables/model_sizes.csv", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "jobs to run: model_sizes, prepare_data" in checked.stdout and "0 problem(s)" in checked.stdout
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()  # checked, not run

    built = _snakemake(tmp_path, *manifests, "results/tables/model_sizes.csv", env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    assert all((tmp_path / m).is_file() for m in manifests)
    sizes = (tmp_path / "results" / "tables" / "model_sizes.csv").read_text().splitlines()
    assert sizes[1].startswith("tokenizer_phase1,54449283,")  # the paper's phase-1 tokenizer, counted

    again = _seqgan_preflight(tmp_path, "results/tables/model_sizes.csv", env=env)
    assert again.returncode == 0 and "nothing to run" in again.stdout

    main_job = _seqgan_preflight(tmp_path, "results/fig2_val_loss.pdf", env=env)
    assert main_job.returncode == 1
    assert "Pretrained weights 'vgg16' not found" in main_job.stdout
    if not torch.cuda.is_available():
        assert "CUDA is not usable here" in main_job.stdout
    assert "data.folder" not in main_job.stdout  # prepared above: the raw folders are no longer read
    assert not (tmp_path / "models").exists()


def test_the_disk_check_counts_what_the_planned_jobs_write(tmp_path, monkeypatch):
    """Preparing the data needs room for the data, not for the paper's checkpoints and samples."""
    _no_weights(tmp_path, monkeypatch)
    _image_folder(tmp_path / "raw" / "train", classes=2, per_class=3)
    raw = paper_raw("imagenet")
    raw["data"]["folder"].update(train_dir=str(tmp_path / "raw" / "train"), val_dir=str(tmp_path / "raw" / "train"))

    def disk_line(rules):
        report = preflight(validate_params(raw), root=tmp_path, rules=rules)
        return [line for line in report.facts + report.problems if line.startswith("disk: ")]

    [prepare] = disk_line({"prepare_data"})
    assert "(prepared data 0.0)" in prepare and "checkpoints" not in prepare
    [training] = disk_line({"prepare_data", "tokenizer_phase1", "train_ar"})
    assert "prepared data" in training and "checkpoints" in training and "samples" not in training
    assert disk_line({"model_sizes", "claims"}) == []
    [everything] = disk_line(None)
    assert all(kind in everything for kind in ("prepared data", "token arrays", "checkpoints", "samples"))


def test_under_a_cluster_executor_the_nodes_need_cuda_not_this_machine(tmp_path, monkeypatch):
    _no_weights(tmp_path, monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = preflight(validate_params(paper_raw("imagenet")), root=tmp_path, rules={"tokenizer_phase1"}, cluster=True)
    assert not any("CUDA" in p for p in report.problems)
    assert any("cluster executor" in fact for fact in report.facts)
    assert any("'vgg16' not found" in p for p in report.problems)  # weights are still checked here


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("sbatch") is None, reason="the SLURM executor plugin needs sbatch on PATH")
def test_preflight_by_hand_under_the_slurm_profile(tmp_path):
    """`seqgan preflight --profile workflow/profiles/slurm TARGET`: Snakemake's own executor decides
    that the network jobs run on the cluster, so this machine's missing CUDA is no problem there."""
    (tmp_path / "params.yaml").write_text((ROOT / "configs" / "imagenet.yaml").read_text())
    profile = str(ROOT / "workflow" / "profiles" / "slurm")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    result = _seqgan_preflight(tmp_path, "--profile", profile, "results/fig2_val_loss.pdf", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "go to the cluster executor" in result.stdout and "CUDA is not usable" not in result.stdout
    assert "data.folder.train_dir" in result.stdout and "'vgg16' not found" in result.stdout
