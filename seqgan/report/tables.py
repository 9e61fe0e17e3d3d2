"""The paper's result tables (main Tables 1-6 and Fig. 8b) beside the reproduced numbers.

Every cell holds the paper's value (seqgan/report/paper_reference.yaml), the reproduced value read
from a recorded artefact, and their difference; every reproduced value names the run that produced
it (params hash of the sections that determine it, the git revision recorded in the artefact), the
feature network and the reference set. Which run fills which cell is decided here from the params
(data.name, transformer.conditional / objectives / models, tokenizer.alphas, phase2.from_alpha);
a cell whose run the params do not make says "not run" and why. The Snakemake rule lists exactly
the files :func:`table_inputs` returns, so a table never reads an artefact its rule did not declare.

A difference is only computed where the reproduced value is measured on the paper's dataset (and
setting): an FID of the embedded 32 px set minus an ImageNet FID is not a difference of anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params
from seqgan.report.artefacts import (
    ArtefactLayout,
    Decoder,
    MissingArtefactError,
    ProducedRuns,
    RunIdentity,
    dotted,
    paper_dataset,
    read_json,
    run_identity,
    variant_name,
)
from seqgan.report.reference import paper_reference
from seqgan.report.stats import spread

TABLE_NAMES = (
    "table1_decoder_capacity",
    "table2_reconstruction",
    "table3_unconditional",
    "table4_imagenet_conditional",
    "table5_codebook",
    "table6_perceptual_layers",
    "fig8b_phase2",
)

Format = Literal["fid", "percent", "params_m", "int", "score"]

DATASET_LABELS = {
    "imagenet": "ImageNet",
    "ffhq": "FFHQ",
    "lsun_church": "LSUN church",
    "lsun_cat": "LSUN cat",
    "lsun_bedroom": "LSUN bedroom",
}
THIS_RUN = "this_run"


@dataclass(frozen=True)
class Source:
    """A reproduced value: ``key`` of one or more JSON artefacts, combined (mean or sum) and scaled."""

    files: tuple[Path, ...]
    key: str
    kind: str  # a seqgan.runs.LINEAGE key: which declared runs (and their params keys) produced it
    combine: Literal["mean", "sum"]
    scale: float
    what: str  # the run in words, e.g. "AR base on alpha1.0 tokens, phase-2 decoder"
    identity_files: tuple[Path, ...] = ()  # read only for the git revision (e.g. the transformer's sidecar)

    @property
    def inputs(self) -> tuple[Path, ...]:
        return self.files + self.identity_files


@dataclass(frozen=True)
class CellSpec:
    row: str
    column: str
    paper: float | None
    source: Source | None  # None: not run
    note: str  # not run: why; otherwise a caveat ('' if none)
    comparable: bool  # the reproduced value is measured on the paper's dataset


@dataclass(frozen=True)
class Measurement:
    value: float | None  # None: the artefact records null (e.g. no Inception Score)
    std: float | None  # over the combined files (sampling seeds); None for one file
    count: int
    identity: RunIdentity
    feature_network: str
    dataset: str


@dataclass(frozen=True)
class Cell:
    spec: CellSpec
    measurement: Measurement | None

    @property
    def reproduced(self) -> float | None:
        return None if self.measurement is None else self.measurement.value

    @property
    def difference(self) -> float | None:
        """reproduced - paper, only where both exist and the comparison is like for like."""
        if self.spec.paper is None or self.reproduced is None or not self.spec.comparable:
            return None
        return self.reproduced - self.spec.paper

    @property
    def status(self) -> str:
        return "not run" if self.spec.source is None else "reproduced"


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    caption: str
    rows: tuple[str, ...]
    row_labels: dict[str, str]
    columns: tuple[str, ...]
    column_labels: dict[str, str]
    formats: dict[str, Format]
    cells: tuple[CellSpec, ...] = field(repr=False)


@dataclass(frozen=True)
class Table:
    spec: TableSpec
    cells: tuple[Cell, ...]

    def cell(self, row: str, column: str) -> Cell:
        for c in self.cells:
            if c.spec.row == row and c.spec.column == column:
                return c
        raise KeyError(f"{self.spec.name}: no cell ({row}, {column})")


# ----------------------------------------------------------------------------------------------
# Which run fills which cell
# ----------------------------------------------------------------------------------------------


class _Cells:
    """Source builders for one params file: each returns a Source or the reason it is not run."""

    def __init__(self, params: Params, layout: ArtefactLayout):
        self.params = params
        self.layout = layout
        self.runs = ProducedRuns(params)
        self.dataset = paper_dataset(params)
        self.seed = self.runs.run_seed

    def tokenizer(self, key: str, alpha: float, *, scale: float = 1.0) -> Source | str:
        reason = self.runs.why_not_alpha(alpha)
        if reason:
            return reason
        variant = variant_name(alpha)
        return Source(
            (self.layout.tokenizer_metrics(variant, self.seed),),
            key,
            "tokenizer_phase1",
            "mean",
            scale,
            f"phase-1 tokenizer {variant}, seed {self.seed}",
        )

    def tokenizer_sidecar(self, key: str, alpha: float, *, scale: float = 1.0) -> Source | str:
        reason = self.runs.why_not_alpha(alpha)
        if reason:
            return reason
        variant = variant_name(alpha)
        return Source(
            (self.layout.tokenizer_sidecar(variant, self.seed),),
            key,
            "tokenizer_phase1",
            "mean",
            scale,
            f"phase-1 tokenizer {variant}, seed {self.seed} (checkpoint sidecar)",
        )

    def phase2(self, key: str) -> Source:
        return Source(
            (self.layout.phase2_metrics(self.seed),),
            key,
            "tokenizer_phase2",
            "mean",
            1.0,
            f"phase-2 tokenizer (decoder finetuned on frozen {self.runs.phase2_source} seed {self.seed} tokens)",
        )

    def phase2_sidecar(self, key: str, *, scale: float) -> Source:
        return Source(
            (self.layout.phase2_sidecar(self.seed),),
            key,
            "tokenizer_phase2",
            "mean",
            scale,
            "phase-2 tokenizer (checkpoint sidecar)",
        )

    def generation(self, key: str, objective: str, size: str, alpha: float, decoder: Decoder) -> Source | str:
        reason = self.runs.why_not_transformer(objective, size) or self.runs.why_not_alpha(alpha)
        if reason:
            return reason
        variant = variant_name(alpha)
        if decoder == "phase2" and variant != self.runs.phase2_source:
            return f"the phase-2 decoder decodes {self.runs.phase2_source} tokens only"
        files = self.runs.generation_files(self.layout, objective, size, variant, decoder)
        seeds = list(self.runs.sampling_seeds)
        sidecar = self.layout.transformer_sidecar(objective, size, variant, self.seed)
        return Source(
            files,
            key,
            "generation",
            "mean",
            1.0,
            f"{objective.upper()} {size} on {variant} tokens (seed {self.seed}), "
            f"{decoder.replace('phase', 'phase-')} decoder; mean over sampling seeds {seeds}",
            (sidecar,),
        )

    def model_parameters(self, objective: str, size: str) -> Source | str:
        """Transformer + phase-2 tokenizer parameters (the paper's Table 4 counts both)."""
        reason = self.runs.why_not_transformer(objective, size)
        if reason:
            return reason
        files = (
            self.layout.transformer_sidecar(objective, size, self.runs.phase2_source, self.seed),
            self.layout.phase2_sidecar(self.seed),
        )
        return Source(
            files,
            "num_parameters",
            "generation",
            "sum",
            1e-6,
            f"{objective.upper()} {size} transformer + phase-2 tokenizer parameters",
        )


def _cell(
    row: str, column: str, paper: float | None, source: Source | str, *, comparable: bool, note: str = ""
) -> CellSpec:
    if isinstance(source, str):
        return CellSpec(row, column, paper, None, source, comparable)
    return CellSpec(row, column, paper, source, note, comparable)


def _not_run(rows: dict[str, list], columns: list[str], row: str, reason: str) -> list[CellSpec]:
    return [CellSpec(row, c, v, None, reason, False) for c, v in zip(columns, rows[row], strict=True)]


def _paper(name: str) -> tuple[list[str], dict[str, list]]:
    ref = paper_reference()[name]
    return list(ref["columns"]), ref["rows"]


def _dataset_note(cells: _Cells, paper_set: str) -> str:
    if cells.dataset == paper_set:
        return ""
    return (
        f"measured on {cells.params.data.name}, the paper on {DATASET_LABELS[paper_set]}: not comparable, no difference"
    )


def _size_note(comparable: bool) -> str:
    return "" if comparable else "not the paper's tokenizer architecture: no difference"


def _paper_tokenizer(params: Params) -> bool:
    reference = paper_reference()["model_sizes"]["tokenizer_architecture"]
    arch = params.raw["tokenizer"]["architecture"]
    return all(arch[k] == v for k, v in reference.items())


def _build_table1(c: _Cells) -> TableSpec:
    columns, rows = _paper("table1_decoder_capacity")
    alpha = c.params.tokenizer.phase2.from_alpha
    same_set = c.dataset == "imagenet"
    note = _dataset_note(c, "imagenet")
    arch = _paper_tokenizer(c.params)
    phase2_caveat = (
        "the project's phase-2 decoder (attention added, finetuned on frozen tokens with "
        f"alpha = {c.params.tokenizer.phase2.alpha}), not the Table-1 ablation's jointly trained attention x2 decoder"
    )
    cells = []
    for row, decoder in (("baseline_vq", "phase1"), ("attention_x2", "phase2")):
        paper = dict(zip(columns, rows[row], strict=True))
        caveat = (
            phase2_caveat
            if decoder == "phase2"
            else (
                f"the phase-1 tokenizer the phase-2 decoder starts from (alpha = {alpha}); the paper's "
                "baseline is alpha = 0"
            )
        )
        params_src = (
            c.tokenizer_sidecar("num_parameters", alpha, scale=1e-6)
            if decoder == "phase1"
            else c.phase2_sidecar("num_parameters", scale=1e-6)
        )
        rfid_src = c.tokenizer("rfid", alpha) if decoder == "phase1" else c.phase2("rfid")
        size_note = "; ".join(filter(None, [caveat, _size_note(arch)]))
        fid_note = "; ".join(filter(None, [caveat, note]))
        cells += [
            _cell(row, "params_m", paper["params_m"], params_src, comparable=arch, note=size_note),
            _cell(row, "rfid", paper["rfid"], rfid_src, comparable=same_set, note=fid_note),
            *[
                _cell(
                    row,
                    column,
                    paper[column],
                    c.generation("fid", objective, size, alpha, decoder),
                    comparable=same_set,
                    note=fid_note,
                )
                for column, objective, size in (("ar", "ar", "base"), ("ar_l", "ar", "large"), ("nar", "nar", "base"))
            ],
            _cell(
                row,
                "ar_l_2x",
                paper["ar_l_2x"],
                "AR-Large trained 2x longer (500k extra iterations): not a run the params define",
                comparable=False,
            ),
        ]
    cells += _not_run(rows, columns, "conv_x2", "conv x2 decoder not built")
    return TableSpec(
        "table1_decoder_capacity",
        "Table 1: decoder capacity vs generation (paper: ImageNet ablation setting)",
        f"Reproduced: baseline VQ = phase-1 tokenizer alpha = {alpha} (seed {c.seed}); attention x2 ~ {phase2_caveat}. "
        "FID columns: generation FID of the AR / AR-L / NAR transformers trained on that tokenizer's tokens, "
        "decoded with the row's decoder.",
        ("baseline_vq", "conv_x2", "attention_x2"),
        {"baseline_vq": "baseline VQ", "conv_x2": "+ Conv x2", "attention_x2": "+ Attention x2"},
        tuple(columns),
        {
            "params_m": "params",
            "rfid": "rFID",
            "ar": "AR FID",
            "ar_l": "AR-L FID",
            "ar_l_2x": "AR-L-2x FID",
            "nar": "NAR FID",
        },
        {"params_m": "params_m", "rfid": "fid", "ar": "fid", "ar_l": "fid", "ar_l_2x": "fid", "nar": "fid"},
        tuple(cells),
    )


def _build_table2(c: _Cells) -> TableSpec:
    columns, rows = _paper("table2_reconstruction")
    alpha = c.params.tokenizer.phase2.from_alpha
    in_paper = c.dataset in ("imagenet", "ffhq")
    all_columns = list(columns) + ([] if in_paper else [f"rfid_{THIS_RUN}", f"usage_{THIS_RUN}"])
    this_run = f"this run ({c.params.data.name}; not comparable in scale)"
    labels = {
        "rfid_imagenet": "rFID ImageNet",
        "rfid_ffhq": "rFID FFHQ",
        "usage_imagenet": "usage ImageNet",
        "usage_ffhq": "usage FFHQ",
        f"rfid_{THIS_RUN}": f"rFID, {this_run}",
        f"usage_{THIS_RUN}": f"usage, {this_run}",
    }
    row_sources = {"seqgan": lambda key: c.phase2(key), "seqgan_phase1": lambda key: c.tokenizer(key, alpha)}
    cells = []
    for row in ("vqgan", "seqgan", "seqgan_phase1"):
        paper = dict(zip(columns, rows.get(row, [None] * len(columns)), strict=True))
        for column in all_columns:
            metric, _, dataset = column.partition("_")
            key = "rfid" if metric == "rfid" else "codebook_usage"
            source: Source | str
            if row == "vqgan":
                source = "VQGAN baseline not built: the project trains SeQ-GAN tokenizers only"
            elif dataset in (THIS_RUN, c.dataset):
                source = row_sources[row](key)
            else:
                source = f"dataset {dataset} not in use: data.name = {c.params.data.name}"
            cells.append(_cell(row, column, paper.get(column), source, comparable=dataset == c.dataset))
    return TableSpec(
        "table2_reconstruction",
        "Table 2: reconstruction (rFID, codebook usage)",
        "Reproduced: SeQ-GAN = phase-2 tokenizer (results/metrics/tokenizer/phase2/seed<run.seed>.json); 'phase 1 "
        "only' = the phase-1 "
        f"tokenizer alpha = {alpha} (seed {c.seed}) it starts from (not in the paper's table). Usage = fraction of the "
        "codebook used by the encoder over the validation split.",
        ("vqgan", "seqgan", "seqgan_phase1"),
        {"vqgan": "VQGAN", "seqgan": "SeQ-GAN", "seqgan_phase1": f"SeQ-GAN phase 1 only (alpha = {alpha})"},
        tuple(all_columns),
        labels,
        {col: ("fid" if col.startswith("rfid") else "percent") for col in all_columns},
        tuple(cells),
    )


def _generation_dataset_table(
    c: _Cells,
    name: str,
    title: str,
    rows_spec: dict[str, tuple[str, Decoder] | str],
    row_labels: dict[str, str],
    *,
    unconditional_only: bool,
) -> TableSpec:
    """Tables whose columns are datasets (Table 3, Fig. 8b): one column per paper dataset (+ this run)."""
    columns, rows = _paper(name)
    alpha = c.params.tokenizer.phase2.from_alpha
    in_paper = c.dataset in columns
    all_columns = list(columns) + ([] if in_paper else [THIS_RUN])
    labels = {col: DATASET_LABELS[col] for col in columns}
    labels[THIS_RUN] = f"this run ({c.params.data.name}; not comparable in scale)"
    cells = []
    for row, spec in rows_spec.items():
        paper = dict(zip(columns, rows[row], strict=True))
        for column in all_columns:
            source: Source | str
            if isinstance(spec, str):
                source = spec
            elif unconditional_only and c.params.transformer.conditional:
                source = "transformer.conditional = true: this table is unconditional generation"
            elif column in (THIS_RUN, c.dataset):
                objective, decoder = spec
                source = c.generation("fid", objective, "base", alpha, decoder)
            else:
                source = f"dataset {column} not in use: data.name = {c.params.data.name}"
            cells.append(_cell(row, column, paper.get(column), source, comparable=column == c.dataset))
    return TableSpec(
        name,
        title,
        f"Reproduced: generation FID of the base-size transformers trained on the alpha = {alpha} tokens "
        f"(seed {c.seed}), "
        f"decoded with the row's decoder, mean over sampling seeds {list(c.runs.sampling_seeds)}.",
        tuple(rows_spec),
        row_labels,
        tuple(all_columns),
        labels,
        {col: "fid" for col in all_columns},
        tuple(cells),
    )


def _build_table3(c: _Cells) -> TableSpec:
    return _generation_dataset_table(
        c,
        "table3_unconditional",
        "Table 3: unconditional generation FID",
        {"seqgan_ar": ("ar", "phase2"), "seqgan_nar": ("nar", "phase2"), "stylegan2": "StyleGAN2 baseline not built"},
        {"seqgan_ar": "SeQ-GAN + AR", "seqgan_nar": "SeQ-GAN + NAR", "stylegan2": "StyleGAN2"},
        unconditional_only=True,
    )


def _build_fig8b(c: _Cells) -> TableSpec:
    return _generation_dataset_table(
        c,
        "fig8b_phase2",
        "Fig. 8b: generation FID with the phase-1 vs the phase-2 decoder",
        {
            "ar_phase1": ("ar", "phase1"),
            "ar_phase2": ("ar", "phase2"),
            "nar_phase1": ("nar", "phase1"),
            "nar_phase2": ("nar", "phase2"),
        },
        {
            "ar_phase1": "AR, phase-1 decoder",
            "ar_phase2": "AR, phase-2 decoder",
            "nar_phase1": "NAR, phase-1 decoder",
            "nar_phase2": "NAR, phase-2 decoder",
        },
        unconditional_only=False,
    )


def _build_table4(c: _Cells) -> TableSpec:
    columns, rows = _paper("table4_imagenet_conditional")
    alpha = c.params.tokenizer.phase2.from_alpha
    same_set = c.dataset == "imagenet"
    note = _dataset_note(c, "imagenet")
    models = {
        "seqgan_ar": ("ar", "base"),
        "seqgan_ar_l": ("ar", "large"),
        "seqgan_nar": ("nar", "base"),
        "seqgan_nar_l": ("nar", "large"),
    }
    arch = _paper_tokenizer(c.params)
    cells = []
    for row, values in rows.items():
        paper = dict(zip(columns, values, strict=True))
        if row not in models:
            cells += _not_run(rows, columns, row, "published baseline, not built")
            continue
        objective, size = models[row]
        for column in columns:
            if not c.params.transformer.conditional:
                reason = "transformer.conditional = false: Table 4 is class-conditional generation"
                cells.append(_cell(row, column, paper[column], reason, comparable=False))
            elif column == "params_m":
                source = c.model_parameters(objective, size)
                cells.append(_cell(row, column, paper[column], source, comparable=arch, note=_size_note(arch)))
            else:
                source = c.generation("fid" if column == "fid" else "inception_score", objective, size, alpha, "phase2")
                cells.append(_cell(row, column, paper[column], source, comparable=same_set, note=note))
    return TableSpec(
        "table4_imagenet_conditional",
        "Table 4: class-conditional ImageNet generation (FID, IS)",
        f"Reproduced: samples of the transformers trained on the alpha = {alpha} tokens (seed {c.seed}), "
        "decoded with the "
        f"phase-2 decoder; mean over sampling seeds {list(c.runs.sampling_seeds)}. Params = transformer "
        "+ phase-2 tokenizer.",
        tuple(rows),
        {
            "seqgan_ar": "SeQ-GAN + AR",
            "seqgan_ar_l": "SeQ-GAN + AR-L",
            "seqgan_nar": "SeQ-GAN + NAR",
            "seqgan_nar_l": "SeQ-GAN + NAR-L",
            "vqgan": "VQGAN",
            "vit_vqgan": "ViT-VQGAN",
            "maskgit": "MaskGIT",
            "biggan_deep": "BigGAN-deep",
        },
        tuple(columns),
        {"params_m": "params", "fid": "FID", "inception_score": "IS"},
        {"params_m": "params_m", "fid": "fid", "inception_score": "score"},
        tuple(cells),
    )


def _build_table5(c: _Cells) -> TableSpec:
    columns, rows = _paper("table5_codebook")
    same_set = c.dataset == "imagenet"
    note = _dataset_note(c, "imagenet")
    entropy_weight = c.params.tokenizer.quantizer.entropy_weight
    ours = "entropy" if entropy_weight > 0 else "vqgan"
    other = "vqgan" if ours == "entropy" else "entropy"
    sources = {
        "code_dim": c.tokenizer_sidecar("config.architecture.code_dim", 0.0),
        "codebook_size": c.tokenizer("codebook_size", 0.0),
        "usage": c.tokenizer("codebook_usage", 0.0),
        "rfid": c.tokenizer("rfid", 0.0),
        "ar": c.generation("fid", "ar", "base", 0.0, "phase1"),
        "nar": c.generation("fid", "nar", "base", 0.0, "phase1"),
    }
    cells = [
        _cell(
            ours,
            col,
            v,
            sources[col],
            comparable=same_set or col in ("code_dim", "codebook_size"),
            note="" if col in ("code_dim", "codebook_size") else note,
        )
        for col, v in zip(columns, rows[ours], strict=True)
    ]
    cells += _not_run(
        rows,
        columns,
        other,
        f"tokenizer.quantizer.entropy_weight = {entropy_weight}: the {other} variant is not trained",
    )
    cells += _not_run(rows, columns, "factorized_l2", "factorized, l2-normalised codebook not built")
    cells += _not_run(rows, columns, "kmeans", "k-means codebook initialisation not built")
    return TableSpec(
        "table5_codebook",
        "Table 5: codebook regularisation (one phase, alpha = 0)",
        f"Reproduced: the phase-1 tokenizer alpha = 0 (seed {c.seed}), entropy weight {entropy_weight}; "
        "generation FID of "
        "the base-size transformers on its tokens, phase-1 decoder.",
        ("vqgan", "factorized_l2", "kmeans", "entropy"),
        {
            "vqgan": "VQGAN",
            "factorized_l2": "+ factorized & l2-normed",
            "kmeans": "+ k-means",
            "entropy": "+ entropy H(D_bar)",
        },
        tuple(columns),
        {"code_dim": "dim", "codebook_size": "K", "usage": "usage", "rfid": "rFID", "ar": "AR FID", "nar": "NAR FID"},
        {"code_dim": "int", "codebook_size": "int", "usage": "percent", "rfid": "fid", "ar": "fid", "nar": "fid"},
        tuple(cells),
    )


TABLE6_LAYERS = {
    "low": "r1_2 r2_2 r3_3 r4_3 r5_3",
    "A": "r1_2 .. r5_3 + logit",
    "B": "r2_2 .. r5_3 + logit",
    "C": "r3_3 r4_3 r5_3 + logit",
    "D": "r4_3 r5_3 + logit",
    "sem": "r5_3 + logit",
    "E": "logit only",
}


def _build_table6(c: _Cells) -> TableSpec:
    columns, rows = _paper("table6_perceptual_layers")
    same_set = c.dataset == "imagenet"
    note = _dataset_note(c, "imagenet")
    ours = {"low": 0.0, "sem": 1.0}  # L_per^{alpha=0} = L_per^low, L_per^{alpha=1} = L_per^sem (relu5_3 + logit)
    cells = []
    for row in rows:
        if row not in ours:
            cells += _not_run(rows, columns, row, "layer set not built: L_per^alpha mixes only the low and sem sets")
            continue
        alpha = ours[row]
        paper = dict(zip(columns, rows[row], strict=True))
        cells += [
            _cell(row, "rfid", paper["rfid"], c.tokenizer("rfid", alpha), comparable=same_set, note=note),
            *[
                _cell(
                    row,
                    obj,
                    paper[obj],
                    c.generation("fid", obj, "base", alpha, "phase1"),
                    comparable=same_set,
                    note=note,
                )
                for obj in ("ar", "nar")
            ],
        ]
    return TableSpec(
        "table6_perceptual_layers",
        "Table 6: perceptual-loss layers",
        f"Reproduced: L_per^low = phase-1 tokenizer alpha = 0, L_per^sem = alpha = 1 (seed {c.seed}); "
        "generation FID of the "
        "base-size transformers on their tokens, phase-1 decoder.",
        tuple(rows),
        {row: f"{row if len(row) == 1 else 'L_per^' + row} ({layers})" for row, layers in TABLE6_LAYERS.items()},
        tuple(columns),
        {"rfid": "rFID", "ar": "AR FID", "nar": "NAR FID"},
        {col: "fid" for col in columns},
        tuple(cells),
    )


_BUILDERS: dict[str, Callable[[_Cells], TableSpec]] = {
    "table1_decoder_capacity": _build_table1,
    "table2_reconstruction": _build_table2,
    "table3_unconditional": _build_table3,
    "table4_imagenet_conditional": _build_table4,
    "table5_codebook": _build_table5,
    "table6_perceptual_layers": _build_table6,
    "fig8b_phase2": _build_fig8b,
}


def table_spec(params: Params, name: str, layout: ArtefactLayout) -> TableSpec:
    if name not in _BUILDERS:
        raise ValueError(f"unknown table {name!r}; one of {', '.join(TABLE_NAMES)}")
    return _BUILDERS[name](_Cells(params, layout))


def table_inputs(params: Params, name: str, layout: ArtefactLayout) -> list[str]:
    """Exactly the artefacts the table reads (the Snakemake rule's inputs)."""
    files = {str(f) for cell in table_spec(params, name, layout).cells if cell.source for f in cell.source.inputs}
    return sorted(files)


# ----------------------------------------------------------------------------------------------
# Reading the artefacts
# ----------------------------------------------------------------------------------------------


def _provenance(record: dict[str, Any], key: str) -> tuple[str, str]:
    """(feature network, reference set) of a recorded value, from the artefact's own description."""
    if "computed_with" in record:  # tokenizer metrics
        computed = record["computed_with"]
        images = computed.get("images", {})
        if key == "rfid":
            rfid = computed.get("rfid", {})
            ref = rfid.get("reference", {})
            return (
                rfid.get("feature_network", {}).get("name", "not recorded"),
                f"{ref.get('name', 'not recorded')} ({ref.get('count', '?')} images)",
            )
        return "none", f"{images.get('split', 'not recorded')} ({images.get('count', '?')} images)"
    if "feature_network" in record or "reference" in record:  # generation metrics
        network = record.get("feature_network")
        name = network.get("name", "not recorded") if isinstance(network, dict) else str(network)
        ref = record.get("reference") or {}
        return (
            name,
            f"{ref.get('name') or ref.get('split', '?')} ({ref.get('count', '?')} images, {ref.get('file', '?')}); "
            f"{record.get('num_samples', '?')} samples per sampling seed",
        )
    return "none", "none"


def measure(params: Params, source: Source) -> Measurement:
    records = [read_json(f) for f in source.files]
    raw = [dotted(r, source.key, f) for r, f in zip(records, source.files, strict=True)]
    identity = run_identity(params, source.kind, records + [read_json(f) for f in source.identity_files])
    network, dataset = _provenance(records[0], source.key)
    if any(v is None for v in raw):
        return Measurement(None, None, len(raw), identity, network, dataset)
    values = [float(v) * source.scale for v in raw]
    if source.combine == "sum":
        return Measurement(math.fsum(values), None, len(values), identity, network, dataset)
    summary = spread(values)
    return Measurement(summary.mean, summary.std, summary.count, identity, network, dataset)


def build_table(params: Params, name: str, layout: ArtefactLayout) -> Table:
    spec = table_spec(params, name, layout)
    cells = tuple(Cell(cs, measure(params, cs.source) if cs.source else None) for cs in spec.cells)
    return Table(spec, cells)


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def format_value(value: float | None, fmt: Format, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    sign = "+" if signed else ""
    if fmt == "percent":
        return f"{value * 100:{sign}.1f}{' pp' if signed else '%'}"
    if fmt == "params_m":
        return f"{value:{sign}.{1 if abs(value) >= 10 else 3}f}M"
    if fmt == "int":
        return f"{value:{sign}.0f}"
    if fmt == "score":
        return f"{value:{sign}.1f}"
    return f"{value:{sign}.2f}"


def table_frame(table: Table) -> pd.DataFrame:
    """One row per cell: paper, reproduced, difference, status and the run behind the value."""
    rows = []
    for cell in table.cells:
        m = cell.measurement
        source = cell.spec.source
        rows.append(
            {
                "table": table.spec.name,
                "row": cell.spec.row,
                "column": cell.spec.column,
                "paper": cell.spec.paper,
                "reproduced": cell.reproduced,
                "reproduced_std": m.std if m else None,
                "files_combined": m.count if m else 0,
                "difference": cell.difference,
                "status": cell.status,
                "comparable": cell.spec.comparable if source else None,
                "note": cell.spec.note,
                "run": source.what if source else "",
                "params_hash": m.identity.params_hash if m else "",
                "hashed_sections": " ".join(m.identity.sections) if m else "",
                "git_revision": m.identity.git_revision if m else "",
                "feature_network": m.feature_network if m else "",
                "dataset": m.dataset if m else "",
                "files": " ".join(str(f) for f in source.files) if source else "",
            }
        )
    return pd.DataFrame(rows)


def _cell_text(cell: Cell, fmt: Format, footnote: int | None) -> str:
    paper = format_value(cell.spec.paper, fmt)
    if cell.spec.source is None:
        return f"{paper} / not run ({cell.spec.note})"
    m = cell.measurement
    if m is None or m.value is None:
        ours = "null in the artefact"
    else:
        ours = format_value(m.value, fmt)
        if m.std is not None:
            ours += f" +- {format_value(m.std, fmt)}"
    diff = format_value(cell.difference, fmt, signed=True) if cell.difference is not None else "n.c."
    if cell.spec.paper is None:
        diff = "no paper value"
    return f"{paper} / {ours} / {diff} [{footnote}]"


def table_markdown(table: Table, params: Params) -> str:
    spec = table.spec
    footnotes: dict[tuple, int] = {}
    notes: list[str] = []
    kinds: dict[str, tuple[str, ...]] = {}
    lines = [
        f"# {spec.title}",
        "",
        f"Params: `{params.run.name}` (data.name = `{params.data.name}`). {spec.caption}",
        "",
        "Each cell: **paper / reproduced / difference** (reproduced - paper). `n.c.` = not comparable (measured on "
        "another dataset or architecture than the paper's: no difference computed); `+-` = std over sampling seeds; "
        "`[n]` = the run below.",
        "",
        "| | " + " | ".join(spec.column_labels[c] for c in spec.columns) + " |",
        "|---|" + "---|" * len(spec.columns),
    ]
    for row in spec.rows:
        texts = []
        for column in spec.columns:
            cell = table.cell(row, column)
            number = None
            if cell.spec.source is not None:
                key = (cell.spec.source.inputs, cell.spec.source.what, cell.spec.note)
                if key not in footnotes:
                    footnotes[key] = len(footnotes) + 1
                    notes.append(_footnote(footnotes[key], cell))
                    kinds[cell.measurement.identity.kind] = cell.measurement.identity.sections
                number = footnotes[key]
            texts.append(_cell_text(cell, spec.formats[column], number))
        lines.append(f"| {spec.row_labels[row]} | " + " | ".join(texts) + " |")
    lines += ["", "Runs:", "", *notes, ""]
    if kinds:
        lines += [
            "Params hashes: `Params.section_hash` of the params keys seqgan/runs.py declares for the run and the runs "
            "it was made from (the seed is named above):",
            "",
            *[f"- {kind}: {', '.join(sections)}" for kind, sections in kinds.items()],
            "",
        ]
    return "\n".join(lines)


def _footnote(number: int, cell: Cell) -> str:
    source, m = cell.spec.source, cell.measurement
    files = ", ".join(f"`{f}`" for f in source.files)
    combined = f" ({source.combine} over {m.count} files)" if m.count > 1 else ""
    text = (
        f"{number}. {source.what}{combined}: {files}; params hash {m.identity.params_hash} ({m.identity.kind}), "
        f"git {m.identity.git_revision}; feature network {m.feature_network}; reference {m.dataset}"
    )
    if cell.spec.note:
        text += f". Note: {cell.spec.note}"
    return text + "."


def tables_job(params: Params, *, tables: Sequence[str] | None, layout: ArtefactLayout, out_dir: Path) -> None:
    """`seqgan tables`: each named paper table (default: all) as CSV and Markdown (rule ``paper_table``)."""
    out_dir = Path(out_dir)
    for name in tables or TABLE_NAMES:
        try:
            table = build_table(params, name, layout)
        except (MissingArtefactError, KeyError, ValueError) as exc:
            raise SystemExit(f"error: {name}: {exc}") from None
        frame = table_frame(table)
        atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False))
        atomic_write_text(out_dir / f"{name}.md", table_markdown(table, params))
        shown = frame[["row", "column", "paper", "reproduced", "difference", "status"]]
        print(f"{name}:\n{shown[shown.status == 'reproduced'].to_string(index=False)}")
