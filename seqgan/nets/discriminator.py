"""StyleGAN2-style residual discriminator, written from the paper (Karras et al., CVPR 2020).

The SeQ-GAN supplement uses "the style-based discriminator [StyleGAN2], as suggested in ViT-VQGAN".
This is an independent plain-PyTorch implementation of the architecture the StyleGAN2 paper
describes (its Fig. 7c "residual" discriminator and Appendix B); NVlabs' code was not used.

Building blocks

* Equalised learning rate (ProGAN/StyleGAN): weights are STORED ~ N(0, 1) / lr_mul and multiplied at
  run time by ``lr_mul / sqrt(fan_in)``; biases are stored / lr_mul and multiplied by ``lr_mul``.
  Every layer therefore learns at the same effective speed under Adam.
* Activation: leaky ReLU(0.2) times sqrt(2) (keeps the signal's magnitude).
* Downsampling: a [1, 3, 3, 1] binomial blur (low-pass filter) followed by a stride-2 conv.

Layout for input resolution R (a power of two >= 8) ::

    x (B, 3, R, R)
    fromRGB: 1x1 conv 3 -> ch(R) + act
    for r = R, R/2, ..., 8:   DiscriminatorBlock ch(r) -> ch(r/2)          (B, ch(r/2), r/2, r/2)
        main = act(conv3x3 ch(r)->ch(r)) -> blur -> act(conv3x3 stride 2 ch(r)->ch(r/2))
        skip = blur -> conv1x1 stride 2 ch(r)->ch(r/2) (no bias, no activation)
        out  = (main + skip) / sqrt(2)
    epilogue at 4 x 4:
        minibatch stddev (group size G = 4, 1 feature)                      (B, ch(4) + 1, 4, 4)
        act(conv3x3 ch(4)+1 -> ch(4)); flatten; act(linear 16 ch(4) -> ch(4)); linear ch(4) -> 1
    -> logits (B, 1)

Channels: ch(r) = min(channel_base // r, channel_max) (StyleGAN2-ADA's convention; 32768 and 512
give 128 channels at 256 px and 512 from 64 px down), or an explicit list ``channels`` for the
resolutions R, R/2, ..., 4.

Minibatch standard deviation: the batch is split into groups of G CONSECUTIVE samples
(samples 0..G-1 form the first group); G = the largest divisor of the batch size that is <= the
requested group size, so any batch size works. For each group: the standard deviation over the
group of every feature and pixel, sqrt(var + 1e-8), averaged over channels and pixels -> one number
per group, broadcast as an extra feature map to the group's samples. (For identical images it is
sqrt(1e-8) = 1e-4, i.e. zero up to the epsilon.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "EqualConv2d",
    "EqualLinear",
    "MinibatchStdDev",
    "DiscriminatorBlock",
    "StyleGAN2Discriminator",
    "lrelu_gain",
]

_SQRT2 = math.sqrt(2.0)


def lrelu_gain(x: Tensor, slope: float = 0.2) -> Tensor:
    """leaky ReLU(slope) * sqrt(2)."""
    return F.leaky_relu(x, slope) * _SQRT2


class EqualConv2d(nn.Module):
    """Conv2d with equalised learning rate.

    Stored weight ~ N(0, 1) / lr_mul, used as weight * lr_mul / sqrt(fan_in).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_channels,), bias_init / lr_mul)) if bias else None
        self.fan_in = in_channels * kernel_size * kernel_size
        self.weight_gain = lr_mul / math.sqrt(self.fan_in)
        self.lr_mul = lr_mul
        self.stride = stride
        self.padding = padding

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        return F.conv2d(x, self.effective_weight(), b, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, kernel_size={k}, stride={self.stride}, padding={self.padding}, lr_mul={self.lr_mul}"


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (same scheme as ``EqualConv2d``)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), bias_init / lr_mul)) if bias else None
        self.fan_in = in_features
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def effective_weight(self) -> Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: Tensor) -> Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.effective_weight(), b)


class Blur(nn.Module):
    """Depthwise [1, 3, 3, 1] x [1, 3, 3, 1] / 64 low-pass filter with explicit padding (fixed)."""

    def __init__(self, channels: int, pad: tuple[int, int]) -> None:
        super().__init__()
        k1 = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = torch.outer(k1, k1)
        k = k / k.sum()
        self.register_buffer("kernel", k.expand(channels, 1, 4, 4).clone(), persistent=False)
        self.pad = pad
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        p0, p1 = self.pad
        x = F.pad(x, (p0, p1, p0, p1))
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


