"""The package's static import graph (``ast``; imports inside functions included), for the layer
and declaration tests (tests/test_runs.py) and for keeping seqgan/runs.py's module lists true."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_file(name: str) -> Path | None:
    """``seqgan.a.b`` -> its file relative to ROOT (a package's __init__.py), or None."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.relative_to(ROOT)
    return None


def imports_of(path: Path) -> set[str]:
    """Files (relative to ROOT) of the ``seqgan`` modules that ``path`` imports."""
    found: set[str] = set()
    tree = ast.parse((ROOT / path).read_text(), str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqgan") and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("seqgan")]
        for name in names:
            target = module_file(name)
            if target is None and "." in name:
                continue  # `from seqgan.x import function`: the module itself is in the list too
            if target is not None and target.name != "__init__.py":
                found.add(target.as_posix())
    found.discard(Path(path).as_posix())
    return found


def closure(*entries: str) -> set[str]:
    """Every package file reachable from ``entries`` (files relative to ROOT), entries included."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += sorted(imports_of(Path(path)) - seen)
    return seen
