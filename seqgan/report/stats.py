"""Seed-spread arithmetic shared by the tables and the claims audit.

Kept tiny and pure so the numbers a verdict rests on are easy to test: the sample standard
deviation (ddof = 1, undefined for one value), min-max, and paired differences matched by seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """Mean, sample std (None for fewer than two values), min, max and count of a set of values."""

    mean: float
    std: float | None
    minimum: float
    maximum: float
    count: int

    def describe(self, digits: int = 3) -> str:
        """``2.896 +- 0.012 (min 2.88, max 2.91, n = 3)``; one value prints as itself with n = 1."""
        f = f"{{:.{digits}f}}"
        if self.count == 1:
            return f"{f.format(self.mean)} (n = 1, no spread)"
        return (
            f"{f.format(self.mean)} +- {f.format(self.std)} "
            f"(min {f.format(self.minimum)}, max {f.format(self.maximum)}, n = {self.count})"
        )


def spread(values: Sequence[float]) -> Spread:
    """Summary of ``values``; raises on an empty sequence (a missing run must not average to nothing)."""
    if not values:
        raise ValueError("spread of no values")
    vals = [float(v) for v in values]
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
    return Spread(mean, std, min(vals), max(vals), n)


def paired_differences(by_seed: Mapping[int, Mapping[str, float]], later: str, earlier: str) -> dict[int, float]:
    """``value[later] - value[earlier]`` for every seed (pairing removes the seed's shared noise)."""
    return {seed: float(values[later]) - float(values[earlier]) for seed, values in sorted(by_seed.items())}


@dataclass(frozen=True)
class PairedInterval:
    """Per-seed paired differences ``later - earlier``, their mean and a two-sided t-interval."""

    differences: dict[int, float]
    mean: float
    low: float | None  # None with fewer than two seeds: no interval
    high: float | None
    confidence: float

    def describe(self, digits: int = 3) -> str:
        f = f"{{:+.{digits}f}}"
        if self.low is None or self.high is None:
            return f"{f.format(self.mean)} (n = 1, no interval)"
        return (
            f"{f.format(self.mean)}, {self.confidence:.0%} interval [{f.format(self.low)}, "
            f"{f.format(self.high)}] (n = {len(self.differences)})"
        )


def paired_interval(differences: Mapping[int, float], confidence: float) -> PairedInterval:
    """Mean of the paired differences and its Student-t interval (n - 1 degrees of freedom).

    The t-interval, not a normal one: with 3-5 seeds the normal quantile would claim a precision
    the seeds do not have (t_0.975 is 4.30 for 3 seeds, 2.78 for 5, against 1.96).
    """
    from scipy.stats import t as student_t

    values = [float(v) for v in differences.values()]
    summary = spread(values)
    if summary.count < 2 or summary.std is None:
        return PairedInterval(dict(differences), summary.mean, None, None, confidence)
    half = float(student_t.ppf(0.5 + confidence / 2, summary.count - 1)) * summary.std / math.sqrt(summary.count)
    return PairedInterval(dict(differences), summary.mean, summary.mean - half, summary.mean + half, confidence)
