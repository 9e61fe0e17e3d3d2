"""The reconstruction parts of claims 1 and 4: phase 2 against phase 1, paired per seed.

Phase 2 (the attention decoder finetuned on frozen tokens) is trained on every experiment seed,
from that seed's phase-1 tokenizer, so each seed gives one paired difference phase 2 - phase 1 of
a reconstruction metric. A part's verdict comes from those differences, never from one run:

    holds           every seed's difference is in the claimed direction and the t-interval of the
                    mean difference excludes 0 on that side;
    does not hold   the interval excludes 0 on the other side;
    undecided       otherwise (one seed, seeds that disagree, an interval across 0);
    not testable    the metric is not measured (the colour errors need the synthetic ground truth).

Claim 1 reads rFID (lower is the claim); claim 4's "restores colour and detail" reads the
ground-truth instrument's shape colour error and background error (lower), not PSNR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from seqgan.report.stats import PairedInterval, paired_interval
from seqgan.report.verdicts.outcomes import DOES_NOT_HOLD, HOLDS, NOT_TESTABLE, UNDECIDED

__all__ = ["DecoderComparison", "compare_decoders"]

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class DecoderComparison:
    metric: str
    wanted: Direction
    interval: PairedInterval | None  # None: not measured in some seed
    verdict: str


def compare_decoders(
    phase1: Mapping[int, float | None],
    phase2: Mapping[int, float | None],
    metric: str,
    wanted: Direction,
    confidence: float,
) -> DecoderComparison:
    """Verdict of "phase 2's ``metric`` is ``wanted`` than phase 1's" over the paired seeds."""
    seeds = sorted(set(phase1) & set(phase2))
    values = [(phase1[s], phase2[s]) for s in seeds]
    if not seeds or any(a is None or b is None for a, b in values):
        return DecoderComparison(metric, wanted, None, NOT_TESTABLE)
    differences = {s: float(phase2[s]) - float(phase1[s]) for s in seeds}  # type: ignore[arg-type]
    interval = paired_interval(differences, confidence)
    sign = -1.0 if wanted == "lower" else 1.0
    claimed = all(sign * d > 0 for d in differences.values())
    if interval.low is None or interval.high is None:
        verdict = UNDECIDED
    elif claimed and sign * (interval.high if sign < 0 else interval.low) > 0:
        verdict = HOLDS
    elif sign * (interval.low if sign < 0 else interval.high) < 0:
        verdict = DOES_NOT_HOLD
    else:
        verdict = UNDECIDED
    return DecoderComparison(metric, wanted, interval, verdict)
