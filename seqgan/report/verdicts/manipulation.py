"""Claim 2's manipulation check: did a larger alpha make the tokens more semantic?

Claim 2 says a larger semantic ratio lowers the transformers' validation loss *because* the
tokens carry more semantics. A lower loss from a tokenizer that kept *less* of the image's
semantics would "confirm" the claim for the wrong reason (it happened: accuracy on
reconstructions 0.86 -> 0.79 while the loss fell). So the loss comparison is a test of the claim
only when the manipulation worked, judged before the loss is read:

    passes  <=>  for every experiment seed s:
                 fidelity(largest alpha, s) - fidelity(smallest alpha, s) >= min_difference

Semantic fidelity is the ground-truth instrument's shape-mask IoU of the reconstructions
(:mod:`seqgan.evaluate.ground_truth`): a measurement against the generator's own record, not
against any network the tokenizers optimised. Where there is no ground truth (real images) the
check cannot be made and the loss comparison is not a test. The paired differences' mean and
t-interval are reported beside the rule's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from seqgan.report.stats import PairedInterval, paired_interval

__all__ = ["FIDELITY_KEY", "ManipulationCheck", "manipulation_check", "semantic_fidelity"]

FIDELITY_KEY = "mask_iou"  # of metrics["instrument"]["reconstructed"]


def semantic_fidelity(tokenizer_metrics: Mapping) -> float | None:
    """The shape-mask IoU of a tokenizer's reconstructions, or None without ground truth."""
    instrument = tokenizer_metrics.get("instrument") or {}
    value = (instrument.get("reconstructed") or {}).get(FIDELITY_KEY)
    return None if value is None else float(value)


@dataclass(frozen=True)
class ManipulationCheck:
    """The outcome of the rule for one (larger, smaller) alpha pair."""

    larger: str
    smaller: str
    fidelity: dict[int, dict[str, float | None]]  # seed -> variant -> mask IoU (None: not measured)
    min_difference: float
    interval: PairedInterval | None  # None when some seed has no measurement
    passed: bool

    def describe(self) -> str:
        if self.interval is None:
            return (
                f"not measured: no ground-truth semantic fidelity for {self.larger} and {self.smaller} in every "
                "seed (real images have no shape masks)"
            )
        outcome = "passes" if self.passed else "fails"
        return (
            f"{outcome}: mask IoU {self.larger} - {self.smaller} = {self.interval.describe()}; the rule needs "
            f">= {self.min_difference:+.3f} in every seed"
        )


def manipulation_check(
    fidelity: Mapping[int, Mapping[str, float | None]],
    larger: str,
    smaller: str,
    min_difference: float,
    confidence: float,
) -> ManipulationCheck:
    """Apply the rule (module docstring) to per-seed fidelities of two tokenizer variants."""
    table = {int(s): {larger: by[larger], smaller: by[smaller]} for s, by in fidelity.items()}
    measured = bool(table) and all(v is not None for by in table.values() for v in by.values())
    if not measured:
        return ManipulationCheck(larger, smaller, table, min_difference, None, False)
    differences = {s: float(by[larger]) - float(by[smaller]) for s, by in table.items()}  # type: ignore[arg-type]
    interval = paired_interval(differences, confidence)
    passed = all(d >= min_difference for d in differences.values())
    return ManipulationCheck(larger, smaller, table, min_difference, interval, passed)
