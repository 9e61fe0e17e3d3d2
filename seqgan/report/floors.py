"""Tokenizer quality floors: when a tokenizer is too weak to carry a comparison.

``evaluation.verdicts.tokenizer_min_psnr`` and ``tokenizer_min_usage`` define them; a tokenizer
below either is flagged (not dropped) wherever its numbers are shown -- claims.md and Fig. 2 --
so a reader sees that a verdict rests on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seqgan.config import VerdictParams


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
