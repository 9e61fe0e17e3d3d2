"""Your own images, as the README's three commands run them: `seqgan new-config` on a folder of real
photographs, `seqgan use-config`, then the main job (at seconds-scale model sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from test_workflow import shrink_pipeline

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "chelsea", "coffee")  # real photographs shipped in scikit-image's wheel


def photo_folder(root: Path, per_class: int, size: int = 80) -> Path:
    """Random ``size`` px crops of three real photographs, one class folder each (JPEG, as cameras write)."""
    skimage = pytest.importorskip("skimage")
    data = Path(skimage.__file__).parent / "data"
    rng = np.random.default_rng(0)
    for name in PHOTOS:
        photo = np.asarray(Image.open(data / f"{name}.png").convert("RGB"))
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            y, x = (int(rng.integers(0, side - size)) for side in photo.shape[:2])
            Image.fromarray(photo[y : y + size, x : x + size]).save(root / name / f"{i:03d}.jpg", quality=90)
    return root


def seqgan(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqgan", *args], cwd=workdir, capture_output=True, text=True, timeout=300
    )


def workspace(tmp_path: Path) -> Path:
    """A repository root as a user has it: params.yaml (the embedded default) and configs/."""
    work = tmp_path / "repo"
    (work / "configs").mkdir(parents=True)
    for source in (ROOT / "configs").glob("*.yaml"):
        (work / "configs" / source.name).write_bytes(source.read_bytes())
    (work / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    return work


def test_new_config_says_each_choice_and_validates(tmp_path):
    """The written file: the folder's layout, classes and held-out share, the CPU recipe's values
    elsewhere, a comment on each chosen key; a second run refuses to overwrite it."""
    work = workspace(tmp_path)
    photo_folder(work / "photos", per_class=20)
    made = seqgan(work, "new-config", "--images", "photos", "--name", "my_photos", "--machine", "cpu")
    assert made.returncode == 0, made.stdout + made.stderr
    text = (work / "configs" / "my_photos.yaml").read_text()
    raw = yaml.safe_load(text)
    embedded = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert raw["data"]["folder"]["train_dir"] == "photos" and raw["data"]["folder"]["layout"] == "classes"
    assert raw["data"]["name"] == raw["run"]["name"] == "my_photos" and raw["run"]["device"] == "cpu"
    assert raw["transformer"]["num_classes"] == 3
    assert raw["data"]["resolution"] == embedded["data"]["resolution"]  # 80 px photos: the recipe's 32
    assert raw["semantic"]["min_val_accuracy"] == pytest.approx(0.67)  # halfway from chance 1/3 to 1
    assert raw["tokenizer"] == embedded["tokenizer"] and raw["evaluation"] == embedded["evaluation"]
    commented = [line for line in text.splitlines() if "# new-config: " in line]
    assert any(
        line.strip().startswith("train_dir: photos  # new-config: ") and "3 class folders" in line for line in commented
    )
    assert len(commented) >= 10
    assert "seqgan use-config my_photos && snakemake results/fig2_val_loss.pdf --cores all" in made.stdout
    assert "Expected time of the main job here: about " in made.stdout and "0 problem(s)" in made.stdout
    again = seqgan(work, "new-config", "--images", "photos", "--name", "my_photos", "--machine", "cpu")
    assert again.returncode != 0 and "exists" in again.stderr


def test_new_config_refuses_what_the_cpu_recipe_cannot_train(tmp_path):
    work = workspace(tmp_path)
    photo_folder(work / "photos", per_class=2)
    flat = seqgan(work, "new-config", "--images", "photos/coffee", "--name", "flat", "--machine", "cpu")
    assert flat.returncode != 0 and "no class sub-folders" in flat.stderr
    missing = seqgan(work, "new-config", "--images", "nowhere", "--name", "x", "--machine", "cpu")
    assert missing.returncode != 0 and "no such folder" in missing.stderr
    bad_name = seqgan(work, "new-config", "--images", "photos", "--name", "../x", "--machine", "cpu")
    assert bad_name.returncode != 0 and "--name" in bad_name.stderr
    assert sorted(p.stem for p in (work / "configs").glob("*.yaml")) == sorted(
        p.stem for p in (ROOT / "configs").glob("*.yaml")
    )  # nothing written


def test_the_main_job_time_is_scaled_from_the_reference_run():
    """The estimate is the reference main job's wall time, scaled by job times: the same data gives
    the reference's time, and 4x the pixels per image makes it longer (training jobs scale too)."""
    from collections import Counter

    from seqgan.new_config import main_job_estimate

    raw = yaml.safe_load((ROOT / "configs" / "embedded.yaml").read_text())
    run = json.loads((ROOT / "results" / "reference" / "run.json").read_text())
    synthetic = raw["data"]["synthetic"]
    same = {"train": synthetic["train_images"], "val": synthetic["val_images"]}
    counts = Counter({"tokenizer_phase1": 10, "prepare_data": 2, "encode_tokens": 10, "fig2_val_loss": 1})
    seconds, how = main_job_estimate(raw, counts, same)
    assert seconds == pytest.approx(run["main_job"]["wall_seconds"])
    assert run["machine"]["cpu_model"] in how
    raw["data"]["resolution"] = 2 * raw["data"]["resolution"]
    larger, _ = main_job_estimate(raw, counts, same)
    assert run["main_job"]["wall_seconds"] * 3.5 < larger < run["main_job"]["wall_seconds"] * 4
    raw["tokenizer"]["phase1"]["iterations"] += 1  # not the measured recipe: no estimate
    assert main_job_estimate(raw, counts, same) is None


