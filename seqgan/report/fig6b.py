"""Main-paper Fig. 6b: reconstruction FID and generation FID against the semantic ratio alpha.

The paper's reading (main-paper-facts.md section 1): rFID is best near alpha = 0.4 while generation
FID improves monotonically as alpha grows, i.e. the tokenizer that reconstructs best is not the one
that generates best. Both panels are read from recorded metrics files only:

- left: rFID of every phase-1 tokenizer (``results/metrics/tokenizer/phase1/{variant}/seed{S}.json``),
  one value per experiment seed S; mean with min-max bars over those seeds;
- right: generation FID of the samples of each objective's transformer, decoded by the same phase-1
  tokenizer (``results/metrics/generation/{obj}/{size}/{variant}/phase1/seed{N}.json``); only the
  primary run's transformers are sampled, so the bars span sampling seeds N, not experiment seeds.

The no-perceptual-loss control has no alpha: it is drawn as a labelled horizontal line, never on the
alpha axis. The axis labels name the FID feature network and the image counts recorded in the files,
so an FID computed with the embedded semantic network is never mistaken for Inception FID.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from seqgan.artefacts.files import atomic_write_bytes, atomic_write_text
from seqgan.config import Params
from seqgan.report.labels import run_label

__all__ = [
    "MetricsFileError",
    "MetricsFile",
    "draw_fig6b",
    "fig6b_table",
    "plot_fig6b",
    "save_pdf_png",
    "variant_alpha",
    "variant_label",
    "variant_sort_key",
]

CONTROL = "control"
PANEL_RFID = "rfid"
PANEL_GENERATION = "generation_fid"
TABLE_COLUMNS = [
    "panel",
    "objective",
    "size",
    "decoder",
    "variant",
    "alpha",
    "row",
    "seed_kind",
    "seed",
    "value",
    "mean",
    "min",
    "max",
    "std",
    "n",
    "transformer_seed",
    "feature_network",
    "evaluated_on",
    "source",
]


class MetricsFileError(ValueError):
    """A metrics file the figure needs is missing, unreadable or disagrees with what it should hold."""


def variant_alpha(variant: str) -> float | None:
    """``alpha0.5`` -> 0.5; ``control`` -> None (the control has no semantic ratio)."""
    if variant == CONTROL:
        return None
    if not variant.startswith("alpha"):
        raise ValueError(f"unknown tokenizer variant {variant!r}: expected alpha<value> or {CONTROL}")
    return float(variant.removeprefix("alpha"))


def variant_label(variant: str) -> str:
    alpha = variant_alpha(variant)
    return "control (no perceptual loss)" if alpha is None else f"alpha = {variant.removeprefix('alpha')}"


def variant_sort_key(variant: str) -> tuple[int, float]:
    """Alphas in increasing order, the control last."""
    alpha = variant_alpha(variant)
    return (1, 0.0) if alpha is None else (0, alpha)


@dataclass(frozen=True)
class MetricsFile:
    """One metrics JSON and what the workflow says it holds.

    For rFID ``seed`` is the experiment (training) seed; for generation FID it is the sampling seed
    and ``objective`` names the transformer's objective."""

    variant: str
    seed: int
    path: Path
    objective: str | None = None


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise MetricsFileError(f"{path}: not found ({what}); build it with snakemake {path}")
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise MetricsFileError(f"{path}: not valid JSON ({exc})") from exc


def _get(data: Mapping[str, Any], path: Path, *keys: str) -> Any:
    """data[k1][k2]...; a MetricsFileError naming the file and the dotted key when absent."""
    value: Any = data
    for i, key in enumerate(keys):
        if not isinstance(value, Mapping) or key not in value:
            raise MetricsFileError(f"{path}: missing key {'.'.join(keys[: i + 1])}")
        value = value[key]
    return value


