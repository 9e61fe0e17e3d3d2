"""On-disk format of a prepared image split, shared by the synthetic set and real-data preparation.

A split directory holds
- ``images.u8``: raw uint8 pixels, shape (N, H, W, 3), written sequentially so preparation streams
  (peak memory does not grow with N) and training reads it as a memory map (no decode per step);
- ``labels.npy``: int64 class ids, shape (N,) (all zero for unlabelled sets);
- ``manifest.json``: counts, class names, per-class counts, resolution and a SHA-256 content hash
  over pixels and labels, so a reader can tell two preparations apart without opening the pixels.

Why raw bytes and not .npy for the pixels: the number of images that survive preparation is only
known at the end (bad files are skipped), and a raw file can be appended to without rewriting a
header. The manifest carries the shape instead.

This module imports no torch (the model-side conversions are in seqgan/artefacts/tensors.py): data
preparation writes these files on CPU nodes, once per worker process, and importing torch alone
costs about 500 MiB of memory there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seqgan.artefacts.files import MANIFEST_FILE, atomic_write_text, read_manifest

FORMAT_VERSION = 1
IMAGES_FILE = "images.u8"
LABELS_FILE = "labels.npy"


class ImageStoreWriter:
    """Appends fixed-size RGB images and labels to a split directory.

    Files are written under temporary names and renamed only by :meth:`close`, so an interrupted
    preparation never leaves a split that looks complete.
    """

    def __init__(self, directory: str | os.PathLike[str], resolution: int, class_names: list[str]):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.resolution = int(resolution)
        self.class_names = list(class_names)
        self._tmp_images = self.directory / (IMAGES_FILE + ".tmp")
        self._fh = open(self._tmp_images, "wb")
        self._labels: list[int] = []
        self._hash = hashlib.sha256()
        self._closed = False

    def append(self, image: np.ndarray, label: int) -> None:
        """Add one (H, W, 3) uint8 image with its class id."""
        r = self.resolution
        if image.dtype != np.uint8 or image.shape != (r, r, 3):
            raise ValueError(f"expected a ({r}, {r}, 3) uint8 image, got {image.shape} {image.dtype}")
        if not 0 <= int(label) < max(1, len(self.class_names)):
            raise ValueError(f"label {label} outside [0, {len(self.class_names)})")
        data = np.ascontiguousarray(image).tobytes()
        self._fh.write(data)
        self._hash.update(data)
        self._labels.append(int(label))

    def append_batch(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Add (B, H, W, 3) uint8 images; the batch form of :meth:`append` for generators."""
        for image, label in zip(images, labels, strict=True):
            self.append(image, int(label))

    def __len__(self) -> int:
        return len(self._labels)

    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish the split: write labels and manifest, then move the pixels into place."""
        if self._closed:
            raise RuntimeError("writer already closed")
        self._fh.close()
        self._closed = True
        labels = np.asarray(self._labels, dtype=np.int64)
        self._hash.update(labels.tobytes())
        counts = Counter(labels.tolist())
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "count": int(len(labels)),
            "resolution": self.resolution,
            "shape": [int(len(labels)), self.resolution, self.resolution, 3],
            "images_file": IMAGES_FILE,
            "labels_file": LABELS_FILE,
            "num_classes": len(self.class_names),
            "class_names": self.class_names,
            "class_counts": {name: int(counts.get(i, 0)) for i, name in enumerate(self.class_names)},
            "sha256": self._hash.hexdigest(),
        }
        if extra:
            manifest.update(extra)
        tmp_labels = self.directory / (LABELS_FILE + ".tmp.npy")
        np.save(tmp_labels, labels)
        os.replace(tmp_labels, self.directory / LABELS_FILE)
        os.replace(self._tmp_images, self.directory / IMAGES_FILE)
        atomic_write_text(self.directory / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
        return manifest

    def abort(self) -> None:
        """Drop the partial pixels file (used when preparation fails half-way)."""
        if not self._closed:
            self._fh.close()
            self._closed = True
        self._tmp_images.unlink(missing_ok=True)


@dataclass(frozen=True)
class ImageStore:
    """A prepared split opened for reading: pixels as a read-only memory map."""

    directory: Path
    images: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
    labels: np.ndarray  # (N,) int64
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def resolution(self) -> int:
        return int(self.manifest["resolution"])


def open_image_store(directory: str | os.PathLike[str]) -> ImageStore:
    """Open a split written by :class:`ImageStoreWriter`, checking its files agree."""
    directory = Path(directory)
    manifest_path, manifest = read_manifest(
        directory, missing="a prepared split (run the data preparation rule first)", format_version=FORMAT_VERSION
    )
    n, h, w, c = manifest["shape"]
    images_path = directory / manifest["images_file"]
    expected = n * h * w * c
    actual = images_path.stat().st_size
    if actual != expected:
        raise ValueError(f"{images_path}: {actual} bytes, manifest says {expected} (truncated copy?)")
    images = (
        np.memmap(images_path, dtype=np.uint8, mode="r", shape=(n, h, w, c)) if n else np.zeros((0, h, w, c), np.uint8)
    )
    labels = np.load(directory / manifest["labels_file"])
    if labels.shape != (n,):
        raise ValueError(f"{directory / manifest['labels_file']}: shape {labels.shape}, expected ({n},)")
    return ImageStore(directory=directory, images=images, labels=labels, manifest=manifest)


def store_batches(store: Any, batch_size: int, max_images: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive (B, H, W, 3) uint8 batches of a split (copies, so they are writable)."""
    n = len(store) if max_images is None else min(len(store), int(max_images))
    for start in range(0, n, batch_size):
        yield np.array(store.images[start : min(n, start + batch_size)])
