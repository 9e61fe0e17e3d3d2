"""Metric logging: DVCLive for ``dvc plots`` / ``dvc exp show``, plus a plain CSV for the figures.

The project's figures are drawn from the CSV files written here, not from DVCLive's internal
layout, so a figure never depends on a logging library's file format. Both outputs are kept
consistent across a kill and resume: a run may have logged steps after its last checkpoint, and
those rows are dropped when the run resumes from that checkpoint (otherwise the curve would show
the same steps twice).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from unittest import mock

import dvclive.live
from dvclive import Live

from seqgan.artefacts.files import atomic_write_text


def _inside_dvc_repo(start: Path) -> bool:
    """Whether ``start`` or a parent holds a ``.dvc`` directory (how DVC finds its root)."""
    return any((p / ".dvc").is_dir() for p in (start, *start.parents))


def open_live(directory: str | os.PathLike[str], resume: bool) -> Live:
    """A DVCLive logger that leaves the project's dvc.yaml and git refs alone.

    ``dvcyaml=None`` stops it rewriting dvc.yaml, ``save_dvc_exp=False`` stops it creating
    experiment refs (DVC itself tracks the stage), ``report=None`` skips HTML/markdown reports.
    ``resume=True`` keeps the metrics already in ``directory``; ``False`` clears them.

    Outside a DVC project, DVCLive 3.x runs ``dvc init`` in the enclosing git repository
    (``dvclive.dvc.get_dvc_repo``); a logger must never initialise a project, so there we hand it
    "no DVC repo" instead. Call ``live.make_summary()`` (done by :meth:`MetricLogger.close`)
    rather than ``live.end()``, which under ``dvc exp run`` also stages files in git.
    """

    def make() -> Live:
        return Live(dir=str(directory), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)

    if _inside_dvc_repo(Path.cwd().resolve()):
        return make()
    with mock.patch.object(dvclive.live, "get_dvc_repo", return_value=None):
        return make()


def _filter_rows(path: Path, delimiter: str, keep_through: int) -> list[str] | None:
    """Header + rows of ``path`` whose step is ``<= keep_through``; ``None`` if there is no file.

    Rows that do not parse (a line cut short by a kill) are dropped too.
    """
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines:
        return None
    header = next(csv.reader([lines[0]], delimiter=delimiter))
    if "step" not in header:
        return None
    step_col = header.index("step")
    kept = [lines[0]]
    for line in lines[1:]:
        fields = next(csv.reader([line], delimiter=delimiter), [])
        if len(fields) != len(header):
            continue
        try:
            step = int(fields[step_col])
        except ValueError:
            continue
        if step <= keep_through:
            kept.append(line)
    return kept


def truncate_after(path: str | os.PathLike[str], step: int, delimiter: str = ",") -> None:
    """Rewrite a step-indexed CSV/TSV atomically without the rows after ``step``."""
    path = Path(path)
    kept = _filter_rows(path, delimiter, step)
    if kept is not None:
        atomic_write_text(path, "\n".join(kept) + "\n")


class MetricLogger:
    """Log a dict of scalars at a step to a CSV file (and optionally DVCLive).

    The CSV has a fixed header, ``step`` + ``columns``, declared up front so rows can be appended
    (each row is written and flushed at once; a kill can at most cut the last line short, and such
    a line is dropped on resume). A call may log any subset of the columns; the others stay empty.

    ``start_step`` is where this run starts: 0 starts a new file (an old one is replaced),
    ``s > 0`` resumes, keeping the rows with ``step <= s`` and dropping later ones, in the CSV and
    in DVCLive's per-metric ``.tsv`` history for these columns.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike[str],
        columns: Sequence[str],
        *,
        start_step: int,
        live: Live | None = None,
    ):
        self.csv_path = Path(csv_path)
        self.columns = [str(c) for c in columns]
        if "step" in self.columns or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must be unique and must not include 'step': {self.columns}")
        self.header = ["step", *self.columns]
        self.live = live
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self._prepare(int(start_step))
        self._fh = open(self.csv_path, "a", encoding="utf-8", newline="")

    def _header_line(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(self.header)
        return buf.getvalue()

    def _prepare(self, start_step: int) -> None:
        header_line = self._header_line()
        kept = _filter_rows(self.csv_path, ",", start_step) if start_step > 0 else None
        if kept is not None and kept[0] != header_line:
            raise ValueError(
                f"{self.csv_path} has columns {kept[0]!r}, this run logs {header_line!r}; "
                "a resumed run must log the same columns (delete the log to start over)"
            )
        atomic_write_text(self.csv_path, "\n".join(kept or [header_line]) + "\n")
        if self.live is not None and start_step > 0:
            metrics_dir = Path(self.live.plots_dir) / "metrics"
            for name in self.columns:
                truncate_after(metrics_dir / f"{name}.tsv", start_step, delimiter="\t")

    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Append one row (and send the same values to DVCLive at ``step``)."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown metric(s) {sorted(unknown)}; declared: {self.columns}")
        row = [str(int(step))]
        for name in self.columns:
            row.append(_format(values[name]) if name in values else "")
        self._fh.write(",".join(row) + "\n")
        self._fh.flush()
        if self.live is not None:
            self.live.step = int(step)
            for name, value in values.items():
                self.live.log_metric(name, float(value))

    def close(self) -> None:
        """Close the CSV and write DVCLive's summary (metrics.json)."""
        if not self._fh.closed:
            self._fh.close()
        if self.live is not None:
            self.live.make_summary()

    def __enter__(self) -> MetricLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _format(value: float) -> str:
    """Full precision (``repr``) so figures reproduce exactly what was logged."""
    value = float(value)
    return repr(value) if math.isfinite(value) else str(value)
