"""A small training-loop toolkit (not a framework): data order, NaN guard, resume, progress bar.

The trainers keep their own ``for step in range(...)`` loop and call these pieces; see
:func:`seqgan.train.classifier.train_semantic_classifier` for the complete pattern::

    loop = TrainLoop(total_steps, checkpoint_every, resume_path, state_fn, load_fn, fingerprint)
    start = loop.start_step()                 # 0, or the step stored in the resume file
    sampler = StepSampler(len(data), batch_size, seed)
    with progress(start, total_steps, enabled=show) as bar:
        for step in range(start, total_steps):
            idx = sampler.indices(step)       # depends on (seed, step) only
            losses = ...                      # forward / backward / optimiser step
            check_finite(losses, step)        # raises before a NaN reaches a checkpoint
            loop.maybe_checkpoint(step + 1)   # argument = number of completed steps
            bar.update(1)

Why exact resume works: the data order is a pure function of (seed, step), the resume state holds
model, optimiser, scheduler and every global RNG, and checkpoints are written only between steps.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from seqgan.artefacts.checkpoints import (
    capture_rng_state,
    load_resume_state,
    restore_rng_state,
    save_resume_state,
)


class StepSampler:
    """Batch indices as a pure function of ``(seed, step)``: nothing to save for exact resume.

    The stream of items is the concatenation of per-epoch permutations; permutation ``e`` comes
    from ``np.random.default_rng([seed, e])``. Batch ``step`` is positions
    ``[step * batch_size, (step + 1) * batch_size)`` of that stream, so a batch that crosses an
    epoch boundary takes the tail of one permutation and the head of the next, and every item is
    seen exactly once per epoch.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int):
        if num_items <= 0:
            raise ValueError(f"num_items must be positive, got {num_items}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative (NumPy SeedSequence), got {seed}")
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self._cache: dict[int, np.ndarray] = {}  # the last two epochs' permutations

    def permutation(self, epoch: int) -> np.ndarray:
        """The item order of one epoch (cached: a large permutation costs milliseconds)."""
        perm = self._cache.get(epoch)
        if perm is None:
            perm = np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_items)
            if len(self._cache) >= 2:
                self._cache.pop(min(self._cache))
            self._cache[epoch] = perm
        return perm

    def epoch(self, step: int) -> int:
        """Epoch of the first item of batch ``step``."""
        return step * self.batch_size // self.num_items

    def indices(self, step: int) -> np.ndarray:
        """Item indices (int64, length ``batch_size``) of batch ``step``."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        positions = step * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        epochs = positions // self.num_items
        offsets = positions % self.num_items
        out = np.empty(self.batch_size, dtype=np.int64)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            out[mask] = self.permutation(int(epoch))[offsets[mask]]
        return out


def cosine_schedule(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine decay to 0 at the end.

    A pure function of the step (no scheduler object), so resuming needs no scheduler state.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, {total_steps}), got {warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress_ = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress_, 1.0)))


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN/inf. Raised before the step is checkpointed, so the resume file
    still holds the last good state. ``terms`` maps each bad term to its value."""

    def __init__(self, terms: dict[str, str], step: int):
        self.terms = dict(terms)
        self.step = int(step)
        if len(terms) == 1:
            name, value = next(iter(terms.items()))
            what = f"loss term {name!r} is {value}"
        else:
            listed = ", ".join(f"{n!r} ({v})" for n, v in terms.items())
            what = f"loss terms {listed} are non-finite"
        super().__init__(f"{what} at step {step}; the last good checkpoint is kept")


def _describe_non_finite(value: Tensor | float) -> str | None:
    """``None`` when finite, else ``'nan'``, ``'inf'``, ``'-inf'`` or ``'non-finite'``."""
    if isinstance(value, Tensor):
        value = value.detach()
        if value.numel() != 1:
            # One host sync for the whole tensor instead of one per element.
            finite = bool(value.isfinite().all())
            return None if finite else "non-finite"
        value = float(value.float().item())
    value = float(value)
    if math.isfinite(value):
        return None
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def check_finite(losses: Mapping[str, Tensor | float], step: int) -> None:
    """Raise :class:`NonFiniteLossError` naming every non-finite term and the step."""
    bad = {}
    for name, value in losses.items():
        problem = _describe_non_finite(value)
        if problem is not None:
            bad[name] = problem
    if bad:
        raise NonFiniteLossError(bad, step)


@dataclass
class TrainLoop:
    """Resume and checkpoint bookkeeping of one training run.

    ``state_fn()`` returns what the trainer needs to continue (model, optimiser and scheduler state
    dicts, anything else); ``TrainLoop`` adds ``step``, the global RNG states and the
    ``fingerprint``. ``load_fn(state)`` puts a loaded state back; RNG is restored afterwards.

    ``fingerprint`` is a JSON-serialisable description of everything that makes two runs the same
    run (hyper-parameters, data hashes). A resume file with another fingerprint is refused rather
    than silently continued with different settings.
    """

    total_steps: int
    checkpoint_every: int
    resume_path: str | os.PathLike[str]
    state_fn: Callable[[], dict[str, Any]]
    load_fn: Callable[[dict[str, Any]], None]
    fingerprint: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.total_steps < 0:
            raise ValueError(f"total_steps must be >= 0, got {self.total_steps}")
        if self.checkpoint_every <= 0:
            raise ValueError(f"checkpoint_every must be positive, got {self.checkpoint_every}")
        self.resume_path = Path(self.resume_path)
        self._fingerprint = json.dumps(self.fingerprint, sort_keys=True, default=str) if self.fingerprint else ""

    def start_step(self) -> int:
        """Load the resume file if there is one; return the number of steps already done."""
        if not self.resume_path.is_file():
            return 0
        state = load_resume_state(self.resume_path)
        stored = state.get("fingerprint", "")
        if stored != self._fingerprint:
            raise ValueError(
                f"resume file {self.resume_path} was written by a run with other settings:\n"
                f"  stored:  {stored}\n  current: {self._fingerprint}\n"
                "delete it to start over, or restore the settings it was written with"
            )
        step = int(state["step"])
        if step > self.total_steps:
            raise ValueError(f"resume file {self.resume_path} is at step {step}, beyond total_steps {self.total_steps}")
        self.load_fn(state)
        restore_rng_state(state["rng"])
        return step

    def should_checkpoint(self, completed: int) -> bool:
        """Every ``checkpoint_every`` completed steps, and after the last one."""
        return completed > 0 and (completed % self.checkpoint_every == 0 or completed == self.total_steps)

    def save(self, completed: int) -> Path:
        """Write the resume state for ``completed`` finished steps (atomically)."""
        state = dict(self.state_fn())
        state["step"] = int(completed)
        state["rng"] = capture_rng_state()
        state["fingerprint"] = self._fingerprint
        return save_resume_state(self.resume_path, state)

    def maybe_checkpoint(self, completed: int) -> bool:
        """Save if :meth:`should_checkpoint`; returns whether it did. Call between steps."""
        if self.should_checkpoint(completed):
            self.save(completed)
            return True
        return False
