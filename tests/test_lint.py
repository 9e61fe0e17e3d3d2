"""Style and workflow lint, as .ci/run runs them: ruff (check and format) over seqgan/, tests/ and
benchmarks/, and `snakemake --lint` with every remaining lint justified (tests/snakemake_lint.py)."""

from __future__ import annotations

import subprocess
import sys

from snakemake_lint import JUSTIFIED, ROOT, lints, unjustified

SOURCES = ["seqgan", "tests", "benchmarks"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *SOURCES], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_check_is_clean():
    result = ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied():
    result = ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_has_only_justified_lints():
    found = lints()
    assert found, "no lint parsed: the conda-environment lint of every rule is expected (tests/snakemake_lint.py)"
    assert {title for _, title in found} <= set(JUSTIFIED), unjustified(found)


def test_an_unjustified_lint_is_reported():
    found = [("rule fig2_val_loss (line 25, report.smk)", "Path composition with '+' in line 3")]
    assert unjustified(found) == ["rule fig2_val_loss (line 25, report.smk): Path composition with '+' in line 3"]
