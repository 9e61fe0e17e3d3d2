"""`seqgan sample`: one sample set of a transformer decoded by a tokenizer (rule ``sample``)."""

from __future__ import annotations

from pathlib import Path

from seqgan.artefacts.files import file_sha256
from seqgan.config import Params
from seqgan.sample.generate import (
    even_class_counts,
    generate_samples,
    sampling_from_params,
)
from seqgan.train.runtime import resolve_device, set_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint
from seqgan.train.transformer import load_transformer_checkpoint


def sample_job(
    params: Params,
    *,
    objective: str,
    transformer_file: Path,
    tokenizer_file: Path,
    seed: int,
    num_samples: int | None,
    out: Path,
    threads: int,
) -> dict:
    """Sample ``num_samples`` (default evaluation.num_samples) images; write the sample directory."""
    set_threads(threads)
    device = resolve_device(params.run.device)
    transformer, t_sidecar = load_transformer_checkpoint(transformer_file, params, device)
    tokenizer, k_sidecar = load_tokenizer_checkpoint(tokenizer_file, params, device)
    if t_sidecar.get("objective") != objective:
        raise SystemExit(f"error: {transformer_file} is a {t_sidecar.get('objective')} model, not {objective}")
    num = num_samples or params.evaluation.num_samples
    counts = even_class_counts(num, params.transformer.num_classes) if params.transformer.conditional else None
    meta = {
        "transformer_checkpoint": {"file": str(transformer_file), "sha256": file_sha256(transformer_file)},
        "tokenizer_checkpoint": {
            "file": str(tokenizer_file),
            "sha256": file_sha256(tokenizer_file),
            "phase": k_sidecar.get("phase"),
        },
    }
    manifest = generate_samples(
        transformer,
        tokenizer,
        objective=objective,
        num_samples=num,
        batch_size=params.evaluation.batch_size,
        seed=seed,
        out_dir=Path(out),
        sampling=sampling_from_params(params, objective),
        class_counts=counts,
        meta=meta,
        device=device,
        progress=True,
    )
    print(f"{out}: {manifest['count']} samples ({objective}, seed {seed})")
    return manifest
