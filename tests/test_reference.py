"""The reference run, compare-reference and the README's generated tables, on fake artefacts (seconds).

The fake run tree is test_tables.Fakes' claims inputs (every file claims.md reads, with the keys the
real producers record) plus what a reference collects beside them: Fig. 2's table, paper tables,
the semantic network's metrics and Snakemake benchmark files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_tables import Fakes, embedded_params, write_claim_inputs

from seqgan import cli
from seqgan.report import claims as C
from seqgan.report import reference_run as R
from seqgan.report.compare_reference import (
    AGREE,
    DIFFER,
    NO_SPREAD,
    ONLY_REFERENCE,
    ONLY_THIS,
    OUTSIDE,
    SAME,
    compare_runs,
)
from seqgan.report.numbers import collect_numbers, numbers_from_json, numbers_to_json
from seqgan.report.readme_tables import (
    SECTION_FILES,
    end_marker,
    generated_readme,
    render_sections,
    start_marker,
)
from seqgan.report.reference_layout import ReferenceLayout
from seqgan.report.stats import holm_rejections, spread, two_sample_test
from seqgan.report.verdicts import outcomes as V

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("alpha0.0", "alpha0.5", "alpha1.0", "control", "noentropy")
BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
# (benchmark path below logs/benchmarks, wall seconds, max_rss MB or None (NA), cpu seconds or None)
BENCHMARKS = (
    ("prepare_data/train.tsv", 1.5, 150.0, 1.4),
    ("prepare_data/val.tsv", 0.5, None, None),  # ended before the first sample: NA
    ("tokenizer_phase1/alpha0.0/seed0.tsv", 100.0, 400.0, 98.0),
    ("tokenizer_phase1/alpha1.0/seed0.tsv", 104.0, 420.5, 101.0),
    ("tokenizer_phase1/control/seed0.tsv", 90.0, 380.0, 88.0),
    ("eval_tokenizer/phase1/alpha0.0/seed0.tsv", 7.0, 300.0, 6.5),
    ("fig2_val_loss.tsv", 2.0, 200.0, 1.9),
)
MACHINE = {
    "cpu_model": "Test CPU 9000",
    "cpu_family_model_stepping": "6/85/7",
    "cpu_flags": ["avx2"],
    "cpu_capability": "AVX2",
    "native_bf16": False,
    "cores": 2,
    "torch": "2.0.test",
    "python": "3.12.0",
}


@pytest.fixture(autouse=True)
def fixed_machine(monkeypatch):
    """run.json's machine and code identity, fixed so rendered tables are reproducible."""
    monkeypatch.setattr(R, "_machine", lambda: dict(MACHINE))
    monkeypatch.setattr(R, "_git_revision", lambda: "abc1234")


def params_file(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(embedded_params(**changes).raw, sort_keys=False))
    return path


def write_run_tree(root: Path, **scenario) -> Fakes:
    """A finished default target under ``root``: artefacts, tables, benchmarks, sidecar compute records."""
    f = Fakes(root)
    write_claim_inputs(f, **scenario)
    results = f.layout.results
    f._write(f.layout.semantic_metrics(), {"val_accuracy": 0.99, "count": 1000})
    (results / "claims.md").write_text("# claims\n")
    (results / "fig2_val_loss.csv").write_text("variant,final_val_loss\nalpha0.0,4.2\n")
    (results / "tables").mkdir(parents=True, exist_ok=True)
    for name in ("table5_codebook", "model_sizes"):
        (results / "tables" / f"{name}.md").write_text(f"# {name}\n")
        (results / "tables" / f"{name}.csv").write_text("row,column\n")
    sidecar = f.layout.transformer_sidecar("ar", "base", "alpha0.0", 0)
    record = json.loads(sidecar.read_text())
    # where the trainers record it: sidecar["training"]["compute"]
    training = {**record.get("training", {}), "compute": {"precision": "fp32", "threads": 1}}
    sidecar.write_text(json.dumps({**record, "training": training}))
    for rel, seconds, rss, cpu in BENCHMARKS:
        path = root / "logs" / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)

        def fmt(v):
            return "NA" if v is None else f"{v:.2f}"

        path.write_text(
            BENCH_HEADER + f"{seconds:.4f}\t0:00:{int(seconds):02d}\t{fmt(rss)}\t{fmt(rss)}\t"
            f"{fmt(rss)}\t{fmt(rss)}\t0.1\t0.2\t{fmt(cpu)}\t{fmt(cpu)}\n"
        )
    return f


def make_reference(tmp_path: Path, **scenario) -> tuple[Path, Path, Fakes]:
    """(project root, params file, fakes) with results/reference collected from the fake tree."""
    root = tmp_path / "run"
    f = write_run_tree(root, **scenario)
    params = params_file(tmp_path)
    R.collect_reference(params, root, root / "results" / "reference")
    return root, params, f


# ----------------------------------------------------------------------------------------------
# collect_numbers
# ----------------------------------------------------------------------------------------------


