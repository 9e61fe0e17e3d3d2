"""Tokenizer quality floors: when a tokenizer is too weak to carry a comparison.

``evaluation.verdicts.tokenizer_min_psnr`` and ``tokenizer_min_usage`` define them; a tokenizer
below either is flagged (not dropped) wherever its numbers are shown -- claims.md and Fig. 2 --
so a reader sees that a verdict rests on it.

The capacity check asks the opposite question of the smallest alpha's tokenizers: do they keep the
details (colour, texture) that a larger alpha is meant to trade for semantics? Its floors are
``capacity_min_psnr`` and a colour floor derived from the data (:func:`hue_step_delta_e`).
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqgan.config import Params, VerdictParams
from seqgan.data.synthetic import scene_truth
from seqgan.evaluate.ground_truth import srgb_to_lab


def tokenizer_floor_flags(metrics: Mapping[str, Any], verdicts: VerdictParams) -> list[str]:
    """Why a tokenizer's metrics (an eval_tokenizer JSON) fall below a floor; empty when they pass."""
    flags = []
    psnr, usage = float(metrics["psnr"]), float(metrics["codebook_usage"])
    if psnr < verdicts.tokenizer_min_psnr:
        flags.append(f"PSNR {psnr:.2f} dB < evaluation.verdicts.tokenizer_min_psnr {verdicts.tokenizer_min_psnr}")
    if usage < verdicts.tokenizer_min_usage:
        flags.append(
            f"codebook usage {usage:.3f} < evaluation.verdicts.tokenizer_min_usage {verdicts.tokenizer_min_usage}"
        )
    return flags


def hue_step_delta_e(params: Params) -> float | None:
    """The colour floor of the capacity check, derived from the data: the median CIE76 delta E between
    each validation shape's true colour and the same colour with its hue rotated by
    ``evaluation.verdicts.capacity_hue_step_degrees`` (30: one step of a 12-hue colour wheel, e.g.
    red to orange). A reconstruction whose shape colour error stays below it keeps the hue a person
    would name. None for data without a generator (no true colours)."""
    if params.data.source != "synthetic":
        return None
    s = params.data.synthetic
    truth = scene_truth(s.val_images, params.data.resolution, s.num_classes, s.seed, "val")
    rgb = truth.shape_rgb.astype(np.float64)
    hsv = np.array([colorsys.rgb_to_hsv(*c) for c in rgb])
    hsv[:, 0] = (hsv[:, 0] + params.evaluation.verdicts.capacity_hue_step_degrees / 360.0) % 1.0
    rotated = np.array([colorsys.hsv_to_rgb(*c) for c in hsv])
    return float(np.median(np.linalg.norm(srgb_to_lab(rotated) - srgb_to_lab(rgb), axis=-1)))


@dataclass(frozen=True)
class CapacityCheck:
    """Do the smallest alpha's tokenizers keep the details alpha is meant to trade? Per seed: PSNR at
    least ``capacity_min_psnr`` and (with ground truth) shape colour delta E below the hue step."""

    variant: str
    psnr: dict[int, float]
    colour_delta_e: dict[int, float | None]
    min_psnr: float
    max_colour_delta_e: float | None

    def failures(self) -> list[str]:
        out = [
            f"{self.variant} seed {s}: PSNR {p:.2f} dB < {self.min_psnr}"
            for s, p in self.psnr.items()
            if p < self.min_psnr
        ]
        if self.max_colour_delta_e is not None:
            out += [
                f"{self.variant} seed {s}: shape colour delta E "
                + ("not measured" if d is None else f"{d:.1f} >= {self.max_colour_delta_e:.1f}")
                for s, d in self.colour_delta_e.items()
                if d is None or d >= self.max_colour_delta_e
            ]
        return out

    @property
    def passed(self) -> bool:
        return not self.failures()

    def describe(self) -> str:
        colour = (
            ""
            if self.max_colour_delta_e is None
            else f" and shape colour delta E below {self.max_colour_delta_e:.1f} (the median delta E of a hue step)"
        )
        head = f"{self.variant} tokenizers at least {self.min_psnr} dB PSNR{colour} in every seed"
        return f"{head}: {'passes' if self.passed else 'fails (' + '; '.join(self.failures()) + ')'}"


def capacity_check(params: Params, variant: str, metrics_by_seed: Mapping[int, Mapping[str, Any]]) -> CapacityCheck:
    """:class:`CapacityCheck` of one tokenizer variant's eval_tokenizer metrics per seed."""
    colour = {
        s: ((m.get("instrument") or {}).get("reconstructed") or {}).get("shape_colour_delta_e")
        for s, m in metrics_by_seed.items()
    }
    return CapacityCheck(
        variant,
        {s: float(m["psnr"]) for s, m in metrics_by_seed.items()},
        {s: None if d is None else float(d) for s, d in colour.items()},
        params.evaluation.verdicts.capacity_min_psnr,
        hue_step_delta_e(params),
    )
