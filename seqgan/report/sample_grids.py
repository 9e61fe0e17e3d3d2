"""Sample-grid figures (supplement Figs. 4-10) and the pixel-exact image-grid renderer they share
with Fig. 1.

A grid is drawn from a finished sample directory (:func:`seqgan.artefacts.samples.open_sample_set`):

* class-conditional model: one row per class of ``evaluation.sample_grid.classes``, the first
  ``columns`` samples generated for that class (samples are stored class by class, so "first"
  means in generation order, not picked);
* unconditional model: the first ``rows * columns`` samples, row-major -- uncurated, and the
  caption says so.

Rendering: the images are tiled into one uint8 mosaic (``pad`` pixels of white between tiles),
shown by matplotlib at an integer magnification with nearest-neighbour interpolation, on a figure
whose size in pixels is computed from the mosaic -- so each PNG pixel of a tile is exactly one
sample pixel (the tests read the tiles back). Row labels sit to the left, the caption below.
PDF + PNG, written atomically.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import json

import matplotlib.pyplot as plt
import numpy as np

from seqgan.artefacts.files import atomic_write_bytes
from seqgan.artefacts.samples import SampleSet, check_sample_identity, open_sample_set
from seqgan.config import Params
from seqgan.report.labels import run_label

__all__ = [
    "GridLayout",
    "image_mosaic",
    "save_image_grid",
    "sample_grid_rows",
    "plot_sample_grid",
]

# Rendering only (no result depends on these): spacing, fonts, the smallest figure width.
PAD_PX = 2
DPI = 100
MIN_MOSAIC_WIDTH_PX = 640
MARGIN_PX = 8
TITLE_PX = 30
CAPTION_LINE_PX = 14
LABEL_CHAR_PX = 7
FONT_SIZE = 8


def image_mosaic(rows: Sequence[np.ndarray], pad: int = PAD_PX, background: int = 255) -> np.ndarray:
    """Tile rows of (n_i, H, W, 3) uint8 images into one (pad + R (H + pad), pad + C (W + pad), 3)
    uint8 image, C = the longest row; shorter rows leave background."""
    if not rows:
        raise ValueError("need at least one row of images")
    arrays = [np.asarray(r) for r in rows]
    shapes = {a.shape[1:] for a in arrays}
    bad = [a.shape for a in arrays if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or not len(a)]
    if bad or len(shapes) != 1:
        raise ValueError(
            f"rows must be non-empty (n, H, W, 3) uint8 arrays of one image size, got {[a.shape for a in arrays]}"
        )
    h, w = arrays[0].shape[1:3]
    cols = max(len(a) for a in arrays)
    out = np.full((pad + len(arrays) * (h + pad), pad + cols * (w + pad), 3), background, np.uint8)
    for r, row in enumerate(arrays):
        for c, image in enumerate(row):
            top, left = pad + r * (h + pad), pad + c * (w + pad)
            out[top : top + h, left : left + w] = image
    return out


@dataclass(frozen=True)
class GridLayout:
    """Where things are in the PNG (pixels, origin top-left): the mosaic starts at (left, top) and
    every mosaic pixel is a ``scale`` x ``scale`` block."""

    width: int
    height: int
    left: int
    top: int
    scale: int
    tile_h: int
    tile_w: int
    pad: int
    rows: int
    columns: int

    def tile_box(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of a tile in the PNG, end-exclusive."""
        x0 = self.left + (self.pad + column * (self.tile_w + self.pad)) * self.scale
        y0 = self.top + (self.pad + row * (self.tile_h + self.pad)) * self.scale
        return x0, y0, x0 + self.tile_w * self.scale, y0 + self.tile_h * self.scale


def _figure_bytes(fig, fmt: str) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=DPI)
    return buffer.getvalue()