def test_collect_numbers_reads_every_variant_per_seed(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    f._write(f.layout.semantic_metrics(), {"val_accuracy": 0.99})
    params = embedded_params()
    run = collect_numbers(params, f.layout)
    n = run.numbers

    for variant in VARIANTS:
        for metric in ("psnr", "codebook_usage", "codebook_perplexity", "rfid", "semantic_accuracy_reconstructed"):
            assert set(n[f"tokenizer/{variant}/{metric}"].values) == {0, 1, 2}
    assert n["tokenizer/alpha1.0/psnr"].values == {0: 17.0, 1: 17.0, 2: 17.0}
    assert n["tokenizer/alpha0.5/psnr"].spread.mean == pytest.approx(17.5)
    usage = n["tokenizer/noentropy/codebook_usage"]
    assert usage.values == {0: 0.4, 1: 0.5, 2: 0.45}
    assert usage.spread.std == pytest.approx(0.05) and usage.spread.mean == pytest.approx(0.45)

    loss = n["transformer/ar/base/alpha0.5/final_val_loss"]
    assert loss.values == {0: 4.1, 1: 4.18, 2: 4.16} and loss.unit == "nats/token"
    assert loss.spread.std == pytest.approx(spread([4.1, 4.18, 4.16]).std)
    assert n["transformer/ar/base/alpha0.0/unigram_cross_entropy"].values == pytest.approx({0: 5.42, 1: 5.43, 2: 5.425})
    assert "transformer/ar/base/noentropy/final_val_loss" not in n  # a tokenizer-only control
    assert n["semantic/val_accuracy"].values == {0: 0.99}

    # claim 2: alpha1.0 - alpha0.0 per seed -0.2, -0.25, -0.15 with the t-interval of claims.md
    paired = n["claim2/ar/base/alpha1.0 - alpha0.0/paired_difference"]
    assert paired.values == pytest.approx({0: -0.2, 1: -0.25, 2: -0.15})
    assert paired.interval.confidence == 0.95
    half = 4.302652729911275 * 0.05 / math.sqrt(3)  # t_0.975 with 2 degrees of freedom
    assert (paired.interval.low, paired.interval.high) == pytest.approx((-0.2 - half, -0.2 + half))
    assert {k for k in n if k.startswith("claim2/")} == {
        f"claim2/ar/base/{p}/paired_difference"
        for p in ("alpha1.0 - alpha0.0", "alpha0.5 - alpha0.0", "alpha1.0 - alpha0.5")
    }

    expected = {c.number: c.verdict for c in C.evaluate_claims(params, f.layout)}
    assert {k: v.verdict for k, v in run.claims.items()} == expected and run.missing == ()
    assert str(f.layout.tokenizer_metrics("alpha0.5", 1)) in n["tokenizer/alpha0.5/psnr"].sources

    again = numbers_from_json(numbers_to_json(run))
    assert again == run  # numbers.json keeps every per-seed value exactly


def test_collect_numbers_reports_missing_artefacts_instead_of_failing(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    gone = f.layout.tokenizer_metrics("alpha0.5", 1)
    gone.unlink()
    run = collect_numbers(embedded_params(), f.layout)
    assert run.numbers["tokenizer/alpha0.5/psnr"].values == {0: 17.5, 2: 17.5}  # seed 1 left out
    assert str(gone) in run.missing
    assert run.claims == {} and any(m.startswith("claims (no verdicts)") for m in run.missing)
    assert "semantic/val_accuracy" not in run.numbers  # no semantic.json written


# ----------------------------------------------------------------------------------------------
# Tolerance and comparison
# ----------------------------------------------------------------------------------------------


def test_two_sample_test_is_the_pooled_t_test():
    from scipy.stats import ttest_ind

    first, second = [4.10, 4.18, 4.16], [4.31, 4.22, 4.40, 4.28]
    t = two_sample_test(first, second)
    expected = ttest_ind(second, first, equal_var=True)
    assert t.difference == pytest.approx(sum(second) / 4 - sum(first) / 3)
    assert t.degrees_of_freedom == 5 and t.p_value == pytest.approx(expected.pvalue)
    assert t.difference / t.standard_error == pytest.approx(expected.statistic)
    # the tolerance is the difference the test accepts at that level: p == level exactly there
    shifted = two_sample_test(first, [v - t.difference + t.tolerance(0.05) for v in second])
    assert shifted.p_value == pytest.approx(0.05)
    # one value per side: no spread to test against
    assert two_sample_test([0.99], [0.98]).p_value is None and two_sample_test([0.99], [0.98]).tolerance(0.05) is None
    # one side measured once still gives a test, its spread from the other side's seeds
    assert two_sample_test([1.0], [1.1, 1.3]).degrees_of_freedom == 1
    # no spread at all: equal means agree, different means differ
    assert two_sample_test([17.0] * 3, [17.0] * 3).p_value == 1.0
    assert two_sample_test([17.0] * 3, [17.1] * 3).p_value == 0.0


def test_holm_steps_down_until_the_first_acceptance():
    # m = 4: thresholds 0.0125, 0.0167, 0.025, 0.05 for the sorted p-values
    assert holm_rejections({"a": 0.01, "b": 0.016, "c": 0.03, "d": 0.04}, 0.05) == {"a", "b"}
    assert holm_rejections({"a": 0.013, "b": 0.001}, 0.05) == {"a", "b"}  # 0.001 <= 0.025, 0.013 <= 0.05
    assert holm_rejections({"a": 0.02, "b": 0.03, "c": 0.9}, 0.05) == set()  # 0.02 > 0.05 / 3 stops it
    assert holm_rejections({}, 0.05) == set()


def _simulated_run(rng, means: dict[str, float], sds: dict[str, float], seeds: int):
    """A RunNumbers of normal seed draws around ``means`` (one distribution: the same code)."""
    from seqgan.report.numbers import Number, RunNumbers

    return RunNumbers(
        {
            name: Number(
                "tokenizer", (name,), "x", {s: float(rng.normal(means[name], sds[name])) for s in range(seeds)}, ""
            )
            for name in means
        }
    )


def test_two_sample_test_edge_cases_and_holm_at_its_threshold():
    """One seed a side: no standard error, 0 degrees of freedom, no p. Zero pooled spread: standard
    error 0, so the tolerance is 0 and any difference is outside (p = 0). An empty side is an error.
    Holm rejects a p-value equal to its threshold (p <= level / (m - i))."""
    from seqgan.report.stats import TwoSampleTest

    assert two_sample_test([1.0], [3.0]) == TwoSampleTest(2.0, None, 0, None)
    flat = two_sample_test([2.0, 2.0], [3.0, 3.0])
    assert flat == TwoSampleTest(1.0, 0.0, 2, 0.0) and flat.tolerance(0.05) == 0.0
    assert two_sample_test([2.0, 2.0], [2.0]) == TwoSampleTest(0.0, 0.0, 1, 1.0)
    for first, second in (([], [1.0, 2.0]), ([1.0, 2.0], [])):
        with pytest.raises(ValueError, match="at least one value on each side"):
            two_sample_test(first, second)
    assert holm_rejections({"x": 0.05}, 0.05) == {"x"}
    assert holm_rejections({"x": 0.025, "y": 0.05}, 0.05) == {"x", "y"}


def test_false_alarm_rate_of_same_code_reruns_is_controlled():
    """Seed draws of two runs from one distribution: Holm flags anything in at most 5 % of reruns,
    and about level x m numbers per rerun fall outside their tolerance (the count the report states)."""
    import numpy as np

    rng = np.random.default_rng(7)
    params = embedded_params()
    level = params.evaluation.verdicts.reference_false_alarm
    m = 30
    means = {f"n{i}": float(rng.uniform(-5, 20)) for i in range(m)}
    sds = {f"n{i}": float(rng.uniform(0.001, 0.5)) for i in range(m)}
    reruns, any_flag, outside = 800, 0, 0
    for _ in range(reruns):
        reference = _simulated_run(rng, means, sds, 3)
        this = _simulated_run(rng, means, sds, 3)
        comparison = compare_runs(reference, this, params.evaluation.verdicts)
        assert comparison.tested == m and comparison.agrees  # no failure: numbers never fail the exit status
        any_flag += bool(comparison.flagged)
        outside += len(comparison.outside)
    # binomial(800, 0.05): 3 standard errors above 5 % is 7.3 %
    assert any_flag / reruns <= level + 3 * math.sqrt(level * (1 - level) / reruns)
    # outside the per-number tolerance: level x m per rerun on average (1.5 here), within 3 standard errors
    per_rerun = outside / reruns
    assert abs(per_rerun - level * m) <= 3 * math.sqrt(level * (1 - level) * m / reruns) + 0.05
    # and a real shift of one number is found: 10 standard deviations in every seed
    reference = _simulated_run(rng, means, sds, 3)
    shifted = _simulated_run(rng, {**means, "n0": means["n0"] + 10 * sds["n0"]}, sds, 3)
    assert "n0" in [c.name for c in compare_runs(reference, shifted, params.evaluation.verdicts).flagged]


def test_the_tolerance_pools_both_runs_seed_spreads():
    """One number, seeds 1, 2, 3 on one side and 2.5 three times on the other: the pooled variance is
    (2 + 0) / 4, the standard error sqrt(0.5 x 2 / 3), the tolerance t_(0.975, 4) x SE = 1.603, so
    a difference of 0.5 is inside, in either order. A tolerance from one side's spread alone would be
    0 for one of the orders and put it outside (a rerun could then also widen its own tolerance)."""
    from scipy.stats import t as student_t

    from seqgan.report.numbers import Number, RunNumbers

    def run(values: list[float]) -> RunNumbers:
        return RunNumbers({"n": Number("tokenizer", ("n",), "x", dict(enumerate(values)), "")})

    v = embedded_params().evaluation.verdicts
    expected = float(student_t.ppf(1 - v.reference_false_alarm / 2, 4)) * math.sqrt(0.5 * 2 / 3)
    for reference, this in (([1.0, 2.0, 3.0], [2.5] * 3), ([2.5] * 3, [1.0, 2.0, 3.0])):
        comparison = compare_runs(run(reference), run(this), v)
        (row,) = comparison.numbers
        assert row.tolerance == pytest.approx(expected, rel=1e-12)
        assert abs(row.test.difference) == pytest.approx(0.5) and comparison.outside == []


def test_a_run_agrees_with_itself(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    params = embedded_params()
    run = collect_numbers(params, f.layout)
    comparison = compare_runs(run, run, params.evaluation.verdicts)
    assert comparison.agrees and comparison.disagreements == []
    assert {c.status for c in comparison.numbers} == {AGREE} and len(comparison.numbers) == len(run.numbers)
    assert {v.status for v in comparison.verdicts} == {SAME}
    # each claim's verdict and each of its parts' verdicts
    assert len(comparison.verdicts) == sum(1 + len(c.parts) for c in run.claims.values()) == 4 + 8


def _shifted(run, name, delta):
    number = run.numbers[name]
    moved = dataclasses.replace(number, values={s: v + delta for s, v in number.values.items()})
    return dataclasses.replace(run, numbers={**run.numbers, name: moved})


def test_a_number_moved_beyond_its_tolerance_is_outside_and_only_holm_makes_it_differ(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    params = embedded_params()
    v = params.evaluation.verdicts
    run = collect_numbers(params, f.layout)
    name = "transformer/ar/base/alpha0.5/final_val_loss"
    s = run.numbers[name].spread
    # the pooled t tolerance of two 3-seed sets with equal spread: t_(0.975, 4) x std x sqrt(2/3)
    limit = 2.776445 * s.std * math.sqrt(2 / 3)

    inside = {c.name: c for c in compare_runs(run, _shifted(run, name, 0.99 * limit), v).numbers}
    assert inside[name].status == AGREE and inside[name].tolerance == pytest.approx(limit, rel=1e-5)
    beyond = compare_runs(run, _shifted(run, name, 1.01 * limit), v)
    rows = {c.name: c for c in beyond.numbers}
    # just outside: p just under 0.05, far above Holm's 0.05 / m: outside, reported, not a failure
    assert rows[name].status == OUTSIDE and rows[name].difference == pytest.approx(1.01 * limit)
    assert beyond.agrees and beyond.failures == [] and [c.name for c in beyond.outside] == [name]
    assert beyond.expected_by_chance == pytest.approx(v.reference_false_alarm * beyond.tested)
    # far outside: Holm rejects it
    far = compare_runs(run, _shifted(run, name, 20 * limit), v)
    assert [c.name for c in far.flagged] == [name] and {c.name: c.status for c in far.numbers}[name] == DIFFER
    assert far.agrees  # numbers alone never fail the comparison (compare-reference --strict makes them)
    # a number measured once on both sides has no spread: shown, not tested
    from seqgan.report.numbers import Number

    once = {"semantic/val_accuracy": Number("semantic", (), "val_accuracy", {0: 0.99}, "")}
    moved = {"semantic/val_accuracy": Number("semantic", (), "val_accuracy", {0: 0.5}, "")}
    single = compare_runs(dataclasses.replace(run, numbers=once), dataclasses.replace(run, numbers=moved), v)
    assert [(c.status, c.difference) for c in single.numbers] == [(NO_SPREAD, pytest.approx(-0.49))]
    assert single.tested == 0 and single.agrees
    # a params difference fails the comparison however the numbers agree
    assert compare_runs(run, run, v, "abc vs def").failures == ["params differ from the reference's (abc vs def)"]


def test_a_changed_verdict_and_absent_numbers_are_reported(tmp_path):
    f = Fakes(tmp_path)
    write_claim_inputs(f)
    params = embedded_params()
    run = collect_numbers(params, f.layout)
    loss_part = run.claims[2].parts[0]
    changed = dataclasses.replace(
        run.claims[2], verdict=V.DOES_NOT_HOLD, parts=((loss_part[0], V.UNDECIDED), *run.claims[2].parts[1:])
    )
    flipped = dataclasses.replace(run, claims={**run.claims, 2: changed})
    comparison = compare_runs(run, flipped, params.evaluation.verdicts)
    assert [(v.claim, v.part) for v in comparison.verdicts if v.status == DIFFER] == [(2, None), (2, loss_part[0])]
    assert comparison.disagreements == [
        f"claim 2 verdict: differ ({run.claims[2].verdict} -> does not hold)",
        f'claim 2, part "{loss_part[0]}" verdict: differ ({loss_part[1]} -> undecided at this scale)',
    ]

    name = "tokenizer/control/rfid"
    partial = dataclasses.replace(run, numbers={k: n for k, n in run.numbers.items() if k != name}, claims={})
    comparison = compare_runs(run, partial, params.evaluation.verdicts)
    assert {c.name: c.status for c in comparison.numbers}[name] == ONLY_REFERENCE
    assert f"{name}: {ONLY_REFERENCE}" in comparison.disagreements
    assert {v.status for v in comparison.verdicts} == {ONLY_REFERENCE}


def test_a_claim_only_this_run_has_is_absent_from_the_reference():
    """The mirror of a claim the reference has and this run lacks: a claim (and its parts) only in this
    run is reported as absent from the reference, with the reference's side None, and fails the
    comparison; the artefacts missing from each run are both noted."""
    from seqgan.report.numbers import ClaimVerdict, RunNumbers

    v = embedded_params().evaluation.verdicts
    this = RunNumbers({}, {5: ClaimVerdict("s", V.HOLDS, (("part a", V.HOLDS),))}, missing=("a.json",))
    comparison = compare_runs(RunNumbers({}, missing=("b.json",)), this, v)
    # the artefacts missing on either side are noted, this run's first
    assert comparison.notes == ["missing in this run: a.json", "missing in the reference run: b.json"]
    assert [(c.claim, c.part, c.reference, c.this, c.status) for c in comparison.verdicts] == [
        (5, None, None, V.HOLDS, ONLY_THIS),
        (5, "part a", None, V.HOLDS, ONLY_THIS),
    ]
    assert not comparison.agrees


def test_the_json_summary_counts_every_outcome_and_the_report_marks_a_missing_p():
    """comparison_summary, which the README's thread check reads: every key, the number outcomes counted
    (two numbers agree), the expected count of chance outliers rounded to 3 decimals; and in the
    Markdown, a number without a p-value (no spread, or present on one side) shows "-" in the p column."""
    from seqgan.report.compare_reference import comparison_markdown, comparison_summary
    from seqgan.report.numbers import ClaimVerdict, Number, RunNumbers

    def run(values: dict[str, list[float]]) -> RunNumbers:
        numbers = {n: Number("tokenizer", (n,), "x", dict(enumerate(v)), "") for n, v in values.items()}
        return RunNumbers(numbers, {1: ClaimVerdict("s", V.HOLDS, (("p", V.HOLDS),))})

    v = dataclasses.replace(embedded_params().evaluation.verdicts, reference_false_alarm=0.0123)
    reference = run({"a": [1.0, 2.0, 3.0], "a2": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "c": [0.99]})
    this = run({"a": [1.0, 2.0, 3.0], "a2": [1.0, 2.0, 3.0], "b": [101.0, 102.0, 103.0], "c": [0.5], "d": [7.0]})
    comparison = compare_runs(reference, this, v, "abc vs def")
    p_b = {c.name: c for c in comparison.numbers}["b"].test.p_value
    failures = ["params differ from the reference's (abc vs def)", f"d: {ONLY_THIS}"]
    assert comparison_summary(comparison, "ref/dir") == {
        "reference": "ref/dir",
        "numbers": 5,
        "number_outcomes": {AGREE: 2, DIFFER: 1, NO_SPREAD: 1, ONLY_THIS: 1},
        "false_alarm_level": 0.0123,
        "tested": 3,
        "outside_tolerance": ["b"],
        "expected_by_chance": 0.037,  # 0.0123 x 3 = 0.0369
        "differ_holm": ["b"],
        "params_differ": "abc vs def",
        "verdicts": [
            {"claim": 1, "part": None, "reference": V.HOLDS, "this": V.HOLDS, "outcome": SAME},
            {"claim": 1, "part": "p", "reference": V.HOLDS, "this": V.HOLDS, "outcome": SAME},
        ],
        "failures": failures,
        "disagreements": [*failures, f"b: {DIFFER} (p = {p_b:.2g})"],
        "agrees": False,
    }
    lines = comparison_markdown(comparison, v, "ref/dir", []).splitlines()
    assert "| c | 0.99 (n = 1) | 0.5 (n = 1) | -0.49 | - | - | no spread (n = 1) |" in lines
    assert f"| d | - | 7 (n = 1) | - | - | - | {ONLY_THIS} |" in lines
    assert f"- b: {DIFFER} (p = {p_b:.2g})" in lines


def test_compare_reference_cli_exit_status_and_report(tmp_path, capsys):
    root, params, f = make_reference(tmp_path)
    out = root / "results" / "compare_reference.md"
    args = [
        "compare-reference",
        "--params",
        str(params),
        "--reference",
        str(root / "results" / "reference"),
        "--results-dir",
        str(f.layout.results),
        "--models-dir",
        str(f.layout.models),
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    text = out.read_text()
    same = "4.147 +- 0.042 (n = 3)"
    assert f"| transformer/ar/base/alpha0.5/final_val_loss | {same} | {same} | +0 |" in text
    assert "| 2 | " in text and "every verdict is the same" in text
    assert "0 of 55 tested numbers lie outside their 95% tolerance; chance alone puts 2.8 there" in text

    # every seed's alpha0.5 loss 0.3 higher: 8.7 standard errors, and claim 2's verdict changes
    for seed, loss in {0: 4.1, 1: 4.18, 2: 4.16}.items():
        f.transformer("ar", "base", "alpha0.5", seed, loss=loss + 0.3, unigram=5.0 + loss / 10)
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert "claim 2 verdict: differ (holds -> does not hold)" in str(exc.value.code)
    assert "final_val_loss" not in str(exc.value.code)  # numbers are reported, verdicts fail
    with pytest.raises(SystemExit) as exc:
        cli.main([*args, "--strict"])  # --strict: a number beyond chance (Holm) fails too
    assert "transformer/ar/base/alpha0.5/final_val_loss: differ (Holm)" in str(exc.value.code)
    text = out.read_text()
    row = r"\| transformer/ar/base/alpha0\.5/final_val_loss \| .* \| \+0\.3 \| 0\.09\d* \| 0\.00\d+ \| differ \|"
    assert re.search(row, text)
    assert "- transformer/ar/base/alpha0.5/final_val_loss: " in text

    # the JSON summary beside the report, and the README's thread-check section rendered from it
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["agrees"] is False and "transformer/ar/base/alpha0.5/final_val_loss" in summary["outside_tolerance"]
    assert summary["expected_by_chance"] == pytest.approx(0.05 * summary["tested"], abs=1e-3)
    assert {"claim": 2, "part": None, "reference": "holds", "this": "does not hold", "outcome": "differ"} in summary[
        "verdicts"
    ]
    reference = root / "results" / "reference"
    (reference / "threads2").mkdir()
    out.with_suffix(".json").rename(reference / "threads2" / "compare_reference.json")
    readme = fake_readme(root / "README.md")
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "threads")
    assert "| 2 | holds | does not hold | differ |" in section and "wall time" not in section
    two = json.loads((reference / "run.json").read_text())
    two["main_job"]["wall_seconds"], two["default_target"]["wall_seconds"] = 451.0, 1200.0
    (reference / "threads2" / "run.json").write_text(json.dumps(two))
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "threads")
    assert "| main job | not measured (`--collect-only`) | 7.5 min (451 s) |" in section
    assert "- transformer/ar/base/alpha0.5/final_val_loss: differ" in section

    with pytest.raises(SystemExit, match="no run.json in the reference directory .*seqgan reference-run"):
        cli.main([*args[:4], str(tmp_path / "nowhere"), *args[5:]])


# ----------------------------------------------------------------------------------------------
# Reference run: refusal, the timed run, collection
# ----------------------------------------------------------------------------------------------


def test_reference_run_refuses_to_start_over_existing_outputs(tmp_path):
    root = tmp_path / "clone"
    (root / "data" / "raw" / "imagenet").mkdir(parents=True)  # input images: not an output
    (root / "results" / "reference").mkdir(parents=True)  # the committed reference: not an output
    calls = []

    def runner(command, cwd):
        calls.append(command)
        return 1  # stops after the first call: this test only checks what happens before

    with pytest.raises(R.ReferenceRunError, match="main_job failed"):
        R.run_reference(params_file(tmp_path), root, root / "results" / "reference", run_command=runner)
    assert len(calls) == 1  # nothing existing: it started

    for made in ("models/semantic", "results/metrics", "data/shapes32", "logs/benchmarks/x"):
        (root / made).mkdir(parents=True)
        calls.clear()
        with pytest.raises(R.ReferenceRunError, match=f"outputs already exist .*{made.split('/')[0]}.*--force"):
            R.run_reference(params_file(tmp_path), root, root / "results" / "reference", run_command=runner)
        assert calls == []
    assert [str(p.relative_to(root)) for p in R.existing_outputs(root, root / "results" / "reference")] == [
        "data/shapes32",
        "models/semantic",
        "results/metrics",
        "logs/benchmarks",
    ]
    # a second reference elsewhere (e.g. --threads 2) starts beside the committed one
    assert [str(p.relative_to(root)) for p in R.existing_outputs(root, root / "results" / "threads2")] == [
        "data/shapes32",
        "models/semantic",
        "results/metrics",
        "logs/benchmarks",
    ]
    fresh = tmp_path / "fresh"
    (fresh / "results" / "reference").mkdir(parents=True)
    (fresh / "results" / "evidence").mkdir(parents=True)  # committed benchmark output: no workflow output
    assert R.existing_outputs(fresh, fresh / "results" / "reference-threads2") == []


def test_reference_run_cli_refuses_in_a_used_checkout(tmp_path, monkeypatch):
    (tmp_path / "models" / "semantic").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="error: reference-run: workflow outputs already exist .*models"):
        cli.main(["reference-run", "--params", str(params_file(tmp_path))])


def test_reference_run_times_both_snakemake_calls_then_collects(tmp_path):
    root = tmp_path / "clone"
    root.mkdir()
    calls = []

    def runner(command, cwd):
        calls.append((list(command), cwd))
        if len(calls) == 1:
            write_run_tree(root)
        return 0

    ref = R.run_reference(params_file(tmp_path), root, root / "results" / "reference", run_command=runner)
    assert [c for c, _ in calls] == [
        [sys.executable, "-m", "snakemake", "results/fig2_val_loss.pdf", "--cores", "all"],
        [sys.executable, "-m", "snakemake", "--cores", "all"],
    ]
    assert {cwd for _, cwd in calls} == {root}
    info = ref.run_info()
    assert info["main_job"]["command"] == "python -m snakemake results/fig2_val_loss.pdf --cores all"
    assert info["default_target"]["command"] == "python -m snakemake --cores all"
    assert info["main_job"]["wall_seconds"] >= 0 and info["default_target"]["wall_seconds"] >= 0
    assert info["forced"] is False


def test_reference_run_with_threads_sets_every_threaded_rule(tmp_path):
    commands = R.snakemake_commands(2)
    for command in commands.values():
        assert command[command.index("--set-threads") + 1 :] == [f"{rule}=2" for rule in R.THREADED_RULES]
    assert R.snakemake_commands(None)["default_target"] == [sys.executable, "-m", "snakemake", "--cores", "all"]
    # the list is exactly the rules whose command hands Snakemake's thread count to torch
    blocks = _rule_blocks()
    threaded = {rule for rule, block in blocks.items() if "--threads {threads}" in block}
    assert set(R.THREADED_RULES) == threaded | {"train_nar"}  # train_nar inherits train_ar's command


def test_collect_only_writes_every_reference_file(tmp_path, monkeypatch):
    root, params, f = make_reference(tmp_path)
    ref = ReferenceLayout(root / "results" / "reference")
    out = ref.root
    assert (out / "claims.md").read_text() == "# claims\n"
    assert (out / "fig2_val_loss.csv").read_text() == (root / "results" / "fig2_val_loss.csv").read_text()
    assert sorted(p.name for p in (out / "tables").iterdir()) == [
        "model_sizes.csv",
        "model_sizes.md",
        "table5_codebook.csv",
        "table5_codebook.md",
    ]
    for variant in VARIANTS:
        for seed in (0, 1, 2):
            copied = out / "metrics" / "tokenizer" / "phase1" / variant / f"seed{seed}.json"
            assert copied.read_bytes() == f.layout.tokenizer_metrics(variant, seed).read_bytes()
    assert all((out / "metrics" / "tokenizer" / "phase2" / f"seed{s}.json").is_file() for s in (0, 1, 2))
    assert json.loads((out / "metrics" / "semantic.json").read_text())["val_accuracy"] == 0.99

    timings = (out / "timings.csv").read_text().splitlines()
    assert timings[0] == "rule,wildcards,seconds,max_rss_mb,cpu_seconds,started"
    rows = {tuple(line.split(",")[:2]): line.split(",")[2:5] for line in timings[1:]}
    assert len(rows) == len(BENCHMARKS)
    assert rows[("tokenizer_phase1", "alpha1.0/seed0")] == ["104.0", "420.5", "101.0"]
    assert rows[("prepare_data", "val")] == ["0.5", "", ""]  # NA: not measured, not zero
    assert rows[("fig2_val_loss", "")] == ["2.0", "200.0", "1.9"]
    stages = {s.rule: s for s in ref.stages()}
    phase1 = stages["tokenizer_phase1"]
    assert (phase1.jobs, phase1.median_seconds, phase1.max_seconds) == (3, 100.0, 104.0)
    assert phase1.total_cpu_seconds == pytest.approx(98.0 + 101.0 + 88.0) and phase1.peak_rss_mb == 420.5
    assert (stages["prepare_data"].total_cpu_seconds, stages["prepare_data"].peak_rss_mb) == (1.4, 150.0)

    info = ref.run_info()
    assert info["machine"] == MACHINE and info["torch"] == "2.0.test" and info["threads_per_job"] == [1]
    # the code that trained the run (the sidecars' revision), not the code that collected it
    assert info["git_revision"] == "fed9876" and info["collected_with"] == "abc1234"
    assert info["params_name"] == "embedded"
    from seqgan.config import load_params, params_hash

    assert info["params_hash"] == params_hash(load_params(params).raw)
    assert info["main_job"]["wall_seconds"] is None  # collect-only: nothing was timed
    assert ref.numbers() == collect_numbers(load_params(params), f.layout)

    # a second collection keeps an earlier run's wall times and drops files no longer produced
    info["main_job"]["wall_seconds"], info["default_target"]["wall_seconds"] = 500.0, 600.0
    ref.run_json.write_text(json.dumps(info))
    (root / "results" / "tables" / "model_sizes.md").unlink()
    R.collect_reference(params, root, out)
    assert ref.run_info()["main_job"]["wall_seconds"] == 500.0
    assert not (out / "tables" / "model_sizes.md").exists()

    monkeypatch.chdir(root)
    shutil.rmtree(root / "results" / "metrics" / "tokenizer")
    with pytest.raises(SystemExit, match="incomplete, missing: .*metrics/tokenizer.*snakemake --cores all"):
        cli.main(["reference-run", "--params", str(params), "--collect-only"])


# ----------------------------------------------------------------------------------------------
# README tables
# ----------------------------------------------------------------------------------------------


def fake_readme(path: Path) -> Path:
    """A README with its generated sections' markers, and the docs pages beside it with theirs
    (``SECTION_FILES``); returns the README's path."""
    path.write_text(
        "# Title\n\nprose before\n\n"
        + start_marker("timings")
        + "\nold\n"
        + end_marker("timings")
        + "\n\nmiddle prose\n\n"
        + start_marker("results")
        + "\n"
        + end_marker("results")
        + "\n\nafter\n"
    )
    for name in ("semantic_recipe", "tokenizer_recipe", "threads"):
        page = path.parent / SECTION_FILES[name]
        page.parent.mkdir(parents=True, exist_ok=True)
        text = page.read_text() if page.exists() else f"# {page.stem}\n"
        page.write_text(f"{text}\n{start_marker(name)}\n{end_marker(name)}\n")
    return path


def generated_section(readme: Path, name: str) -> str:
    """The generated section ``name`` as it stands, from the file it lives in (README or docs page)."""
    text = (readme.parent / SECTION_FILES[name]).read_text()
    return text.split(start_marker(name))[1].split(end_marker(name))[0]


RECIPE_COLUMNS = "lr,iterations,seed,threads,val_accuracy,val_loss,first_step_above_half,diverged,wall_seconds\n"


def test_readme_tokenizer_recipe_section_renders_the_recorded_trials(tmp_path):
    root, _, _ = make_reference(tmp_path)
    reference = root / "results" / "reference"
    readme = fake_readme(root / "README.md")
    header = (
        "trial,variant,seed,changes,iterations,batch_size,psnr,l1,codebook_usage,codebook_perplexity,"
        "seconds_per_step,wall_seconds,threads,cpu\n"
    )
    (reference / "tokenizer_recipe.csv").write_text(
        header + 'lr 1e-3,alpha1.0,0,"{""tokenizer.phase1.lr"": 0.001}",600,16,17.456,0.21,0.4453,106.7,0.1024,65.2,1,'
        "Test CPU 9000\n"
    )
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "tokenizer_recipe")
    assert "Measured on Test CPU 9000, 1 torch thread(s) per trial" in section
    assert "| lr 1e-3 | alpha1.0 | 0 | 16 x 600 | 17.46 | 0.445 | 107 | - | - | - | 0.102 |" in section
    # trials with the ground-truth instrument show it
    with (reference / "tokenizer_recipe.csv").open("w") as fh:
        fh.write(header.replace("seconds_per_step", "mask_iou,colour_delta_e,background_delta_e,seconds_per_step"))
        fh.write(
            'a0,alpha0.0,100,"{}",2000,16,21.351,0.1357,0.8164,200.0,0.909,11.67,17.23,0.1064,215.3,1,Test CPU 9000\n'
        )
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "tokenizer_recipe")
    assert "| a0 | alpha0.0 | 100 | 16 x 2000 | 21.35 | 0.816 | 200 | 0.909 | 11.7 | 17.2 | 0.106 |" in section


