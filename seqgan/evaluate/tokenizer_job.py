"""`seqgan eval-tokenizer`: reconstruction metrics of one tokenizer (rule ``eval_tokenizer``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seqgan.artefacts.files import atomic_write_text
from seqgan.artefacts.images import ImageStore, open_image_store
from seqgan.config import Params
from seqgan.data.synthetic import SceneTruth, scene_truth
from seqgan.evaluate.fid import load_reference
from seqgan.evaluate.networks import fid_network, load_judge, load_semantic
from seqgan.evaluate.reconstruction import (
    embedded_perceptual_distance,
    evaluate_reconstruction,
    lpips_vgg_distance,
)
from seqgan.train.runtime import resolve_device, set_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint


def split_truth(store: ImageStore) -> SceneTruth | None:
    """The generator's ground truth of a synthetic split (None for real images), checked: the
    scenes it redraws carry the split's own labels, so truth and images are the same images."""
    m = store.manifest
    if m.get("source") != "synthetic":
        return None
    truth = scene_truth(m["count"], store.resolution, len(store.class_names), m["seed"], m["split"])
    if not np.array_equal(truth.labels, np.asarray(store.labels)):
        raise ValueError(f"{store.directory}: the generator's scenes do not match the split's labels")
    return truth


def eval_tokenizer_job(
    params: Params,
    *,
    tokenizer_file: Path,
    split_dir: Path,
    reference: Path,
    semantic: str | None,
    out: Path,
    threads: int,
    judge: str | None = None,
) -> dict:
    set_threads(threads)
    device = resolve_device(params.run.device)
    tokenizer, sidecar = load_tokenizer_checkpoint(tokenizer_file, params, device)
    semantic_net = load_semantic(params, semantic, device)
    judge_net = load_judge(params, judge, device)
    if semantic_net is not None:
        distance = embedded_perceptual_distance(semantic_net, weights_file=semantic)
    else:
        distance = lpips_vgg_distance(device)
    store = open_image_store(split_dir)
    metrics = evaluate_reconstruction(
        tokenizer,
        store,
        batch_size=params.evaluation.batch_size,
        device=device,
        fid_network=fid_network(params, semantic_net, semantic, device, judge_net, judge),
        reference=load_reference(reference),
        perceptual_distance=distance,
        classifier=semantic_net,
        judge=judge_net,
        progress=True,
        truth=split_truth(store),
    )
    metrics["tokenizer"] = {
        "file": str(tokenizer_file),
        "phase": sidecar.get("phase"),
        "alpha": sidecar.get("alpha"),
        "perceptual": sidecar.get("perceptual"),
        "step": sidecar.get("step"),
        "git_revision": sidecar.get("git_revision"),
        # the training run's validation curve: the plateau rule is checked on it (seqgan/report/convergence.py)
        "val_curve": (sidecar.get("metrics") or {}).get("val_curve"),
    }
    atomic_write_text(out, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}, indent=2))
    return metrics
