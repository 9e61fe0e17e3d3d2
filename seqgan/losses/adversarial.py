"""Adversarial losses for tokenizer training: non-saturating, hinge, R1, VQGAN's adaptive weight.

The SeQ-GAN papers do not state the GAN loss; ViT-VQGAN and MaskGIT (whose StyleGAN2 discriminator
SeQ-GAN adopts) use the non-saturating loss with an R1 penalty, so that is the natural default;
hinge (taming's VQGAN) is provided for comparison. All losses are means over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "ns_d_loss",
    "ns_g_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "d_loss",
    "g_loss",
    "r1_penalty",
    "adaptive_weight",
]


def ns_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Non-saturating discriminator loss: E[softplus(-D(x))] + E[softplus(D(G(z)))]."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def ns_g_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss: E[softplus(-D(G(z)))] = -E[log sigmoid(D(G(z)))]."""
    return F.softplus(-fake_logits).mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Hinge discriminator loss: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """Hinge generator loss: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_loss(kind: str, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Dispatch on ``kind`` in {"non_saturating", "hinge"}."""
    if kind == "non_saturating":
        return ns_d_loss(real_logits, fake_logits)
    if kind == "hinge":
        return hinge_d_loss(real_logits, fake_logits)
    raise ValueError(f"unknown GAN loss {kind!r} (non_saturating | hinge)")


def g_loss(kind: str, fake_logits: Tensor) -> Tensor:
    if kind == "non_saturating":
        return ns_g_loss(fake_logits)
    if kind == "hinge":
        return hinge_g_loss(fake_logits)
    raise ValueError(f"unknown GAN loss {kind!r} (non_saturating | hinge)")


def r1_penalty(real_logits: Tensor, real_images: Tensor, gamma: float) -> Tensor:
    """R1 = gamma / 2 * E_x[ ||grad_x D(x)||^2 ] on real images (Mescheder et al. 2018).

    ``real_images`` must have ``requires_grad=True`` BEFORE the discriminator runs on it; the
    gradient is taken with ``create_graph=True`` so the penalty trains the discriminator. A
    discriminator whose logits do not depend on the images gets exactly 0.
    """
    if not real_images.requires_grad:
        raise ValueError("call real_images.requires_grad_(True) before computing real_logits")
    (grad,) = torch.autograd.grad(
        outputs=real_logits.sum(),
        inputs=real_images,
        create_graph=True,
        allow_unused=True,
    )
    if grad is None:  # logits independent of the images
        return real_logits.new_zeros(()) + 0.0 * real_logits.sum()
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()


def adaptive_weight(
    rec_loss: Tensor,
    gan_loss: Tensor,
    last_layer: Tensor,
    max_weight: float = 1e4,
    eps: float = 1e-4,
) -> Tensor:
    """VQGAN's adaptive GAN weight ||grad_L rec|| / (||grad_L gan|| + eps), clamped, detached.

    L is the decoder's last layer weight (``Decoder.last_layer``). The result is a detached scalar
    in [0, max_weight]; the trainer multiplies it by its own ``disc_weight`` and the GAN loss.
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    w = rec_grad.norm() / (gan_grad.norm() + eps)
    return w.clamp(0.0, max_weight).detach()
