"""Tests of the embedded synthetic shape set (seqgan.data.synthetic)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from seqgan.artefacts.images import open_image_store
from seqgan.data import synthetic
from seqgan.data.synthetic import SHAPE_NAMES, generate_images, write_synthetic_split


def _digest(images: np.ndarray, labels: np.ndarray) -> str:
    """The content hash ImageStoreWriter computes: pixels in order, then int64 labels."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(labels.astype(np.int64).tobytes())
    return h.hexdigest()


def test_shape_names_cover_at_least_ten_distinct_classes():
    assert len(SHAPE_NAMES) >= 10
    assert len(set(SHAPE_NAMES)) == len(SHAPE_NAMES)


def test_same_seed_and_split_gives_identical_bytes():
    a_img, a_lab = generate_images(40, 32, 10, seed=3, split="train")
    b_img, b_lab = generate_images(40, 32, 10, seed=3, split="train")
    assert a_img.tobytes() == b_img.tobytes()
    assert a_lab.tobytes() == b_lab.tobytes()


def test_different_seed_or_split_gives_different_images():
    base, _ = generate_images(40, 32, 10, seed=3, split="train")
    other_seed, _ = generate_images(40, 32, 10, seed=4, split="train")
    other_split, _ = generate_images(40, 32, 10, seed=3, split="val")
    for other in (other_seed, other_split):
        # Not merely "some byte differs": every image of the split is a different scene.
        differs = (base.astype(np.int16) - other).reshape(len(base), -1).any(axis=1)
        assert differs.all()


