"""When a training run counts as trained to the end: the plateau rule, and the endpoint of a curve.

Runs train for the fixed number of steps their params give (the learning-rate schedules are
functions of that number, and a fixed length keeps reruns and resumes exact); whether that was long
enough is then *checked* against a rule stated in params (``evaluation.convergence``) and recorded:
the validation loss may improve by at most ``max_improvement`` (relative) over the last ``window``
fraction of the steps. A run that fails the rule is flagged wherever its numbers are used (claims.md,
Fig. 2), not dropped. The rule is evaluated from the validation curve each trainer records in its
sidecar, so changing a threshold re-evaluates the reports and retrains nothing.

The endpoint of a run is the mean of its last ``count`` validation evaluations, not the last one
alone: one evaluation carries the noise of the last few optimiser steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqgan.config import ConvergenceParams


@dataclass(frozen=True)
class PlateauCheck:
    """The rule applied to one curve. ``holds`` is None when the curve cannot decide it (no
    evaluation at or before the window's start)."""

    window_start_step: int | None  # the evaluation the window is measured from
    final_step: int
    start_loss: float | None
    final_loss: float
    relative_improvement: float | None  # (start - final) / |start|; negative: it got worse
    max_improvement: float
    window: float
    holds: bool | None

    def describe(self) -> str:
        if self.holds is None:
            return (
                f"not checkable: no validation evaluation at or before {1 - self.window:.0%} of the "
                f"{self.final_step} steps"
            )
        assert self.relative_improvement is not None
        verdict = "plateau reached" if self.holds else "still improving"
        return (
            f"{verdict}: validation loss {self.start_loss:.4f} at step {self.window_start_step} -> "
            f"{self.final_loss:.4f} at step {self.final_step}, {self.relative_improvement:+.2%} "
            f"(rule: below {self.max_improvement:.1%} over the last {self.window:.0%} of steps)"
        )


def _check_curve(steps: Sequence[int], losses: Sequence[float]) -> None:
    if len(steps) != len(losses) or not steps:
        raise ValueError(
            f"a validation curve needs as many steps as losses, at least one ({len(steps)}, {len(losses)})"
        )
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"validation steps must increase: {list(steps)}")
    if not all(math.isfinite(float(v)) for v in losses):
        raise ValueError(f"validation losses must be finite: {list(losses)}")


def plateau_check(steps: Sequence[int], losses: Sequence[float], window: float, max_improvement: float) -> PlateauCheck:
    """Apply the plateau rule to a validation curve ending at the run's last step.

    The window starts at the last evaluation at or before ``(1 - window) x final step``; the rule
    holds when ``(loss there - final loss) / |loss there| < max_improvement``.
    """
    _check_curve(steps, losses)
    if not 0 < window < 1:
        raise ValueError(f"the plateau window must be a fraction in (0, 1), got {window}")
    final_step, final_loss = int(steps[-1]), float(losses[-1])
    boundary = (1 - window) * final_step
    before = [i for i, s in enumerate(steps) if s <= boundary]
    if not before:
        return PlateauCheck(None, final_step, None, final_loss, None, max_improvement, window, None)
    i = before[-1]
    start_loss = float(losses[i])
    improvement = (start_loss - final_loss) / abs(start_loss) if start_loss != 0 else math.inf
    return PlateauCheck(
        int(steps[i]),
        final_step,
        start_loss,
        final_loss,
        improvement,
        max_improvement,
        window,
        improvement < max_improvement,
    )


def endpoint(losses: Sequence[float], count: int) -> float:
    """Mean of the last ``count`` validation losses (fewer raise: the endpoint would mean less)."""
    if count < 1:
        raise ValueError(f"an endpoint needs at least one evaluation, got count = {count}")
    if len(losses) < count:
        raise ValueError(f"the endpoint is the mean of the last {count} evaluations, but the curve has {len(losses)}")
    tail = [float(v) for v in losses[-count:]]
    return sum(tail) / count


def curve_plateau(curve: Any, convergence: ConvergenceParams, source: str | Path) -> PlateauCheck:
    """The plateau check of a recorded ``{"step": [...], "val_loss": [...]}`` curve; a curve that was
    not recorded (an older run) is named with its file."""
    if not isinstance(curve, Mapping) or not curve.get("step"):
        raise ValueError(
            f"{source}: no validation curve recorded; it was trained by an older version: rerun its training"
        )
    steps, losses = [int(s) for s in curve["step"]], [float(v) for v in curve["val_loss"]]
    return plateau_check(steps, losses, convergence.plateau_window, convergence.plateau_max_improvement)


def tokenizer_plateau(metrics: Mapping[str, Any], convergence: ConvergenceParams, source: str | Path) -> PlateauCheck:
    """The plateau check of a tokenizer's training, from its evaluation metrics (``tokenizer.val_curve``,
    copied there from the checkpoint's sidecar by ``seqgan eval-tokenizer``)."""
    return curve_plateau((metrics.get("tokenizer") or {}).get("val_curve"), convergence, source)


def transformer_convergence(
    metrics: Mapping[str, Any], convergence: ConvergenceParams, source: str | Path
) -> tuple[float, PlateauCheck]:
    """A transformer's endpoint validation loss and plateau check, from its sidecar's ``metrics``
    (``val_curve``: every validation point of the run)."""
    curve = metrics.get("val_curve")
    check = curve_plateau(curve, convergence, source)
    try:
        value = endpoint([float(v) for v in curve["val_loss"]], convergence.endpoint_evaluations)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc} (evaluation.convergence.endpoint_evaluations)") from None
    return value, check
