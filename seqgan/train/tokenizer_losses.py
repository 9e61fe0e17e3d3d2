"""The tokenizer's training objective, assembled from its terms, and the names those terms are
logged under.

It exists so that what one step minimises can be read (and tested) in one place, apart from how
the steps are driven (:mod:`seqgan.train.tokenizer`). The terms themselves live lower down: L1
here, L_per^alpha in :mod:`seqgan.losses.perceptual`, the quantizer's terms in
:mod:`seqgan.nets.quantizer`, the GAN losses and R1 in :mod:`seqgan.losses.adversarial`.

Objective of one generator step (main paper Sec. 3; every weight from params.yaml)::

    L = l1_weight * |x - x_hat|_1                       (mean over pixels)
      + codebook + beta * commitment - gamma * H(p_bar) (phase 1 only; weighted by the quantizer)
      + perceptual_weight * L_per^alpha(x_hat, x)       (not for the control tokenizer or weight 0)
      + w_gan * g_loss(D(x_hat))                        (from gan.start_step on, if gan.weight > 0)

    w_gan = gan.weight, or gan.weight * ||grad_last L_rec|| / (||grad_last g_loss|| + 1e-4) when
    gan.adaptive_weight (VQGAN's rule, L_rec = the L1 + perceptual part, "last" = the decoder's
    final conv weight).

Discriminator step (alternating with the generator step, same batch, from gan.start_step on)::

    L_D = d_loss(D(x), D(sg[x_hat])) + r1_gamma / 2 * E ||grad_x D(x)||^2      (R1 every step)

The generator's adversarial forward runs through the discriminator with its parameters frozen
(no wasted weight gradients); the discriminator step sees ``sg[x_hat]`` of the same step.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan.config import Params
from seqgan.losses.adversarial import adaptive_weight, d_loss, g_loss, r1_penalty
from seqgan.losses.perceptual import SemanticPerceptualLoss, VGG16Backbone
from seqgan.nets.backbone import TAP_NAMES
from seqgan.nets.discriminator import StyleGAN2Discriminator
from seqgan.nets.semantic import load_semantic_net
from seqgan.train.runtime import autocast_context
from seqgan.train.tokenizer_schedule import Phase

__all__ = [
    "GAN_COLUMNS",
    "PERCEPTUAL_COLUMNS",
    "QUANTIZER_COLUMNS",
    "build_perceptual_loss",
    "discriminator_loss",
    "frozen",
    "generator_adversarial",
    "log_columns",
    "perceptual_loss_for",
    "timing_perceptual_loss",
    "reconstruction_terms",
    "weighted_reconstruction",
]

QUANTIZER_COLUMNS = ("codebook", "commitment", "entropy")
PERCEPTUAL_COLUMNS = (
    *(f"per_{t}" for t in TAP_NAMES),
    "per_logit",
    "per_total",
    "per_low",
    "per_sem",
)
GAN_COLUMNS = ("gan_g", "gan_weight", "gan_d", "r1", "d_real", "d_fake")


def log_columns(phase: Phase, perceptual: bool, gan: bool) -> list[str]:
    """The train.csv columns of a run: only the terms that run actually computes."""
    columns = ["l1"]
    if phase == 1:
        columns += QUANTIZER_COLUMNS
    if perceptual:
        columns += PERCEPTUAL_COLUMNS
    if gan:
        columns += GAN_COLUMNS
    return columns + ["total", "lr", "perplexity", "used_codes"]


def build_perceptual_loss(
    params: Params, alpha: float, semantic_weights: str | os.PathLike[str] | None
) -> SemanticPerceptualLoss:
    """L_per^alpha on the configured backbone (embedded SemanticNet, or ImageNet VGG16 + LPIPS)."""
    if params.semantic.backbone == "embedded":
        if semantic_weights is None:
            raise ValueError(
                "semantic.backbone = embedded: the perceptual loss needs semantic_weights "
                "(the trained semantic network, e.g. models/semantic/net.safetensors)"
            )
        backbone: Any = load_semantic_net(semantic_weights)
        layer_weights = None
    else:
        backbone = VGG16Backbone.from_imagenet()  # MissingWeightsError names the fetch command
        layer_weights = backbone.lpips_layer_weights()
    return perceptual_loss_for(params, backbone, alpha, layer_weights)


def perceptual_loss_for(
    params: Params, backbone: Any, alpha: float, layer_weights: list[Tensor] | None
) -> SemanticPerceptualLoss:
    """L_per^alpha over ``backbone`` in the params' form: calibrated (the trainer sets the divisors
    before the first step, seqgan.train.tokenizer_init) or the paper's sums with lambda."""
    loss = params.tokenizer.loss
    if loss.calibration == "initial_mean":
        return SemanticPerceptualLoss(backbone, alpha, layer_weights, 1.0, calibrated=True)
    assert loss.logit_weight is not None  # the params validator requires it with calibration none
    return SemanticPerceptualLoss(backbone, alpha, layer_weights, loss.logit_weight)


