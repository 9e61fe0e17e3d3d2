"""On-disk format of a generated sample set (written by :func:`seqgan.sample.generate.generate_samples`):
``images/*.png``, ``labels.npy``, ``tokens.npy`` and ``manifest.json`` (written last)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seqgan.artefacts.files import read_manifest

__all__ = ["SampleSet", "check_sample_identity", "open_sample_set", "sample_set_record"]

LABELS_FILE = "labels.npy"


@dataclass(frozen=True)
class SampleSet:
    """A finished sample directory: PNG paths in index order, labels and the manifest."""

    directory: Path
    image_paths: tuple[Path, ...]
    labels: np.ndarray  # (N,) int64; -1 for an unconditional model
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def conditional(self) -> bool:
        return self.manifest.get("class_counts") is not None

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    def read(self, indices: np.ndarray | list[int] | range) -> np.ndarray:
        """(len(indices), H, W, 3) uint8 images, read from the PNGs."""
        images = [np.asarray(Image.open(self.image_paths[int(i)]).convert("RGB")) for i in indices]
        if not images:
            raise ValueError(f"{self.directory}: no images selected")
        return np.stack(images)

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Consecutive (B, H, W, 3) uint8 batches of all samples, in index order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start in range(0, len(self), batch_size):
            yield self.read(range(start, min(len(self), start + batch_size)))

    def verify_images(self) -> None:
        """Compare the PNG bytes with the manifest's ``images_sha256`` (edited or swapped files)."""
        expected = self.manifest.get("images_sha256")
        if not expected:
            return
        h = hashlib.sha256()
        for path in self.image_paths:
            h.update(path.read_bytes())
        if h.hexdigest() != expected:
            raise ValueError(
                f"{self.directory}: the PNGs in images/ do not match the manifest's images_sha256 "
                "(files changed after sampling); rerun the sampling rule"
            )


def open_sample_set(directory: str | Path, *, verify: bool = True) -> SampleSet:
    """Open a sample directory, checking that manifest, labels and PNG files agree."""
    directory = Path(directory)
    manifest_path, manifest = read_manifest(
        directory, missing="a finished sample set (the `sample` rule writes the manifest last)"
    )
    if manifest.get("kind") != "generated_samples":
        raise ValueError(f"{manifest_path}: kind {manifest.get('kind')!r}, expected 'generated_samples'")
    count = int(manifest["count"])
    images_dir = directory / manifest.get("images_dir", "images")
    paths = tuple(sorted(images_dir.glob("*.png")))
    if len(paths) != count:
        raise ValueError(f"{images_dir}: {len(paths)} PNG files, the manifest says {count}")
    labels = np.load(directory / manifest.get("labels_file", LABELS_FILE))
    if labels.shape != (count,):
        raise ValueError(f"{directory / LABELS_FILE}: shape {labels.shape}, expected ({count},)")
    samples = SampleSet(directory, paths, labels.astype(np.int64), manifest)
    if verify:
        samples.verify_images()
    return samples


def sample_set_record(samples: SampleSet) -> dict[str, Any]:
    """Identity of the sample set a metric was computed on (directory, hashes, checkpoints)."""
    m: Mapping[str, Any] = samples.manifest
    return {
        "directory": str(samples.directory),
        "count": len(samples),
        "images_sha256": m.get("images_sha256"),
        "tokens_sha256": m.get("tokens_sha256"),
        "resolution": m.get("resolution"),
        "class_counts": m.get("class_counts"),
        "transformer_checkpoint": m.get("transformer_checkpoint"),
        "tokenizer_checkpoint": m.get("tokenizer_checkpoint"),
    }


def check_sample_identity(
    samples: SampleSet, *, objective: str, decoder: str, seed: int | None, conditional: bool
) -> None:
    """Refuse a sample directory that is not what the command line says it is."""
    m = samples.manifest
    problems = []
    if m.get("objective") != objective:
        problems.append(f"objective {m.get('objective')!r} != --objective {objective!r}")
    if seed is not None and int(m.get("seed", -1)) != seed:
        problems.append(f"seed {m.get('seed')!r} != --seed {seed}")
    phase = (m.get("tokenizer_checkpoint") or {}).get("phase")
    if phase is not None and f"phase{phase}" != decoder:
        problems.append(f"decoded with a phase-{phase} tokenizer, not the {decoder} decoder")
    if samples.conditional != conditional:
        problems.append(f"class-conditional = {samples.conditional}, params transformer.conditional = {conditional}")
    if problems:
        raise SystemExit(f"error: {samples.directory / 'manifest.json'}: " + "; ".join(problems))
