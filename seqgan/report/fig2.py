"""Supplement Fig. 2: validation loss of generative transformers against iteration, one curve per
semantic ratio alpha — with the evidence needed to read it honestly.

An early CPU miniature of this project found that a lower validation loss can come from "less unpredictable
texture in the tokens" or "fewer codes in use" rather than "more semantics". So beside every curve
the figure and its summary table put the tokenizer's codebook perplexity and usage, the unigram
cross-entropy of its tokens (what a model that ignores all context would score), PSNR, and the
semantic network's accuracy on the tokenizer's reconstructions, and include the no-perceptual-loss
control. Every number is read from recorded artefacts (curve CSVs, metrics JSONs, checkpoint
sidecars); nothing is typed in here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import ConvergenceParams, Params, VerdictParams
from seqgan.report.convergence import tokenizer_plateau, transformer_convergence
from seqgan.report.fig6b import save_pdf_png
from seqgan.report.floors import tokenizer_floor_flags
from seqgan.report.labels import run_label


@dataclass(frozen=True)
class Fig2Run:
    """One transformer run and the tokenizer it was trained on."""

    variant: str  # "alpha0.5" or "control"
    objective: str  # "ar" | "nar"
    curve_csv: Path
    transformer_sidecar: Path
    tokenizer_metrics: Path

    @property
    def label(self) -> str:
        if self.variant == "control":
            return "control (no perceptual loss)"
        return f"alpha = {self.variant.removeprefix('alpha')}"


def _json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def summary_row(
    run: Fig2Run, floors: VerdictParams | None = None, convergence: ConvergenceParams | None = None
) -> dict:
    """Final numbers of one run, each with the file it came from; ``below_floor`` says why its
    tokenizer is below a quality floor of ``floors`` (empty when it passes or no floors are given);
    with ``convergence``, the endpoint validation loss and whether the transformer and its tokenizer
    reached their plateau (``not_converged``: which did not, empty when both did)."""
    curve = pd.read_csv(run.curve_csv)
    sidecar_metrics = _json(run.transformer_sidecar).get("metrics", {})
    tok = _json(run.tokenizer_metrics)
    endpoint_loss, not_converged = None, ""
    if convergence is not None:
        endpoint_loss, transformer_check = transformer_convergence(
            sidecar_metrics, convergence, run.transformer_sidecar
        )
        try:
            tokenizer_check = tokenizer_plateau(tok, convergence, run.tokenizer_metrics)
            tokenizer_holds = tokenizer_check.holds
        except ValueError:  # a tokenizer evaluated without its curve: cannot be checked
            tokenizer_holds = None
        not_converged = "; ".join(
            f"{what} {'still improving' if holds is False else 'not checkable'}"
            for what, holds in (("transformer", transformer_check.holds), ("tokenizer", tokenizer_holds))
            if not holds
        )
    return {
        "variant": run.variant,
        "objective": run.objective,
        "final_step": int(curve.step.iloc[-1]),
        "final_val_loss": float(curve.val_loss.iloc[-1]),
        "endpoint_val_loss": endpoint_loss,
        "not_converged": not_converged,
        "min_val_loss": float(curve.val_loss.min()),
        "unigram_cross_entropy": sidecar_metrics.get("unigram_cross_entropy"),
        "codebook_perplexity": tok.get("codebook_perplexity"),
        "codebook_usage": tok.get("codebook_usage"),
        "psnr": tok.get("psnr"),
        "rfid": tok.get("rfid"),
        "semantic_acc_reconstructed": tok.get("classifier_accuracy_reconstructed"),
        "semantic_acc_original": tok.get("classifier_accuracy_original"),
        "judge_acc_reconstructed": tok.get("judge_accuracy_reconstructed"),
        "mask_iou": _instrument(tok, "mask_iou"),
        "shape_colour_delta_e": _instrument(tok, "shape_colour_delta_e"),
        "background_delta_e": _instrument(tok, "background_delta_e"),
        "below_floor": "; ".join(tokenizer_floor_flags(tok, floors)) if floors is not None else "",
        "sources": json.dumps({k: str(v) for k, v in asdict(run).items() if k not in ("variant", "objective")}),
    }


def _instrument(tok: Mapping, key: str) -> float | None:
    """A ground-truth instrument number of the reconstructions (None without synthetic truth)."""
    return ((tok.get("instrument") or {}).get("reconstructed") or {}).get(key)


def _variant_order(variant: str) -> tuple[int, float]:
    return (1, 0.0) if variant == "control" else (0, float(variant.removeprefix("alpha")))


def plot_fig2(
    runs: Sequence[Fig2Run],
    out_pdf: Path,
    title_note: str = "",
    floors: VerdictParams | None = None,
    convergence: ConvergenceParams | None = None,
) -> pd.DataFrame:
    """Write ``out_pdf`` and a PNG beside it; return the summary table (also written as CSV).

    A run whose tokenizer is below a floor of ``floors`` (``evaluation.verdicts``) is marked with a
    trailing "(!)" in the legend and the evidence panel, and the reason is written under the panel; a
    run whose transformer or tokenizer did not reach its plateau (``convergence``) with "(~)"."""
    runs = sorted(runs, key=lambda r: (r.objective, _variant_order(r.variant)))
    table = pd.DataFrame([summary_row(r, floors, convergence) for r in runs])
    weak = {(row.variant, row.objective): row.below_floor for row in table.itertuples() if row.below_floor}
    unconverged = {(row.variant, row.objective): row.not_converged for row in table.itertuples() if row.not_converged}
    objectives = list(dict.fromkeys(r.objective for r in runs))
    fig, axes = plt.subplots(1, len(objectives) + 1, figsize=(5.2 * (len(objectives) + 1), 4.2))
    colours = _colours([r.variant for r in runs])
    for ax, objective in zip(axes, objectives, strict=False):
        for run in (r for r in runs if r.objective == objective):
            curve = pd.read_csv(run.curve_csv)
            style = "--" if run.variant == "control" else "-"
            key = (run.variant, run.objective)
            label = run.label + (" (!)" if key in weak else "") + (" (~)" if key in unconverged else "")
            ax.plot(curve.step, curve.val_loss, style, color=colours[run.variant], label=label, lw=1.6)
        ax.set_xlabel("transformer iteration")
        ax.set_ylabel("validation cross-entropy (nats / token)")
        ax.set_title(f"{objective.upper()} transformer")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _evidence_panel(axes[-1], table, weak, unconverged)
    fig.suptitle(
        "Validation loss vs semantic ratio alpha (supplement Fig. 2)" + (f" - {title_note}" if title_note else ""),
        fontsize=10,
    )
    fig.tight_layout()
    out_pdf = Path(out_pdf)
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    save_pdf_png(fig, out_pdf, dpi=130)  # written whole, then renamed: never through a DVC cache link
    return table


def _colours(variants: Sequence[str]) -> Mapping[str, tuple]:
    alphas = sorted({v for v in variants if v != "control"}, key=_variant_order)
    cmap = plt.get_cmap("viridis")
    out = {v: cmap(0.85 * i / max(1, len(alphas) - 1)) for i, v in enumerate(alphas)}
    out["control"] = (0.45, 0.45, 0.45, 1.0)
    return out


def _evidence_panel(
    ax, table: pd.DataFrame, weak: Mapping[tuple[str, str], str], unconverged: Mapping[tuple[str, str], str]
) -> None:
    """The numbers a reader needs to tell 'more semantic' from 'less texture' or 'fewer codes'."""
    ax.axis("off")
    endpoint = table["endpoint_val_loss"].notna().all()
    columns = [
        "variant",
        "objective",
        "endpoint_val_loss" if endpoint else "final_val_loss",
        "unigram_cross_entropy",
        "codebook_perplexity",
        "psnr",
        "mask_iou",
        "shape_colour_delta_e",
        "judge_acc_reconstructed",
    ]
    # semantic fidelity (mask IoU against the ground truth, the judge's accuracy) and detail fidelity
    # (shape colour error) beside the loss: what tells "more semantic" from "less texture"
    loss_header = "val CE\n(end)" if endpoint else "val CE"
    headers = [  # two lines where one would overflow its column
        "tokenizer",
        "obj",
        loss_header,
        "unigram\nCE",
        "perplex-\nity",
        "PSNR",
        "mask\nIoU",
        "colour\ndE",
        "judge\nacc",
    ]

    def marks(row) -> str:
        key = (row["variant"], row["objective"])
        return (" (!)" if key in weak else "") + (" (~)" if key in unconverged else "")

    cells = [[_fmt(row[c]) + (marks(row) if c == "variant" else "") for c in columns] for _, row in table.iterrows()]
    tab = ax.table(cellText=cells, colLabels=headers, loc="center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7.5)
    tab.auto_set_column_width(list(range(len(headers))))  # each column as wide as its widest cell
    tab.scale(1.15, 1.3)
    for (row, _), cell in tab.get_celld().items():
        if row == 0:
            cell.set_height(cell.get_height() * 1.8)  # room for the two-line headers
    ax.set_title(
        "evidence beside each curve (val CE: mean of the last evaluations)" if endpoint else "evidence (final values)",
        fontsize=9,
    )
    notes = []
    if weak:
        reasons = sorted({f"{variant}: {why}" for (variant, _), why in weak.items()})
        notes += ["(!) tokenizer below a quality floor (flagged, still shown):", *reasons]
    if unconverged:
        reasons = sorted(
            {f"{variant} ({objective.upper()}): {why}" for (variant, objective), why in unconverged.items()}
        )
        notes += ["(~) not trained to its plateau (evaluation.convergence; flagged, still shown):", *reasons]
    if notes:
        ax.text(0.0, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=6.5, va="bottom", wrap=True)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def fig2_job(params: Params, *, runs: Sequence[tuple[str, str, str, str, str]], out: Path) -> pd.DataFrame:
    """`seqgan fig2`: the figure, its PNG and the CSV summary (rule ``fig2_val_loss``).

    ``runs``: (variant, objective, curve CSV, transformer sidecar, tokenizer metrics) per line."""
    fig_runs = [
        Fig2Run(variant, objective, Path(curve), Path(sidecar), Path(metrics))
        for variant, objective, curve, sidecar, metrics in runs
    ]
    note = f"{run_label(params)}, {params.transformer.models[0]} size, seed {params.run.seed}"
    table = plot_fig2(
        fig_runs,
        Path(out),
        title_note=note,
        floors=params.evaluation.verdicts,
        convergence=params.evaluation.convergence,
    )
    atomic_write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    print(table.drop(columns=["sources"]).to_string(index=False))
    return table
