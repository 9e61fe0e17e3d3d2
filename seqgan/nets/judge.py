"""The embedded default's judge: a classifier no tokenizer optimises, for the evaluation metrics.

The paper optimises VGG16 features and judges with Inception, another network. The embedded
default's semantic network (:mod:`seqgan.nets.semantic`) is what the perceptual loss optimises, so
it cannot also judge: a tokenizer could learn what that one network wants to see. The judge is
another architecture with its own seed, trained on the same labelled split:

- a small residual network (three stages of two pre-activation residual blocks with strided
  convolutions instead of pooling and a global average pool; the semantic network is a plain VGG
  stack with max-pooling). BatchNorm, because GroupNorm trained too slowly here: 0.69 validation
  accuracy after 600 steps even without augmentation, against 0.96-0.99 with BatchNorm;
- trained with colour and background augmentation (:func:`shape_augment`: random channel
  permutation, polarity inversion, greyscale and blur) so that it reads the shape, the class, and
  not the colour or texture statistics a tokenizer may or may not keep.

It implements ``features(images) -> ([stage outputs], logits)``: FID features are the last stage,
global-average pooled (:func:`seqgan.evaluate.fid.judge_feature_network`); class accuracy and the
usable-samples rule use its logits. Weights + sidecar as the semantic network's (kind
``judge_net``), gated by ``judge.min_val_accuracy``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan.artefacts.checkpoints import load_weights

__all__ = ["JUDGE_KIND", "JudgeNet", "load_judge_net", "shape_augment"]

JUDGE_KIND = "judge_net"
STAGES = 3


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels)


class _Block(nn.Module):
    """Pre-activation residual block: norm-ReLU-conv twice, 1x1 projection when the shape changes."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, stride, bias=False) if stride != 1 or in_ch != out_ch else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + (x if self.skip is None else self.skip(x))


class JudgeNet(nn.Module):
    """Residual classifier; ``widths`` = the three stages' channels (stage 2 and 3 halve the size)."""

    def __init__(self, widths: Sequence[int], num_classes: int) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) != STAGES or min(widths) <= 0:
            raise ValueError(f"judge widths must be {STAGES} positive ints, got {widths}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.widths, self.num_classes = tuple(widths), int(num_classes)
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_std", torch.ones(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            stages.append(nn.Sequential(_Block(in_ch, width, 1 if i == 0 else 2), _Block(width, width, 1)))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.norm = _norm(in_ch)
        self.head = nn.Linear(in_ch, self.num_classes)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @torch.no_grad()
    def set_input_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Images (B, 3, H, W) in [-1, 1] -> ([stage outputs], logits (B, num_classes))."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        h = self.stem((images - self.input_mean) / self.input_std)
        taps = []
        for stage in self.stages:
            h = stage(h)
            taps.append(h)
        taps[-1] = F.relu(self.norm(taps[-1]))
        return taps, self.head(taps[-1].mean(dim=(2, 3)))

    def forward(self, images: Tensor) -> Tensor:
        return self.features(images)[1]


def shape_augment(x: Tensor, seed: int, step: int) -> Tensor:
    """Colour and background augmentation of a [-1, 1] batch, a pure function of (seed, step).

    Per image: a random permutation of the colour channels; polarity inversion (x -> -x, the
    generator's dark-on-light and light-on-dark) with probability 1/2; greyscale with probability
    1/4; a 2x box blur (down and up again, the softness of a reconstruction) with probability 1/3.
    What stays is the shape's outline: the class.
    """
    rng = np.random.default_rng([seed, step, 2])
    b = x.shape[0]
    perms = torch.from_numpy(np.stack([rng.permutation(3) for _ in range(b)])).to(x.device)
    x = torch.gather(x, 1, perms[:, :, None, None].expand_as(x))
    sign = torch.from_numpy(np.where(rng.random(b) < 0.5, -1.0, 1.0)).to(x)
    x = x * sign[:, None, None, None]
    grey = torch.from_numpy(rng.random(b) < 0.25).to(x.device)
    x = torch.where(grey[:, None, None, None], x.mean(dim=1, keepdim=True).expand_as(x), x)
    blur = torch.from_numpy(rng.random(b) < 1 / 3).to(x.device)
    soft = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    return torch.where(blur[:, None, None, None], soft, x)


def load_judge_net(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> JudgeNet:
    """A trained :class:`JudgeNet` from its weights + sidecar: eval mode, frozen."""
    state, sidecar = load_weights(path, device="cpu")
    if sidecar.get("kind") != JUDGE_KIND:
        raise ValueError(f"{path}: sidecar kind is {sidecar.get('kind')!r}, expected {JUDGE_KIND!r}")
    config = sidecar["config"]
    model = JudgeNet(config["widths"], config["num_classes"])
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device)
