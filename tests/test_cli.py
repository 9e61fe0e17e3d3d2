"""`seqgan` commands: params -> library arguments, split selection, and user errors without tracebacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from seqgan import cli
from seqgan.artefacts.images import open_image_store

ROOT = Path(__file__).resolve().parents[1]


def write_params(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_prepare_synthetic_split_from_params(tmp_path):
    params = write_params(tmp_path, data__synthetic__train_images=30, data__synthetic__val_images=12)
    assert cli.main(["prepare-data", "--params", str(params), "--split", "val", "--out", str(tmp_path / "val")]) == 0
    store = open_image_store(tmp_path / "val")
    assert len(store) == 12 and store.resolution == 32
    assert store.manifest["split"] == "val" and store.manifest["source"] == "synthetic"


def _image_folder(root: Path, count: int) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:03d}.png")


def test_folder_without_val_dir_holds_out_a_disjoint_validation_split(tmp_path):
    _image_folder(tmp_path / "raw", 40)
    params = write_params(
        tmp_path,
        data__source="folder",
        data__folder__train_dir=str(tmp_path / "raw"),
        data__folder__layout="flat",
        data__folder__val_holdout_fraction=0.3,
        data__folder__workers=1,
    )
    for split in ("train", "val"):
        assert (
            cli.main(["prepare-data", "--params", str(params), "--split", split, "--out", str(tmp_path / split)]) == 0
        )
    train, val = open_image_store(tmp_path / "train"), open_image_store(tmp_path / "val")
    assert len(train) + len(val) == 40 and len(val) > 0 and len(train) > 0
    assert train.manifest["subset"] == "train" and val.manifest["subset"] == "holdout"
    train_rows = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in train_rows for row in val.images)


def test_missing_image_folder_is_a_clear_error_without_traceback(tmp_path, capsys):
    params = write_params(tmp_path, data__source="folder", data__folder__train_dir=str(tmp_path / "nowhere"))
    code = cli.main(["prepare-data", "--params", str(params), "--split", "train", "--out", str(tmp_path / "t")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path / "nowhere") in err and "Traceback" not in err


def test_invalid_params_exit_2_naming_the_key(tmp_path, capsys):
    params = write_params(tmp_path, run__device="gpu")
    assert cli.main(["validate-params", "--params", str(params)]) == 2
    assert 'run.device = "gpu"' in capsys.readouterr().err


def test_programming_errors_are_not_swallowed(tmp_path, monkeypatch):
    def boom(args):
        raise KeyError("bug")

    monkeypatch.setattr(cli, "cmd_validate_params", boom)
    with pytest.raises(KeyError):
        cli.main(["validate-params"])
