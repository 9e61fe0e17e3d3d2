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
    """``value[later] - value[earlier]`` for every seed that has both (pairing removes the seed's shared
    noise; claim 2's alpha ends train at more seeds than the variants between them)."""
    return {
        seed: float(values[later]) - float(values[earlier])
        for seed, values in sorted(by_seed.items())
        if later in values and earlier in values
    }


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


@dataclass(frozen=True)
class TwoSampleTest:
    """Pooled two-sample Student-t test of two sets of seed values drawn, under the null, from one
    distribution (the same code run twice): the difference of means, its standard error, the degrees
    of freedom and the two-sided p-value (None where no spread is known: one value on each side)."""

    difference: float
    standard_error: float | None
    degrees_of_freedom: int
    p_value: float | None

    def tolerance(self, level: float) -> float | None:
        """The largest |difference| a two-sided test at ``level`` accepts: t_(1 - level/2, df) x SE."""
        from scipy.stats import t as student_t

        if self.standard_error is None:
            return None
        return float(student_t.ppf(1 - level / 2, self.degrees_of_freedom)) * self.standard_error


def two_sample_test(first: Sequence[float], second: Sequence[float]) -> TwoSampleTest:
    """``mean(second) - mean(first)`` tested with the pooled variance (n1 + n2 - 2 degrees of freedom).

    Pooled, not Welch: under the null both samples come from one distribution, so one variance is
    estimated from all seeds, the exact test for equal variances. Zero pooled spread (every seed
    identical on both sides): p is 1 when the means are equal and 0 otherwise.
    """
    from scipy.stats import t as student_t

    a, b = [float(v) for v in first], [float(v) for v in second]
    if not a or not b:
        raise ValueError("two_sample_test needs at least one value on each side")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    difference = mean_b - mean_a
    df = len(a) + len(b) - 2
    if df < 1:
        return TwoSampleTest(difference, None, 0, None)
    squares = sum((v - mean_a) ** 2 for v in a) + sum((v - mean_b) ** 2 for v in b)
    standard_error = math.sqrt(squares / df * (1 / len(a) + 1 / len(b)))
    if standard_error == 0.0:
        return TwoSampleTest(difference, 0.0, df, 1.0 if difference == 0.0 else 0.0)
    p = 2.0 * float(student_t.sf(abs(difference) / standard_error, df))
    return TwoSampleTest(difference, standard_error, df, min(p, 1.0))


def holm_rejections(p_values: Mapping[str, float], level: float) -> set[str]:
    """Holm's step-down procedure: the names whose null is rejected with family-wise error <= ``level``.

    Sorted ascending, the i-th smallest p (i from 0) is rejected while p <= level / (m - i); the first
    acceptance stops it. Valid under any dependence between the tests (the numbers of one run share
    its networks), unlike procedures that assume independence.
    """
    ordered = sorted(p_values.items(), key=lambda item: (item[1], item[0]))
    rejected: set[str] = set()
    m = len(ordered)
    for i, (name, p) in enumerate(ordered):
        if p > level / (m - i):
            break
        rejected.add(name)
    return rejected


@dataclass(frozen=True)
class Power:
    """What n paired seeds can resolve: the paired differences' sample sd, the half-width of their
    t-interval, and the minimum detectable effect (the true mean difference a two-sided paired t-test
    at the interval's level detects with probability ``power``)."""

    count: int
    paired_sd: float | None
    half_width: float | None
    minimum_detectable_effect: float | None
    confidence: float
    power: float

    def describe(self, digits: int = 3) -> str:
        if self.paired_sd is None or self.half_width is None or self.minimum_detectable_effect is None:
            return f"n = {self.count}: no paired sd with fewer than two seeds, so no power"
        f = f"{{:.{digits}f}}"
        return (
            f"n = {self.count}, paired sd {f.format(self.paired_sd)}, {self.confidence:.0%} half-width "
            f"{f.format(self.half_width)}, minimum detectable effect {f.format(self.minimum_detectable_effect)} "
            f"(at {self.power:.0%} power)"
        )


def _t_quantile(probability: float, df: int) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(probability, df))


def power_at(paired_sd: float, count: int, confidence: float, power: float) -> Power:
    """The :class:`Power` of ``count`` paired seeds whose differences have sd ``paired_sd``.

    MDE = (t_(1 - a/2, n-1) + t_(power, n-1)) x sd / sqrt(n), a = 1 - confidence: the usual
    approximation to the paired t-test's power (exact for the normal case with known sd).
    """
    if count < 2:
        return Power(count, None, None, None, confidence, power)
    scale = paired_sd / math.sqrt(count)
    t_level = _t_quantile(0.5 + confidence / 2, count - 1)
    return Power(
        count, paired_sd, t_level * scale, (t_level + _t_quantile(power, count - 1)) * scale, confidence, power
    )


def power_of(differences: Sequence[float], confidence: float, power: float) -> Power:
    """The :class:`Power` of a set of paired per-seed differences, at their sample sd."""
    values = [float(v) for v in differences]
    sd = spread(values).std if len(values) >= 2 else None
    if sd is None:
        return Power(len(values), None, None, None, confidence, power)
    return power_at(sd, len(values), confidence, power)


def seeds_for_half_width(paired_sd: float, confidence: float, half_width: float, at_least: int = 2) -> int:
    """The smallest n >= ``at_least`` whose t-interval half-width t_(n-1) x sd / sqrt(n) is at most
    ``half_width`` (for a paired sd measured on pilot seeds)."""
    if paired_sd < 0 or half_width <= 0:
        raise ValueError(f"need paired_sd >= 0 and half_width > 0, got {paired_sd}, {half_width}")
    n = max(2, at_least)
    while _t_quantile(0.5 + confidence / 2, n - 1) * paired_sd / math.sqrt(n) > half_width:
        n += 1
    return n
