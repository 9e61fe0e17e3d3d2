"""Hyper-parameter audit: the supplement's Tables 3 and 4 beside the params values in use.

Each setting the paper prints (tokenizer training, Table 3; transformer training, Table 4) is put
next to the params key that controls it, and every difference is flagged, so a reader of a
reproduced number sees at once whether it was trained as the paper says. Settings the tables leave
open but the params must fix (phase-2 LR schedule, AR top-k, NAR steps, ...) are listed as "not
stated". The paper column compared with is the dataset in use (data.name); a params file on any
other data (the embedded default) is compared with the ImageNet observation / ablation setting,
the setting of the alpha experiment it miniaturises.

The paper's values live in seqgan/report/paper_reference.yaml (key ``hyperparameters``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from seqgan.artefacts.files import atomic_write_text
from seqgan.config import Params, lookup
from seqgan.report.artefacts import paper_dataset
from seqgan.report.reference import paper_reference

Status = Literal["same", "DIFFERS", "not stated", "not a params key", "set by the data"]
ABLATION_COLUMN = "imagenet_ablation"
COLUMN_LABELS = {
    "imagenet": "ImageNet",
    "ffhq": "FFHQ",
    "lsun_cat": "LSUN cat",
    "lsun_bedroom": "LSUN bedroom",
    "lsun_church": "LSUN church",
    ABLATION_COLUMN: "ImageNet ablation",
}


@dataclass(frozen=True)
class InUse:
    """The value in use: a params key and its value, or why there is none to compare."""

    key: str
    value: Any
    status: Status | None = None  # forced status ("set by the data", "not a params key"); None: compare


@dataclass(frozen=True)
class Setting:
    table: str  # "Table 3" | "Table 4"
    group: str  # "dataset", "phase 1", "phase 2", "AR and NAR", "AR", "NAR"
    name: str
    paper_key: str | None  # "tokenizer.phase1_lr" in hyperparameters; None = the table does not state it
    in_use: Callable[[Params, str], InUse]
    compare: Literal["exact", "rounded"]  # "rounded": the paper prints the value rounded to an integer


@dataclass(frozen=True)
class AuditLine:
    setting: Setting
    paper: dict[str, Any]  # every paper column
    compared_column: str
    in_use: InUse
    status: Status
    note: str


def _key(path: str) -> Callable[[Params, str], InUse]:
    return lambda params, column: InUse(path, lookup(params.raw, path))


def _no_key(params: Params, column: str) -> InUse:
    return InUse("(no params key: fixed in the training code)", None, "not a params key")


def _train_images(params: Params, column: str) -> InUse:
    if params.data.source == "synthetic":
        return InUse("data.synthetic.train_images", params.data.synthetic.train_images)
    return InUse("data.folder.train_dir", params.data.folder.train_dir, "set by the data")


def _val_images(params: Params, column: str) -> InUse:
    if params.data.source == "synthetic":
        return InUse("data.synthetic.val_images", params.data.synthetic.val_images)
    if params.data.folder.val_dir:
        return InUse("data.folder.val_dir", params.data.folder.val_dir, "set by the data")
    fraction = params.data.folder.val_holdout_fraction
    return InUse("data.folder.val_holdout_fraction", f"{fraction} of the training images held out" if fraction else 0)


def _phase1_epochs(params: Params, column: str) -> InUse:
    """iterations x batch / training images (the paper's training-set size where the data is a folder)."""
    phase = params.tokenizer.phase1
    if params.data.source == "synthetic":
        images = params.data.synthetic.train_images
    else:
        images = _paper_table()["tokenizer"]["train_images"][_column_index(column)]
    return InUse(
        "tokenizer.phase1.iterations x batch_size / training images", phase.iterations * phase.batch_size / images
    )


S3, S4 = "Table 3", "Table 4"
SETTINGS: tuple[Setting, ...] = (
    Setting(S3, "dataset", "training images", "tokenizer.train_images", _train_images, "exact"),
    Setting(S3, "dataset", "validation images", "tokenizer.val_images", _val_images, "exact"),
    Setting(S3, "phase 1", "batch size", "tokenizer.phase1_batch_size", _key("tokenizer.phase1.batch_size"), "exact"),
    Setting(S3, "phase 1", "iterations", "tokenizer.phase1_iterations", _key("tokenizer.phase1.iterations"), "exact"),
    Setting(S3, "phase 1", "epochs", "tokenizer.phase1_epochs", _phase1_epochs, "rounded"),
    Setting(S3, "phase 1", "learning rate", "tokenizer.phase1_lr", _key("tokenizer.phase1.lr"), "exact"),
    Setting(S3, "phase 1", "LR decay", "tokenizer.phase1_lr_decay", _key("tokenizer.phase1.lr_decay"), "exact"),
    Setting(S3, "phase 1", "end LR", "tokenizer.phase1_end_lr", _key("tokenizer.phase1.end_lr"), "exact"),
    Setting(S3, "phase 1", "optimizer", "tokenizer.phase1_optimizer", _no_key, "exact"),
    Setting(S3, "phase 1", "Adam beta1", "tokenizer.phase1_beta1", _key("tokenizer.phase1.beta1"), "exact"),
    Setting(S3, "phase 1", "Adam beta2", "tokenizer.phase1_beta2", _key("tokenizer.phase1.beta2"), "exact"),
    Setting(S3, "phase 2", "batch size", "tokenizer.phase2_batch_size", _key("tokenizer.phase2.batch_size"), "exact"),
    Setting(S3, "phase 2", "iterations", "tokenizer.phase2_iterations", _key("tokenizer.phase2.iterations"), "exact"),
    Setting(S3, "phase 2", "learning rate", "tokenizer.phase2_lr", _key("tokenizer.phase2.lr"), "exact"),
    Setting(S3, "phase 2", "LR decay", None, _key("tokenizer.phase2.lr_decay"), "exact"),
    Setting(S3, "phase 2", "end LR", None, _key("tokenizer.phase2.end_lr"), "exact"),
    Setting(S3, "phase 2", "optimizer", "tokenizer.phase2_optimizer", _no_key, "exact"),
    Setting(S3, "phase 2", "Adam beta1", "tokenizer.phase2_beta1", _key("tokenizer.phase2.beta1"), "exact"),
    Setting(S3, "phase 2", "Adam beta2", "tokenizer.phase2_beta2", _key("tokenizer.phase2.beta2"), "exact"),
    Setting(S4, "AR and NAR", "optimizer", "transformer.optimizer", _no_key, "exact"),
    Setting(S4, "AR and NAR", "AdamW beta1", "transformer.beta1", _key("transformer.optimizer.beta1"), "exact"),
    Setting(S4, "AR and NAR", "AdamW beta2", "transformer.beta2", _key("transformer.optimizer.beta2"), "exact"),
    Setting(
        S4,
        "AR and NAR",
        "weight decay",
        "transformer.weight_decay",
        _key("transformer.optimizer.weight_decay"),
        "exact",
    ),
    Setting(S4, "AR and NAR", "learning rate", "transformer.lr", _key("transformer.optimizer.lr"), "exact"),
    Setting(S4, "AR", "batch size", "transformer.ar_batch_size", _key("transformer.ar.batch_size"), "exact"),
    Setting(S4, "AR", "iterations", "transformer.ar_iterations", _key("transformer.ar.iterations"), "exact"),
    Setting(S4, "AR", "LR decay", "transformer.ar_lr_decay", _key("transformer.ar.lr_decay"), "exact"),
    Setting(S4, "AR", "end LR", "transformer.ar_end_lr", _key("transformer.ar.end_lr"), "exact"),
    Setting(
        S4, "AR", "decay start iteration", "transformer.ar_decay_start", _key("transformer.ar.decay_start"), "exact"
    ),
    Setting(S4, "AR", "top-p", "transformer.ar_top_p", _key("transformer.ar.top_p"), "exact"),
    Setting(S4, "AR", "top-k", None, _key("transformer.ar.top_k"), "exact"),
    Setting(S4, "AR", "sampling temperature", None, _key("transformer.ar.temperature"), "exact"),
    Setting(S4, "NAR", "batch size", "transformer.nar_batch_size", _key("transformer.nar.batch_size"), "exact"),
    Setting(S4, "NAR", "iterations", "transformer.nar_iterations", _key("transformer.nar.iterations"), "exact"),
    Setting(S4, "NAR", "LR decay", "transformer.nar_lr_decay", _key("transformer.nar.lr_decay"), "exact"),
    Setting(S4, "NAR", "end LR", "transformer.nar_end_lr", _key("transformer.nar.end_lr"), "exact"),
    Setting(
        S4, "NAR", "decay start iteration", "transformer.nar_decay_start", _key("transformer.nar.decay_start"), "exact"
    ),
    Setting(
        S4, "NAR", "sampling temperature", "transformer.nar_temperature", _key("transformer.nar.temperature"), "exact"
    ),
    Setting(S4, "NAR", "decoding steps", None, _key("transformer.nar.steps"), "exact"),
    Setting(S4, "NAR", "mask schedule", None, _key("transformer.nar.mask_schedule"), "exact"),
)


def _paper_table() -> dict[str, Any]:
    return paper_reference()["hyperparameters"]


def _column_index(column: str) -> int:
    return list(_paper_table()["columns"]).index(column)


def compared_column(params: Params) -> str:
    """The paper column for the data in use; the ImageNet ablation setting for any other data."""
    return paper_dataset(params) or ABLATION_COLUMN


def paper_values(setting: Setting) -> dict[str, Any]:
    columns = list(_paper_table()["columns"])
    if setting.paper_key is None:
        return dict.fromkeys(columns)
    group, name = setting.paper_key.split(".")
    return dict(zip(columns, _paper_table()[group][name], strict=True))


def same_value(paper: Any, in_use: Any, compare: Literal["exact", "rounded"]) -> bool:
    if isinstance(paper, str) or isinstance(in_use, str):
        return str(paper).lower() == str(in_use).lower()
    if compare == "rounded":
        return round(float(in_use)) == round(float(paper))
    return math.isclose(float(paper), float(in_use), rel_tol=1e-9, abs_tol=1e-15)


def _note(params: Params, setting: Setting) -> str:
    objectives = params.transformer.objectives
    for objective in ("ar", "nar"):
        if setting.group == objective.upper() and objective not in objectives:
            return f"{objective} not in transformer.objectives {list(objectives)}: the value is not used"
    return ""


def audit(params: Params) -> list[AuditLine]:
    column = compared_column(params)
    lines = []
    for setting in SETTINGS:
        paper = paper_values(setting)
        in_use = setting.in_use(params, column)
        if in_use.status is not None:
            status = in_use.status
        elif paper[column] is None:
            status = "not stated"
        else:
            status = "same" if same_value(paper[column], in_use.value, setting.compare) else "DIFFERS"
        lines.append(AuditLine(setting, paper, column, in_use, status, _note(params, setting)))
    return lines


def flagged(lines: list[AuditLine]) -> list[str]:
    """The params keys whose value differs from the paper's (the audit's flags)."""
    return [line.in_use.key for line in lines if line.status == "DIFFERS"]


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value).is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def audit_frame(lines: list[AuditLine]) -> pd.DataFrame:
    rows = []
    for line in lines:
        row = {
            "table": line.setting.table,
            "group": line.setting.group,
            "setting": line.setting.name,
            "params_key": line.in_use.key,
        }
        row.update({f"paper_{c}": v for c, v in line.paper.items()})
        row.update(
            {
                "compared_column": line.compared_column,
                "paper": line.paper[line.compared_column],
                "in_use": line.in_use.value,
                "status": line.status,
                "note": line.note,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def audit_markdown(lines: list[AuditLine], params: Params, source: str) -> str:
    column = lines[0].compared_column if lines else compared_column(params)
    columns = list(_paper_table()["columns"])
    flags = [f"`{line.in_use.key}`" for line in lines if line.status == "DIFFERS"]
    why = (
        "the dataset in use"
        if column != ABLATION_COLUMN
        else f"data.name = {params.data.name} is not a paper dataset: compared with the ImageNet "
        "observation / ablation "
        "setting (supplement Sec. 1), the setting of the alpha experiment; differences there are the miniature's scale"
    )
    out = [
        f"# Hyper-parameter audit: supplement Tables 3 and 4 vs `{source}`",
        "",
        f"Params `{params.run.name}` (data.name = `{params.data.name}`); compared paper column: "
        f"**{COLUMN_LABELS[column]}** ({why}). Paper values: {_paper_table()['source']}, transcribed in "
        "seqgan/report/paper_reference.yaml (merged cells repeated over the columns they span).",
        "",
        f"**{len(flags)} difference(s) flagged**" + (f": {', '.join(flags)}." if flags else "."),
        "'not stated' = the tables leave the setting open (the params must still fix it); 'set by the data' = the "
        "count is the data folder's, not a parameter; epochs are derived (iterations x batch / training images) and "
        "compared rounded to a whole number, as printed.",
        "",
        "| table | group | setting | params key | "
        + " | ".join(COLUMN_LABELS[c] for c in columns)
        + " | in use | status |",
        "|---|---|---|---|" + "---|" * len(columns) + "---|---|",
    ]
    for line in lines:
        paper = [(f"**{_show(line.paper[c])}**" if c == column else _show(line.paper[c])) for c in columns]
        status = f"**{line.status}**" if line.status == "DIFFERS" else line.status
        if line.note:
            status += f" ({line.note})"
        out.append(
            f"| {line.setting.table} | {line.setting.group} | {line.setting.name} | `{line.in_use.key}` | "
            + " | ".join(paper)
            + f" | {_show(line.in_use.value)} | {status} |"
        )
    return "\n".join(out) + "\n"


def hparam_audit_job(params: Params, *, params_file: str, out: Path) -> None:
    """`seqgan hparam-audit`: the audit CSV and Markdown (rule ``hparam_audit``)."""
    lines = audit(params)
    out = Path(out)
    atomic_write_text(out, audit_frame(lines).to_csv(index=False))
    atomic_write_text(out.with_suffix(".md"), audit_markdown(lines, params, params_file))
    flags = flagged(lines)
    print(f"{params_file}: {len(flags)} difference(s) from the paper" + (f": {', '.join(flags)}" if flags else ""))
