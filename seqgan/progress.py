"""Progress bars of long commands. Shapes no output (declared so in :mod:`seqgan.runs`): bars are
silent unless enabled and stderr is a terminal, because workflow jobs log to files."""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["progress", "progress_bar"]


def progress(start: int, total: int, *, enabled: bool = True, desc: str | None = None) -> tqdm:
    """A tqdm bar from ``start`` to ``total`` steps; silent when disabled or not on a terminal.

    Workflow jobs write their stderr to log files, where a redrawn bar is noise; set a loss
    postfix with ``bar.set_postfix(loss=f"{value:.4f}", refresh=False)``.
    """
    show = enabled and sys.stderr.isatty()
    return tqdm(total=total, initial=start, desc=desc, disable=not show, dynamic_ncols=True, leave=False)


def progress_bar(total: int | None, enabled: bool, desc: str) -> tqdm:
    """Same policy as the trainers' bars: silent unless enabled and stderr is a terminal."""
    return tqdm(
        total=total,
        desc=desc,
        disable=not (enabled and sys.stderr.isatty()),
        dynamic_ncols=True,
        leave=False,
    )