def save_image_grid(
    rows: Sequence[tuple[str, np.ndarray]],
    out_pdf: str | Path,
    *,
    title: str,
    caption: str,
    pad: int = PAD_PX,
) -> GridLayout:
    """Draw labelled rows of images as one pixel-exact grid; write ``out_pdf`` and the PNG beside it.

    rows: ``(label, (n, H, W, 3) uint8)``; an empty label draws none. Returns the PNG layout.
    """
    mosaic = image_mosaic([images for _, images in rows], pad=pad)
    mh, mw = mosaic.shape[:2]
    scale = max(1, math.ceil(MIN_MOSAIC_WIDTH_PX / mw))
    label_chars = max(len(label) for label, _ in rows)
    left = MARGIN_PX + (label_chars * LABEL_CHAR_PX + MARGIN_PX if label_chars else 0)
    width = left + mw * scale + MARGIN_PX
    lines = []
    for paragraph in caption.splitlines():
        lines += textwrap.wrap(paragraph, max(20, width // LABEL_CHAR_PX)) or [""]
    top = TITLE_PX
    height = top + mh * scale + MARGIN_PX + len(lines) * CAPTION_LINE_PX + MARGIN_PX
    first = np.asarray(rows[0][1])
    layout = GridLayout(
        width=width,
        height=height,
        left=left,
        top=top,
        scale=scale,
        tile_h=int(first.shape[1]),
        tile_w=int(first.shape[2]),
        pad=pad,
        rows=len(rows),
        columns=max(len(r) for _, r in rows),
    )

    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((left / width, 1 - (top + mh * scale) / height, mw * scale / width, mh * scale / height))
    ax.imshow(mosaic, interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    fig.text(0.5, 1 - (TITLE_PX / 2) / height, title, ha="center", va="center", fontsize=FONT_SIZE + 2)
    for r, (label, _) in enumerate(rows):
        if label:
            y_px = top + (pad + r * (layout.tile_h + pad) + layout.tile_h / 2) * scale
            fig.text((left - MARGIN_PX) / width, 1 - y_px / height, label, ha="right", va="center", fontsize=FONT_SIZE)
    caption_top = top + mh * scale + MARGIN_PX
    fig.text(
        MARGIN_PX / width,
        1 - caption_top / height,
        "\n".join(lines),
        ha="left",
        va="top",
        fontsize=FONT_SIZE,
        linespacing=1.25,
    )

    out_pdf = Path(out_pdf)
    pdf, png = _figure_bytes(fig, "pdf"), _figure_bytes(fig, "png")
    plt.close(fig)
    atomic_write_bytes(out_pdf, pdf)
    atomic_write_bytes(out_pdf.with_suffix(".png"), png)
    return layout


def sample_grid_rows(
    samples: SampleSet,
    *,
    classes: Sequence[int],
    columns: int,
    rows: int,
    class_names: Sequence[str] | None = None,
) -> tuple[list[tuple[str, np.ndarray]], str]:
    """The rows of a sample grid and the sentence saying how they were chosen (module docstring)."""
    if columns < 1 or rows < 1:
        raise ValueError(f"columns and rows must be >= 1, got {columns}, {rows}")
    if samples.conditional:
        if not classes:
            raise ValueError(
                "evaluation.sample_grid.classes is empty: a class-conditional grid shows one row per "
                "listed class; name the classes to show"
            )
        out = []
        for c in classes:
            index = np.flatnonzero(samples.labels == int(c))[:columns]
            if len(index) < columns:
                raise ValueError(
                    f"class {c} has {len(index)} samples in {samples.directory}, the grid needs "
                    f"{columns} per row (evaluation.sample_grid.columns); sample more "
                    "(evaluation.num_samples) or lower the columns"
                )
            name = class_names[int(c)] if class_names is not None and int(c) < len(class_names) else None
            out.append((f"class {c}" + (f" ({name})" if name else ""), samples.read(index)))
        how = f"uncurated: the first {columns} samples generated for each class, seed {samples.seed}"
        return out, how
    need = rows * columns
    if len(samples) < need:
        raise ValueError(
            f"{samples.directory} holds {len(samples)} samples, the grid needs rows x columns = "
            f"{rows} x {columns} = {need} (evaluation.sample_grid); sample more or shrink the grid"
        )
    images = samples.read(range(need))
    out = [("", images[r * columns : (r + 1) * columns]) for r in range(rows)]
    return out, f"uncurated, first {need} samples of seed {samples.seed}"


def plot_sample_grid(
    samples: SampleSet,
    out_pdf: str | Path,
    *,
    classes: Sequence[int],
    columns: int,
    rows: int,
    title: str,
    description: str,
    class_names: Sequence[str] | None = None,
) -> GridLayout:
    """Write the sample grid of ``samples`` as ``out_pdf`` + PNG; ``description`` names the model."""
    grid, how = sample_grid_rows(samples, classes=classes, columns=columns, rows=rows, class_names=class_names)
    caption = f"{how}.\n{description}\nsamples: {samples.directory}"
    return save_image_grid(grid, out_pdf, title=title, caption=caption)


def sample_grid_job(
    params: Params,
    *,
    samples_dir: Path,
    objective: str,
    size: str,
    variant: str,
    decoder: str,
    class_names_from: Path | None,
    out: Path,
) -> GridLayout:
    """`seqgan sample-grid`: the grid PDF and PNG of one sample set (rule ``sample_grid``)."""
    samples = open_sample_set(samples_dir)
    check_sample_identity(
        samples, objective=objective, decoder=decoder, seed=None, conditional=params.transformer.conditional
    )
    grid = params.evaluation.sample_grid
    class_names = json.loads(Path(class_names_from).read_text())["class_names"] if class_names_from else None
    m = samples.manifest
    sampling = ", ".join(f"{k} {v}" for k, v in (m.get("sampling") or {}).items())
    title = (
        f"{objective.upper()} {size} on {variant} tokens, "
        f"{decoder.replace('phase', 'phase-')} decoder "
        f"({run_label(params)})"
    )
    description = (
        f"sampling: {sampling}; transformer "
        f"{(m.get('transformer_checkpoint') or {}).get('file')}; decoder "
        f"{(m.get('tokenizer_checkpoint') or {}).get('file')}"
    )
    try:
        layout = plot_sample_grid(
            samples,
            out,
            classes=grid.classes,
            columns=grid.columns,
            rows=grid.rows,
            title=title,
            description=description,
            class_names=class_names,
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"{out}: {layout.rows} x {layout.columns} samples, PNG {layout.width} x {layout.height} px")
    return layout
