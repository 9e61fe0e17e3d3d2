"""`seqgan eval-samples`: generation metrics of one sample set (rule ``eval_samples``)."""

from __future__ import annotations

import json
from pathlib import Path

from seqgan.artefacts.files import atomic_write_text
from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.samples import (
    check_sample_identity,
    open_sample_set,
    sample_set_record,
)
from seqgan.config import Params
from seqgan.evaluate.fid import check_reference_matches, load_reference
from seqgan.evaluate.generation import check_sample_resolution, evaluate_generation
from seqgan.evaluate.networks import fid_network, load_judge, load_semantic
from seqgan.train.runtime import resolve_device, set_threads


def eval_samples_job(
    params: Params,
    *,
    samples_dir: Path,
    objective: str,
    size: str,
    variant: str,
    decoder: str,
    seed: int,
    reference_file: Path,
    reference_split_dir: Path | None,
    semantic: str | None,
    out: Path,
    threads: int,
    judge: str | None = None,
) -> dict:
    set_threads(threads)
    device = resolve_device(params.run.device)
    samples = open_sample_set(samples_dir)
    check_sample_identity(
        samples, objective=objective, decoder=decoder, seed=seed, conditional=params.transformer.conditional
    )
    reference = load_reference(reference_file)
    semantic_net = load_semantic(params, semantic, device) if params.evaluation.fid_network == "semantic" else None
    network = fid_network(params, semantic_net, semantic, device, load_judge(params, judge, device), judge)
    try:
        check_reference_matches(reference, network)
        check_sample_resolution(samples, reference, network)
    except ValueError as exc:
        raise SystemExit(f"error: {reference_file}: {exc}") from None
    uses_semantic = params.evaluation.fid_network in ("semantic", "judge")  # an embedded classifier's view
    if uses_semantic and not reference_split_dir:
        raise SystemExit(
            f"error: --reference-split-dir is required when evaluation.fid_network = {params.evaluation.fid_network}"
        )
    metrics = evaluate_generation(
        samples,
        network,
        reference,
        fid_network=params.evaluation.fid_network,
        batch_size=params.evaluation.batch_size,
        inception_score_splits=params.evaluation.verdicts.inception_score_splits,
        confident_threshold=params.evaluation.verdicts.confident_probability,
        histogram_noise_draws=params.evaluation.verdicts.histogram_noise_draws,
        reference_store=open_image_store(reference_split_dir) if uses_semantic else None,
        progress=True,
    )
    source = reference.meta.get("source") or {}
    record = {
        **metrics,
        "seed": seed,
        "objective": objective,
        "size": size,
        "variant": variant,
        "decoder": decoder,
        "sampling": samples.manifest.get("sampling"),
        "reference": {
            "file": str(reference_file),
            "split": Path(source["directory"]).name if source.get("directory") else None,
            "name": reference.meta.get("name"),
            "count": reference.count,
            "selection": reference.meta.get("selection"),
            "source_sha256": source.get("sha256"),
        },
        "samples": sample_set_record(samples),
        "run": params.run.name,
    }
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    shown = {k: record[k] for k in ("fid", "inception_score", "num_samples")}
    if record["classifier"]:
        c = record["classifier"]
        shown.update(
            confident_fraction=c["confident_fraction"],
            reference_confident_fraction=c["reference"]["confident_fraction"],
        )
    print(json.dumps(shown, indent=2))
    return record
