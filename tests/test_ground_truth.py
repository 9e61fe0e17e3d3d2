"""The ground-truth instrument: the generator's record of each scene and what it measures."""

from __future__ import annotations

import numpy as np
import pytest

from seqgan.data.synthetic import generate_images, scene_truth
from seqgan.evaluate.ground_truth import instrument_metrics, srgb_to_lab

N, RES, CLASSES, SEED = 64, 32, 10, 1234


@pytest.fixture(scope="module")
def world() -> tuple[np.ndarray, object]:
    images, labels = generate_images(N, RES, CLASSES, SEED, "val")
    truth = scene_truth(N, RES, CLASSES, SEED, "val")
    assert np.array_equal(truth.labels, labels)
    return images, truth


def test_truth_redraws_the_rendered_scenes(world) -> None:
    images, truth = world
    cov = truth.coverage[..., None]
    composed = truth.background * (1 - cov) + truth.shape_rgb[:, None, None, :] * cov
    # the rendered image is the composition plus pixel noise of at most 0.09, then uint8 rounding
    assert np.abs(images / 255.0 - composed).max() <= 0.09 + 0.5 / 255 + 1e-6
    part = scene_truth(N, RES, CLASSES, SEED, "val", count=5)
    assert np.array_equal(part.coverage, truth.coverage[:5])


def test_lab_reference_colours() -> None:
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab[0], [100.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0.0, 0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)  # sRGB red, D65


def test_originals_score_near_the_ceiling(world) -> None:
    images, truth = world
    m = instrument_metrics(images, truth)
    assert m["mask_iou"] > 0.95
    assert m["shape_colour_delta_e"] < 3.0  # only pixel noise, averaged out inside the shape
    assert m["background_delta_e"] < 10.0  # the pixel noise's own delta E
    assert m["count"] == N and m["count_with_interior"] >= N - 2


def test_each_metric_sees_its_own_factor(world) -> None:
    images, truth = world
    base = instrument_metrics(images, truth)
    # recolour the shape (swap its channels) but keep its outline and luminance band roughly
    inside = truth.coverage >= 0.5
    recoloured = images.copy()
    recoloured[inside] = images[inside][:, ::-1]
    m = instrument_metrics(recoloured, truth)
    assert m["shape_colour_delta_e"] > base["shape_colour_delta_e"] + 5
    assert m["background_delta_e"] == pytest.approx(base["background_delta_e"], abs=0.5)
    # flatten the background to its mean colour: the background error grows, the shape keeps
    flat = images.copy()
    outside = truth.coverage <= 0.0
    for i in range(N):
        flat[i][outside[i]] = images[i][outside[i]].mean(axis=0).round().astype(np.uint8)
    m = instrument_metrics(flat, truth)
    assert m["background_delta_e"] > base["background_delta_e"] + 3
    assert m["mask_iou"] > 0.9 and m["shape_colour_delta_e"] == pytest.approx(base["shape_colour_delta_e"], abs=0.5)
    # a grey image keeps nothing: no shape, no colour
    grey = np.full_like(images, 128)
    m = instrument_metrics(grey, truth)
    assert m["mask_iou"] < 0.6 and m["shape_colour_delta_e"] > 20


def test_mismatched_sizes_are_refused(world) -> None:
    images, truth = world
    with pytest.raises(ValueError, match="differ in size"):
        instrument_metrics(images[:, :16, :16], truth)
