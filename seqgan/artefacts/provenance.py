"""Which code made an artefact: the git revision recorded in every checkpoint sidecar and metric."""

from __future__ import annotations

import subprocess
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=_PACKAGE_DIR,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return out.stdout.strip()


def git_revision() -> str:
    """Short commit hash of the code, with ``-dirty`` when tracked files differ from it.

    Recorded in every checkpoint sidecar so a number can be traced to code. Looks at the
    repository holding this package (not the current directory). Untracked files do not count as
    dirty (the workflow creates many, e.g. results). Returns ``"unknown"`` outside git, without
    git, or before the first commit; it never raises, because provenance must not stop a run.
    """
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError, ValueError):
        return "unknown"
    if not rev:
        return "unknown"
    return f"{rev}-dirty" if status else rev
