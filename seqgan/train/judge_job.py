"""`seqgan train-judge`: the embedded judge of the workflow's ``train_judge`` rule."""

from __future__ import annotations

import json
from pathlib import Path

from seqgan.artefacts.files import atomic_write_text, read_manifest
from seqgan.config import Params
from seqgan.runs import run_values
from seqgan.train.classifier import train_semantic_classifier
from seqgan.train.resume import publish_logs, resume_path
from seqgan.train.runtime import resolve_device, set_threads


def train_judge_job(
    params: Params, *, data_dir: Path, out: Path, metrics_path: Path, log_dir: Path, threads: int
) -> dict:
    """Train (or resume, or re-check) the judge; write its weights and metrics."""
    set_threads(threads)
    if params.semantic.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; the paper's judge is Inception (pretrained)")
    judge = params.judge
    _, manifest = read_manifest(data_dir / "train", missing="a prepared training split")
    identity = run_values("train_judge", params.raw, gates=False)
    run_key = {"run": identity, "data": manifest["sha256"]}
    metrics = train_semantic_classifier(
        data_dir / "train",
        data_dir / "val",
        out,
        widths=judge.widths,
        iterations=judge.iterations,
        batch_size=judge.batch_size,
        lr=judge.lr,
        weight_decay=judge.weight_decay,
        warmup_steps=judge.warmup_steps,
        hflip=False,
        seed=judge.seed,
        device=resolve_device(params.run.device),
        checkpoint_every=judge.checkpoint_every,
        eval_every=judge.eval_every,
        resume_path=resume_path("train_judge", run_key),
        log_dir=resume_path("train_judge", run_key, "logs"),
        min_val_accuracy=judge.min_val_accuracy,
        run_identity=identity,
        architecture="judge",
    )
    publish_logs(resume_path("train_judge", run_key, "logs"), log_dir)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return metrics