def _rfid_record(entry: MetricsFile) -> dict[str, Any]:
    data = _read_json(entry.path, f"reconstruction metrics of the {entry.variant} tokenizer, seed {entry.seed}")
    alpha = variant_alpha(entry.variant)
    recorded = data.get("tokenizer", {})
    if "perceptual" in recorded and bool(recorded["perceptual"]) != (alpha is not None):
        raise MetricsFileError(
            f"{entry.path}: tokenizer.perceptual = {recorded['perceptual']} does not match variant {entry.variant}"
        )
    if alpha is not None and recorded.get("alpha") is not None and float(recorded["alpha"]) != alpha:
        raise MetricsFileError(
            f"{entry.path}: tokenizer.alpha = {recorded['alpha']} but the variant is {entry.variant}"
        )
    rfid = _get(data, entry.path, "computed_with", "rfid")
    reference = _get(rfid, entry.path, "reference")
    return {
        "panel": PANEL_RFID,
        "objective": "",
        "size": "",
        "decoder": "phase1",
        "variant": entry.variant,
        "alpha": alpha,
        "seed_kind": "experiment",
        "seed": int(entry.seed),
        "value": float(_get(data, entry.path, "rfid")),
        "feature_network": str(_get(rfid, entry.path, "feature_network", "name")),
        "evaluated_on": f"{int(_get(rfid, entry.path, 'count'))} reconstructions vs "
        f"{int(_get(reference, entry.path, 'count'))} {reference.get('name', 'reference')} images",
        "source": str(entry.path),
    }


def _generation_record(entry: MetricsFile) -> dict[str, Any]:
    if entry.objective is None:
        raise ValueError(f"{entry.path}: a generation metrics entry needs its objective")
    data = _read_json(
        entry.path,
        f"generation metrics of the {entry.objective} transformer on {entry.variant}, sampling seed {entry.seed}; "
        "rule eval_samples",
    )
    expected = {"objective": entry.objective, "variant": entry.variant, "seed": entry.seed, "decoder": "phase1"}
    for key, value in expected.items():
        if key in data and data[key] != value:
            raise MetricsFileError(f"{entry.path}: records {key} = {data[key]!r}, expected {value!r}")
    reference = _get(data, entry.path, "reference")
    return {
        "panel": PANEL_GENERATION,
        "objective": entry.objective,
        "size": str(data.get("size", "")),
        "decoder": "phase1",
        "variant": entry.variant,
        "alpha": variant_alpha(entry.variant),
        "seed_kind": "sampling",
        "seed": int(entry.seed),
        "value": float(_get(data, entry.path, "fid")),
        "feature_network": str(_get(data, entry.path, "feature_network", "name")),
        "evaluated_on": f"{int(_get(data, entry.path, 'num_samples'))} samples vs "
        f"{int(_get(reference, entry.path, 'count'))} {_reference_name(reference)} images",
        "source": str(entry.path),
    }


def _reference_name(reference: Mapping[str, Any]) -> str:
    return str(reference.get("split") or reference.get("name") or "reference")


def _single(records: Sequence[Mapping[str, Any]], key: str, panel: str) -> str:
    """The one value of ``key`` shared by a panel's files (one y-axis cannot mix FID definitions)."""
    values = {r[key] for r in records}
    if len(values) != 1:
        detail = "; ".join(f"{r['source']}: {r[key]}" for r in records)
        raise MetricsFileError(f"{panel}: the files disagree on {key} ({detail}); they cannot share one axis")
    return values.pop()


