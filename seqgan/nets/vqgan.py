"""SeQ-GAN's convolutional VQ tokenizer (supplement Table 1), every size an argument.

Encoder (f = 2 ** (len(channel_mult) - 1); paper: base 128, mult (1, 1, 2, 2, 4), f = 16) ::

    x (B, 3, H, W)
    conv3x3 3 -> base                                          (B, base, H, W)
    for level i = 0 .. L-1 (width c_i = base * mult[i]):
        num_res_blocks x ResBlock (the first one changes c_{i-1} -> c_i, 1x1 shortcut)
        2x average-pool downsample, parameter-free (not after the last level)
    extra_res_blocks x ResBlock(c_{L-1})                       (paper: 2 + 2 = the table's "x4")
    GN - Swish - conv1x1 c_{L-1} -> code_dim                   (B, code_dim, H/f, W/f)

Decoder (mirror) ::

    z_q (B, code_dim, h, w)
    conv3x3 code_dim -> c_{L-1}
    extra_res_blocks x ResBlock(c_{L-1})
    for level i = L-1 .. 0:
        num_res_blocks x ResBlock (the first one changes c_{i+1} -> c_i)
        [phase 2: InterleavedAttention(c_i, spec) -- block-regional then dilated, zero-init]
        nearest 2x upsample + conv3x3 c_i -> c_i (not after level 0)
    GN - Swish - conv3x3 c_0 -> 3                              (B, 3, h*f, w*f)

ResBlock(c_in, c_out) = GN - Swish - conv3x3 - GN - Swish - conv3x3, plus a 1x1-conv shortcut when
c_in != c_out. All convolutions have biases (taming style). GroupNorm uses ``num_groups`` groups
(32 in the paper), or the largest divisor of the width not above it for small widths. The decoder's
output is not squashed (no tanh), as in taming; images live in [-1, 1].

Parameter counts at the paper's sizes (1024 x 256 codebook), measured by ``count_parameters`` on
the meta device: encoder 23,619,328; decoder 30,567,811; codebook 262,144; phase-1 total
54,449,283 (paper 54.5M). Phase 2 adds 3,423,232 attention parameters (5 levels x 2 layers x
(4C^2 + 6C)): 57,872,515 (paper 57.9M).

Phase-1 -> phase-2: attention modules live under ``decoder.levels.<i>.attn`` and nothing else moves,
so a phase-1 state dict loads into a phase-2 model with ``strict=False`` (see ``load_phase1_state``)
and, because every attention output projection is zero-initialised and residual, the phase-2 model
then computes exactly the phase-1 function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from seqgan.nets.attention import AttentionSpec, InterleavedAttention
from seqgan.nets.common import count_parameters
from seqgan.nets.quantizer import VectorQuantizer

__all__ = [
    "ResBlock",
    "Encoder",
    "Decoder",
    "VQTokenizer",
    "count_parameters",
    "group_norm_groups",
    "load_phase1_state",
    "parameter_breakdown",
]


def group_norm_groups(channels: int, num_groups: int) -> int:
    """Largest divisor of ``channels`` that is <= ``num_groups`` (32 for the paper's widths)."""
    g = max(1, min(num_groups, channels))
    while channels % g:
        g -= 1
    return g


def _norm(channels: int, num_groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_norm_groups(channels, num_groups), channels, eps=1e-6)


class ResBlock(nn.Module):
    """GN - Swish - Conv3x3 - GN - Swish - Conv3x3 (+ 1x1 shortcut if widths differ)."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int = 32) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = _norm(out_channels, num_groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        # x: (B, C_in, H, W) -> (B, C_out, H, W)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.shortcut(x) + h


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 conv (width unchanged)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        # (B, C, H, W) -> (B, C, 2H, 2W)
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _widths(base_channels: int, channel_mult: Sequence[int]) -> list[int]:
    if len(channel_mult) < 1:
        raise ValueError("channel_mult needs at least one level")
    return [base_channels * m for m in channel_mult]


class Encoder(nn.Module):
    """(B, in_channels, H, W) -> z_e (B, code_dim, H/f, W/f), f = 2 ** (len(channel_mult) - 1)."""

    def __init__(
        self,
        base_channels: int = 128,
        channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        extra_res_blocks: int = 2,
        code_dim: int = 256,
        num_groups: int = 32,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        widths = _widths(base_channels, channel_mult)
        self.downsample_factor = 2 ** (len(widths) - 1)
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.levels = nn.ModuleList()
        c = base_channels
        for w in widths:
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(c, w, num_groups))
                c = w
            self.levels.append(blocks)
        self.mid = nn.Sequential(*[ResBlock(c, c, num_groups) for _ in range(extra_res_blocks)])
        self.norm_out = _norm(c, num_groups)
        self.conv_out = nn.Conv2d(c, code_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        f = self.downsample_factor
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of f = {f}")
        h = self.conv_in(x)  # (B, base, H, W)
        last = len(self.levels) - 1
        for i, blocks in enumerate(self.levels):
            for block in blocks:
                h = block(h)  # (B, c_i, H / 2^i, W / 2^i)
            if i != last:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h)  # (B, c_{L-1}, H/f, W/f)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, code_dim, H/f, W/f)


class DecoderLevel(nn.Module):
    """Residual blocks of one decoder level, optional B&D attention, optional upsampling."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_res_blocks: int,
        num_groups: int,
        attention: AttentionSpec | None,
        upsample: bool,
    ) -> None:
        super().__init__()
        blocks = []
        c = in_channels
        for _ in range(num_res_blocks):
            blocks.append(ResBlock(c, channels, num_groups))
            c = channels
        self.blocks = nn.ModuleList(blocks)
        self.attn = InterleavedAttention(channels, attention) if attention is not None else None
        self.upsample = Upsample(channels) if upsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        if self.attn is not None:
            x = self.attn(x)
        if self.upsample is not None:
            x = self.upsample(x)
        return x