def timing_perceptual_loss(
    params: Params, backbone: Any, alpha: float, layer_weights: list[Tensor] | None
) -> SemanticPerceptualLoss:
    """:func:`perceptual_loss_for` with unit divisors when calibrated: for benchmarks that time a
    step on random weights, where the values do not matter and no calibration batch exists."""
    loss = perceptual_loss_for(params, backbone, alpha, layer_weights)
    if loss.calibrated:
        loss.set_term_scales(torch.ones_like(loss.term_scales))
    return loss


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` need no gradient inside the block (the generator's D forward)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def reconstruction_terms(
    recon: Tensor,
    target: Tensor,
    perceptual: SemanticPerceptualLoss | None,
) -> dict[str, Tensor]:
    """Unweighted L1 and (if on) the perceptual terms, fp32 scalars with gradients."""
    recon = recon.float()
    terms = {"l1": F.l1_loss(recon, target)}
    if perceptual is not None:
        per = perceptual(recon, target)
        terms.update({f"per_{t}": per[t] for t in TAP_NAMES})
        terms.update(per_logit=per["logit"], per_total=per["total"], per_low=per["low"], per_sem=per["sem"])
    return terms


def weighted_reconstruction(terms: Mapping[str, Tensor], params: Params) -> Tensor:
    """l1_weight * L1 + perceptual_weight * L_per^alpha (what VQGAN's adaptive weight balances)."""
    loss = params.tokenizer.loss
    total = loss.l1_weight * terms["l1"]
    if "per_total" in terms:
        total = total + loss.perceptual_weight * terms["per_total"]
    return total


def generator_adversarial(
    disc: StyleGAN2Discriminator,
    recon: Tensor,
    rec_loss: Tensor,
    last_layer: Tensor,
    params: Params,
    device: torch.device,
) -> dict[str, Tensor]:
    """g_loss(D(x_hat)) through a frozen discriminator and its weight (fixed or adaptive)."""
    gan = params.tokenizer.gan
    with frozen(disc), autocast_context(device):
        logits = disc(recon)
    gan_g = g_loss(gan.loss, logits.float())
    weight = torch.tensor(gan.weight, device=recon.device)
    if gan.adaptive_weight:
        weight = gan.weight * adaptive_weight(rec_loss, gan_g, last_layer)
    return {"gan_g": gan_g, "gan_weight": weight.detach()}


def discriminator_loss(
    disc: nn.Module, real: Tensor, fake: Tensor, params: Params, device: torch.device
) -> dict[str, Tensor]:
    """d_loss(D(x), D(sg[x_hat])) and the R1 penalty on the real images (0 when r1_gamma = 0)."""
    gan = params.tokenizer.gan
    real = real.detach().requires_grad_(gan.r1_gamma > 0)
    with autocast_context(device):
        logits_real = disc(real).float()
        logits_fake = disc(fake.detach()).float()
    terms = {"gan_d": d_loss(gan.loss, logits_real, logits_fake)}
    if gan.r1_gamma > 0:
        terms["r1"] = r1_penalty(logits_real, real, gan.r1_gamma)
    else:
        terms["r1"] = logits_real.new_zeros(())
    terms["d_real"] = logits_real.detach().mean()
    terms["d_fake"] = logits_fake.detach().mean()
    return terms
