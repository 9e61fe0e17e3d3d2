"""The AR-prediction visualization of main-paper Fig. 4 / supplement Fig. 3.

1. encode each image -> ground-truth tokens s (raster order);
2. one teacher-forced pass of the AR transformer over s, argmax at every position -> s'
   (nothing sampled, predictions never fed back: :func:`seqgan.sample.ar.teacher_forced_argmax`);
3. decode s (reconstruction) and s' (prediction) with the SAME decoder.

:func:`save_visualization_grid` lays out labelled rows of images (input / reconstruction /
prediction per alpha) as one PNG.
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

from seqgan.evaluate.reconstruction import eval_mode, to_uint8
from seqgan.io import atomic_write_bytes
from seqgan.nets.transformer import GenerativeTransformer
from seqgan.sample.ar import teacher_forced_argmax, top1_accuracy_per_image
from seqgan.train.classifier import to_model_input
from seqgan.train.runtime import resolve_device

__all__ = ["grid_size", "save_visualization_grid", "visualization_rows", "visualize_ar_prediction"]


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
    images = np.asarray(images_uint8)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (B, H, W, 3) uint8, got {images.shape} {images.dtype}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    tokenizer.to(dev)
    transformer.to(dev)
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=dev)
    with eval_mode(tokenizer):
        _, ids, _ = tokenizer.encode(to_model_input(images, dev))  # (B, h, w)
        b, h, w = ids.shape
        if h * w != transformer.config.seq_len:
            raise ValueError(
                f"the tokenizer gives {h} x {w} = {h * w} tokens, the transformer expects "
                f"seq_len = {transformer.config.seq_len}"
            )
        flat = ids.reshape(b, h * w)
        pred = teacher_forced_argmax(transformer, flat, labels)  # (B, N)
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
    if scale < 1 or pad < 0 or label_width < 0:
        raise ValueError(f"need scale >= 1, pad >= 0, label_width >= 0; got {scale}, {pad}, {label_width}")
    h, w = _cell_shape(rows)
    width, height = grid_size(rows, scale=scale, pad=pad, label_width=label_width)
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    cell_h, cell_w = h * scale, w * scale
    for r, (name, images) in enumerate(rows):
        top = pad + r * (cell_h + pad)
        left0, text_top, _, text_bottom = draw.textbbox((0, 0), str(name), font=font)
        text_y = top + (cell_h - (text_bottom - text_top)) // 2 - text_top
        draw.text((4 - left0, text_y), str(name), fill=(0, 0, 0), font=font)
        for c, image in enumerate(np.asarray(images)):
            tile = Image.fromarray(np.ascontiguousarray(image))
            if scale != 1:
                tile = tile.resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (label_width + pad + c * (cell_w + pad), top))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def visualization_rows(results: Sequence[tuple[str, dict[str, Any]]], inputs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Rows of a Fig. 4-style grid: the inputs once, then reconstruction and prediction per
    ``(name, visualize_ar_prediction result)`` (e.g. one per alpha)."""
    rows: list[tuple[str, np.ndarray]] = [("input", np.asarray(inputs))]
    for name, result in results:
        rows.append((f"{name} recon", result["reconstruction"]))
        rows.append((f"{name} pred", result["prediction"]))
    return rows
