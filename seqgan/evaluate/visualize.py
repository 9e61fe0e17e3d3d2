"""The AR-prediction visualization of main-paper Fig. 4 / supplement Fig. 3.

1. encode each image -> ground-truth tokens s (raster order);
2. one teacher-forced pass of the AR transformer over s, argmax at every position -> s'
   (nothing sampled, predictions never fed back: :func:`seqgan.sample.ar.teacher_forced_argmax`);
3. decode s (reconstruction) and s' (prediction) with the SAME decoder.

:func:`teacher_forced_accuracy` runs steps 1-2 over a whole split in batches, so a figure of a few
images can quote the same number over every image. :func:`compose_grid` lays out rows of images
(input / reconstruction / prediction per alpha) as one pixel array; :func:`save_visualization_grid`
writes it, with row labels, as a PNG.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from seqgan.artefacts.files import atomic_write_bytes
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.nets.common import eval_mode
from seqgan.nets.transformer import GenerativeTransformer
from seqgan.sample.ar import teacher_forced_argmax, top1_accuracy_per_image
from seqgan.train.runtime import resolve_device

__all__ = [
    "compose_grid",
    "grid_size",
    "save_visualization_grid",
    "teacher_forced_accuracy",
    "tile_origin",
    "visualization_rows",
    "visualize_ar_prediction",
]


def visualize_ar_prediction(
    tokenizer: nn.Module,
    transformer: GenerativeTransformer,
    images_uint8: np.ndarray,
    labels: np.ndarray | Tensor | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """Ground-truth tokens, teacher-forced argmax tokens and both decodings of (B, H, W, 3) uint8.

    Returns numpy arrays: ``ids`` (B, h, w) int64 (``tokenizer.encode``), ``pred_ids`` (B, h, w)
    int64 (s'), ``reconstruction`` and ``prediction`` (B, H, W, 3) uint8 (decoder of s and of s'),
    ``token_accuracy`` (B,) float32 (fraction of positions with s' = s). labels: (B,) classes for a
    conditional transformer. Both models are moved to ``device`` in place and run in eval mode.
    """
    dev = _prepare(tokenizer, transformer, device)
    with eval_mode(tokenizer):
        ids, pred = _encode_and_predict(tokenizer, transformer, images_uint8, labels, dev)
        b, h, w = ids.shape
        flat = ids.reshape(b, h * w)
        reconstruction = to_uint8(tokenizer.decode_ids(ids))
        prediction = to_uint8(tokenizer.decode_ids(pred.reshape(b, h, w)))
        accuracy = top1_accuracy_per_image(pred, flat)
    return {
        "ids": ids.cpu().numpy().astype(np.int64),
        "pred_ids": pred.reshape(b, h, w).cpu().numpy().astype(np.int64),
        "reconstruction": reconstruction,
        "prediction": prediction,
        "token_accuracy": accuracy.cpu().numpy().astype(np.float32),
    }


def _prepare(tokenizer: nn.Module, transformer: GenerativeTransformer, device: str | torch.device) -> torch.device:
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    tokenizer.to(dev)
    transformer.to(dev)
    return dev


def _encode_and_predict(
    tokenizer: nn.Module,
    transformer: GenerativeTransformer,
    images_uint8: np.ndarray,
    labels: np.ndarray | Tensor | None,
    dev: torch.device,
) -> tuple[Tensor, Tensor]:
    """Steps 1-2 of the pipeline: ground-truth ids (B, h, w) and teacher-forced argmax ids (B, h*w).
    Call inside ``eval_mode(tokenizer)``."""
    images = np.asarray(images_uint8)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (B, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=dev)
    ids = tokenizer.encode_ids(to_model_input(images, dev))  # (B, h, w)
    b, h, w = ids.shape
    if h * w != transformer.config.seq_len:
        raise ValueError(
            f"the tokenizer gives {h} x {w} = {h * w} tokens, the transformer expects "
            f"seq_len = {transformer.config.seq_len}"
        )
    return ids, teacher_forced_argmax(transformer, ids.reshape(b, h * w), labels)  # (B, h, w), (B, N)


def teacher_forced_accuracy(
    tokenizer: nn.Module,
    transformer: GenerativeTransformer,
    images_uint8: np.ndarray,
    labels: np.ndarray | None,
    batch_size: int,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image top-1 accuracy of the teacher-forced argmax over a whole split, in batches.

    images_uint8: (N, H, W, 3) uint8 (a memory map is fine: read one batch at a time); labels: (N,)
    classes for a conditional transformer, else None. Returns ``accuracy`` (N,) float32 (the
    ``token_accuracy`` :func:`visualize_ar_prediction` gives for the same images) and ``code_counts``
    (vocab_size,) int64, how often each code occurs in the ground-truth ids (for the accuracy of a
    context-free constant guess, the baseline the transformer's number must beat).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images_uint8)
    if labels is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    dev = _prepare(tokenizer, transformer, device)
    accuracy = np.empty(n, np.float32)
    counts = torch.zeros(transformer.config.vocab_size, dtype=torch.long, device=dev)
    with eval_mode(tokenizer):
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch_labels = None if labels is None else np.asarray(labels[start:stop])
            batch = np.array(images_uint8[start:stop])  # (B, H, W, 3), a writable copy (torch needs one)
            ids, pred = _encode_and_predict(tokenizer, transformer, batch, batch_labels, dev)
            flat = ids.reshape(ids.shape[0], -1)  # (B, N)
            accuracy[start:stop] = top1_accuracy_per_image(pred, flat).cpu().numpy()
            counts += torch.bincount(flat.reshape(-1), minlength=counts.numel())
    return accuracy, counts.cpu().numpy().astype(np.int64)


def grid_size(
    rows: Sequence[tuple[str, np.ndarray]], *, scale: int = 1, pad: int = 2, label_width: int = 120
) -> tuple[int, int]:
    """(width, height) in pixels of the PNG :func:`save_visualization_grid` writes:
    ``label_width + pad + cols * (W*scale + pad)`` by ``pad + rows * (H*scale + pad)``, where
    cols is the longest row."""
    h, w = _cell_shape(rows)
    cols = max(len(images) for _, images in rows)
    return (
        label_width + pad + cols * (w * scale + pad),
        pad + len(rows) * (h * scale + pad),
    )


def _cell_shape(rows: Sequence[tuple[str, np.ndarray]]) -> tuple[int, int]:
    if not rows:
        raise ValueError("need at least one row")
    shapes = set()
    for name, images in rows:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) == 0:
            raise ValueError(f"row {name!r}: need (n >= 1, H, W, 3) uint8, got {images.shape} {images.dtype}")
        shapes.add(images.shape[1:3])
    if len(shapes) != 1:
        raise ValueError(f"all rows must hold images of one size, got {sorted(shapes)}")
    return shapes.pop()


def save_visualization_grid(
    rows: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    scale: int = 1,
    pad: int = 2,
    label_width: int = 120,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Path:
    """Write a PNG grid: one row per ``(label, images (n, H, W, 3) uint8)``, the label on the left.

    Images are enlarged ``scale`` times (nearest neighbour); size: :func:`grid_size`. Written
    atomically; returns the path."""
    canvas = Image.fromarray(compose_grid(rows, scale=scale, pad=pad, label_width=label_width, background=background))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    h, _ = _cell_shape(rows)
    for r, (name, _) in enumerate(rows):
        top = tile_origin(r, 0, rows, scale=scale, pad=pad, label_width=label_width)[1]
        left0, text_top, _, text_bottom = draw.textbbox((0, 0), str(name), font=font)
        text_y = top + (h * scale - (text_bottom - text_top)) // 2 - text_top
        draw.text((4 - left0, text_y), str(name), fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def tile_origin(
    row: int, col: int, rows: Sequence[tuple[str, np.ndarray]], *, scale: int = 1, pad: int = 2, label_width: int = 120
) -> tuple[int, int]:
    """(x, y) pixel of the top-left corner of image ``col`` of row ``row`` in :func:`compose_grid`."""
    h, w = _cell_shape(rows)
    return label_width + pad + col * (w * scale + pad), pad + row * (h * scale + pad)


def compose_grid(
    rows: Sequence[tuple[str, np.ndarray]],
    *,
    scale: int = 1,
    pad: int = 2,
    label_width: int = 120,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """The grid as a (height, width, 3) uint8 array (size :func:`grid_size`), tiles placed at
    :func:`tile_origin`, enlarged ``scale`` times (nearest neighbour), labels NOT drawn: the
    ``label_width`` column is left as background for the caller (PIL text or matplotlib ticks)."""
    if scale < 1 or pad < 0 or label_width < 0:
        raise ValueError(f"need scale >= 1, pad >= 0, label_width >= 0; got {scale}, {pad}, {label_width}")
    width, height = grid_size(rows, scale=scale, pad=pad, label_width=label_width)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = np.asarray(background, np.uint8)
    for r, (_, images) in enumerate(rows):
        for c, image in enumerate(np.asarray(images)):
            tile = image.repeat(scale, axis=0).repeat(scale, axis=1)  # (H*scale, W*scale, 3)
            x, y = tile_origin(r, c, rows, scale=scale, pad=pad, label_width=label_width)
            canvas[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return canvas


def visualization_rows(
    results: Sequence[tuple[str, dict[str, Any]]], inputs: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """Rows of a Fig. 4-style grid: the inputs once, then reconstruction and prediction per
    ``(name, visualize_ar_prediction result)`` (e.g. one per alpha)."""
    rows: list[tuple[str, np.ndarray]] = [("input", np.asarray(inputs))]
    for name, result in results:
        rows.append((f"{name} recon", result["reconstruction"]))
        rows.append((f"{name} pred", result["prediction"]))
    return rows
