"""`seqgan compare-reference`: this run's numbers against the reference run's, each within a tolerance
derived from the reference's own spread over experiment seeds.

A rerun on another machine (other float rounding, other thread count) follows other training
trajectories, so equality is not expected; what is expected is that the mean over seeds moves by no
more than seed noise explains. Two n-seed means differ by chance with standard error
``std * sqrt(1/n_ref + 1/n_this)`` (``sqrt(2/n)`` for equal n); a number *agrees* when its means
differ by at most ``k`` of those (``evaluation.verdicts.reference_tolerance_sigmas``). Numbers
without a spread (one run, e.g. the semantic network, or seeds that happen to agree exactly) get a
floor: ``reference_tolerance_floor`` times the reference value's magnitude. Each claim's verdict
must be the same. A number present in one run only is reported as such, never skipped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params, VerdictParams, params_hash
from seqgan.report.artefacts import ArtefactLayout
from seqgan.report.numbers import Number, RunNumbers, collect_numbers
from seqgan.report.reference_layout import MissingReferenceError, ReferenceLayout

AGREE = "agree"
DIFFER = "differ"
ONLY_REFERENCE = "absent from this run"
ONLY_THIS = "absent from the reference"
SAME = "same"


def tolerance(std_ref: float | None, n_ref: int, n_this: int, mean_ref: float, sigmas: float, floor: float) -> float:
    """``max(k * std_ref * sqrt(1/n_ref + 1/n_this), floor * |mean_ref|)``; a missing std counts as 0."""
    from_spread = sigmas * (std_ref or 0.0) * math.sqrt(1 / n_ref + 1 / n_this)
    return max(from_spread, floor * abs(mean_ref))


def _absent(reference: object | None, this: object | None) -> str | None:
    """Which side lacks the compared item, if either."""
    if this is None:
        return ONLY_REFERENCE
    if reference is None:
        return ONLY_THIS
    return None


@dataclass(frozen=True)
class NumberComparison:
    name: str
    reference: Number | None
    this: Number | None
    tolerance: float | None  # None when one side is absent

    @property
    def difference(self) -> float | None:
        if self.reference is None or self.this is None:
            return None
        return self.this.spread.mean - self.reference.spread.mean

    @property
    def status(self) -> str:
        if absent := _absent(self.reference, self.this):
            return absent
        assert self.difference is not None and self.tolerance is not None
        return AGREE if abs(self.difference) <= self.tolerance else DIFFER


@dataclass(frozen=True)
class VerdictComparison:
    claim: int
    reference: str | None
    this: str | None
    part: str | None = None  # a part's statement; None for the claim's own verdict

    @property
    def label(self) -> str:
        return f"claim {self.claim}" + (f', part "{self.part}"' if self.part else "")

    @property
    def status(self) -> str:
        return _absent(self.reference, self.this) or (SAME if self.this == self.reference else DIFFER)


@dataclass(frozen=True)
class Comparison:
    numbers: list[NumberComparison]
    verdicts: list[VerdictComparison]
    notes: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> list[str]:
        """One line per number or verdict that is not the same (the reasons for exit status 1)."""
        lines = [f"{c.name}: {c.status}" for c in self.numbers if c.status != AGREE]
        lines += [
            f"{v.label} verdict: {v.status} ({v.reference} -> {v.this})" for v in self.verdicts if v.status != SAME
        ]
        return lines

    @property
    def agrees(self) -> bool:
        return not self.disagreements


def compare_runs(reference: RunNumbers, this: RunNumbers, verdicts: VerdictParams) -> Comparison:
    """Every number of either run (reference order first) and every claim verdict, compared."""
    rows = []
    for name in dict.fromkeys([*reference.numbers, *this.numbers]):
        ref, now = reference.numbers.get(name), this.numbers.get(name)
        tol = None
        if ref is not None and now is not None:
            s = ref.spread
            tol = tolerance(
                s.std,
                s.count,
                now.spread.count,
                s.mean,
                verdicts.reference_tolerance_sigmas,
                verdicts.reference_tolerance_floor,
            )
        rows.append(NumberComparison(name, ref, now, tol))
    claims = sorted(set(reference.claims) | set(this.claims))
    verdict_rows = []
    for c in claims:
        ref_claim, this_claim = reference.claims.get(c), this.claims.get(c)
        verdict_rows.append(
            VerdictComparison(c, ref_claim.verdict if ref_claim else None, this_claim.verdict if this_claim else None)
        )
        ref_parts = dict(ref_claim.parts) if ref_claim else {}
        this_parts = dict(this_claim.parts) if this_claim else {}
        verdict_rows += [
            VerdictComparison(c, ref_parts.get(p), this_parts.get(p), p)
            for p in dict.fromkeys([*ref_parts, *this_parts])
        ]
    notes = [f"missing in this run: {m}" for m in this.missing]
    notes += [f"missing in the reference run: {m}" for m in reference.missing]
    return Comparison(rows, verdict_rows, notes)


def comparison_summary(comparison: Comparison, reference_dir: str) -> dict:
    """The comparison's outcome as JSON (written beside the Markdown; the README's thread check reads it)."""
    counts: dict[str, int] = {}
    for c in comparison.numbers:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {
        "reference": reference_dir,
        "numbers": len(comparison.numbers),
        "number_outcomes": counts,
        "verdicts": [
            {"claim": v.claim, "part": v.part, "reference": v.reference, "this": v.this, "outcome": v.status}
            for v in comparison.verdicts
        ],
        "disagreements": comparison.disagreements,
        "agrees": comparison.agrees,
    }


def _value(n: Number | None) -> str:
    if n is None:
        return "-"
    s = n.spread
    if s.std is None:
        return f"{s.mean:.4g} (n = 1)"
    return f"{s.mean:.4g} +- {s.std:.2g} (n = {s.count})"


def comparison_markdown(
    comparison: Comparison, verdicts: VerdictParams, reference_dir: str, identity: list[str]
) -> str:
    """results/compare_reference.md: one row per number, then one per claim, then what differs."""
    k, floor = verdicts.reference_tolerance_sigmas, verdicts.reference_tolerance_floor
    lines = [
        f"# This run against the reference run ({reference_dir})",
        "",
        *identity,
        "",
        f"Tolerance: max({k} x std_ref x sqrt(1/n_ref + 1/n_this), {floor} x |reference|) "
        "(`evaluation.verdicts.reference_tolerance_sigmas`, `reference_tolerance_floor`); values are means "
        "+- sample std over experiment seeds.",
        "",
        "| number | reference | this run | difference | tolerance | outcome |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparison.numbers:
        diff = "-" if c.difference is None else f"{c.difference:+.3g}"
        tol = "-" if c.tolerance is None else f"{c.tolerance:.3g}"
        lines.append(f"| {c.name} | {_value(c.reference)} | {_value(c.this)} | {diff} | {tol} | {c.status} |")
    lines += ["", "| claim (part) | reference verdict | this run's verdict | outcome |", "|---|---|---|---|"]
    lines += [
        f"| {v.claim}{' - ' + v.part if v.part else ''} | {v.reference or '-'} | {v.this or '-'} | {v.status} |"
        for v in comparison.verdicts
    ]
    lines.append("")
    if comparison.notes:
        lines += [*[f"- {n}" for n in comparison.notes], ""]
    if comparison.agrees:
        lines.append(
            f"Every number agrees and every verdict is the same ({len(comparison.numbers)} numbers, "
            f"{len(comparison.verdicts)} claims)."
        )
    else:
        lines += [f"{len(comparison.disagreements)} difference(s):", "", *[f"- {d}" for d in comparison.disagreements]]
    return "\n".join(lines) + "\n"


def identity_lines(reference_info: dict, this_params_hash: str, params_file: str) -> list[str]:
    """Which code and params each side ran; a params difference is said first (it explains differences)."""
    ref_hash = reference_info.get("params_hash")
    lines = [
        f"Reference: git {reference_info.get('git_revision')}, params hash {ref_hash}, "
        f"{reference_info.get('date')}. This run: params hash {this_params_hash} ({params_file})."
    ]
    if ref_hash != this_params_hash:
        lines.append(
            f"**The params differ from the reference's** ({this_params_hash} vs {ref_hash}): "
            "numbers that depend on the changed keys are expected to differ."
        )
    return lines


def compare_with_reference(
    params: Params, params_file: str, layout: ArtefactLayout, reference: ReferenceLayout
) -> tuple[Comparison, str]:
    """This run's numbers (read through ``layout``) against ``reference``: the comparison and its Markdown.

    Raises :class:`seqgan.report.reference_layout.MissingReferenceError` or ValueError for a missing or
    unreadable reference."""
    info, expected = reference.run_info(), reference.numbers()
    comparison = compare_runs(expected, collect_numbers(params, layout), params.evaluation.verdicts)
    text = comparison_markdown(
        comparison,
        params.evaluation.verdicts,
        str(reference.root),
        identity_lines(info, params_hash(params.raw), params_file),
    )
    return comparison, text


def compare_reference_job(params: Params, params_file: str, layout: ArtefactLayout, reference: Path, out: Path) -> None:
    """`seqgan compare-reference`: the Markdown report and its JSON summary; exits non-zero when a
    number or a verdict differs from the reference."""
    try:
        comparison, text = compare_with_reference(params, params_file, layout, ReferenceLayout(reference))
    except (MissingReferenceError, ValueError) as exc:
        raise SystemExit(f"error: compare-reference: {exc}") from None
    atomic_write_text(out, text)
    atomic_write_text(
        Path(out).with_suffix(".json"), json.dumps(comparison_summary(comparison, str(reference)), indent=2) + "\n"
    )
    print(text)
    if not comparison.agrees:
        raise SystemExit(
            f"compare-reference: {len(comparison.disagreements)} difference(s) from {reference} "
            f"(see {out}): " + "; ".join(comparison.disagreements)
        )
