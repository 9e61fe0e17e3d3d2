"""Token ids of a split through a phase-1 tokenizer (what the transformers train on; `seqgan
encode-tokens`, rule ``encode_tokens``); the on-disk format of a token split is
:mod:`seqgan.artefacts.tokens`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqgan.artefacts.files import file_sha256
from seqgan.artefacts.images import open_image_store, store_batches
from seqgan.artefacts.tensors import to_model_input
from seqgan.artefacts.tokens import TOKEN_DTYPE, check_codebook_size, write_token_split
from seqgan.config import Params
from seqgan.nets.common import eval_mode
from seqgan.progress import progress_bar
from seqgan.train.runtime import resolve_device, set_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint

__all__ = ["encode_split", "encode_tokens_job"]


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


def encode_tokens_job(params: Params, *, tokenizer_file: Path, split_dir: Path, out: Path, threads: int) -> dict:
    """Encode one prepared split with one tokenizer and write the token split."""
    set_threads(threads)
    device = resolve_device(params.run.device)
    tokenizer, sidecar = load_tokenizer_checkpoint(tokenizer_file, params, device)
    store = open_image_store(split_dir)
    ids = encode_split(tokenizer, store, batch_size=params.evaluation.batch_size, device=device, progress=True)
    meta = {
        "tokenizer": {
            "file": str(tokenizer_file),
            "sha256": file_sha256(tokenizer_file),
            "phase": sidecar.get("phase"),
            "alpha": sidecar.get("alpha"),
            "perceptual": sidecar.get("perceptual"),
            "step": sidecar.get("step"),
        },
        "source": {"directory": str(split_dir), "sha256": store.manifest["sha256"]},
    }
    manifest = write_token_split(
        out, ids, store.labels, meta, codebook_size=params.tokenizer.architecture.codebook_size
    )
    print(f"{out}: {manifest['count']} x {manifest['grid_h']}x{manifest['grid_w']} tokens")
    return manifest