@pytest.mark.slow
def test_real_photographs_reach_fig2_with_the_readme_commands(tmp_path):
    """new-config, use-config and the main job on crops of real photographs; the prepared manifest
    holds the three classes and the figure's title names the data and the params."""
    work = workspace(tmp_path)
    photo_folder(work / "photos", per_class=24)
    made = seqgan(work, "new-config", "--images", "photos", "--name", "skimage_photos", "--machine", "cpu")
    assert made.returncode == 0, made.stdout + made.stderr
    config = work / "configs" / "skimage_photos.yaml"
    config.write_text(yaml.safe_dump(shrink_pipeline(yaml.safe_load(config.read_text())), sort_keys=False))
    switched = seqgan(work, "use-config", "skimage_photos")
    assert switched.returncode == 0, switched.stderr
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    main_job = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "results/fig2_val_loss.pdf"]
        + ["--cores", "2"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert main_job.returncode == 0, main_job.stdout[-3000:] + main_job.stderr[-3000:]
    train = json.loads((work / "data" / "skimage_photos" / "train" / "manifest.json").read_text())
    val = json.loads((work / "data" / "skimage_photos" / "val" / "manifest.json").read_text())
    assert train["class_names"] == list(PHOTOS) and train["resolution"] == 32
    assert train["count"] + val["count"] == 3 * 24 and val["count"] > 0
    pdf = (work / "results" / "fig2_val_loss.pdf").read_bytes()
    assert b"skimage_photos data, skimage_photos params" in pdf  # the title, as the PDF's Title metadata
    assert (work / "results" / "fig2_val_loss.png").is_file()


def test_a_separate_validation_folder_replaces_the_holdout(tmp_path):
    work = workspace(tmp_path)
    photo_folder(work / "photos", per_class=6)
    photo_folder(work / "photos_val", per_class=2)
    made = seqgan(
        work, "new-config", "--images", "photos", "--val", "photos_val", "--name", "split", "--machine", "cpu"
    )
    assert made.returncode == 0, made.stdout + made.stderr
    folder = yaml.safe_load((work / "configs" / "split.yaml").read_text())["data"]["folder"]
    assert folder["val_dir"] == "photos_val" and folder["val_holdout_fraction"] == 0.0
    assert "data val: 6 images in 3 class folders" in made.stdout  # the preflight counted the folder
