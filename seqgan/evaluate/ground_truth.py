"""The ground-truth instrument: what a tokenizer's reconstructions keep of what the synthetic
world knows about each image.

The alpha experiment trades detail for semantics, so both are measured against the generator's own
record (:func:`seqgan.data.synthetic.scene_truth`), never against a network the tokenizer trained
with:

* **semantic fidelity**: ``mask_iou``, the intersection over union of the shape's mask and the
  reconstruction's thresholded luminance. The generator puts shape and background in disjoint
  luminance bands, so the threshold is the midpoint between the shape's luminance and the clean
  background's mean luminance (per image; "inside" is the side the shape's luminance is on).
  The judge network's class accuracy (``seqgan.evaluate.judge``) is the other half.
* **detail fidelity**: ``shape_colour_delta_e``, the CIE76 colour difference (CIELAB, D65)
  between the mean reconstructed colour of the shape's interior and the shape's true colour (about
  2.3 is a just-noticeable difference; below about 10 a person calls it the same hue); and
  ``background_delta_e``, the mean per-pixel CIE76 difference between the reconstruction and the
  clean background (no shape, no pixel noise) outside the shape.

Interior and exterior are eroded by one pixel (3x3), so the anti-aliased outline, which neither
colour owns, is left out. An image whose eroded interior is empty has no colour error (excluded
and counted).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqgan.data.synthetic import SceneTruth

__all__ = ["INSTRUMENT_DEFINITION", "instrument_metrics", "srgb_to_lab"]

INSTRUMENT_DEFINITION = {
    "mask_iou": "IoU of the shape mask (coverage >= 0.5) and the reconstruction's luminance thresholded "
    "midway between the shape's and the clean background's mean luminance; mean over images",
    "shape_colour_delta_e": "CIE76 delta E (CIELAB, D65) between the mean reconstructed colour inside the "
    "shape (eroded 1 px) and the shape's true colour; mean over images with an interior",
    "background_delta_e": "mean per-pixel CIE76 delta E between the reconstruction and the clean background "
    "(no shape, no noise) outside the shape (eroded 1 px); mean over images",
    "source": "the synthetic generator's scene parameters (seqgan.data.synthetic.scene_truth)",
}

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)  # the generator's own luminance weights
# sRGB (D65) -> XYZ, and the D65 white point (IEC 61966-2-1)
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1], shape (..., 3) -> CIELAB (D65), shape (..., 3)."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _erode(mask: np.ndarray) -> np.ndarray:
    """(N, H, W) bool -> pixels whose whole 3x3 neighbourhood (inside the image) is in the mask."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)), constant_values=True)
    h, w = mask.shape[1:]
    out = np.ones_like(mask)
    for dy in range(3):
        for dx in range(3):
            out &= padded[:, dy : dy + h, dx : dx + w]
    return out


def instrument_metrics(images: np.ndarray, truth: SceneTruth) -> dict[str, Any]:
    """Mask IoU, shape colour error and background error of (N, R, R, 3) uint8 ``images``
    (reconstructions, or the originals for the ceiling) against the first N scenes of ``truth``."""
    x = np.asarray(images, dtype=np.float64) / 255.0
    n = x.shape[0]
    coverage = truth.coverage[:n]
    if coverage.shape != x.shape[:3]:
        raise ValueError(f"images {x.shape[:3]} and ground truth {coverage.shape} differ in size")
    inside, outside = _erode(coverage >= 1.0), _erode(coverage <= 0.0)
    shape_rgb = truth.shape_rgb[:n].astype(np.float64)
    background = truth.background[:n].astype(np.float64)

    # semantic: the thresholded mask
    luma = x @ _LUMA
    shape_luma = shape_rgb @ _LUMA
    background_luma = np.array([(background[i] @ _LUMA)[outside[i]].mean() for i in range(n)])
    threshold = (shape_luma + background_luma) / 2
    brighter = shape_luma > background_luma
    predicted = np.where(brighter[:, None, None], luma > threshold[:, None, None], luma < threshold[:, None, None])
    true_mask = coverage >= 0.5
    union = (predicted | true_mask).sum(axis=(1, 2))
    iou = (predicted & true_mask).sum(axis=(1, 2)) / np.maximum(union, 1)

    # detail: colour inside, background outside
    has_interior = inside.any(axis=(1, 2))
    mean_inside = np.array([x[i][inside[i]].mean(axis=0) if has_interior[i] else np.full(3, np.nan) for i in range(n)])
    colour_error = np.linalg.norm(srgb_to_lab(mean_inside) - srgb_to_lab(shape_rgb), axis=-1)[has_interior]
    pixel_error = np.linalg.norm(srgb_to_lab(x) - srgb_to_lab(background), axis=-1)
    background_error = np.array([pixel_error[i][outside[i]].mean() for i in range(n)])
    return {
        "mask_iou": float(iou.mean()),
        "shape_colour_delta_e": float(colour_error.mean()) if colour_error.size else float("nan"),
        "background_delta_e": float(background_error.mean()),
        "count": int(n),
        "count_with_interior": int(has_interior.sum()),
    }
