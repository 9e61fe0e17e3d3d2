"""Small helpers shared by every network module."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, buffers excluded (works on the meta device: only shapes are used)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module | None) -> Iterator[None]:
    """Put modules in eval mode and no_grad; restore each one's previous mode afterwards."""
    present = [m for m in modules if isinstance(m, nn.Module)]
    previous = [m.training for m in present]
    try:
        for m in present:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(present, previous, strict=True):
            m.train(mode)
