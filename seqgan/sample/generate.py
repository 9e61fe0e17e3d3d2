"""Draw a sample set from a trained transformer + tokenizer and write it to disk (the gFID input).

Layout of ``out_dir`` (a token split of :mod:`seqgan.evaluate.tokens`, plus the images)::

    images/000000.png ...   uint8 RGB PNGs, the folder clean-fid reads
    tokens.npy              (N, h, w) uint16: exactly the ids that were decoded
    labels.npy              (N,) int64 class of each sample; -1 for an unconditional model
    manifest.json           written last (count, objective, sampling, seed, class counts, meta)

Atomicity: everything is written into a hidden sibling folder (manifest last) which is renamed to
``out_dir`` at the end; an existing ``out_dir`` loses its manifest before it is removed. A killed
run therefore leaves either no ``out_dir`` or one without ``manifest.json``: never one that looks
complete.

Determinism: one ``torch.Generator`` (on ``device``) seeded with ``seed`` and advanced batch after
batch, so the same seed, models, batch size and device give identical tokens and PNG bytes.

Precision: on CUDA the transformer forwards and the decoding run under bf16 autocast (the KV cache
follows in bf16), recorded as ``precision`` in the manifest; the CPU stays fp32. Why that is safe,
measured on the embedded default's trained models with CPU bf16 autocast
(benchmarks/bf16_agreement.py, output in results/evidence/bf16_agreement.txt): next-token
distributions move by a total variation of 0.0035 on average (0.013 at most) and decoded pixels by
0.18 levels on average (2 at most); tests/test_bf16.py holds the sampler and decoder to 0.01 / 0.05
and 0.5 / 4 levels. Single sampled sequences are not comparable across precisions (one different
draw changes the rest of the sequence): the distribution is what agrees. Token encoding and the
evaluation networks stay fp32 (TF32 on CUDA): under bf16, 1.8 % of the embedded tokenizer's codes
flip (near-ties of the nearest-code search), and the FID feature network's features move by up to
0.65 % of the largest (the semantic FID by 0.16 %), against reference statistics computed in fp32.
Conditional models: the labels are ``class_counts`` laid out class by class (class 0's samples
first), cut into batches in that order.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from seqgan.artefacts.tensors import to_uint8
from seqgan.artefacts.tokens import write_token_split
from seqgan.nets.common import eval_mode
from seqgan.nets.transformer import GenerativeTransformer
from seqgan.progress import progress_bar
from seqgan.sample.ar import sample_ar
from seqgan.sample.nar import sample_nar
from seqgan.train.runtime import autocast_context, precision_of, resolve_device

__all__ = [
    "IMAGES_DIR",
    "even_class_counts",
    "generate_samples",
    "image_name",
    "sampling_from_params",
]

IMAGES_DIR = "images"
_AR_KEYS = ("temperature", "top_k", "top_p")
_NAR_KEYS = ("steps", "temperature", "schedule")
_NAR_OPTIONAL = ("token_temperature",)


def image_name(index: int) -> str:
    """File name of sample ``index`` inside ``images/``."""
    return f"{index:06d}.png"


def even_class_counts(num_samples: int, num_classes: int) -> dict[int, int]:
    """``num_samples`` spread over ``num_classes`` classes as evenly as possible (the first
    ``num_samples % num_classes`` classes get one more)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if num_samples < 0:
        raise ValueError(f"num_samples must be >= 0, got {num_samples}")
    base, extra = divmod(int(num_samples), int(num_classes))
    return {c: base + int(c < extra) for c in range(int(num_classes))}


def sampling_from_params(params: Any, objective: Literal["ar", "nar"]) -> dict[str, Any]:
    """The ``sampling`` dict of ``generate_samples`` from validated params (transformer.ar / .nar)."""
    if objective == "ar":
        ar = params.transformer.ar
        return {"temperature": float(ar.temperature), "top_k": int(ar.top_k), "top_p": float(ar.top_p)}
    if objective == "nar":
        nar = params.transformer.nar
        return {
            "steps": int(nar.steps),
            "temperature": float(nar.temperature),
            "schedule": str(nar.mask_schedule),
        }
    raise ValueError(f"objective must be 'ar' or 'nar', got {objective!r}")


def _check_sampling(objective: str, sampling: Mapping[str, Any]) -> dict[str, Any]:
    if objective == "ar":
        required, optional = _AR_KEYS, ()
    elif objective == "nar":
        required, optional = _NAR_KEYS, _NAR_OPTIONAL
    else:
        raise ValueError(f"objective must be 'ar' or 'nar', got {objective!r}")
    missing = [k for k in required if k not in sampling]
    unknown = sorted(set(sampling) - set(required) - set(optional))
    if missing or unknown:
        raise ValueError(
            f"{objective} sampling needs exactly {list(required)} (optional {list(optional)}); "
            f"missing {missing}, unknown {unknown}"
        )
    return dict(sampling)


def _label_sequence(
    transformer: GenerativeTransformer, num_samples: int, class_counts: Mapping[int, int] | None
) -> tuple[np.ndarray, dict[str, int] | None]:
    """(N,) int64 labels (-1 = unconditional) and the JSON form of the class counts."""
    num_classes = int(transformer.config.num_classes)
    if num_classes == 0:
        if class_counts is not None:
            raise ValueError("the transformer is unconditional (num_classes = 0): pass class_counts=None")
        return np.full(num_samples, -1, dtype=np.int64), None
    if class_counts is None:
        raise ValueError(
            f"the transformer is class-conditional ({num_classes} classes): pass class_counts "
            "(e.g. even_class_counts(num_samples, num_classes))"
        )
    counts = {int(c): int(n) for c, n in class_counts.items()}
    bad = [c for c in counts if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"class_counts has classes {sorted(bad)} outside [0, {num_classes})")
    if any(n < 0 for n in counts.values()):
        raise ValueError(f"class_counts must be non-negative, got {counts}")
    if sum(counts.values()) != num_samples:
        raise ValueError(f"class_counts sum to {sum(counts.values())}, num_samples = {num_samples}")
    ordered = sorted(counts)
    labels = np.concatenate([np.full(counts[c], c, dtype=np.int64) for c in ordered] or [np.zeros(0, np.int64)])
    return labels, {str(c): counts[c] for c in ordered}


