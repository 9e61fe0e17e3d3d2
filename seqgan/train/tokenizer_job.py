"""`seqgan train-tokenizer`: one phase-1 tokenizer (an alpha of the sweep, the ``control`` without
perceptual loss, the ``noentropy`` control) or the phase-2 tokenizer, as the workflow's
``tokenizer_phase1`` / ``tokenizer_phase2`` rules run them."""

from __future__ import annotations

import json
from pathlib import Path

from seqgan.artefacts.files import read_manifest
from seqgan.config import (
    NO_ENTROPY_VARIANT,
    Params,
    with_seed,
    without_entropy_regulariser,
)
from seqgan.nets.semantic import semantic_weights
from seqgan.runs import run_values
from seqgan.train.resume import publish_logs, resume_path
from seqgan.train.runtime import set_threads
from seqgan.train.tokenizer import train_tokenizer
from seqgan.train.variants import parse_phase1_variant


def train_tokenizer_job(
    params: Params,
    *,
    phase: int,
    variant: str,
    seed: int | None,
    data_dir: Path,
    semantic: str | None,
    init: str | None,
    out: Path,
    log_dir: Path,
    threads: int,
) -> dict:
    """Train (or resume) one tokenizer; write its weights, sidecar and curves."""
    params = params if seed is None else with_seed(params, seed)
    set_threads(threads)
    _, manifest = read_manifest(data_dir / "train", missing="a prepared training split")
    read_manifest(data_dir / "val", missing="a prepared validation split (the validation curve)")
    if phase == 1:
        rule = "tokenizer_phase1"
        alpha, perceptual = parse_phase1_variant(params, variant)
        identity = run_values(rule, params.raw, {"variant": variant, "seed": str(params.run.seed)}, gates=False)
        if variant == NO_ENTROPY_VARIANT:
            params = without_entropy_regulariser(params)
        init_weights = Path(params.tokenizer.phase1.init_from) if params.tokenizer.phase1.init_from else None
    else:
        rule = "tokenizer_phase2"
        if not init:
            raise SystemExit("error: phase 2 needs --init (the phase-1 tokenizer it starts from)")
        alpha, perceptual, init_weights = params.tokenizer.phase2.alpha, True, Path(init)
        identity = run_values(rule, params.raw, gates=False)
    run_key = {"variant": variant, "run": identity, "seed": params.run.seed, "data": manifest["sha256"]}
    metrics = train_tokenizer(
        params,
        phase=phase,
        alpha=alpha,
        perceptual=perceptual,
        train_dir=data_dir / "train",
        val_dir=data_dir / "val",
        semantic_weights=semantic_weights(params, semantic) if perceptual else None,
        init_weights=init_weights,
        out_path=out,
        resume_path=resume_path(rule, run_key),
        log_dir=resume_path(rule, run_key, "logs"),
        run_identity=identity,
    )
    publish_logs(resume_path(rule, run_key, "logs"), log_dir)
    print(json.dumps(metrics, indent=2, default=str))
    return metrics
