"""Main-paper Fig. 4 / supplement Fig. 3: what an AR transformer predicts from each tokenizer's tokens.

For the first few validation images, per phase-1 tokenizer variant (every alpha and the control):
the reconstruction (decoded ground-truth tokens s) and the AR prediction (decoded teacher-forced
argmax tokens s', :func:`seqgan.evaluate.visualize.visualize_ar_prediction`), both through that
variant's own decoder. The paper reads the figure as "with a larger alpha the prediction keeps the
object". Eight images prove nothing, so the figure and its CSV also give the top-1 token accuracy of
the same teacher-forced pass over EVERY validation image, next to the accuracy of a constant guess
of the most frequent code (what a predictor that ignores all context reaches on these tokens).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from seqgan.artefacts.files import atomic_write_text, file_sha256
from seqgan.artefacts.images import open_image_store
from seqgan.config import Params
from seqgan.evaluate.visualize import (
    compose_grid,
    grid_size,
    teacher_forced_accuracy,
    tile_origin,
    visualization_rows,
    visualize_ar_prediction,
)
from seqgan.nets.transformer import GenerativeTransformer
from seqgan.report.fig6b import (
    save_pdf_png,
    variant_alpha,
    variant_label,
    variant_sort_key,
)
from seqgan.report.labels import run_label
from seqgan.train.runtime import resolve_device, set_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint
from seqgan.train.transformer import load_transformer_checkpoint
from seqgan.train.variants import parse_phase1_variant

__all__ = [
    "Fig3Result",
    "Fig3Variant",
    "check_pairing",
    "compute_fig3",
    "display_scale",
    "fig3_rows",
    "fig3_table",
    "plot_fig3",
]

# Tiles are enlarged to at least this many pixels (nearest neighbour) so 32 px images stay legible;
# presentation only, no number depends on it.
MIN_TILE_PIXELS = 96
PAD = 2
DPI = 100
MARGINS_PX = {"left": 230, "right": 12, "top": 92, "bottom": 58}


@dataclass(frozen=True)
class Fig3Variant:
    """A phase-1 tokenizer and the AR transformer trained on its tokens (both loaded, eval mode)."""

    variant: str  # "alpha0.5" or "control"
    tokenizer: nn.Module
    transformer: GenerativeTransformer
    tokenizer_file: str
    transformer_file: str


@dataclass
class VariantResult:
    variant: str
    tokenizer_file: str
    transformer_file: str
    shown: dict[str, np.ndarray]  # visualize_ar_prediction of the shown images
    split_accuracy: np.ndarray  # (N,) teacher-forced top-1 accuracy of every split image
    code_counts: np.ndarray  # (K,) ground-truth code histogram over the split

    @property
    def constant_guess_accuracy(self) -> float:
        """Accuracy of always predicting the split's most frequent code (optimistic: it is chosen
        on the very tokens it is scored on)."""
        return float(self.code_counts.max() / self.code_counts.sum())


@dataclass
class Fig3Result:
    inputs: np.ndarray  # (n, H, W, 3) uint8, the shown images
    image_indices: np.ndarray  # (n,) their indices in the split
    class_names: list[str]  # of the shown images ("" when unknown)
    split: str
    split_count: int
    batch_size: int
    variants: list[VariantResult] = field(default_factory=list)


def check_pairing(
    tokenizer_file: str | Path,
    tokenizer_sha256: str,
    transformer_file: str | Path,
    transformer_sidecar: Mapping[str, Any],
) -> None:
    """The transformer must be AR and trained on tokens of exactly this tokenizer file.

    A transformer paired with another tokenizer's codes predicts ids that mean nothing to this
    decoder, and the figure would still look plausible; the sidecar records the tokenizer's sha256.
    """
    if transformer_sidecar.get("objective") != "ar":
        raise ValueError(
            f"{transformer_file}: a {transformer_sidecar.get('objective')!r} transformer; the teacher-forced "
            "visualization needs an AR (causal) one"
        )
    recorded = (
        transformer_sidecar.get("metrics", {}).get("tokens", {}).get("train", {}).get("tokenizer", {}).get("sha256")
    )
    if recorded is None:
        raise ValueError(f"{transformer_file}: its sidecar does not record the tokenizer sha256 of its training tokens")
    if recorded != tokenizer_sha256:
        raise ValueError(
            f"{transformer_file} was trained on tokens of a tokenizer with sha256 {recorded[:12]}..., but "
            f"{tokenizer_file} has sha256 {tokenizer_sha256[:12]}...; rerun the workflow so both are current"
        )


def compute_fig3(
    variants: Sequence[Fig3Variant],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    split: str,
    num_images: int,
    batch_size: int,
    device: str | torch.device = "cpu",
) -> Fig3Result:
    """Run the visualization pipeline on ``images[:num_images]`` and the accuracy over all ``images``.

    images: (N, H, W, 3) uint8 (a memory-mapped split is fine); labels: (N,) classes, passed to a
    transformer only when it is class-conditional (``config.num_classes > 0``)."""
    if not variants:
        raise ValueError("fig3 needs at least one tokenizer variant")
    n_total = len(images)
    if not 1 <= num_images <= n_total:
        raise ValueError(f"num_images must be in 1..{n_total} (the split size), got {num_images}")
    shown_images = np.array(images[:num_images])  # a writable copy: torch refuses read-only memory maps
    result = Fig3Result(
        inputs=shown_images,
        image_indices=np.arange(num_images),
        class_names=[class_names[int(c)] if 0 <= int(c) < len(class_names) else "" for c in labels[:num_images]],
        split=split,
        split_count=n_total,
        batch_size=batch_size,
    )
    for v in sorted(variants, key=lambda v: variant_sort_key(v.variant)):
        conditional = v.transformer.config.num_classes > 0
        split_labels = np.asarray(labels) if conditional else None
        shown = visualize_ar_prediction(
            v.tokenizer,
            v.transformer,
            shown_images,
            None if split_labels is None else split_labels[:num_images],
            device=device,
        )
        accuracy, counts = teacher_forced_accuracy(
            v.tokenizer, v.transformer, images, split_labels, batch_size, device=device
        )
        result.variants.append(VariantResult(v.variant, v.tokenizer_file, v.transformer_file, shown, accuracy, counts))
    return result


def fig3_table(result: Fig3Result) -> pd.DataFrame:
    """``row = image``: one row per shown image and variant; ``row = split_mean``: one row per
    variant with the mean (and std, constant-guess baseline) over every image of the split."""
    rows = []
    for v in result.variants:
        tokens = int(np.prod(v.shown["ids"].shape[1:]))
        common = {
            "variant": v.variant,
            "alpha": variant_alpha(v.variant),
            "tokens_per_image": tokens,
            "split": result.split,
            "batch_size": result.batch_size,
            "tokenizer_file": v.tokenizer_file,
            "transformer_file": v.transformer_file,
        }
        for i, index in enumerate(result.image_indices):
            rows.append(
                {
                    "row": "image",
                    **common,
                    "image_index": int(index),
                    "class": result.class_names[i],
                    "num_images": 1,
                    "token_accuracy": float(v.shown["token_accuracy"][i]),
                    "token_accuracy_std": np.nan,
                    "constant_guess_accuracy": np.nan,
                }
            )
        rows.append(
            {
                "row": "split_mean",
                **common,
                "image_index": "all",
                "class": "",
                "num_images": result.split_count,
                "token_accuracy": float(v.split_accuracy.mean()),
                "token_accuracy_std": float(v.split_accuracy.std()),
                "constant_guess_accuracy": v.constant_guess_accuracy,
            }
        )
    columns = [
        "row",
        "variant",
        "alpha",
        "image_index",
        "class",
        "num_images",
        "token_accuracy",
        "token_accuracy_std",
        "constant_guess_accuracy",
        "tokens_per_image",
        "split",
        "batch_size",
        "tokenizer_file",
        "transformer_file",
    ]
    return pd.DataFrame(rows, columns=columns)


def display_scale(height: int) -> int:
    """Nearest-neighbour enlargement so a tile is at least MIN_TILE_PIXELS tall."""
    return max(1, ceil(MIN_TILE_PIXELS / height))


def fig3_rows(result: Fig3Result) -> list[tuple[str, np.ndarray]]:
    """The grid's rows: input, then reconstruction and prediction per variant (alphas, then control)."""
    return visualization_rows([(v.variant, v.shown) for v in result.variants], result.inputs)


