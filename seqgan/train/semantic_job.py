"""`seqgan train-semantic` and `seqgan train-judge`: the embedded default's two classifiers (rules
``train_semantic`` and ``train_judge``), one recipe and one loop (:mod:`seqgan.train.classifier`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from seqgan.artefacts.files import atomic_write_text, read_manifest
from seqgan.config import Params
from seqgan.nets.semantic import semantic_pools
from seqgan.runs import run_values
from seqgan.train.classifier import train_semantic_classifier
from seqgan.train.resume import publish_logs, resume_path
from seqgan.train.runtime import resolve_device, set_threads


def train_semantic_job(
    params: Params, *, data_dir: Path, out: Path, metrics_path: Path, log_dir: Path, threads: int
) -> dict:
    """Train (or resume, or re-check) the semantic network; write its weights and metrics."""
    if params.semantic.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; nothing to train (vgg16 is pretrained)")
    sem = params.semantic
    recipe = dict(widths=sem.widths, pools=semantic_pools(params), hflip=sem.hflip, seed=params.run.seed)
    return _classifier_job(params, "train_semantic", sem, recipe, data_dir, out, metrics_path, log_dir, threads)


def train_judge_job(
    params: Params, *, data_dir: Path, out: Path, metrics_path: Path, log_dir: Path, threads: int
) -> dict:
    """Train (or resume, or re-check) the judge; write its weights and metrics."""
    if params.semantic.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; the paper's judge is Inception (pretrained)")
    judge = params.judge
    recipe = dict(widths=judge.widths, hflip=False, seed=judge.seed, architecture="judge")
    return _classifier_job(params, "train_judge", judge, recipe, data_dir, out, metrics_path, log_dir, threads)


def _classifier_job(
    params: Params,
    rule: str,
    section: Any,
    recipe: dict[str, Any],
    data_dir: Path,
    out: Path,
    metrics_path: Path,
    log_dir: Path,
    threads: int,
) -> dict:
    """One classifier of ``rule`` with the training keys of its params ``section``."""
    set_threads(threads)
    _, manifest = read_manifest(data_dir / "train", missing="a prepared training split")
    # The gate does not shape the training: changing it re-checks the finished run, never retrains.
    identity = run_values(rule, params.raw, gates=False)
    run_key = {"run": identity, "data": manifest["sha256"]}
    metrics = train_semantic_classifier(
        data_dir / "train",
        data_dir / "val",
        out,
        iterations=section.iterations,
        batch_size=section.batch_size,
        lr=section.lr,
        weight_decay=section.weight_decay,
        warmup_steps=section.warmup_steps,
        device=resolve_device(params.run.device),
        checkpoint_every=section.checkpoint_every,
        eval_every=section.eval_every,
        resume_path=resume_path(rule, run_key),
        log_dir=resume_path(rule, run_key, "logs"),
        min_val_accuracy=section.min_val_accuracy,
        run_identity=identity,
        **recipe,
    )
    publish_logs(resume_path(rule, run_key, "logs"), log_dir)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return metrics
