"""`snakemake --lint`, with every lint that remains justified here (run by .ci/run and tests/test_lint.py).

Usage: ``python tests/snakemake_lint.py`` in the repository; exit 1 and each unjustified lint printed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lint title -> why the workflow keeps it.
JUSTIFIED = {
    "Specify a conda environment or container for each rule.": (
        "every rule runs the same package in the project's one virtualenv (the README's first command, "
        ".ci/run), whose pinned dependencies are the environment; twenty identical per-rule conda "
        "environments would duplicate it and cannot be built offline"
    ),
}


def lints(root: Path = ROOT) -> list[tuple[str, str]]:
    """(where, title) of every lint `snakemake --lint` prints for the workflow in ``root``."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=root, capture_output=True, text=True, timeout=300
    )
    text = result.stdout + result.stderr
    if "Error" in text and "Lints for" not in text:
        raise RuntimeError(f"snakemake --lint failed:\n{text}")
    found, where = [], ""
    for line in text.splitlines():
        if line.startswith("Lints for "):
            where = line.removeprefix("Lints for ").rstrip(":")
        elif m := re.match(r"^    \* (.+?):?$", line):
            found.append((where, m.group(1).rstrip(":")))
    return found


def unjustified(found: list[tuple[str, str]]) -> list[str]:
    return [f"{where}: {title}" for where, title in found if title not in JUSTIFIED]


if __name__ == "__main__":
    problems = unjustified(lints())
    for problem in problems:
        print(problem)
    print(f"snakemake --lint: {len(problems)} unjustified lint(s)")
    sys.exit(1 if problems else 0)
