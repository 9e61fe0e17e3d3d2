"""Claim 3's rules: codebook usage with the entropy regulariser, and what the regulariser adds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from seqgan.report.verdicts.outcomes import DOES_NOT_HOLD, HOLDS, UNDECIDED

__all__ = ["full_usage_verdict", "regulariser_verdict"]


def full_usage_verdict(usages: Sequence[float], full_usage: float) -> str:
    """ "About 100 %": *holds* when EVERY tokenizer with the regulariser uses at least ``full_usage``
    of its codebook (the smallest usage decides: one collapsed codebook is enough to fail)."""
    if not usages:
        raise ValueError("no tokenizer with the regulariser to judge")
    return HOLDS if min(usages) >= full_usage else DOES_NOT_HOLD


def regulariser_verdict(differences: Mapping[int, float]) -> str:
    """Usage with minus without the regulariser per seed: *holds* when every seed's is positive,
    *does not hold* when every seed's is negative, else *undecided at this scale*."""
    values = list(differences.values())
    if values and all(d > 0 for d in values):
        return HOLDS
    if values and all(d < 0 for d in values):
        return DOES_NOT_HOLD
    return UNDECIDED