def test_chunk_size_does_not_change_content():
    whole = list(synthetic._iter_chunks(37, 32, 10, 5, "train", chunk_size=37))
    for chunk_size in (1, 7, 16):
        chunks = list(synthetic._iter_chunks(37, 32, 10, 5, "train", chunk_size=chunk_size))
        assert len(chunks) == -(-37 // chunk_size)
        images = np.concatenate([c[0] for c in chunks])
        labels = np.concatenate([c[1] for c in chunks])
        assert images.tobytes() == whole[0][0].tobytes()
        assert labels.tobytes() == whole[0][1].tobytes()


def test_written_split_matches_generated_arrays(tmp_path, monkeypatch):
    # Small write chunks so the streaming path really takes several appends.
    monkeypatch.setattr(synthetic, "WRITE_CHUNK_IMAGES", 8)
    images, labels = generate_images(30, 32, 4, seed=11, split="val")
    manifest = write_synthetic_split(tmp_path / "val", 30, 32, 4, seed=11, split="val")

    assert manifest["sha256"] == _digest(images, labels)
    assert manifest["count"] == 30
    assert manifest["class_names"] == list(SHAPE_NAMES[:4])
    for key, value in {
        "source": "synthetic",
        "split": "val",
        "seed": 11,
        "generator": "seqgan.data.synthetic v1",
    }.items():
        assert manifest[key] == value

    store = open_image_store(tmp_path / "val")
    assert np.array_equal(np.asarray(store.images), images)
    assert np.array_equal(store.labels, labels)
    assert store.labels.dtype == np.int64


@pytest.mark.parametrize("num_images,num_classes", [(50, 10), (53, 10), (7, 3), (25, 12)])
def test_class_balance_is_exact(num_images, num_classes):
    _, labels = generate_images(num_images, 16, num_classes, seed=0, split="train")
    counts = np.bincount(labels, minlength=num_classes)
    base, rest = divmod(num_images, num_classes)
    expected = np.array([base + (c < rest) for c in range(num_classes)])
    assert np.array_equal(counts, expected)
    # ... and the order is shuffled, not grouped by class.
    assert not np.array_equal(labels, np.sort(labels))


def test_shapes_are_distinct_up_to_rotation_and_scale():
    """Area-matched class masks, best IoU over rotations: no two classes are the same shape."""
    resolution, scale = 64, 0.3
    k = len(SHAPE_NAMES)
    labels = np.arange(k)
    center = np.full((k, 2), 0.5)
    masks = synthetic._shape_coverage(labels, np.full(k, scale), center, np.zeros(k), resolution)
    area = masks.sum(axis=(1, 2))
    assert (area > 0.05 * resolution**2).all(), "a shape renders (nearly) empty"

    angles = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    best = np.zeros((k, k))
    for a in range(k):
        for b in range(a + 1, k):
            matched = scale * np.sqrt(area[a] / area[b])
            rotated = synthetic._shape_coverage(
                np.full(72, b), np.full(72, matched), np.full((72, 2), 0.5), angles, resolution
            )
            inter = np.minimum(masks[a], rotated).sum(axis=(1, 2))
            union = np.maximum(masks[a], rotated).sum(axis=(1, 2))
            best[a, b] = best[b, a] = (inter / union).max()
    upper = best[np.triu_indices(k, 1)]
    assert upper.max() < 0.95  # hexagon vs circle is the closest pair (~0.93)
    assert best[:10, :10].max() < 0.88  # the default ten classes are further apart (~0.83)
    assert upper.mean() < 0.65


def test_foreground_and_background_are_separated_in_luminance():
    """Every fully covered shape pixel is on the other side of every background pixel."""
    rng = synthetic._split_rng(0, "train")
    params = synthetic._draw_params(rng, 64, 10)
    images = synthetic._render(params, 32)
    cover = synthetic._shape_coverage(params.labels, params.scale, params.center, params.angle, 32)
    luma = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for lum, cov in zip(luma, cover, strict=True):
        inside, outside = lum[cov > 0.999], lum[cov < 0.001]
        assert inside.size >= 10 and outside.size >= 200
        gap = max(inside.min() - outside.max(), outside.min() - inside.max())
        assert gap > 20  # in 0..255 units, after noise


def test_background_is_textured():
    images, _ = generate_images(32, 32, 10, seed=1, split="train")
    # Horizontal neighbour differences: flat backgrounds would give ~noise only (~5 levels).
    grad = np.abs(np.diff(images.astype(np.int16), axis=2)).mean(axis=(1, 2, 3))
    assert np.median(grad) > 8
    assert (images.reshape(32, -1, 3).std(axis=1).mean(axis=1) > 10).all()


@pytest.mark.parametrize("resolution", [32, 64])
def test_output_dtype_shape_and_range(resolution):
    images, labels = generate_images(12, resolution, 10, seed=2, split="train")
    assert images.shape == (12, resolution, resolution, 3)
    assert images.dtype == np.uint8
    assert labels.shape == (12,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 10
    assert images.max() > 200 and images.min() < 60  # uses the range, not a washed-out band


def test_resolution_changes_sampling_not_scene():
    """Geometry is in normalised coordinates: downsampled 64 px images resemble the 32 px ones."""
    small, labels_small = generate_images(8, 32, 10, seed=9, split="train")
    large, labels_large = generate_images(8, 64, 10, seed=9, split="train")
    assert np.array_equal(labels_small, labels_large)
    pooled = large.astype(np.float64).reshape(8, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    assert np.abs(pooled - small).mean() < 20


def test_zero_images_is_an_empty_split():
    images, labels = generate_images(0, 32, 10, seed=0, split="train")
    assert images.shape == (0, 32, 32, 3) and labels.shape == (0,)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"num_classes": len(SHAPE_NAMES) + 1}, "num_classes"),
        ({"num_classes": 1}, "num_classes"),
        ({"resolution": 15}, "resolution"),
        ({"num_images": -1}, "num_images"),
        ({"seed": -1}, "seed"),
        ({"split": ""}, "split"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(kwargs, name, tmp_path):
    args = {"num_images": 4, "resolution": 32, "num_classes": 10, "seed": 0, "split": "train"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        generate_images(**args)
    with pytest.raises(ValueError, match=name):
        write_synthetic_split(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()  # nothing half-written
