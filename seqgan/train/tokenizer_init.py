"""What a fresh tokenizer run derives from its initial networks before its first step.

Two quantities are balanced by measurement instead of typed constants (a typed logit weight once
went 11x stale when the semantic network changed):

* the **codebook** (``tokenizer.quantizer.init = encoder_samples``): K encoder outputs of the
  calibration images, drawn at random, so the codes start where the encoder's outputs are;
* the **perceptual calibration** (``tokenizer.loss.calibration = initial_mean``): the mean of each
  perceptual term (five taps and the logit distance) between the calibration images and their
  reconstructions by the initial tokenizer. The loss divides every term by its mean, so each
  starts at 1 and L_low, L_sem and every alpha's L_per^alpha start at 1: the total perceptual
  signal is equal across alphas at initialisation, and ``perceptual_weight`` sets it against L1.

The calibration images are ``tokenizer.phase1.init_images`` evenly spaced training images (no
random draw, so every alpha of a seed and every rank sees the same batch). Phase 2 keeps the
divisors of its phase-1 tokenizer (read from that tokenizer's sidecar): its objective is the
phase-1 objective at ``tokenizer.phase2.alpha``, on the same scale. Everything is recorded in the
sidecar; a resumed run restores the divisors from its resume state.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqgan.artefacts.checkpoints import load_weights
from seqgan.artefacts.images import ImageStore
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import Params
from seqgan.losses.perceptual import TERM_NAMES, SemanticPerceptualLoss
from seqgan.nets.vqgan import VQTokenizer

__all__ = [
    "CALIBRATION_RULE",
    "calibration_indices",
    "calibrate_perceptual",
    "apply_phase1_calibration",
    "init_codebook",
    "phase1_term_means",
]

CALIBRATION_RULE = (
    "each perceptual term (d_relu1_2 .. d_relu5_3, d_logit) divided by its mean over the calibration "
    "images reconstructed by the initial tokenizer; L_low = mean of the five taps, L_sem = mean of "
    "d_relu5_3 and d_logit, so every alpha's L_per^alpha starts at 1"
)
_BATCH = 64  # calibration images per forward pass (memory only: the means do not depend on it)
_CODEBOOK_SEED_OFFSET = 7919  # the codebook draw's generator: run.seed + this, apart from others


def calibration_indices(num_train: int, count: int) -> np.ndarray:
    """``count`` evenly spaced indices of a training split of ``num_train`` images (all if fewer)."""
    count = min(int(count), int(num_train))
    return np.unique(np.linspace(0, num_train - 1, count).round().astype(np.int64))


def _batches(train: ImageStore, indices: np.ndarray, device: torch.device) -> list[Tensor]:
    return [to_model_input(train.images[indices[i : i + _BATCH]], device) for i in range(0, len(indices), _BATCH)]


@torch.no_grad()
def init_codebook(tokenizer: VQTokenizer, train: ImageStore, params: Params, device: torch.device) -> dict[str, Any]:
    """Codebook <- K random encoder outputs of the calibration images; returns the sidecar record."""
    indices = calibration_indices(len(train), params.tokenizer.phase1.init_images)
    was_training = tokenizer.training
    tokenizer.eval()
    z_e = torch.cat([tokenizer.encoder(x) for x in _batches(train, indices, device)])
    tokenizer.train(was_training)
    generator = torch.Generator().manual_seed(int(params.run.seed) + _CODEBOOK_SEED_OFFSET)
    tokenizer.quantizer.init_from_samples(z_e, generator)
    return {
        "rule": "encoder_samples: K distinct encoder outputs of the calibration images, drawn at random",
        "images": len(indices),
        "encoder_output_rms": float(z_e.float().pow(2).mean().sqrt()),
    }


@torch.no_grad()
def calibrate_perceptual(
    tokenizer: VQTokenizer,
    loss: SemanticPerceptualLoss,
    train: ImageStore,
    params: Params,
    device: torch.device,
) -> dict[str, Any]:
    """Set ``loss``'s divisors to the term means of the initial tokenizer; returns the record."""
    indices = calibration_indices(len(train), params.tokenizer.phase1.init_images)
    was_training = tokenizer.training
    tokenizer.eval()
    total = torch.zeros(len(TERM_NAMES), dtype=torch.float64, device=device)
    for x in _batches(train, indices, device):
        recon = tokenizer(x)[0].float()
        total += loss.term_means(recon, x).double() * x.shape[0]
    tokenizer.train(was_training)
    means = (total / len(indices)).float()
    loss.set_term_scales(means)
    return {
        "rule": CALIBRATION_RULE,
        "source": "initial tokenizer",
        "images": len(indices),
        "term_means": dict(zip(TERM_NAMES, means.tolist(), strict=True)),
    }


def phase1_term_means(init_weights: str | os.PathLike[str]) -> dict[str, Any]:
    """The calibration record of a phase-1 tokenizer's sidecar (phase 2 reuses its divisors)."""
    _, sidecar = load_weights(init_weights, device="cpu")
    record = (sidecar.get("training") or {}).get("calibration")
    if not record or "term_means" not in record:
        raise ValueError(
            f"{init_weights}: its sidecar has no perceptual calibration (training.calibration); "
            "phase 2 with tokenizer.loss.calibration = initial_mean needs a phase-1 tokenizer trained with it"
        )
    return record


def apply_phase1_calibration(
    loss: SemanticPerceptualLoss, init_weights: str | os.PathLike[str], semantic_sha: str | None
) -> dict[str, Any]:
    """Phase 2: set ``loss``'s divisors to its phase-1 tokenizer's; returns the record.

    The divisors are means of the semantic network's distances: another network's would not fit,
    so a phase-1 tokenizer calibrated on a different semantic network is refused.
    """
    record = phase1_term_means(init_weights)
    _, sidecar = load_weights(init_weights, device="cpu")
    stored_sha = (sidecar.get("training") or {}).get("semantic_sha256")
    if semantic_sha is not None and stored_sha is not None and stored_sha != semantic_sha:
        raise ValueError(
            f"{init_weights}: calibrated on semantic network {stored_sha[:12]}, phase 2 uses "
            f"{semantic_sha[:12]}; retrain the phase-1 tokenizer with the current semantic network"
        )
    loss.set_term_scales(torch.tensor([record["term_means"][name] for name in TERM_NAMES]))
    return {**record, "source": f"phase-1 tokenizer {os.fspath(init_weights)}"}
