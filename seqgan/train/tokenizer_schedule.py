"""The tokenizer's per-phase optimisation settings: which settings a phase uses, its learning rate
at a step, and its Adam.

It exists so that the schedule -- a pure function of the step, which is why a resumed run needs no
scheduler state -- is one small piece that the trainer, the benchmarks and the tests read alike,
apart from the loss assembly and the loop. ``T`` = the phase's iterations, ``s`` the 0-based step::

    cosine:   lr(s) = end_lr + (lr - end_lr) * 0.5 * (1 + cos(pi * s / T))
    constant: lr(s) = lr

``0.5 * (1 + cos(pi * s / T))`` is :func:`seqgan.train.loop.cosine_schedule` without warm-up. The
discriminator uses the same schedule and Adam settings as the phase it trains in (see
:mod:`seqgan.train.tokenizer`).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from seqgan.config import Params, Phase1Params, Phase2Params
from seqgan.train.loop import cosine_schedule

__all__ = [
    "Phase",
    "PhaseSettings",
    "learning_rate",
    "make_adam",
    "phase_settings",
    "set_learning_rate",
]

Phase = Literal[1, 2]
PhaseSettings = Phase1Params | Phase2Params


def phase_settings(params: Params, phase: Phase) -> PhaseSettings:
    """``tokenizer.phase1`` or ``tokenizer.phase2`` (batch, iterations, Adam, schedule, cadence)."""
    if phase == 1:
        return params.tokenizer.phase1
    if phase == 2:
        return params.tokenizer.phase2
    raise ValueError(f"phase must be 1 or 2, got {phase!r}")


def learning_rate(step: int, settings: PhaseSettings) -> float:
    """lr at ``step`` (0-based): cosine from lr to end_lr over the iterations, or constant lr."""
    if settings.lr_decay == "constant":
        return settings.lr
    if settings.lr_decay == "cosine":
        factor = cosine_schedule(step, settings.iterations, 0)  # 0.5 * (1 + cos(pi * step / T))
        return settings.end_lr + (settings.lr - settings.end_lr) * factor
    raise ValueError(f"unknown lr_decay {settings.lr_decay!r} (cosine | constant)")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's lr = ``lr`` times the group's ``lr_scale`` (1 unless :func:`make_adam` set one)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def make_adam(
    parameters: list[nn.Parameter], settings: PhaseSettings, scaled: tuple[list[nn.Parameter], float] | None = None
) -> torch.optim.Adam:
    """Adam with the phase's betas (no weight decay: the paper's tokenizer optimizer is Adam).

    ``scaled = (params, scale)``: those parameters (a subset of ``parameters``) in their own group
    whose learning rate is always ``scale`` times the schedule's (the codebook's, see
    ``tokenizer.quantizer.codebook_lr_scale``).
    """
    betas = (settings.beta1, settings.beta2)
    if scaled is None or not scaled[0]:
        return torch.optim.Adam(parameters, lr=settings.lr, betas=betas)
    scaled_ids = {id(p) for p in scaled[0]}
    groups = [
        {"params": [p for p in parameters if id(p) not in scaled_ids], "lr_scale": 1.0},
        {"params": [p for p in parameters if id(p) in scaled_ids], "lr_scale": float(scaled[1])},
    ]
    optimizer = torch.optim.Adam(groups, lr=settings.lr, betas=betas)
    set_learning_rate(optimizer, settings.lr)
    return optimizer
