"""A tokenizer checkpoint as a network: the configuration record, loading, checking, and the network
each training phase starts from.

It exists because every stage after training (encoding token splits, evaluation, figures, the
benchmarks) rebuilds a trained tokenizer from its weights + sidecar, and must refuse one trained
with another architecture -- none of them needs the training loop. The trainer uses the same
pieces to write the sidecar's ``config`` and to prepare phase 2:

- :func:`tokenizer_config` is what rebuilding needs (architecture, quantizer, phase-2 attention,
  resolution, compression); :func:`check_config` names the first params key that differs from a
  checkpoint's (the quantizer's loss weights do not change the network and are not compared).
- :func:`load_tokenizer_checkpoint` rebuilds a trained tokenizer (eval mode, frozen).
- :func:`prepare_tokenizer`: phase 1 starts fresh or from a phase-1 tokenizer (finetuning); phase 2
  builds the attention decoder, loads the phase-1 weights with
  :func:`seqgan.nets.vqgan.load_phase1_state` (the zero-initialised attention makes it compute
  exactly the phase-1 function at step 0) and freezes encoder and codebook
  (:func:`freeze_encoder_and_codebook`), so the token ids never change.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from seqgan.artefacts.checkpoints import load_weights
from seqgan.config import Params
from seqgan.nets.factory import Phase, build_tokenizer
from seqgan.nets.vqgan import VQTokenizer, load_phase1_state

__all__ = [
    "WEIGHTS_KIND",
    "check_config",
    "freeze_encoder_and_codebook",
    "load_tokenizer_checkpoint",
    "plain_json",
    "prepare_tokenizer",
    "tokenizer_config",
]

WEIGHTS_KIND = "tokenizer"


def plain_json(value: Any) -> Any:
    """A JSON round trip: tuples become lists, so params and sidecars compare equal."""
    return json.loads(json.dumps(value))


def tokenizer_config(params: Params, phase: Phase) -> dict[str, Any]:
    """What rebuilding the tokenizer needs: architecture, quantizer, attention (phase 2), size."""
    tok = params.tokenizer
    return {
        "architecture": plain_json(params.raw["tokenizer"]["architecture"]),
        "quantizer": plain_json(params.raw["tokenizer"]["quantizer"]),
        "attention": plain_json(params.raw["tokenizer"]["phase2"]["attention"]) if phase == 2 else None,
        "resolution": params.data.resolution,
        "compression": tok.architecture.compression,
    }


def check_config(stored: Mapping[str, Any], params: Params, phase: Phase, path: str | os.PathLike[str]) -> None:
    """Raise naming the first params key whose value differs from the checkpoint's architecture.

    The quantizer's loss weights do not change the network, so only the architecture, the phase-2
    attention and the resolution (which fixes the token grid) are compared.
    """
    expected = tokenizer_config(params, phase)
    pairs = [
        (f"tokenizer.architecture.{k}", v, stored.get("architecture", {}).get(k))
        for k, v in expected["architecture"].items()
    ]
    if phase == 2:
        pairs += [
            (f"tokenizer.phase2.attention.{k}", v, (stored.get("attention") or {}).get(k))
            for k, v in expected["attention"].items()
        ]
    pairs.append(("data.resolution", expected["resolution"], stored.get("resolution")))
    for key, ours, theirs in pairs:
        if ours != theirs:
            raise ValueError(
                f"{path}: {key} = {ours!r} in params, but the checkpoint was trained with "
                f"{theirs!r}; use the params the tokenizer was trained with (or retrain it)"
            )


def _read_tokenizer_weights(
    path: str | os.PathLike[str], params: Params, phase: Phase | None
) -> tuple[dict[str, Tensor], dict[str, Any], Phase]:
    """Weights + sidecar of a tokenizer checkpoint, checked against params (and ``phase``)."""
    state, sidecar = load_weights(path, device="cpu")
    if sidecar.get("kind") != WEIGHTS_KIND:
        raise ValueError(f"{path}: sidecar kind is {sidecar.get('kind')!r}, expected {WEIGHTS_KIND!r}")
    stored_phase = int(sidecar["phase"])
    if stored_phase not in (1, 2):
        raise ValueError(f"{path}: sidecar phase {stored_phase!r} is not 1 or 2")
    if phase is not None and stored_phase != phase:
        raise ValueError(f"{path}: a phase-{stored_phase} tokenizer, expected a phase-{phase} one")
    check_config(sidecar["config"], params, stored_phase, path)  # type: ignore[arg-type]
    return state, sidecar, stored_phase  # type: ignore[return-value]


def load_tokenizer_checkpoint(
    path: str | os.PathLike[str], params: Params, device: str | torch.device = "cpu"
) -> tuple[VQTokenizer, dict[str, Any]]:
    """Rebuild a trained tokenizer (eval mode, frozen) from its weights + sidecar.

    The network is built by ``build_tokenizer(params, sidecar["phase"])`` and the sidecar's
    architecture must equal the params' (ValueError naming the mismatching key otherwise).
    """
    state, sidecar, phase = _read_tokenizer_weights(path, params, None)
    model = build_tokenizer(params, phase)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return model.to(device), sidecar


def freeze_encoder_and_codebook(tokenizer: VQTokenizer) -> None:
    """Phase 2: the token ids must never change, so nothing upstream of the decoder may train."""
    for module in (tokenizer.encoder, tokenizer.quantizer):
        module.requires_grad_(False)
        module.eval()


def prepare_tokenizer(params: Params, phase: Phase, init_weights: str | os.PathLike[str] | None) -> VQTokenizer:
    """The network a phase starts from.

    Phase 1: freshly initialised, or all weights of the phase-1 tokenizer ``init_weights``
    (LSUN finetunes the ImageNet tokenizer). Phase 2: the attention decoder with the phase-1
    checkpoint ``init_weights`` loaded by ``load_phase1_state``, encoder and codebook frozen.
    """
    tokenizer = build_tokenizer(params, phase)
    if phase == 2:
        if init_weights is None:
            raise ValueError("phase 2 needs init_weights: the phase-1 tokenizer checkpoint")
        state, _, _ = _read_tokenizer_weights(init_weights, params, 1)
        load_phase1_state(tokenizer, state)
        freeze_encoder_and_codebook(tokenizer)
    elif init_weights is not None:
        state, _, _ = _read_tokenizer_weights(init_weights, params, 1)
        tokenizer.load_state_dict(state, strict=True)
    return tokenizer
