"""Write results/evidence/mutation.txt from mutmut 3's results in mutants/ (run by benchmarks/mutation.sh).

Usage: python benchmarks/mutation_report.py OUT PATTERN... -- reads the mutants whose names match a
PATTERN (fnmatch, as given to ``mutmut run``), counts them by status and lists every survivor with
its file, line and the mutated line. The section from the ``== Triage`` line on is kept from an
earlier OUT (it is written by hand: each survivor killed by a named test or named equivalent).
"""

from __future__ import annotations

import ast
import datetime
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

TRIAGE_MARKER = "== Triage"
STATUSES = ("killed", "survived", "timeout", "suspicious", "skipped", "no tests", "not checked", "segfault")


def function_spans(source: str) -> dict[str, tuple[int, int]]:
    """``name`` / ``Class.name`` -> (first line of the def, last line)."""
    spans: dict[str, tuple[int, int]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            spans[node.name] = (node.lineno, node.end_lineno or node.lineno)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    spans[f"{node.name}.{item.name}"] = (item.lineno, item.end_lineno or item.lineno)
    return spans


def function_of(key: str) -> str:
    """``seqgan.x.xǁClassǁmethod__mutmut_3`` -> ``Class.method``; ``seqgan.x.x_func__mutmut_3`` -> ``func``."""
    local = re.sub(r"__mutmut_\d+$", "", key.rpartition(".")[2])
    if local.startswith("xǁ"):
        return ".".join(part for part in local[2:].split("ǁ") if part)
    return local.removeprefix("x_")


def located(diff: str, source_lines: list[str], span: tuple[int, int] | None) -> tuple[int | None, str, str]:
    """(line in the source file, original line, mutated line) from mutmut's function-relative diff."""
    removed = [line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    before, after = (removed[0].strip() if removed else ""), (added[0].strip() if added else "")
    line_no = None
    if span and before:
        for n in range(span[0], span[1] + 1):
            if source_lines[n - 1].strip() == before:
                line_no = n
                break
        if line_no is None:  # a mutated statement that spans several lines: its first matching line
            for n in range(span[0], span[1] + 1):
                if before.startswith(source_lines[n - 1].strip()) and source_lines[n - 1].strip():
                    line_no = n
                    break
    return line_no, before, after


def main() -> None:
    out = Path(sys.argv[1])
    patterns = sys.argv[2:]
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # noqa: PLC0415 (mutmut is optional)
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415

    from seqgan.train.runtime import machine_info  # the CPU as every other record of the project names it

    rows: list[tuple[str, str, str]] = []  # (path, key, status)
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        path = str(meta.relative_to("mutants"))[: -len(".meta")]
        for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if any(fnmatch.fnmatch(key, p) for p in patterns):
                rows.append((path, key, status_by_exit_code[code]))

    modules = sorted({path for path, _, _ in rows})
    functions = sorted({f"{path}:{function_of(key)}" for path, key, _ in rows})
    totals = Counter(status for _, _, status in rows)
    tested = len(rows) - totals["skipped"] - totals["no tests"] - totals["not checked"]
    score = (totals["killed"] + totals["timeout"]) / tested if tested else 0.0
    version = subprocess.run(
        [sys.executable, "-m", "mutmut", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()

    lines = [
        "Mutation testing of the science-critical modules (benchmarks/mutation.sh)",
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"tool: {version or 'mutmut (version unknown)'}; config: [tool.mutmut] in pyproject.toml",
        f"machine: {machine_info()['cpu_model']}, nproc = {os.cpu_count()}; "
        f"workers: {os.environ.get('MUTATION_JOBS', '1')}",
        f"mutant patterns run: {' '.join(patterns)}",
        "modules: " + ", ".join(modules),
        f"functions mutated ({len(functions)}):",
        *(f"  {f}" for f in functions),
        "",
        f"totals: {len(rows)} mutants; "
        + ", ".join(f"{s} {totals[s]}" for s in STATUSES if totals[s] or s in ("killed", "survived", "timeout")),
        f"mutation score (killed + timeout) / (mutants with tests run): {score:.1%}",
        "",
        "== Survivors (file:line, the original line -> the mutated line, mutant name)",
    ]
    sources: dict[str, tuple[list[str], dict[str, tuple[int, int]]]] = {}
    for path, key, status in rows:
        if status != "survived":
            continue
        if path not in sources:
            text = Path(path).read_text()
            sources[path] = (text.splitlines(), function_spans(text))
        source_lines, spans = sources[path]
        line_no, before, after = located(get_diff_for_mutant(key, path=path), source_lines, spans.get(function_of(key)))
        lines.append(f"{path}:{line_no if line_no else '?'}  {before}  ->  {after}  [{key}]")
    if totals["survived"] == 0:
        lines.append("(none)")

    triage = ""
    if out.exists():
        previous = out.read_text()
        if TRIAGE_MARKER in previous:
            triage = previous[previous.index(TRIAGE_MARKER) :]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n" + ("\n" + triage if triage else ""))
    print(f"wrote {out}: {len(rows)} mutants, {totals['survived']} survived, score {score:.1%}")


if __name__ == "__main__":
    main()
