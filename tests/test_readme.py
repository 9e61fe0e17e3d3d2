"""The README opens with exactly the two commands the project promises, and CI runs the second."""

from __future__ import annotations

import re
from pathlib import Path

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