def _row_labels(result: Fig3Result) -> list[str]:
    labels = [f"input ({result.split})"]
    for v in result.variants:
        name = variant_label(v.variant)
        shown = float(v.shown["token_accuracy"].mean())
        labels.append(f"{name}\nreconstruction")
        labels.append(
            f"{name}\nAR prediction, token acc.\n{shown:.3f} shown / {v.split_accuracy.mean():.3f} all "
            f"{result.split_count}\n(const. guess {v.constant_guess_accuracy:.3f})"
        )
    return labels


def plot_fig3(result: Fig3Result, out_pdf: str | Path, title_note: str = "") -> np.ndarray:
    """Write ``out_pdf`` and a PNG beside it; return the image grid (height, width, 3) uint8 drawn.

    The grid is shown at one screen pixel per grid pixel in the PNG; the labels are matplotlib text,
    so the PDF keeps them as vectors."""
    rows = fig3_rows(result)
    h = result.inputs.shape[1]
    scale = display_scale(h)
    layout = {"scale": scale, "pad": PAD, "label_width": 0}
    canvas = compose_grid(rows, **layout)
    width, height = grid_size(rows, **layout)
    m = MARGINS_PX
    fig_w, fig_h = width + m["left"] + m["right"], height + m["top"] + m["bottom"]
    fig = plt.figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((m["left"] / fig_w, m["bottom"] / fig_h, width / fig_w, height / fig_h))
    ax.imshow(canvas, interpolation="nearest")
    tile = h * scale
    row_tops = [tile_origin(r, 0, rows, **layout)[1] for r in range(len(rows))]
    col_lefts = [tile_origin(0, c, rows, **layout)[0] for c in range(len(result.inputs))]
    ax.set_yticks([top + tile / 2 for top in row_tops], _row_labels(result), fontsize=7)
    ax.xaxis.tick_top()
    ax.set_xticks(
        [left + tile / 2 for left in col_lefts],
        [f"#{i}\n{name}" for i, name in zip(result.image_indices, result.class_names, strict=True)],
        fontsize=7,
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for k, v in enumerate(result.variants):
        top = row_tops[2 + 2 * k]  # the prediction row of variant k
        for left, acc in zip(col_lefts, v.shown["token_accuracy"], strict=True):
            ax.text(
                left + 2,
                top + 2,
                f"{acc:.2f}",
                fontsize=6,
                va="top",
                ha="left",
                bbox={"facecolor": "white", "alpha": 0.75, "pad": 1, "lw": 0},
            )
    fig.suptitle(
        "AR prediction vs reconstruction per tokenizer (main-paper Fig. 4 / supplement Fig. 3)"
        + (f"\n{title_note}" if title_note else ""),
        fontsize=9,
    )
    fig.text(
        0.01,
        0.01,
        "prediction = decoded argmax of the AR transformer at every position given the TRUE previous tokens "
        "(teacher forcing, nothing sampled);\ntoken acc. = fraction of positions where it equals the true token "
        "(number on each tile); 'all' = mean over the whole split; const. guess = most frequent code's share.",
        fontsize=6.5,
        va="bottom",
    )
    save_pdf_png(fig, out_pdf, dpi=DPI)
    return canvas


def fig3_job(
    params: Params,
    *,
    split_dir: Path,
    variants: Sequence[tuple[str, str, str]],
    out: Path,
    threads: int,
) -> None:
    """`seqgan fig3`: main Fig. 4 / supplement Fig. 3 and its token-accuracy CSV (rule
    ``fig3_visualization``). ``variants``: (variant, tokenizer weights, AR transformer weights)."""
    set_threads(threads)
    device = resolve_device(params.run.device)
    shown, runs = [], set()
    for name, tokenizer_file, transformer_file in variants:
        alpha, perceptual = parse_phase1_variant(params, name)
        tokenizer, k_sidecar = load_tokenizer_checkpoint(tokenizer_file, params, device)
        if (k_sidecar.get("phase"), k_sidecar.get("perceptual"), k_sidecar.get("alpha")) != (1, perceptual, alpha):
            raise SystemExit(
                f"error: {tokenizer_file} is not the phase-1 {name} tokenizer (its sidecar records "
                f"phase {k_sidecar.get('phase')}, alpha {k_sidecar.get('alpha')}, "
                f"perceptual {k_sidecar.get('perceptual')})"
            )
        transformer, t_sidecar = load_transformer_checkpoint(transformer_file, params, device)
        try:
            check_pairing(tokenizer_file, file_sha256(tokenizer_file), transformer_file, t_sidecar)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from exc
        runs.add(f"{t_sidecar.get('size')}, seed {t_sidecar.get('training', {}).get('seed')}")
        shown.append(Fig3Variant(name, tokenizer, transformer, tokenizer_file, transformer_file))
    store = open_image_store(split_dir)
    result = compute_fig3(
        shown,
        store.images,
        store.labels,
        class_names=store.class_names,
        split=str(split_dir),
        num_images=params.evaluation.visualization_images,
        batch_size=params.evaluation.batch_size,
        device=device,
    )
    note = (
        f"{run_label(params)}: first {len(result.inputs)} of {result.split_count} images of {split_dir}; "
        f"AR transformers {' / '.join(sorted(runs))}"
    )
    plot_fig3(result, Path(out), title_note=note)
    table = fig3_table(result)
    atomic_write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    summary = table[table.row == "split_mean"]
    print(
        summary[["variant", "num_images", "token_accuracy", "token_accuracy_std", "constant_guess_accuracy"]].to_string(
            index=False
        )
    )
