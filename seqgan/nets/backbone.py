"""The interface every perceptual / semantic feature network exposes.

The semantic-enhanced perceptual loss needs five spatial feature maps (VGG16's relu1_2, relu2_2,
relu3_3, relu4_3, relu5_3, or their analogues in the embedded default's small classifier) and the
classifier logits computed on the same trunk. Both backbones implement this one protocol so the
loss, the FID feature extractor and the reconstruction-accuracy metric never ask which one they got.

Convention: images enter as float tensors (B, 3, H, W) in [-1, 1] (the tokenizer's output range);
each backbone applies its own input normalisation.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

TAP_NAMES: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


@runtime_checkable
class FeatureBackbone(Protocol):
    """Five feature taps plus logits from one forward pass."""

    tap_names: tuple[str, ...]
    num_classes: int

    def features(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Return ([tap_1, ..., tap_5] each (B, C_l, H_l, W_l), logits (B, num_classes))."""
        ...