def test_readme_semantic_recipe_section_renders_the_recorded_sweep(tmp_path):
    root, _, _ = make_reference(tmp_path)
    reference = root / "results" / "reference"
    readme = fake_readme(root / "README.md")
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "semantic_recipe")
    assert "No recipe measurement is recorded" in section
    (reference / "semantic_sweep.csv").write_text(
        RECIPE_COLUMNS + "0.0005,600,0,1,0.1,2.30258,stall,True,40.0\n0.004,600,0,1,0.997,0.02375,200,False,45.0\n"
    )
    (reference / "semantic_seeds.csv").write_text(
        RECIPE_COLUMNS + "0.004,600,0,1,0.997,0.02375,200,False,45.0\n0.004,600,1,2,0.981,0.05,200,False,30.0\n"
    )
    cli.main(["readme-tables", "--reference", str(reference), "--readme", str(readme)])
    section = generated_section(readme, "semantic_recipe")
    assert "| 0.0005 | 600 | 0 | 1 | 0.100 | 2.3026 | stall | diverged (chance) |" in section
    assert "| 0.004 | 600 | 1 | 2 | 0.981 | 0.0500 | 200 | trains |" in section
    assert "lowest validation accuracy 0.981" in section
    assert cli.main(["readme-tables", "--check", "--reference", str(reference), "--readme", str(readme)]) == 0