class Decoder(nn.Module):
    """z_q (B, code_dim, h, w) -> image (B, out_channels, h*f, w*f); see the module docstring.

    ``attention=None`` is the phase-1 conv-only decoder; an ``AttentionSpec`` adds an interleaved
    block-regional + dilated attention pair after the residual blocks of EVERY level (phase 2).
    """

    def __init__(
        self,
        base_channels: int = 128,
        channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        extra_res_blocks: int = 2,
        code_dim: int = 256,
        num_groups: int = 32,
        out_channels: int = 3,
        attention: AttentionSpec | None = None,
    ) -> None:
        super().__init__()
        widths = _widths(base_channels, channel_mult)
        self.upsample_factor = 2 ** (len(widths) - 1)
        self.attention = attention
        c = widths[-1]
        self.conv_in = nn.Conv2d(code_dim, c, 3, padding=1)
        self.mid = nn.Sequential(*[ResBlock(c, c, num_groups) for _ in range(extra_res_blocks)])
        # levels[0] is the LOWEST resolution (widths[-1]); levels[-1] the full resolution
        self.levels = nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.levels.append(DecoderLevel(c, widths[i], num_res_blocks, num_groups, attention, upsample=i > 0))
            c = widths[i]
        self.norm_out = _norm(c, num_groups)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)

    @property
    def last_layer(self) -> Tensor:
        """Weight of the final conv: where VQGAN's adaptive GAN weight measures gradient norms."""
        return self.conv_out.weight

    def attention_parameters(self) -> list[nn.Parameter]:
        return [p for lvl in self.levels if lvl.attn is not None for p in lvl.attn.parameters()]

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))  # (B, c_{L-1}, h, w)
        for level in self.levels:
            h = level(h)  # ... -> (B, c_0, h*f, w*f)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, out_channels, h*f, w*f)


class VQTokenizer(nn.Module):
    """Encoder + VectorQuantizer + Decoder.

    encode(x)     -> (z_q (B, code_dim, h, w) straight-through, ids (B, h, w), quant_losses)
    decode(z_q)   -> image (B, 3, H, W)
    decode_ids(ids (B, h, w)) -> image
    forward(x)    -> (recon, ids, quant_losses); with ``return_stats=True`` also the quantizer's
                     usage statistics (perplexity, used_codes, soft_entropy) as a 4th element.
    ``quant_losses`` = {"codebook", "commitment", "entropy"}, each already weighted (beta, gamma).
    """

    def __init__(
        self,
        base_channels: int = 128,
        channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        extra_res_blocks: int = 2,
        code_dim: int = 256,
        codebook_size: int = 1024,
        num_groups: int = 32,
        attention: AttentionSpec | None = None,
        beta: float = 0.25,
        entropy_weight: float = 0.01,
        entropy_temperature: float = 1.0,
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        common = dict(
            base_channels=base_channels,
            channel_mult=tuple(channel_mult),
            num_res_blocks=num_res_blocks,
            extra_res_blocks=extra_res_blocks,
            code_dim=code_dim,
            num_groups=num_groups,
        )
        self.encoder = Encoder(**common, in_channels=image_channels)
        self.quantizer = VectorQuantizer(codebook_size, code_dim, beta, entropy_weight, entropy_temperature)
        self.decoder = Decoder(**common, out_channels=image_channels, attention=attention)
        self.downsample_factor = self.encoder.downsample_factor

    def encode_with_stats(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        return self.quantizer(self.encoder(x))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        z_q, ids, losses, _ = self.encode_with_stats(x)
        return z_q, ids, losses

    def encode_ids(self, x: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> code ids (B, H/f, W/f): what a transformer trains on, without the
        quantizer's losses and statistics (the same ids as ``encode``)."""
        return self.quantizer.nearest_ids(self.encoder(x))

    def decode(self, z_q: Tensor) -> Tensor:
        return self.decoder(z_q)

    def decode_ids(self, ids: Tensor) -> Tensor:
        return self.decoder(self.quantizer.lookup(ids))

    def forward(self, x: Tensor, return_stats: bool = False):
        z_q, ids, losses, stats = self.encode_with_stats(x)
        recon = self.decoder(z_q)
        if return_stats:
            return recon, ids, losses, stats
        return recon, ids, losses


def load_phase1_state(model: nn.Module, state_dict: Mapping[str, Tensor]) -> list[str]:
    """Load phase-1 weights into a phase-2 model (or decoder) whose only new keys are attention.

    Returns the missing (attention) keys. Raises if a non-attention key is missing or a key of
    ``state_dict`` is unknown to ``model`` -- a silent partial load would be a wrong phase 2.
    """
    result = model.load_state_dict(state_dict, strict=False)
    bad_missing = [k for k in result.missing_keys if ".attn." not in f".{k}"]
    if bad_missing or result.unexpected_keys:
        raise RuntimeError(
            f"phase-1 -> phase-2 load mismatch: missing non-attention keys {bad_missing}, "
            f"unexpected keys {list(result.unexpected_keys)}"
        )
    return list(result.missing_keys)


def parameter_breakdown(model: VQTokenizer) -> dict[str, int]:
    """Parameter counts of the tokenizer's parts (the decoder count includes its attention)."""
    return {
        "encoder": count_parameters(model.encoder),
        "codebook": count_parameters(model.quantizer),
        "decoder": count_parameters(model.decoder),
        "attention": sum(p.numel() for p in model.decoder.attention_parameters()),
        "total": count_parameters(model),
    }