def _aggregate(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean, min, max and sample standard deviation (ddof = 1; empty for one seed) over seeds."""
    values = np.array([r["value"] for r in records], dtype=np.float64)
    first = records[0]
    return {
        **{
            k: first.get(k)
            for k in (
                "panel",
                "objective",
                "size",
                "decoder",
                "variant",
                "alpha",
                "seed_kind",
                "transformer_seed",
                "feature_network",
                "evaluated_on",
            )
        },
        "row": "mean_over_seeds",
        "seed": " ".join(str(r["seed"]) for r in records),
        "value": float(values.mean()),
        "mean": float(values.mean()),
        "min": float(values.min()),
        "max": float(values.max()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
        "n": len(values),
        "source": " ".join(r["source"] for r in records),
    }


def fig6b_table(
    rfid: Sequence[MetricsFile], generation: Sequence[MetricsFile], *, transformer_seed: int | None
) -> pd.DataFrame:
    """Every plotted number with its source: one ``seed`` row per file, one ``mean_over_seeds`` row
    per (panel, objective, variant). ``transformer_seed``: the experiment seed of the sampled
    transformers (recorded in the generation rows). Raises MetricsFileError naming the first
    missing or inconsistent file."""
    if not rfid:
        raise ValueError("fig6b needs at least one tokenizer metrics file")
    records = [_rfid_record(e) for e in rfid] + [
        {**_generation_record(e), "transformer_seed": transformer_seed} for e in generation
    ]
    for panel in (PANEL_RFID, PANEL_GENERATION):
        panel_records = [r for r in records if r["panel"] == panel]
        if panel_records:
            for key in ("feature_network", "evaluated_on", "size"):
                _single(panel_records, key, panel)
    rows = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["panel"], r["objective"], r["variant"]), []).append(r)
    order = sorted(groups, key=lambda k: (k[0] != PANEL_RFID, k[1], variant_sort_key(k[2])))
    for key in order:
        members = sorted(groups[key], key=lambda r: r["seed"])
        if len({r["seed"] for r in members}) != len(members):
            raise MetricsFileError(f"{key}: the same seed is given twice ({[r['source'] for r in members]})")
        for r in members:
            rows.append({**r, "row": "seed", "mean": np.nan, "min": np.nan, "max": np.nan, "std": np.nan, "n": 1})
        rows.append(_aggregate(members))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table = table.astype({c: float for c in ("alpha", "value", "mean", "min", "max", "std")})  # control: alpha NaN
    table["transformer_seed"] = table["transformer_seed"].astype("Int64")  # empty for rFID rows
    return table


def _axis_label(table: pd.DataFrame, panel: str, name: str) -> str:
    sub = table[table.panel == panel]
    return f"{name} ({sub.feature_network.iloc[0]} features,\n{sub.evaluated_on.iloc[0]})"


def _spread_note(means: pd.DataFrame) -> str:
    counts = sorted(set(means.n))
    kind = means.seed_kind.iloc[0]
    if counts == [1]:
        return f"one {kind} seed per point"
    return f"mean, bars min-max over {'/'.join(map(str, counts))} {kind} seeds"


def _draw_panel(ax, means: pd.DataFrame, colour: Any, label: str) -> None:
    """Alpha variants as a line with min-max bars; the control as a horizontal line (+ min-max band)."""
    sweep = means[means.variant != CONTROL].sort_values("alpha")
    if len(sweep):
        x, mean, low, high = (sweep[c].to_numpy(dtype=float) for c in ("alpha", "mean", "min", "max"))
        ax.errorbar(
            x,
            mean,
            yerr=[mean - low, high - mean],
            marker="o",
            color=colour,
            capsize=3,
            lw=1.6,
            label=label or "alpha sweep",
        )
    for _, control in means[means.variant == CONTROL].iterrows():
        ax.axhline(
            control["mean"],
            ls="--",
            color=colour,
            lw=1.2,
            label=f"{label + ', ' if label else ''}control, no perceptual loss ({control['mean']:.1f})",
        )
        if control["n"] > 1:
            ax.axhspan(control["min"], control["max"], color=colour, alpha=0.12, lw=0)


def plot_fig6b(table: pd.DataFrame, out_pdf: str | Path, title_note: str = "") -> None:
    """Write ``out_pdf`` and a PNG beside it from :func:`fig6b_table`'s table."""
    save_pdf_png(draw_fig6b(table, title_note), out_pdf, dpi=130)


def draw_fig6b(table: pd.DataFrame, title_note: str = "") -> Any:
    """The matplotlib figure (left: rFID, right: generation FID); the caller closes it."""
    means = table[table.row == "mean_over_seeds"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.3))
    alphas = sorted(a for a in means.alpha.dropna().unique())

    rfid = means[means.panel == PANEL_RFID]
    _draw_panel(axes[0], rfid, "tab:blue", "")
    axes[0].set_ylabel(_axis_label(table, PANEL_RFID, "rFID"), fontsize=8.5)
    axes[0].set_title(f"reconstruction: phase-1 tokenizers\n({_spread_note(rfid)})", fontsize=9)

    generation = means[means.panel == PANEL_GENERATION]
    if len(generation):
        colours = plt.get_cmap("tab10")
        for i, objective in enumerate(sorted(generation.objective.unique())):
            _draw_panel(axes[1], generation[generation.objective == objective], colours(i + 1), objective.upper())
        size = generation["size"].iloc[0]
        axes[1].set_ylabel(_axis_label(table, PANEL_GENERATION, "generation FID"), fontsize=8.5)
        axes[1].set_title(f"generation: {size} transformers, phase-1 decoder\n({_spread_note(generation)})", fontsize=9)
    else:
        axes[1].text(0.5, 0.5, "no generation metrics given", ha="center", va="center", transform=axes[1].transAxes)
    for ax in axes:
        ax.set_xlabel("semantic ratio alpha of the tokenizer's perceptual loss")
        ax.set_xticks(alphas)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7.5)
    fig.suptitle(
        "FID vs semantic ratio alpha (main-paper Fig. 6b; lower is better)"
        + (f" - {title_note}" if title_note else ""),
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def save_pdf_png(fig: Any, out_pdf: str | Path, dpi: int, **savefig_kw: Any) -> None:
    """Write a matplotlib figure as ``out_pdf`` and a PNG beside it (atomically), then close it.
    The figure's title (its suptitle, which names the data and params) is also each file's Title
    metadata, so tools and tests read it without rendering."""
    out_pdf = Path(out_pdf)
    title = fig.get_suptitle()
    metadata = {"metadata": {"Title": title}} if title else {}
    for path, fmt, extra in ((out_pdf, "pdf", {}), (out_pdf.with_suffix(".png"), "png", {"dpi": dpi})):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, **extra, **metadata, **savefig_kw)
        atomic_write_bytes(path, buffer.getvalue())
    plt.close(fig)


