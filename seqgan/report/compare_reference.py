"""`seqgan compare-reference`: this run's numbers against the reference run's, tested as two sets of
seed draws, with the false-alarm rate over all numbers controlled.

A rerun on another machine (other float rounding, other thread count) follows other training
trajectories, so equality is not expected; what is expected is that each number's seed mean moves by
no more than seed noise explains. Each number present on both sides gets a pooled two-sample t-test
of its per-seed values (reference seeds against this run's seeds): its *tolerance* is the difference
that test accepts at the level ``evaluation.verdicts.reference_false_alarm`` (t quantile x standard
error of a difference of two seed means). Over m numbers about ``level x m`` fall outside their
tolerance by chance alone, so those are reported beside that expectation, not treated as failures.
Holm's step-down procedure over the same p-values marks as *differ* only numbers that stand out with a
family-wise error of at most ``level``: an honest rerun of the same code flags any number with
probability at most ``level`` (tests/test_reference.py simulates it). Numbers measured once on both
sides (the semantic network, the judge) have no spread to test against: their difference is shown.

The exit status is non-zero when a claim's verdict or one of its parts differs, when the run's params
differ from the reference's (every number would then be expected to move), or when a number is
present in one run only; ``--strict`` adds numbers that *differ* under Holm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params, VerdictParams, params_hash
from seqgan.report.artefacts import ArtefactLayout
from seqgan.report.numbers import Number, RunNumbers, collect_numbers
from seqgan.report.reference_layout import MissingReferenceError, ReferenceLayout
from seqgan.report.stats import TwoSampleTest, holm_rejections, two_sample_test

AGREE = "agree"
OUTSIDE = "outside tolerance"  # p below the level, as about level x m numbers are by chance
DIFFER = "differ"  # rejected by Holm: beyond chance with family-wise error <= level
NO_SPREAD = "no spread (n = 1)"
ONLY_REFERENCE = "absent from this run"
ONLY_THIS = "absent from the reference"
SAME = "same"


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
    test: TwoSampleTest | None  # None when one side is absent
    tolerance: float | None  # None when one side is absent or neither has a spread
    flagged: bool = False  # Holm rejected this number's null

    @property
    def difference(self) -> float | None:
        return None if self.test is None else self.test.difference

    @property
    def status(self) -> str:
        if absent := _absent(self.reference, self.this):
            return absent
        assert self.test is not None
        if self.tolerance is None:
            return NO_SPREAD
        if self.flagged:
            return DIFFER
        return AGREE if abs(self.test.difference) <= self.tolerance else OUTSIDE


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
    level: float
    notes: list[str] = field(default_factory=list)
    params_difference: str | None = None  # "this vs reference" params hashes when they differ

    @property
    def tested(self) -> int:
        """Numbers with a t-test (present on both sides, a spread on at least one)."""
        return sum(1 for c in self.numbers if c.status in (AGREE, OUTSIDE, DIFFER))

    @property
    def expected_by_chance(self) -> float:
        """How many tested numbers an honest rerun puts outside their tolerance on average."""
        return self.level * self.tested

    @property
    def outside(self) -> list[NumberComparison]:
        """Numbers outside their tolerance (Holm-flagged ones included)."""
        return [c for c in self.numbers if c.status in (OUTSIDE, DIFFER)]

    @property
    def failures(self) -> list[str]:
        """One line per reason for a non-zero exit: params, absent numbers, changed verdicts."""
        lines = []
        if self.params_difference:
            lines.append(f"params differ from the reference's ({self.params_difference})")
        lines += [f"{c.name}: {c.status}" for c in self.numbers if c.status in (ONLY_REFERENCE, ONLY_THIS)]
        lines += [
            f"{v.label} verdict: {v.status} ({v.reference} -> {v.this})" for v in self.verdicts if v.status != SAME
        ]
        return lines

    @property
    def disagreements(self) -> list[str]:
        """The failures, then every number outside its tolerance (with its p-value)."""
        return self.failures + [
            f"{c.name}: {c.status} (p = {c.test.p_value:.2g})"
            for c in self.outside
            if c.test and c.test.p_value is not None
        ]

    @property
    def agrees(self) -> bool:
        """No failure: same params, same numbers present, every verdict the same."""
        return not self.failures

    @property
    def flagged(self) -> list[NumberComparison]:
        return [c for c in self.numbers if c.status == DIFFER]


def compare_runs(
    reference: RunNumbers, this: RunNumbers, verdicts: VerdictParams, params_difference: str | None = None
) -> Comparison:
    """Every number of either run (reference order first) and every claim verdict, compared."""
    level = verdicts.reference_false_alarm
    tests: dict[str, TwoSampleTest | None] = {}
    for name in dict.fromkeys([*reference.numbers, *this.numbers]):
        ref, now = reference.numbers.get(name), this.numbers.get(name)
        tests[name] = (
            None
            if ref is None or now is None
            else two_sample_test(list(ref.values.values()), list(now.values.values()))
        )
    p_values = {n: t.p_value for n, t in tests.items() if t is not None and t.p_value is not None}
    flagged = holm_rejections(p_values, level)
    rows = [
        NumberComparison(
            name,
            reference.numbers.get(name),
            this.numbers.get(name),
            test,
            None if test is None else test.tolerance(level),
            name in flagged,
        )
        for name, test in tests.items()
    ]
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
    return Comparison(rows, verdict_rows, level, notes, params_difference)


def comparison_summary(comparison: Comparison, reference_dir: str) -> dict:
    """The comparison's outcome as JSON (written beside the Markdown; docs/reference-run.md's thread check reads it)."""
    counts: dict[str, int] = {}
    for c in comparison.numbers:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {
        "reference": reference_dir,
        "numbers": len(comparison.numbers),
        "number_outcomes": counts,
        "false_alarm_level": comparison.level,
        "tested": comparison.tested,
        "outside_tolerance": [c.name for c in comparison.outside],
        "expected_by_chance": round(comparison.expected_by_chance, 3),
        "differ_holm": [c.name for c in comparison.flagged],
        "params_differ": comparison.params_difference,
        "verdicts": [
            {"claim": v.claim, "part": v.part, "reference": v.reference, "this": v.this, "outcome": v.status}
            for v in comparison.verdicts
        ],
        "failures": comparison.failures,
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


def _p(c: NumberComparison) -> str:
    return "-" if c.test is None or c.test.p_value is None else f"{c.test.p_value:.2g}"


def chance_line(comparison: Comparison) -> str:
    """How many numbers fell outside their tolerance, beside how many chance alone would put there."""
    level = comparison.level
    return (
        f"{len(comparison.outside)} of {comparison.tested} tested numbers lie outside their {1 - level:.0%} "
        f"tolerance; chance alone puts {comparison.expected_by_chance:.1f} there on average ({level} x "
        f"{comparison.tested}). Beyond chance after Holm's correction (family-wise error {level}): "
        f"{len(comparison.flagged)}."
    )


def comparison_markdown(
    comparison: Comparison, verdicts: VerdictParams, reference_dir: str, identity: list[str]
) -> str:
    """results/compare_reference.md: one row per number, then one per claim, then the outcome."""
    level = verdicts.reference_false_alarm
    lines = [
        f"# This run against the reference run ({reference_dir})",
        "",
        *identity,
        "",
        f"Each number: a pooled two-sample t-test of this run's seed values against the reference's. Tolerance: "
        f"t_(1 - {level}/2, n_ref + n_this - 2) x the standard error of the difference of the two seed means "
        f"(`evaluation.verdicts.reference_false_alarm` = {level}); *differ*: rejected by Holm's procedure over all "
        "tested numbers at that family-wise level. Values are means +- sample std over experiment seeds.",
        "",
        "| number | reference | this run | difference | tolerance | p | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in comparison.numbers:
        diff = "-" if c.difference is None else f"{c.difference:+.3g}"
        tol = "-" if c.tolerance is None else f"{c.tolerance:.3g}"
        lines.append(f"| {c.name} | {_value(c.reference)} | {_value(c.this)} | {diff} | {tol} | {_p(c)} | {c.status} |")
    lines += ["", "| claim (part) | reference verdict | this run's verdict | outcome |", "|---|---|---|---|"]
    lines += [
        f"| {v.claim}{' - ' + v.part if v.part else ''} | {v.reference or '-'} | {v.this or '-'} | {v.status} |"
        for v in comparison.verdicts
    ]
    lines.append("")
    if comparison.notes:
        lines += [*[f"- {n}" for n in comparison.notes], ""]
    lines += [chance_line(comparison), ""]
    if comparison.outside:
        lines += [*[f"- {c.name}: {c.status} (p = {_p(c)})" for c in comparison.outside], ""]
    if comparison.agrees:
        lines.append(
            f"The params are the reference's, every number is present on both sides and every verdict is the same "
            f"({len(comparison.verdicts)} claims and parts)."
        )
    else:
        lines += [f"{len(comparison.failures)} failure(s):", "", *[f"- {d}" for d in comparison.failures]]
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
            "numbers that depend on the changed keys are expected to differ, so the comparison fails."
        )
    return lines


def compare_with_reference(
    params: Params, params_file: str, layout: ArtefactLayout, reference: ReferenceLayout
) -> tuple[Comparison, str]:
    """This run's numbers (read through ``layout``) against ``reference``: the comparison and its Markdown.

    Raises :class:`seqgan.report.reference_layout.MissingReferenceError` or ValueError for a missing or
    unreadable reference."""
    info, expected = reference.run_info(), reference.numbers()
    this_hash, ref_hash = params_hash(params.raw), info.get("params_hash")
    difference = None if this_hash == ref_hash else f"{this_hash} vs {ref_hash}"
    comparison = compare_runs(expected, collect_numbers(params, layout), params.evaluation.verdicts, difference)
    text = comparison_markdown(
        comparison, params.evaluation.verdicts, str(reference.root), identity_lines(info, this_hash, params_file)
    )
    return comparison, text


def compare_reference_job(
    params: Params, params_file: str, layout: ArtefactLayout, reference: Path, out: Path, strict: bool = False
) -> None:
    """`seqgan compare-reference`: the Markdown report and its JSON summary; exits non-zero on a failure
    (params, an absent number, a changed verdict) and, with ``strict``, on a number Holm flags."""
    try:
        comparison, text = compare_with_reference(params, params_file, layout, ReferenceLayout(reference))
    except (MissingReferenceError, ValueError) as exc:
        raise SystemExit(f"error: compare-reference: {exc}") from None
    atomic_write_text(out, text)
    atomic_write_text(
        Path(out).with_suffix(".json"), json.dumps(comparison_summary(comparison, str(reference)), indent=2) + "\n"
    )
    print(text)
    reasons = comparison.failures + ([f"{c.name}: {DIFFER} (Holm)" for c in comparison.flagged] if strict else [])
    if reasons:
        raise SystemExit(
            f"compare-reference: {len(reasons)} failure(s) against {reference} (see {out}): " + "; ".join(reasons)
        )
