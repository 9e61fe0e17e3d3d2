"""`seqgan train-transformer`: one AR or NAR transformer on a tokenizer's token splits, as the
workflow's ``train_ar`` / ``train_nar`` rules run it."""

from __future__ import annotations

import json
from pathlib import Path

from seqgan.artefacts.files import read_manifest
from seqgan.config import Params, with_seed
from seqgan.runs import run_values
from seqgan.train.resume import publish_logs, resume_path
from seqgan.train.runtime import set_threads
from seqgan.train.transformer import train_transformer


def train_transformer_job(
    params: Params,
    *,
    objective: str,
    size: str,
    seed: int | None,
    tokens: Path,
    out: Path,
    log_dir: Path,
    threads: int,
) -> dict:
    """Train (or resume) one transformer; write its weights, sidecar and curves."""
    params = params if seed is None else with_seed(params, seed)
    set_threads(threads)
    rule = f"train_{objective}"
    manifests = {split: read_manifest(tokens / split, missing="a token split")[1] for split in ("train", "val")}
    run_key = {
        "size": size,
        "run": run_values(rule, params.raw, {"size": size}, gates=False),
        "seed": params.run.seed,
        "tokens": {k: m["tokens_sha256"] for k, m in manifests.items()},
    }
    metrics = train_transformer(
        params,
        objective=objective,
        size=size,
        train_tokens=tokens / "train",
        val_tokens=tokens / "val",
        out_path=out,
        resume_path=resume_path(rule, run_key),
        log_dir=resume_path(rule, run_key, "logs"),
        compile_model=params.run.compile,
    )
    publish_logs(resume_path(rule, run_key, "logs"), log_dir)
    print(json.dumps(metrics, indent=2, default=str))
    return metrics
