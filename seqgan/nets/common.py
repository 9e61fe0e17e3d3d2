"""Small helpers shared by every network module."""

from __future__ import annotations

from torch import nn


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, buffers excluded (works on the meta device: only shapes are used)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
