"""Progress of long commands: a tqdm bar on a terminal, progress lines in a log file.

Workflow jobs write stderr to their log files, where a redrawn bar is noise and a silent job looks
hung. So when stderr is no terminal, :class:`Progress` writes one plain line at a fixed interval
(every 5 % of the total, and at least once a minute) and at the end:

    [progress] tokenizer phase 1: 250/500 (50%) l1=0.2366 | 10.02 steps/s, elapsed 0:00:25, ETA 0:00:25

Under torchrun only rank 0 reports. Shapes no output (declared so in :mod:`seqgan.runs`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from datetime import timedelta
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["Progress", "progress", "progress_bar"]

LINE_FRACTION = 0.05  # a progress line every 5 % of the total ...
LINE_SECONDS = 60.0  # ... and at least once a minute


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class Progress:
    """A tqdm bar (terminal) or progress lines (anything else) over ``total`` steps or items.

    Used like a tqdm bar: ``with Progress(...) as bar: ... bar.set_postfix(loss=...); bar.update(n)``.
    """

    def __init__(
        self,
        total: int | None,
        *,
        initial: int = 0,
        desc: str | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
        unit: str = "it",
    ) -> None:
        self.stream = stream or sys.stderr
        terminal = self.stream.isatty()
        self.total, self.desc, self.unit = total, desc or "progress", unit
        self.bar = tqdm(
            total=total,
            initial=initial,
            desc=desc,
            disable=not (enabled and terminal),
            dynamic_ncols=True,
            leave=False,
            file=self.stream,
        )
        self.lines = enabled and not terminal and _main_rank()
        self.n = self.start = initial
        self.postfix: dict[str, Any] = {}
        self.started = self.last_time = time.monotonic()
        self.last_n = initial
        self.every = max(1, math.ceil((total or 0) * LINE_FRACTION))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.lines and exc_type is None and self.n != self.last_n:
            self._line()
        self.bar.close()

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix.update(values)
        self.bar.set_postfix(refresh=refresh, **values)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.n += n
        if self.lines and (self.n - self.last_n >= self.every or time.monotonic() - self.last_time >= LINE_SECONDS):
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        rate = (self.n - self.start) / elapsed if elapsed > 0 else 0.0
        if self.total:
            done = f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"
            eta = _clock((self.total - self.n) / rate) if rate > 0 else "?"
        else:
            done, eta = str(self.n), "?"
        values = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        print(
            f"[progress] {self.desc}: {done}{' ' + values if values else ''} | {rate:.2f} {self.unit}/s, "
            f"elapsed {_clock(elapsed)}, ETA {eta}",
            file=self.stream,
            flush=True,
        )
        self.last_time, self.last_n = now, self.n


def progress(start: int, total: int, *, enabled: bool = True, desc: str | None = None) -> Progress:
    """Training steps from ``start`` to ``total``; set a loss postfix with
    ``bar.set_postfix(loss=f"{value:.4f}", refresh=False)``."""
    return Progress(total, initial=start, desc=desc, enabled=enabled, unit="steps")


def progress_bar(total: int | None, enabled: bool, desc: str) -> Progress:
    """Items (images, samples) of an evaluation, encoding or sampling job."""
    return Progress(total, desc=desc, enabled=enabled, unit="images")
