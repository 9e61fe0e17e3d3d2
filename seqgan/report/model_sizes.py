"""Parameter counts of every network the params describe, beside the paper's counts.

Everything is built on the meta device: no memory, no data, no training, so the table for the
paper configuration regenerates in seconds on a laptop. The paper column is filled only where the
configured architecture is the one the paper counted (otherwise the comparison would be between a
miniature and the paper model, which says nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params
from seqgan.nets.common import count_parameters
from seqgan.nets.factory import build_discriminator, build_tokenizer
from seqgan.nets.transformer_factory import build_transformer, tokens_per_image
from seqgan.nets.vqgan import parameter_breakdown
from seqgan.report.labels import run_label
from seqgan.report.reference import paper_reference


@dataclass(frozen=True)
class SizeRow:
    component: str
    parameters: int
    paper_parameters: int | None
    relative_difference: float | None  # (ours - paper) / paper
    paper_source: str


def _row(component: str, parameters: int, paper_entry: dict | None) -> SizeRow:
    if paper_entry is None:
        return SizeRow(component, parameters, None, None, "")
    paper = round(paper_entry["parameters_m"] * 1e6)
    return SizeRow(component, parameters, paper, (parameters - paper) / paper, paper_entry["source"])


def _tokenizer_is_paper(params: Params) -> bool:
    arch = asdict(params.tokenizer.architecture)
    reference = paper_reference()["model_sizes"]["tokenizer_architecture"]
    return all(list(arch[k]) == v if isinstance(v, list) else arch[k] == v for k, v in reference.items())


def _transformer_is_paper(params: Params, size: str) -> bool:
    ref = paper_reference()["model_sizes"]
    tokens = ref["transformer_tokens"]
    configured = asdict(getattr(params.transformer.sizes, size))
    return (
        params.tokenizer.architecture.codebook_size == tokens["codebook_size"]
        and tokens_per_image(params) == tokens["tokens_per_image"]
        and all(configured[k] == v for k, v in ref[f"transformer_{size}"]["size"].items())
    )


def model_size_rows(params: Params) -> list[SizeRow]:
    """Tokenizer (both phases, with parts), discriminator and every transformer size x objective."""
    ref = paper_reference()["model_sizes"]
    tokenizer_paper = _tokenizer_is_paper(params)
    rows: list[SizeRow] = []
    with torch.device("meta"):
        for phase in (1, 2):
            parts = parameter_breakdown(build_tokenizer(params, phase))
            rows.append(
                _row(
                    f"tokenizer_phase{phase}",
                    parts["total"],
                    ref[f"tokenizer_phase{phase}"] if tokenizer_paper else None,
                )
            )
            names = ["encoder", "codebook", "decoder"] + (["attention"] if phase == 2 else [])
            rows += [_row(f"tokenizer_phase{phase}.{name}", parts[name], None) for name in names]
        rows.append(_row("discriminator", count_parameters(build_discriminator(params)), None))
        for size in ("base", "large"):
            paper_entry = ref[f"transformer_{size}"] if _transformer_is_paper(params, size) else None
            for objective in ("ar", "nar"):
                model = build_transformer(params, size, objective)
                rows.append(_row(f"transformer_{size}_{objective}", count_parameters(model), paper_entry))
    return rows


def model_sizes_job(params: Params, *, out: Path) -> None:
    """`seqgan model-sizes`: the CSV and its Markdown table (rule ``model_sizes``)."""
    import pandas as pd

    table = pd.DataFrame([asdict(row) for row in model_size_rows(params)])
    table["paper_parameters"] = table["paper_parameters"].astype("Int64")
    out = Path(out)
    atomic_write_text(out, table.to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), _model_sizes_markdown(table, run_label(params)))
    print(table.to_string(index=False))


def _model_sizes_markdown(table, run_name: str) -> str:
    import pandas as pd

    shown = table.assign(
        parameters=(table.parameters / 1e6).map("{:.2f}M".format),
        paper_parameters=table.paper_parameters.map(lambda v: "" if pd.isna(v) else f"{v / 1e6:.1f}M"),
        relative_difference=table.relative_difference.map(lambda v: "" if pd.isna(v) else f"{v:+.2%}"),
    )
    header = f"# Model sizes ({run_name})\n\nBuilt on the meta device from the params in use.\n\n"
    return header + shown.to_markdown(index=False) + "\n"
