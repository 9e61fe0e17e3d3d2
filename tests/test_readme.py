"""The README opens with exactly the two commands the project promises, CI runs the second, and its
generated tables are what results/reference generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqgan.report.readme_tables import (
    SECTIONS,
    end_marker,
    generated_readme,
    readme_diff,
    start_marker,
)

ROOT = Path(__file__).resolve().parents[1]


def _opening_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", head, flags=re.S)]


def test_readme_opens_with_main_job_and_test_commands():
    commands = _opening_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "pip install -e ." in main_job and "snakemake" in main_job and "--cores all" in main_job
    assert "pip install -e '.[test]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    tests = _opening_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci


def test_readme_has_each_generated_section_once():
    text = (ROOT / "README.md").read_text()
    for name in SECTIONS:
        assert text.count(start_marker(name)) == 1 and text.count(end_marker(name)) == 1
        assert text.index(start_marker(name)) < text.index(end_marker(name))


def test_readme_tables_are_generated_from_the_reference_run():
    """Exactly what `seqgan readme-tables` writes from results/reference (once a reference run exists)."""
    reference = ROOT / "results" / "reference"
    if not (reference / "run.json").is_file():
        pytest.skip("no reference run yet (results/reference/run.json): `seqgan reference-run` makes it")
    current, generated = generated_readme(reference, ROOT / "README.md")
    assert current == generated, "README.md is stale; run `seqgan readme-tables`:\n" + readme_diff(current, generated)


def test_readme_set_param_examples_change_the_value():
    """A `dvc exp run -S key=value` example that sets params.yaml's own value runs nothing (a user
    found the README's example doing exactly that)."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    examples = re.findall(r"dvc exp run -S ([\w.]+)=(\S+)", (ROOT / "README.md").read_text())
    assert examples
    for key, value in examples:
        node = params
        for part in key.split("."):
            node = node[part]
        assert yaml.safe_load(value) != node, f"README: `dvc exp run -S {key}={value}` sets params.yaml's own value"
