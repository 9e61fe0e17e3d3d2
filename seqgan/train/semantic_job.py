"""`seqgan train-semantic`: the embedded semantic network of the workflow's ``train_semantic`` rule."""

from __future__ import annotations

import json
from pathlib import Path

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
    set_threads(threads)
    sem = params.semantic
    if sem.backbone != "embedded":
        raise SystemExit("error: semantic.backbone is not 'embedded'; nothing to train (vgg16 is pretrained)")
    _, manifest = read_manifest(data_dir / "train", missing="a prepared training split")
    # The gate does not shape the training: changing it re-checks the finished run, never retrains.
    identity = run_values("train_semantic", params.raw, gates=False)
    run_key = {"run": identity, "data": manifest["sha256"]}
    metrics = train_semantic_classifier(
        data_dir / "train",
        data_dir / "val",
        out,
        widths=sem.widths,
        pools=semantic_pools(params),
        iterations=sem.iterations,
        batch_size=sem.batch_size,
        lr=sem.lr,
        weight_decay=sem.weight_decay,
        warmup_steps=sem.warmup_steps,
        hflip=sem.hflip,
        seed=params.run.seed,
        device=resolve_device(params.run.device),
        checkpoint_every=sem.checkpoint_every,
        eval_every=sem.eval_every,
        resume_path=resume_path("train_semantic", run_key),
        log_dir=resume_path("train_semantic", run_key, "logs"),
        min_val_accuracy=sem.min_val_accuracy,
        run_identity=identity,
    )
    publish_logs(resume_path("train_semantic", run_key, "logs"), log_dir)
    atomic_write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    return metrics
