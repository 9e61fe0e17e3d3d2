"""File I/O shared by every artefact: atomic writes and the manifest of an artefact directory.

Atomic writes: a reader (or a killed run) never sees a half-written file.

Every artefact the workflow produces is written to a temporary file in the same directory and then
renamed over the target, which POSIX guarantees to be atomic on one file system.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Every artefact directory (prepared split, token split, sample set) describes itself in this file,
# written last, so its presence means the directory is complete.
MANIFEST_FILE = "manifest.json"


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path``; clean up on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp creates 0600; keep the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def read_manifest(
    directory: str | os.PathLike[str], *, missing: str, format_version: int | None = None
) -> tuple[Path, dict[str, Any]]:
    """(path, content) of ``directory``'s manifest.

    A missing manifest is an error saying the directory is not ``missing`` (what it should be and
    which rule writes it); with ``format_version`` another version of the format is an error too.
    """
    manifest_path = Path(directory) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} not found: {directory} is not {missing}")
    manifest = json.loads(manifest_path.read_text())
    if format_version is not None and manifest.get("format_version") != format_version:
        raise ValueError(f"{manifest_path}: unsupported format_version {manifest.get('format_version')}")
    return manifest_path, manifest


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