class MinibatchStdDev(nn.Module):
    """Appends ``num_features`` maps: the group-wise stddev averaged over channels and pixels."""

    def __init__(self, group_size: int = 4, num_features: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_features = num_features
        self.eps = eps

    def _group(self, batch: int) -> int:
        g = max(1, min(self.group_size, batch))
        while batch % g:
            g -= 1
        return g

    def stddev_feature(self, x: Tensor) -> Tensor:
        """x (B, C, H, W) -> the appended maps (B, F, H, W)."""
        b, c, h, w = x.shape
        g, f = self._group(b), self.num_features
        if c % f:
            raise ValueError(f"channels ({c}) must be divisible by num_features ({f})")
        y = x.reshape(b // g, g, f, c // f, h, w).float()  # consecutive samples form a group
        y = y - y.mean(dim=1, keepdim=True)
        y = (y.square().mean(dim=1) + self.eps).sqrt()  # (B/G, F, C/F, H, W)
        y = y.mean(dim=(2, 3, 4))  # (B/G, F)
        y = y.to(x.dtype).repeat_interleave(g, dim=0)  # (B, F)
        return y[:, :, None, None].expand(b, f, h, w)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.stddev_feature(x)], dim=1)


class DiscriminatorBlock(nn.Module):
    """Residual 2x-downsampling block: (B, C_in, r, r) -> (B, C_out, r/2, r/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualConv2d(in_channels, in_channels, 3, padding=1)
        # 4-tap blur then 3x3 stride-2 conv: pad 2 on each side keeps r -> r/2 exactly
        self.blur = Blur(in_channels, pad=(2, 2))
        self.conv2 = EqualConv2d(in_channels, out_channels, 3, stride=2)
        # skip: blur (pad 1) then 1x1 stride-2 conv, linear (no bias, no activation)
        self.skip_blur = Blur(in_channels, pad=(1, 1))
        self.skip = EqualConv2d(in_channels, out_channels, 1, stride=2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        s = self.skip(self.skip_blur(x))
        h = lrelu_gain(self.conv1(x))
        h = lrelu_gain(self.conv2(self.blur(h)))
        return (h + s) / _SQRT2


class StyleGAN2Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator: images (B, C, R, R) in [-1, 1] -> logits (B, 1)."""

    def __init__(
        self,
        resolution: int = 256,
        in_channels: int = 3,
        channel_base: int = 32768,
        channel_max: int = 512,
        channels: Sequence[int] | None = None,
        mbstd_group_size: int = 4,
        mbstd_num_features: int = 1,
    ) -> None:
        super().__init__()
        log_r = math.log2(resolution)
        if resolution < 8 or log_r != int(log_r):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        resolutions = [2**i for i in range(int(log_r), 1, -1)]  # R, R/2, ..., 4
        if channels is None:
            chans = [min(channel_base // r, channel_max) for r in resolutions]
        else:
            chans = list(channels)
            if len(chans) != len(resolutions):
                raise ValueError(f"channels needs {len(resolutions)} entries (for {resolutions}), got {len(chans)}")
        self.resolution = resolution
        self.channels = dict(zip(resolutions, chans, strict=True))
        self.from_rgb = EqualConv2d(in_channels, chans[0], 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(chans[i], chans[i + 1]) for i in range(len(chans) - 1))
        c4 = chans[-1]
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features)
        self.conv = EqualConv2d(c4 + mbstd_num_features, c4, 3, padding=1)
        self.fc = EqualLinear(c4 * 4 * 4, c4)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.resolution, self.resolution):
            raise ValueError(f"expected {self.resolution} px input, got {tuple(x.shape[-2:])}")
        h = lrelu_gain(self.from_rgb(x))  # (B, ch(R), R, R)
        for block in self.blocks:
            h = block(h)  # ... -> (B, ch(4), 4, 4)
        h = self.mbstd(h)  # (B, ch(4) + F, 4, 4)
        h = lrelu_gain(self.conv(h))  # (B, ch(4), 4, 4)
        h = lrelu_gain(self.fc(h.flatten(1)))  # (B, ch(4))
        return self.out(h)  # (B, 1)