def test_readme_tables_render_the_reference(tmp_path):
    root, _, _ = make_reference(tmp_path)
    info = json.loads((root / "results" / "reference" / "run.json").read_text())
    info["main_job"]["wall_seconds"], info["default_target"]["wall_seconds"] = 508.0, 664.0
    (root / "results" / "reference" / "run.json").write_text(json.dumps(info))
    readme = fake_readme(root / "README.md")
    assert cli.main(["readme-tables", "--reference", str(root / "results" / "reference"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\nprose before\n\n") and "middle prose" in text and text.endswith("\n\nafter\n")
    assert "\nold\n" not in text
    timings = text.split(start_marker("timings"))[1].split(end_marker("timings"))[0]
    assert "Generated by `seqgan readme-tables` from `results/reference`" in timings
    assert "Test CPU 9000" in timings and "capability AVX2" in timings and "torch 2.0.test" in timings
    assert "1 torch thread(s) per job" in timings
    assert "| main job, `python -m snakemake results/fig2_val_loss.pdf --cores all` | **8.5 min (508 s)** |" in timings
    assert "| both, from nothing | **19.5 min (1172 s)** |" in timings
    assert "| tokenizer_phase1 | 3 | 100.0 | 104.0 | 294 | 420 |" in timings  # wall seconds summed
    assert "| prepare_data | 2 | 1.0 | 1.5 | 2 | 150 |" in timings

    results = text.split(start_marker("results"))[1].split(end_marker("results"))[0]
    assert "Means +- sample std over experiment seeds 0, 1, 2 (each number's" in results
    header = next(line for line in results.splitlines() if line.startswith("| tokenizer |"))
    assert header.split(" | ")[1:3] == ["AR base endpoint val CE (nats/token)", "unigram CE of its tokens"]
    alpha05 = next(line for line in results.splitlines() if line.startswith("| alpha0.5 |"))
    loss = spread([4.1, 4.18, 4.16])
    assert alpha05.split(" | ")[1] == f"{loss.mean:.3f} +- {loss.std:.3f}"
    assert alpha05.split(" | ")[4] == "1.000 +- 0.000"  # codebook usage
    assert next(line for line in results.splitlines() if line.startswith("| noentropy |")).split(" | ")[1] == "-"
    assert "Semantic network, validation accuracy: 0.990 (n = 1)." in results
    claim2 = next(line for line in results.splitlines() if line.startswith("| 2. A larger semantic ratio alpha"))
    assert "| **holds** |" in claim2
    assert "the endpoint validation loss decreases as alpha grows (paired per-seed differences), given that " in claim2
    assert "(manipulation check): *holds*" in claim2
    assert "| AR base | alpha1.0 - alpha0.0 | -0.200, -0.250, -0.150 | -0.200 | [-0.324, -0.076] |" in results

    assert (
        cli.main(
            ["readme-tables", "--check", "--reference", str(root / "results" / "reference"), "--readme", str(readme)]
        )
        == 0
    )


def test_readme_results_name_each_seed_set_when_claim_2_s_ends_have_more_seeds():
    from seqgan.report.numbers import Number, RunNumbers
    from seqgan.report.readme_tables import render_results

    def psnr(variant, seeds):
        return Number("tokenizer", (variant,), "psnr", {s: 20.0 + s for s in seeds}, "dB", ())

    numbers = [psnr("alpha0.0", range(5)), psnr("alpha0.5", range(3)), psnr("alpha1.0", range(5))]
    numbers.append(psnr("control", range(3)))
    text = render_results(RunNumbers({n.name: n for n in numbers}, {}, ()), "results/reference/numbers.json")
    assert (
        "Means +- sample std over alpha0.0, alpha1.0: seeds 0, 1, 2, 3, 4; alpha0.5, control: seeds 0, 1, 2 "
        "(each number's" in text
    )


def test_readme_check_fails_on_a_stale_readme(tmp_path, capsys):
    root, _, _ = make_reference(tmp_path)
    readme = fake_readme(root / "README.md")
    reference = str(root / "results" / "reference")
    with pytest.raises(SystemExit, match="differs from what .* generates"):
        cli.main(["readme-tables", "--check", "--reference", reference, "--readme", str(readme)])
    assert "-old\n" in capsys.readouterr().out  # the diff names the stale line
    assert readme.read_text().count("\nold\n") == 1  # --check changes nothing
    cli.main(["readme-tables", "--reference", reference, "--readme", str(readme)])
    readme.write_text(readme.read_text().replace("| alpha0.5 |", "| alpha 0.5 (edited) |"))
    with pytest.raises(SystemExit):
        cli.main(["readme-tables", "--check", "--reference", reference, "--readme", str(readme)])


def test_readme_tables_rewrite_and_check_the_docs_pages(tmp_path, capsys):
    """Sections that live in a docs page (SECTION_FILES) are rewritten there and checked there; a
    section's markers left in another file are an error, not a copy that silently goes stale."""
    root, _, _ = make_reference(tmp_path)
    readme = fake_readme(root / "README.md")
    reference = str(root / "results" / "reference")
    cli.main(["readme-tables", "--reference", reference, "--readme", str(readme)])
    assert "No two-thread run is recorded" in generated_section(readme, "threads")
    assert start_marker("threads") not in readme.read_text()
    page = root / SECTION_FILES["threads"]
    page.write_text(page.read_text().replace("No two-thread run", "No 2-thread run"))
    capsys.readouterr()
    with pytest.raises(SystemExit, match="reference-run.md: the text differs from what .* generates"):
        cli.main(["readme-tables", "--check", "--reference", reference, "--readme", str(readme)])
    assert "-No 2-thread run" in capsys.readouterr().out
    cli.main(["readme-tables", "--reference", reference, "--readme", str(readme)])
    assert cli.main(["readme-tables", "--check", "--reference", reference, "--readme", str(readme)]) == 0
    readme.write_text(readme.read_text() + start_marker("threads") + "\n" + end_marker("threads") + "\n")
    with pytest.raises(SystemExit, match="holds the markers of 'threads', which lives in docs/reference-run.md"):
        cli.main(["readme-tables", "--check", "--reference", reference, "--readme", str(readme)])


def test_readme_without_reference_and_without_markers(tmp_path):
    sections = render_sections(tmp_path / "none", "results/reference")
    assert set(sections) == {"timings", "results", "semantic_recipe", "tokenizer_recipe", "threads"}
    assert all("No reference run is recorded yet" in s for s in sections.values())
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(ValueError, match="README.md: needs exactly one <!-- generated:timings -->"):
        generated_readme(tmp_path / "none", readme)


# ----------------------------------------------------------------------------------------------
# Workflow, git and DVC wiring
# ----------------------------------------------------------------------------------------------


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^(?:rule (\w+):|use rule \w+ as (\w+) with:)\n", path.read_text(), flags=re.MULTILINE)
        for i in range(1, len(parts), 3):
            blocks[parts[i] or parts[i + 1]] = parts[i + 2]
    return blocks


def test_every_rule_has_a_benchmark_beside_its_log():
    blocks = _rule_blocks()
    assert len(blocks) >= 20 and "train_nar" in blocks
    for rule, body in blocks.items():
        log = re.search(r'^    log:\n        "logs/([^"]+)\.log",', body, flags=re.MULTILINE)
        bench = re.search(r'^    benchmark:\n        "([^"]+)",', body, flags=re.MULTILINE)
        assert log and bench, f"rule {rule}: needs log: and benchmark:"
        assert bench.group(1) == f"logs/benchmarks/{log.group(1)}.tsv", rule
        assert log.group(1).split("/")[0] == rule, rule  # so the benchmark path names its rule


def test_results_reference_is_committed_and_nobody_s_output():
    rules = (ROOT / "workflow" / "rules").glob("*.smk")
    markers = ("results/reference", "RESULTS_DIR}/reference")
    assert not any(marker in path.read_text() for path in rules for marker in markers)
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    paths = [
        next(iter(item)) if isinstance(item, dict) else item
        for stage in dvc["stages"].values()
        for key in ("outs", "deps", "metrics", "plots")
        for item in stage.get("do", stage).get(key, [])
    ]
    assert paths and not [
        p for p in paths if p.rstrip("/") in ("results", "results/reference") or p.startswith("results/reference")
    ]
    assert "/results/reference/" in (ROOT / ".dvcignore").read_text().splitlines()
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", "results/reference/run.json"], cwd=ROOT, check=False)
        assert ignored.returncode == 1  # not ignored
        assert subprocess.run(["git", "check-ignore", "-q", "results/claims.md"], cwd=ROOT, check=False).returncode == 0