def _grid_side(transformer: GenerativeTransformer) -> int:
    n = int(transformer.config.seq_len)
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"seq_len = {n} is not a square token grid")
    return side


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``; an old ``out`` loses its manifest first."""
    if out.exists():
        (out / "manifest.json").unlink(missing_ok=True)
        shutil.rmtree(out)
    os.replace(tmp, out)


def _draw(
    transformer: GenerativeTransformer,
    objective: str,
    batch_size: int,
    labels: torch.Tensor | None,
    sampling: Mapping[str, Any],
    generator: torch.Generator,
) -> torch.Tensor:
    """One batch of code ids (B, N) from the objective's sampler with ``sampling``'s settings."""
    if objective == "ar":
        return sample_ar(
            transformer,
            batch_size,
            labels,
            temperature=float(sampling["temperature"]),
            top_k=int(sampling["top_k"]),
            top_p=float(sampling["top_p"]),
            generator=generator,
        )
    return sample_nar(
        transformer,
        batch_size,
        labels,
        steps=int(sampling["steps"]),
        temperature=float(sampling["temperature"]),
        schedule=sampling["schedule"],
        generator=generator,
        token_temperature=float(sampling.get("token_temperature", 1.0)),
    )


def generate_samples(
    transformer: GenerativeTransformer,
    tokenizer: nn.Module,
    *,
    objective: Literal["ar", "nar"],
    num_samples: int,
    batch_size: int,
    seed: int,
    out_dir: str | os.PathLike[str],
    sampling: Mapping[str, Any],
    class_counts: Mapping[int, int] | None = None,
    meta: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Sample ``num_samples`` token grids, decode them and write ``out_dir`` (module docstring).

    sampling: AR ``{temperature, top_k, top_p}``; NAR ``{steps, temperature, schedule}`` (optional
    ``token_temperature``). class_counts: ``{class: n}`` for a conditional model (must sum to
    ``num_samples``), None for an unconditional one. meta: JSON-ready identity of the transformer /
    tokenizer (checkpoint files, hashes, steps), merged into the manifest. Both models are moved to
    ``device`` in place and run in eval mode (their modes are restored). Returns the manifest.
    """
    sampling = _check_sampling(objective, sampling)
    if bool(transformer.config.causal) != (objective == "ar"):
        raise ValueError(
            f"objective {objective!r} does not match the transformer (causal = {transformer.config.causal})"
        )
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    codebook_size = int(tokenizer.quantizer.codebook_size)
    if int(transformer.config.vocab_size) != codebook_size:
        raise ValueError(
            f"transformer vocab_size {transformer.config.vocab_size} != tokenizer codebook_size {codebook_size}"
        )
    side = _grid_side(transformer)
    labels, counts_json = _label_sequence(transformer, num_samples, class_counts)
    own = {
        "kind": "generated_samples",
        "objective": objective,
        "sampling": sampling,
        "seed": int(seed),
        "batch_size": int(batch_size),
        "class_counts": counts_json,
        "images_dir": IMAGES_DIR,
        "image_format": "png",
        "precision": precision_of(device if isinstance(device, torch.device) else resolve_device(device)),
    }
    meta = dict(meta or {})
    clash = set(own) & set(meta)
    if clash:
        raise ValueError(f"meta keys {sorted(clash)} are reserved for the sample set's own fields")

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    transformer.to(dev)
    tokenizer.to(dev)
    generator = torch.Generator(device=dev)
    generator.manual_seed(int(seed))

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / IMAGES_DIR).mkdir(parents=True)
    try:
        tokens = np.zeros((num_samples, side, side), dtype=np.int64)
        images_hash = hashlib.sha256()
        resolution: list[int] | None = None
        with progress_bar(num_samples, progress, f"generate ({objective})") as bar:
            for start in range(0, num_samples, batch_size):
                stop = min(start + batch_size, num_samples)
                b = stop - start
                batch_labels = None if counts_json is None else torch.from_numpy(labels[start:stop]).to(dev)
                with autocast_context(dev):
                    ids = _draw(transformer, objective, b, batch_labels, sampling, generator)
                    grid = ids.reshape(b, side, side)
                    if int(grid.min()) < 0 or int(grid.max()) >= codebook_size:
                        raise RuntimeError(f"sampler produced ids outside [0, {codebook_size})")
                    with eval_mode(tokenizer):
                        images = to_uint8(tokenizer.decode_ids(grid))  # (b, H, W, 3)
                resolution = [int(images.shape[1]), int(images.shape[2])]
                tokens[start:stop] = grid.cpu().numpy()
                for i, image in enumerate(images):
                    path = tmp / IMAGES_DIR / image_name(start + i)
                    Image.fromarray(np.ascontiguousarray(image)).save(path, format="PNG")
                    images_hash.update(path.read_bytes())
                bar.update(b)
        own.update(resolution=resolution, images_sha256=images_hash.hexdigest())
        manifest = write_token_split(tmp, tokens, labels, {**own, **meta}, codebook_size=codebook_size)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
