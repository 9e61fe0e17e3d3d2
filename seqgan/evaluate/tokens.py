"""Token ids of a split through a phase-1 tokenizer (what the transformers train on); the on-disk
format of a token split is :mod:`seqgan.artefacts.tokens`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from seqgan.artefacts.images import to_model_input
from seqgan.artefacts.tokens import TOKEN_DTYPE, check_codebook_size
from seqgan.evaluate.fid import store_batches
from seqgan.nets.common import eval_mode
from seqgan.progress import progress_bar
from seqgan.train.runtime import resolve_device

__all__ = ["encode_split"]


def encode_split(
    tokenizer: nn.Module,
    store: Any,
    *,
    batch_size: int,
    device: str | torch.device,
    progress: bool = False,
    max_images: int | None = None,
) -> np.ndarray:
    """Code ids of every image of a split (in store order): (N, h, w) uint16.

    The tokenizer is moved to ``device`` in place and run in eval mode under no_grad (its
    previous mode is restored).
    """
    k = check_codebook_size(tokenizer.quantizer.codebook_size)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    tokenizer.to(dev)
    n = len(store) if max_images is None else min(len(store), int(max_images))
    chunks: list[np.ndarray] = []
    with eval_mode(tokenizer), progress_bar(n, progress, "encode") as bar:
        for images in store_batches(store, batch_size, n):
            ids = tokenizer.encode_ids(to_model_input(images, dev))  # (B, h, w) int64
            ids = ids.cpu().numpy()
            if ids.size and (ids.min() < 0 or ids.max() >= k):
                raise ValueError(f"tokenizer produced ids outside [0, {k})")
            chunks.append(ids.astype(TOKEN_DTYPE))
            bar.update(len(images))
    if not chunks:
        raise ValueError(f"{getattr(store, 'directory', 'store')}: no images to encode")
    return np.concatenate(chunks)
