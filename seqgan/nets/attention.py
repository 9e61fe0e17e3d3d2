"""Block-regional and dilated self-attention for the phase-2 SeQ-GAN decoder.

The supplement (Table 1) adds "B&D Attn" -- interleaved block-regional and dilated attention from
HiT (Zhao et al. 2021) -- after the residual blocks of every decoder level. Full self-attention over
a 256 x 256 map is unaffordable; the two sparse patterns together give every position a path to
every other one in two hops (block, then dilated) whenever block_size >= dilation, because a window
then contains every residue mod d:

* block-regional: the (H, W) map is cut into non-overlapping ``block_size x block_size`` windows and
  each position attends only inside its window (local detail);
* dilated: positions that share the same ``(h mod d, w mod d)`` residue attend to each other, i.e.
  a grid with stride ``d`` that spans the whole map (sparse global context).

Layout of one attention layer (this file's choice; the paper gives none) ::

    y = x + W_out( MHA( W_q GN(x), W_k GN(x), W_v GN(x) ) )       # per window / per dilation group

* pre-norm ``LayerNorm`` over the channels of each position (2C parameters), as in HiT and ViTs.
  (A GroupNorm pre-norm would have the same count but its statistics span the whole map, so a
  pixel in one window would change the outputs of every other window; per-token LayerNorm keeps
  both patterns exactly local, which the tests check);
* q, k, v projections fused in one ``Linear(C, 3C)`` with bias (3C^2 + 3C parameters);
* output projection ``Linear(C, C)`` with bias (C^2 + C), ZERO-INITIALISED, so a freshly added
  layer is the identity map and a phase-2 decoder that loads phase-1 weights computes exactly the
  phase-1 function;
* no MLP, no position encoding (the convolutions around it carry position information).

One layer has 4C^2 + 6C parameters; the interleaved pair 8C^2 + 12C. At the paper's decoder widths
(128, 128, 256, 256, 512) the five pairs add 3,423,232 parameters: 54.45M -> 57.87M (paper 57.9M).

Sizes that do not divide: both patterns zero-PAD the map at the bottom/right to a multiple of the
window (resp. of the dilation) and mask the padded keys out of the softmax, then crop; no
divisibility is required. Windows larger than the map are clamped to the map (block attention then
becomes full attention over the map); a dilation larger than the map is clamped to the map size
(every position is then its own group). When nothing needs padding no mask is built, so
``scaled_dot_product_attention`` can use its fused kernels.

Memory note: the dilated pattern with a fixed ``d`` has (H/d)(W/d) tokens per group, which grows
with the map (1024 tokens at 256 x 256 for d = 8). ``dilation=0`` selects HiT's rule instead: at
each map the dilation is ceil(H / block_size) (resp. W), so a group has about block_size^2 tokens,
like a window (but then two hops are global only where block_size >= ceil(H / block_size)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "AttentionSpec",
    "BlockRegionalAttention",
    "DilatedAttention",
    "InterleavedAttention",
]


@dataclass(frozen=True)
class AttentionSpec:
    """Hyper-parameters of one interleaved block-regional + dilated attention pair.

    block_size: side of the square windows of the block-regional layer (clamped to the map).
    dilation:   stride of the dilated layer's grid; 0 = HiT's rule, ceil(map_side / block_size).
    heads:      attention heads of both layers (must divide every decoder width).
    """

    block_size: int
    dilation: int
    heads: int

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if self.dilation < 0:
            raise ValueError(f"dilation must be >= 0 (0 = HiT rule), got {self.dilation}")
        if self.heads < 1:
            raise ValueError(f"heads must be >= 1, got {self.heads}")


class _WindowedSelfAttention(nn.Module):
    """Shared machinery: pre-norm, fused qkv, partition into groups, SDPA, merge, zero-init out."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.channels = channels
        self.heads = heads
        self.norm = nn.LayerNorm(channels, eps=1e-6)
        self.qkv = nn.Linear(channels, 3 * channels, bias=True)
        self.proj_out = nn.Linear(channels, channels, bias=True)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    # --- partition geometry, implemented by subclasses -------------------------------------------
    def _cell(self, h: int, w: int) -> tuple[int, int]:
        """The (ph, pw) the padded map must be a multiple of."""
        raise NotImplementedError

    def _partition(self, t: Tensor, ph: int, pw: int) -> Tensor:
        """(B, Hp, Wp, D) -> (B * groups, L, D)."""
        raise NotImplementedError

    def _merge(self, t: Tensor, b: int, hp: int, wp: int, ph: int, pw: int) -> Tensor:
        """(B * groups, L, D) -> (B, Hp, Wp, D); inverse of ``_partition``."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C, H, W)
        b, c, h, w = x.shape
        ph, pw = self._cell(h, w)
        hp, wp = math.ceil(h / ph) * ph, math.ceil(w / pw) * pw

        t = self.norm(x.permute(0, 2, 3, 1))  # (B, H, W, C), normalised per position
        qkv = self.qkv(t)  # (B, H, W, 3C)
        mask = None
        if (hp, wp) != (h, w):
            qkv = F.pad(qkv, (0, 0, 0, wp - w, 0, hp - h))  # (B, Hp, Wp, 3C), zeros at bottom/right
            valid = torch.zeros(1, hp, wp, 1, dtype=torch.bool, device=x.device)
            valid[:, :h, :w] = True
            # (1, Hp, Wp, 1) -> (groups, L, 1) -> (B * groups, 1, 1, L): masks keys for all
            # heads and queries
            keys_ok = self._partition(valid, ph, pw)
            mask = keys_ok.transpose(1, 2).unsqueeze(1).repeat(b, 1, 1, 1)

        groups = self._partition(qkv, ph, pw)  # (N = B * groups, L, 3C)
        n, length, _ = groups.shape
        hd = c // self.heads
        # (N, L, 3C) -> (3, N, heads, L, hd)
        q, k, v = groups.view(n, length, 3, self.heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, heads, L, hd)
        o = o.transpose(1, 2).reshape(n, length, c)  # (N, L, C)
        o = self._merge(o, b, hp, wp, ph, pw)[:, :h, :w]  # (B, H, W, C)
        o = self.proj_out(o).permute(0, 3, 1, 2)  # (B, C, H, W)
        return x + o


class BlockRegionalAttention(_WindowedSelfAttention):
    """Self-attention inside non-overlapping ``block_size x block_size`` windows.

    Input and output (B, C, H, W). The window side is clamped to the map (per axis); a map that is
    not a multiple of the window is zero-padded and the padded keys are masked out.
    """

    def __init__(self, channels: int, heads: int, block_size: int) -> None:
        super().__init__(channels, heads)
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_size = block_size

    def _cell(self, h: int, w: int) -> tuple[int, int]:
        return min(self.block_size, h), min(self.block_size, w)

    def _partition(self, t: Tensor, ph: int, pw: int) -> Tensor:
        b, hp, wp, d = t.shape
        # (B, Hp/ph, ph, Wp/pw, pw, D) -> (B, Hp/ph, Wp/pw, ph, pw, D) -> (B * windows, ph * pw, D)
        t = t.reshape(b, hp // ph, ph, wp // pw, pw, d).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(-1, ph * pw, d)

    def _merge(self, t: Tensor, b: int, hp: int, wp: int, ph: int, pw: int) -> Tensor:
        d = t.shape[-1]
        t = t.reshape(b, hp // ph, wp // pw, ph, pw, d).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(b, hp, wp, d)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}, block_size={self.block_size}"


class DilatedAttention(_WindowedSelfAttention):
    """Self-attention among positions with the same ``(h mod d, w mod d)`` (a stride-d global grid).

    Input and output (B, C, H, W). ``dilation`` is clamped to the map (per axis); ``dilation=0``
    uses HiT's rule d = ceil(side / block_size) (needs ``block_size``). A map that is not a multiple
    of d is zero-padded and the padded keys are masked out.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        dilation: int,
        block_size: int | None = None,
    ) -> None:
        super().__init__(channels, heads)
        if dilation < 0 or (dilation == 0 and not block_size):
            raise ValueError("dilation must be >= 1, or 0 together with block_size (HiT rule)")
        self.dilation = dilation
        self.block_size = block_size

    def _cell(self, h: int, w: int) -> tuple[int, int]:
        if self.dilation == 0:
            assert self.block_size is not None
            dh, dw = math.ceil(h / self.block_size), math.ceil(w / self.block_size)
        else:
            dh, dw = self.dilation, self.dilation
        return max(1, min(dh, h)), max(1, min(dw, w))

    def _partition(self, t: Tensor, dh: int, dw: int) -> Tensor:
        b, hp, wp, d = t.shape
        # h = i * dh + r  (r = h mod dh):  (B, Hp/dh, dh, Wp/dw, dw, D)
        # -> (B, dh, dw, Hp/dh, Wp/dw, D) -> (B * dh * dw, (Hp/dh) * (Wp/dw), D)
        gh, gw = hp // dh, wp // dw
        t = t.reshape(b, gh, dh, gw, dw, d).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(-1, gh * gw, d)

    def _merge(self, t: Tensor, b: int, hp: int, wp: int, dh: int, dw: int) -> Tensor:
        d = t.shape[-1]
        gh, gw = hp // dh, wp // dw
        t = t.reshape(b, dh, dw, gh, gw, d).permute(0, 3, 1, 4, 2, 5)
        return t.reshape(b, hp, wp, d)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, heads={self.heads}, dilation={self.dilation}"


class InterleavedAttention(nn.Module):
    """Block-regional attention followed by dilated attention ("B&D Attn"); (B, C, H, W) in/out."""

    def __init__(self, channels: int, spec: AttentionSpec) -> None:
        super().__init__()
        self.spec = spec
        self.block = BlockRegionalAttention(channels, spec.heads, spec.block_size)
        self.dilated = DilatedAttention(channels, spec.heads, spec.dilation, spec.block_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.dilated(self.block(x))
