"""MaskGIT mask schedules as tiny pure functions (shared by NAR training and NAR decoding).

gamma(t), t in [0, 1], is the fraction of tokens that are (still) masked: gamma(0) = 1 (all masked),
gamma(1) = 0 (none). Training masks ``ceil(gamma(r) * N)`` tokens for r ~ U(0, 1); decoding with T
steps keeps ``floor(gamma((t+1)/T) * N)`` tokens masked after step t (t = 0 .. T-1), as MaskGIT's
``parallel_decode`` does, but with every step revealing at least one token and the last step
revealing all of the rest.

This module imports nothing from the package, so the network layer may use it without a cycle.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

import torch

__all__ = [
    "MaskSchedule",
    "SCHEDULES",
    "mask_ratio",
    "tokens_to_keep_masked_per_step",
    "tokens_revealed_per_step",
]

MaskSchedule = Literal["cosine", "linear"]
SCHEDULES: tuple[str, ...] = ("cosine", "linear")

T = TypeVar("T", float, torch.Tensor)


def mask_ratio(schedule: MaskSchedule, t: T) -> T:
    """gamma(t): the masked fraction at progress t in [0, 1] (a float or a tensor).

    cosine: cos(pi/2 * t) (MaskGIT's choice: few tokens revealed early, many late);
    linear: 1 - t."""
    if schedule == "cosine":
        return torch.cos(t * (math.pi / 2)) if isinstance(t, torch.Tensor) else math.cos(t * math.pi / 2)
    if schedule == "linear":
        return 1.0 - t
    raise ValueError(f"unknown mask schedule {schedule!r}; choose one of {SCHEDULES}")


def tokens_to_keep_masked_per_step(seq_len: int, steps: int, schedule: MaskSchedule) -> list[int]:
    """Number of positions still masked AFTER each of the ``steps`` decoding steps.

    Step t keeps ``floor(gamma((t+1)/T) * N)`` masked, clamped to at most one fewer than before
    (every step reveals something) and at least 1 until the last step, which ends at 0. Strictly
    decreasing, so ``steps`` must not exceed ``seq_len``."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if not 1 <= steps <= seq_len:
        raise ValueError(f"steps must be in [1, seq_len = {seq_len}] (each step reveals >= 1 token), got {steps}")
    counts: list[int] = []
    previous = seq_len
    for t in range(steps):
        if t == steps - 1:
            current = 0
        else:
            current = math.floor(mask_ratio(schedule, (t + 1) / steps) * seq_len)
            # at least one reveal now, and keep >= 1 token masked per remaining step
            current = max(steps - 1 - t, min(previous - 1, current))
        counts.append(current)
        previous = current
    return counts


def tokens_revealed_per_step(seq_len: int, steps: int, schedule: MaskSchedule) -> list[int]:
    """Tokens newly revealed at each step (sums to ``seq_len``)."""
    remaining = [seq_len, *tokens_to_keep_masked_per_step(seq_len, steps, schedule)]
    return [a - b for a, b in zip(remaining[:-1], remaining[1:], strict=True)]
