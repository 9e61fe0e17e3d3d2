"""The embedded default's semantic network: a small VGG-style classifier with VGG16's five taps.

The paper's semantic-enhanced perceptual loss uses ImageNet VGG16 features (relu1_2 ... relu5_3)
and classifier logits. The embedded default runs offline, so it trains this stand-in on its own
labelled synthetic images and uses it the same way (and as the FID feature extractor).

Layout (chosen to mirror VGG16 so each tap has the same role):
- five stages of 3x3 conv + ReLU, two convolutions in every stage (VGG16 has three in stages
  3-5). Measured on the embedded default (2-core CPU, same widths): the (2, 2, 3, 3, 3) stack
  costs twice the time per step and, without BatchNorm, sat at chance for the first ~100 steps and
  learned far more slowly (0.47 vs 0.83 accuracy after equal short runs); two per stage reaches
  >0.99 validation accuracy in about 90 s. The tap names keep VGG16's (relu3_3 etc.): "the last
  ReLU of stage i", whatever its index inside the stage;
- each tap is the output of the stage's last ReLU, before pooling; 2x max-pooling between stages
  (32 px input gives taps at 32, 16, 8, 4, 2 px);
- global average pooling of the last tap and one linear layer give the logits.

No BatchNorm: the taps are compared between images in a perceptual loss, and batch statistics
would make one image's features depend on its batch in training mode. Depth without BN trains
well with Kaiming initialisation and Adam(W). Input normalisation uses per-channel mean / std
buffers that the trainer sets from the training split (the analogue of VGG's ImageNet
statistics); they are saved with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqgan.nets.backbone import TAP_NAMES

CONVS_PER_STAGE: tuple[int, ...] = (2, 2, 2, 2, 2)


class SemanticNet(nn.Module):
    """Five-stage VGG-style classifier implementing :class:`~seqgan.nets.backbone.FeatureBackbone`.

    Args:
        widths: output channels of the five stages.
        num_classes: size of the logit vector.
    """

    def __init__(self, widths: Sequence[int], num_classes: int):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) != len(CONVS_PER_STAGE) or min(widths) <= 0:
            raise ValueError(f"widths must be {len(CONVS_PER_STAGE)} positive ints, got {widths}")
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.widths = tuple(widths)
        self.num_classes = int(num_classes)
        self.tap_names: tuple[str, ...] = TAP_NAMES
        # Set by the trainer from the training split; identity until then.
        self.register_buffer("input_mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("input_std", torch.ones(1, 3, 1, 1))

        stages = []
        in_ch = 3
        for width, n_convs in zip(widths, CONVS_PER_STAGE, strict=True):
            layers: list[nn.Module] = []
            for _ in range(n_convs):
                layers += [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True)]
                in_ch = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(widths[-1], self.num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs (keeps activations O(1) through the ReLU stack without BN)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    @torch.no_grad()
    def set_input_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Per-channel statistics of training images in the [-1, 1] input range."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def features(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Images (B, 3, H, W) in [-1, 1] -> ([relu1_2, ..., relu5_3], logits (B, num_classes))."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        h = (images - self.input_mean) / self.input_std
        taps: list[Tensor] = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                h = self.pool(h)
            h = stage(h)
            taps.append(h)
        logits = self.head(h.mean(dim=(2, 3)))
        return taps, logits

    def forward(self, images: Tensor) -> Tensor:
        """Logits only (classification)."""
        return self.features(images)[1]
