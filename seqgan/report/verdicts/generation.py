"""Generation FID verdicts (claims 1, 2, 4): is a sample set usable, and is one FID resolved
lower or higher than another beyond the sampling-seed spread (rules in ``claims.rules_text``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seqgan.config import VerdictParams
from seqgan.report.artefacts import read_json
from seqgan.report.stats import Spread, spread
from seqgan.report.verdicts.outcomes import (
    DOES_NOT_HOLD,
    HIGHER,
    HOLDS,
    LOWER,
    NOT_TESTABLE,
    SPREAD_UNKNOWN,
    WITHIN_SPREAD,
)

__all__ = [
    "FidComparison",
    "GenerationRun",
    "compare_fid",
    "comparison_verdict",
    "generation_run",
    "unusable_reason",
]


@dataclass(frozen=True)
class GenerationRun:
    objective: str
    variant: str
    decoder: str
    seed: int
    file: Path
    fid: float
    confident: float | None  # classifier.confident_fraction of the samples (None: no classifier view)
    reference_confident: float | None
    histogram_tv: float | None  # classifier.histogram_tv_distance (samples vs reference images)
    histogram_floor: float | None  # classifier.histogram_noise_floor.mean (real images vs real images)
    tokens_sha256: str | None

    @property
    def label(self) -> str:
        return f"{self.variant} {self.decoder}"


def generation_run(path: Path, objective: str, variant: str, decoder: str, seed: int) -> GenerationRun:
    """One sample set's generation metrics (identified by the path it was read from, not by its content)."""
    record = read_json(path)
    classifier = record.get("classifier")
    view: tuple[float | None, ...] = (None, None, None, None)  # no classifier view (Inception features)
    if classifier:
        floor = classifier.get("histogram_noise_floor") or {}
        if "histogram_tv_distance" not in classifier or "mean" not in floor:
            raise KeyError(
                f"{path}: the classifier view has no histogram_tv_distance / histogram_noise_floor "
                "(written by an older eval-samples); rerun the eval_samples rule"
            )
        view = (
            float(classifier["confident_fraction"]),
            float(classifier["reference"]["confident_fraction"]),
            float(classifier["histogram_tv_distance"]),
            float(floor["mean"]),
        )
    tokens = (record.get("samples") or {}).get("tokens_sha256")
    return GenerationRun(objective, variant, decoder, seed, path, float(record["fid"]), *view, tokens)


def unusable_reason(run: GenerationRun, v: VerdictParams) -> str | None:
    """Why a sample set cannot carry a generation verdict (step 1 of the rules), or None when it can."""
    if run.confident is None:
        return None  # no classifier view (Inception features): paper-scale evaluation
    assert run.reference_confident is not None and run.histogram_tv is not None and run.histogram_floor is not None
    problems = []
    if run.confident < v.recognisable_confidence_ratio * run.reference_confident:
        problems.append(
            f"confident fraction {run.confident:.3f} < {v.recognisable_confidence_ratio} x the real "
            f"images' {run.reference_confident:.3f}"
        )
    if run.histogram_tv > v.histogram_tv_factor * run.histogram_floor:
        problems.append(
            f"class-histogram TV distance {run.histogram_tv:.3f} > {v.histogram_tv_factor} x the "
            f"noise floor {run.histogram_floor:.3f}"
        )
    return "; ".join(problems) or None


@dataclass(frozen=True)
class FidComparison:
    """Mean generation FID of two sample sets of one objective over sampling seeds (step 2 of the rules)."""

    objective: str
    start: str  # e.g. "alpha0.5 phase1"
    end: str
    start_fid: Spread
    end_fid: Spread
    spread_factor: float

    @property
    def difference(self) -> float:
        return self.end_fid.mean - self.start_fid.mean

    @property
    def margin(self) -> float | None:
        """spread_factor x the larger std over sampling seeds; None with one sampling seed."""
        if self.start_fid.std is None or self.end_fid.std is None:
            return None
        return self.spread_factor * max(self.start_fid.std, self.end_fid.std)

    @property
    def outcome(self) -> str:
        margin = self.margin
        if margin is None:
            return SPREAD_UNKNOWN
        if abs(self.difference) <= margin:
            return WITHIN_SPREAD
        return LOWER if self.difference < 0 else HIGHER


def compare_fid(
    objective: str, start: Sequence[GenerationRun], end: Sequence[GenerationRun], spread_factor: float
) -> FidComparison:
    return FidComparison(
        objective,
        start[0].label,
        end[0].label,
        spread([r.fid for r in start]),
        spread([r.fid for r in end]),
        spread_factor,
    )


def comparison_verdict(comparisons: Sequence[FidComparison], wanted: str) -> str:
    """HOLDS if every comparison has the wanted outcome, DOES_NOT_HOLD if any is resolved the other way."""
    opposite = HIGHER if wanted == LOWER else LOWER
    outcomes = [c.outcome for c in comparisons]
    if opposite in outcomes:
        return DOES_NOT_HOLD
    if outcomes and all(o == wanted for o in outcomes):
        return HOLDS
    return NOT_TESTABLE
