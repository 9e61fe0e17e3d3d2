"""The prepared-split format: round trip, content hash, and refusal of damaged splits."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seqgan.artefacts.images import ImageStoreWriter, open_image_store


def _images(n: int, r: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, r, r, 3), dtype=np.uint8), rng.integers(0, 3, n)


def test_round_trip_and_manifest(tmp_path):
    images, labels = _images(7)
    writer = ImageStoreWriter(tmp_path / "split", 8, ["a", "b", "c"])
    writer.append_batch(images, labels)
    manifest = writer.close({"source": "test"})
    store = open_image_store(tmp_path / "split")
    np.testing.assert_array_equal(store.images, images)
    np.testing.assert_array_equal(store.labels, labels)
    assert manifest["count"] == len(store) == 7
    assert manifest["source"] == "test"
    assert sum(manifest["class_counts"].values()) == 7
    assert manifest["class_counts"]["b"] == int((labels == 1).sum())
    expected = hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    assert manifest["sha256"] == expected
    assert json.loads((tmp_path / "split" / "manifest.json").read_text()) == manifest


def test_no_manifest_until_closed_and_abort_cleans_up(tmp_path):
    images, labels = _images(2)
    writer = ImageStoreWriter(tmp_path / "s", 8, ["a", "b", "c"])
    writer.append_batch(images, labels)
    with pytest.raises(FileNotFoundError, match="not a prepared split"):
        open_image_store(tmp_path / "s")
    writer.abort()
    assert not any((tmp_path / "s").iterdir())


def test_rejects_wrong_images_and_labels(tmp_path):
    writer = ImageStoreWriter(tmp_path / "s", 8, ["a", "b"])
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) uint8"):
        writer.append(np.zeros((8, 8, 3), np.float32), 0)
    with pytest.raises(ValueError, match="label 2 outside"):
        writer.append(np.zeros((8, 8, 3), np.uint8), 2)


def test_truncated_pixels_are_detected(tmp_path):
    images, labels = _images(3)
    writer = ImageStoreWriter(tmp_path / "s", 8, ["a", "b", "c"])
    writer.append_batch(images, labels)
    writer.close()
    path = tmp_path / "s" / "images.u8"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        open_image_store(tmp_path / "s")
