"""Claim 2's validation-loss rule: which alpha pairs are compared, and the verdict of one pair's
paired per-seed differences (negative is the paper's direction)."""

from __future__ import annotations

from collections.abc import Sequence

from seqgan.report.stats import PairedInterval
from seqgan.report.verdicts.outcomes import DOES_NOT_HOLD, HOLDS, UNDECIDED

__all__ = ["loss_comparisons", "paired_verdict"]


def loss_comparisons(alpha_variants: Sequence[str]) -> list[tuple[str, str]]:
    """(larger alpha, smaller alpha) pairs claim 2 tests: the two ends of the sweep, then every
    adjacent pair (the ends only once when the sweep has two alphas)."""
    pairs = [(alpha_variants[-1], alpha_variants[0])]
    pairs += [(b, a) for a, b in zip(alpha_variants, alpha_variants[1:], strict=False) if (b, a) not in pairs]
    return pairs


def paired_verdict(interval: PairedInterval) -> str:
    """The paper's direction is negative (the larger alpha has the lower loss); see rules_text."""
    if interval.high is not None and interval.high < 0 and all(d < 0 for d in interval.differences.values()):
        return HOLDS
    if interval.low is not None and interval.low > 0:
        return DOES_NOT_HOLD
    return UNDECIDED