def fig6b_job(
    params: Params,
    *,
    rfid: Sequence[tuple[str, str, str]],
    generation: Sequence[tuple[str, str, str, str]],
    out: Path,
) -> None:
    """`seqgan fig6b`: main Fig. 6b and the CSV of every plotted number (rule ``fig6b_alpha_sweep``).
    ``rfid``: (variant, experiment seed, tokenizer metrics); ``generation``: (objective, variant,
    sampling seed, generation metrics)."""

    def seed(value: str, option: str) -> int:
        if not value.isdigit():
            raise SystemExit(f"error: {option}: seed must be a non-negative integer, got {value!r}")
        return int(value)

    rfid_files = [MetricsFile(v, seed(s, "--rfid"), Path(f)) for v, s, f in rfid]
    generation_files = [MetricsFile(v, seed(s, "--generation"), Path(f), objective=o) for o, v, s, f in generation]
    try:
        table = fig6b_table(rfid_files, generation_files, transformer_seed=params.run.seed)
    except MetricsFileError as exc:
        raise SystemExit(f"error: {exc}") from exc
    plot_fig6b(table, Path(out), title_note=run_label(params))
    atomic_write_text(Path(out).with_suffix(".csv"), table.to_csv(index=False))
    means = table[table.row == "mean_over_seeds"]
    print(means[["panel", "objective", "variant", "mean", "min", "max", "n"]].to_string(index=False))
