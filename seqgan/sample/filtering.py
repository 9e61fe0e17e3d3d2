"""Logit filtering (top-k, nucleus / top-p) and one seeded categorical draw.

The supplement samples the AR transformer with top-p (0.92 ImageNet, 0.98 elsewhere). Filters set
the logits of excluded tokens to -inf and work on any leading shape (..., K).

``sample_from_logits`` draws by inverse CDF with exactly one uniform per row from the given
``torch.Generator``: the amount of randomness consumed never depends on the logits, so two decoders
that compute (numerically) the same logits -- the KV-cached and the fully recomputed AR paths --
draw the same tokens for the same seed. Zero-probability tokens occupy empty CDF intervals and can
never be drawn.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["top_k_filter", "top_p_filter", "sample_from_logits"]


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits per row (k = 0 or k >= K: no filtering). Exactly k survive even
    with ties (the first k of ``torch.topk``)."""
    if k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {k}")
    if k == 0 or k >= logits.shape[-1]:
        return logits
    keep_idx = logits.topk(k, dim=-1).indices  # (..., k)
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, keep_idx, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose mass is >= p.

    A token is kept when the mass of the tokens sorted before it is < p, so the top token always
    survives. p = 1 disables the filter (rounding could otherwise drop a tail token)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 = off), got {p}")
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (..., K)
    probs = sorted_logits.float().softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # exclusive cumulative sum; exactly 0 for the top
    keep_sorted = mass_before < p  # (..., K) in sorted order
    keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def sample_from_logits(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one token per row of ``logits`` (..., K) -> ids (...,) (long).

    Order: temperature scaling, then top-k, then top-p (the nucleus of the tempered distribution).
    temperature = 0 is greedy (argmax, no randomness consumed)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float()  # bf16 logits (autocast sampling) would be divided and filtered in bf16
    logits = top_p_filter(top_k_filter(logits / temperature, top_k), top_p)
    flat = logits.reshape(-1, logits.shape[-1]).double()  # (R, K); float64 CDF: no rounding gaps
    cdf = flat.softmax(dim=-1).cumsum(dim=-1)  # (R, K)
    u = torch.rand(flat.shape[0], 1, generator=generator, device=flat.device, dtype=torch.float64)
    # first index with cdf > u * total: zero-width (filtered) intervals are never hit
    ids = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)  # (R, 1)
    # u * total can round up to total itself (p ~ 2^-53): fall back to the most probable token
    ids = torch.where(ids < flat.shape[-1], ids, flat.argmax(dim=-1, keepdim=True))
    return ids.view(logits.shape[:-1])
