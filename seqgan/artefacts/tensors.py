"""Prepared uint8 images <-> the float tensors the networks take, in one place so that every job
converts the same way (the [-1, 1] range, the rounding back to pixels).

Apart from seqgan/artefacts/images.py so that data preparation, which reads and writes the image
files but runs no network, does not import torch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_model_input(images: np.ndarray, device: torch.device) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 in [-1, 1] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) float in [-1, 1] -> (B, H, W, 3) uint8: clamp, (x + 1) * 127.5, round."""
    x = images.detach().float().clamp(-1.0, 1.0).add(1.0).mul(127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
