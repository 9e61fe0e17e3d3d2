"""PSNR: the one definition every reported reconstruction PSNR uses.

It exists so that the number written into a tokenizer's sidecar at the end of training
(:mod:`seqgan.train.tokenizer_eval`), the evaluation stage's ``psnr``
(:mod:`seqgan.evaluate.reconstruction`) and the per-image PSNR of supplement Fig. 1
(:mod:`seqgan.report.fig1`) are one quantity under one name. It sits in the losses layer -- the
lowest layer the trainer and the evaluation share for distances between images -- because the
training code may not import the evaluation code.

The definition (what the paper's PSNR means: the images as stored and shown):

* images are uint8 (B, H, W, C); a reconstruction is first turned into one with
  :func:`seqgan.artefacts.tensors.to_uint8` (clamp to [-1, 1], map to 0..255, round);
* per image, ``10 log10(255^2 / MSE)``, MSE over all H x W x C values, in float64; identical images
  have MSE = 0 and PSNR = inf (:func:`psnr`);
* a batch's reported PSNR is the mean over images, where an identical image counts as the PSNR of
  the smallest non-zero error, one value off by one: ``10 log10(255^2 * H * W * C)``
  (:func:`psnr_cap_db`; 83.0 dB at 32 px, 101.1 dB at 256 px), so the mean stays finite and
  valid JSON (:func:`mean_psnr`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mean_psnr", "psnr", "psnr_cap_db", "psnr_definition"]


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB of two (B, H, W, 3) uint8 batches; inf where the images are identical."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"PSNR needs two (B, H, W, C) batches of one shape, got {a.shape}, {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"PSNR is defined here on uint8 images, got {a.dtype}, {b.dtype}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def psnr_cap_db(height: int, width: int, channels: int = 3) -> float:
    """PSNR of one value off by one (the smallest non-zero error): identical images count as this."""
    return 10.0 * math.log10(255.0**2 * height * width * channels)


def mean_psnr(per_image_db: np.ndarray, height: int, width: int, channels: int = 3) -> float:
    """The reported PSNR: the mean of :func:`psnr` values over images, identical images (inf)
    counted as :func:`psnr_cap_db`."""
    return float(np.minimum(per_image_db, psnr_cap_db(height, width, channels)).mean())


def psnr_definition(height: int, width: int, channels: int = 3) -> str:
    """How :func:`mean_psnr` is computed, in words (for ``computed_with`` records and sidecars)."""
    cap = psnr_cap_db(height, width, channels)
    return (
        "mean over images of 10 log10(255^2 / MSE), MSE over all uint8 values of an image; "
        f"identical images count as {cap:.2f} dB (one value off by one)"
    )
