"""Train SeQ-GAN's VQ tokenizer: phase 1 (encoder + codebook + conv decoder) and phase 2 (decoder).

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

Choices the paper leaves open, and why:

- The discriminator uses the SAME Adam settings as the phase it trains in (lr schedule, beta1,
  beta2 of ``tokenizer.phase1`` / ``tokenizer.phase2``): the paper gives one optimizer setting per
  phase, and VQGAN / MaskGIT use one for both networks. ``gan.start_step`` counts steps of the
  current phase. Phase 2 starts a FRESH discriminator (seeded by ``run.seed``): the phase-1
  discriminator is not an artefact of the workflow, and a file-presence switch would be a hidden
  input.
- The generator's adversarial forward runs through the discriminator with its parameters frozen
  (no wasted weight gradients); the discriminator step sees ``sg[x_hat]`` of the same step.
- Learning rate (both networks), a pure function of the step ``s`` (so resume needs no scheduler
  state), ``T`` = the phase's iterations::

      cosine:   lr(s) = end_lr + (lr - end_lr) * 0.5 * (1 + cos(pi * s / T))
      constant: lr(s) = lr

  ``0.5 * (1 + cos(pi * s / T))`` is :func:`seqgan.train.loop.cosine_schedule` without warm-up.
- Phase 2 (``init_weights`` = the phase-1 checkpoint): the attention decoder is built, phase-1
  weights are loaded with :func:`seqgan.nets.vqgan.load_phase1_state` (the zero-initialised
  attention makes it compute exactly the phase-1 function at step 0), the encoder and codebook are
  frozen (``requires_grad=False``, eval mode, encoded under ``no_grad``, not in the optimizer), and
  the decoder decodes ``codebook[ids]`` -- exactly what :meth:`VQTokenizer.decode_ids` does with a
  transformer's tokens -- rather than the straight-through ``z_e + sg[z_q - z_e]``, which differs
  from it in the last bit. No quantizer or entropy term enters the phase-2 loss.
- Data: the global batch of step ``s`` is ``StepSampler(len, batch, run.seed).indices(s)``, so a
  resumed run sees the same images; images are ``to_model_input`` ([-1, 1]).
- Device: ``run.device``; channels_last on every device; bf16 autocast on CUDA, fp32 on CPU
  (CPU bf16 autocast measured slower, even with native AVX-512 bf16; bit-exact resume on CPU at a
  fixed thread count; tested). The sidecar records the precision and memory format.
- Distributed: under ``torchrun`` (WORLD_SIZE > 1; ``run.gpus_per_job`` > 1 in the workflow)
  every rank takes a contiguous 1/world slice of the same global batch; the trainable modules (the
  tokenizer in phase 1, the decoder in phase 2, the discriminator) are wrapped in
  DistributedDataParallel; logged values are averaged over ranks (exact for the batch means; the
  batch's perplexity / used_codes are per-rank values averaged); a non-finite loss on any rank
  stops all ranks; only rank 0 writes checkpoints, logs and weights. Every term that is a mean of
  per-image terms (L1, L_per^alpha, codebook / commitment, GAN and R1; the discriminator's
  minibatch-stddev groups of 4 consecutive images too, while the per-rank batch is a multiple of
  4) then gives exactly the single-process gradient: in float64 the two agree to 1e-15; in float32
  with the perceptual loss they differ by ~1e-5 relative (the unit normalisation of near-zero
  feature vectors amplifies rounding) and the trajectories drift apart as any two float orders do;
  without it 2 gloo ranks match a single process to ~1e-7 for every step (tests/test_distributed.py).
  Two terms are NOT global: VQGAN's adaptive weight (the norm of each rank's own gradients) and
  the entropy regulariser's p_bar (each rank's own positions), as on a per-device
  implementation; so a tokenizer depends slightly on the number of GPUs, which the sidecar records
  (training.world_size). Without WORLD_SIZE (or with 1) nothing distributed is touched.

Logged every ``log_every`` steps (and at steps 1 and the last) to ``log_dir/train.csv`` and DVCLive:
``l1``, ``codebook``, ``commitment``, ``entropy`` (phase 1; the weighted quantizer terms),
``per_relu1_2`` .. ``per_relu5_3``, ``per_logit`` (each term's weighted share of L_per^alpha),
``per_total`` (L_per^alpha), ``per_low`` / ``per_sem`` (the paper's unweighted L_per^low and
L_per^sem) -- only when the perceptual loss is on --, ``gan_g``, ``gan_weight``, ``gan_d``,
``r1``, ``d_real``, ``d_fake`` (mean discriminator logits) -- only when gan.weight > 0, empty
before start_step --, ``total``, ``lr``, and the batch's codebook ``perplexity`` and
``used_codes``. These are the values of the logged step itself (not window means), so a resumed
run logs exactly the same rows.

Final weights: ``save_weights(out_path, tokenizer.state_dict(), sidecar)``; the sidecar holds the
architecture (to rebuild with :func:`load_tokenizer_checkpoint`), phase, alpha, perceptual, the
training settings and metrics measured on a fixed evaluation set -- the first
``USAGE_EVAL_IMAGES`` images of the TRAIN split (the split the trainer is given; validation
metrics belong to the evaluation stage): L1, PSNR, fraction of codes used, code perplexity.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan.artefacts.checkpoints import load_weights, save_weights
from seqgan.artefacts.images import ImageStore, open_image_store, to_model_input
from seqgan.config import Params, Phase1Params, Phase2Params
from seqgan.losses.adversarial import adaptive_weight, d_loss, g_loss, r1_penalty
from seqgan.losses.perceptual import SemanticPerceptualLoss, VGG16Backbone, check_alpha
from seqgan.nets.backbone import TAP_NAMES
from seqgan.nets.common import count_parameters
from seqgan.nets.discriminator import StyleGAN2Discriminator
from seqgan.nets.factory import build_discriminator, build_tokenizer
from seqgan.nets.quantizer import CodebookUsage, total_quantizer_loss
from seqgan.nets.vqgan import VQTokenizer, load_phase1_state
from seqgan.progress import progress as progress_bar
from seqgan.train.classifier import load_semantic_net
from seqgan.train.distributed import (
    Distributed,
    close_distributed,
    guard_finite,
    init_distributed,
)
from seqgan.train.live import MetricLogger, open_live
from seqgan.train.loop import StepSampler, TrainLoop, cosine_schedule
from seqgan.train.runtime import (
    autocast_context,
    compute_record,
    resolve_device,
    seed_everything,
)

__all__ = [
    "USAGE_EVAL_IMAGES",
    "WEIGHTS_KIND",
    "Distributed",
    "TokenizerRun",
    "build_perceptual_loss",
    "evaluate_reconstruction",
    "learning_rate",
    "load_tokenizer_checkpoint",
    "log_columns",
    "prepare_tokenizer",
    "tokenizer_config",
    "train_tokenizer",
]

Phase = Literal[1, 2]
PhaseSettings = Phase1Params | Phase2Params

WEIGHTS_KIND = "tokenizer"
# Size of the fixed evaluation set (the first images of the train split) on which the sidecar's
# codebook usage and reconstruction metrics are measured: 1024 images x 64 positions (embedded) or
# x 256 (paper) are far more positions than codes, so "fraction used" is not limited by the
# sample. An algorithmic constant, like the classifier's STATS_MAX_IMAGES.
USAGE_EVAL_IMAGES = 1024
QUANTIZER_COLUMNS = ("codebook", "commitment", "entropy")
PERCEPTUAL_COLUMNS = (
    *(f"per_{t}" for t in TAP_NAMES),
    "per_logit",
    "per_total",
    "per_low",
    "per_sem",
)
GAN_COLUMNS = ("gan_g", "gan_weight", "gan_d", "r1", "d_real", "d_fake")


# --------------------------------------------------------------------------------------------
# Schedule and settings
# --------------------------------------------------------------------------------------------


def phase_settings(params: Params, phase: Phase) -> PhaseSettings:
    """``tokenizer.phase1`` or ``tokenizer.phase2`` (batch, iterations, Adam, schedule, cadence)."""
    if phase == 1:
        return params.tokenizer.phase1
    if phase == 2:
        return params.tokenizer.phase2
    raise ValueError(f"phase must be 1 or 2, got {phase!r}")


def learning_rate(step: int, settings: PhaseSettings) -> float:
    """lr at ``step`` (0-based): cosine from lr to end_lr over the iterations, or constant lr."""
    if settings.lr_decay == "constant":
        return settings.lr
    if settings.lr_decay == "cosine":
        factor = cosine_schedule(step, settings.iterations, 0)  # 0.5 * (1 + cos(pi * step / T))
        return settings.end_lr + (settings.lr - settings.end_lr) * factor
    raise ValueError(f"unknown lr_decay {settings.lr_decay!r} (cosine | constant)")


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def make_adam(parameters: list[nn.Parameter], settings: PhaseSettings) -> torch.optim.Adam:
    """Adam with the phase's betas (no weight decay: the paper's tokenizer optimizer is Adam)."""
    return torch.optim.Adam(parameters, lr=settings.lr, betas=(settings.beta1, settings.beta2))


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


# --------------------------------------------------------------------------------------------
# Models: configuration record, checkpoints, phase-2 preparation, perceptual loss
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON round trip: tuples become lists, so params and sidecars compare equal."""
    return json.loads(json.dumps(value))


def tokenizer_config(params: Params, phase: Phase) -> dict[str, Any]:
    """What rebuilding the tokenizer needs: architecture, quantizer, attention (phase 2), size."""
    tok = params.tokenizer
    return {
        "architecture": _plain(params.raw["tokenizer"]["architecture"]),
        "quantizer": _plain(params.raw["tokenizer"]["quantizer"]),
        "attention": _plain(params.raw["tokenizer"]["phase2"]["attention"]) if phase == 2 else None,
        "resolution": params.data.resolution,
        "compression": tok.architecture.compression,
    }


def check_config(
    stored: Mapping[str, Any], params: Params, phase: Phase, path: str | os.PathLike[str]
) -> None:
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
        raise ValueError(
            f"{path}: sidecar kind is {sidecar.get('kind')!r}, expected {WEIGHTS_KIND!r}"
        )
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


def prepare_tokenizer(
    params: Params, phase: Phase, init_weights: str | os.PathLike[str] | None
) -> VQTokenizer:
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
    return SemanticPerceptualLoss(
        backbone, alpha, layer_weights, params.tokenizer.loss.logit_weight
    )


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


def _file_sha256(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Loss assembly
# --------------------------------------------------------------------------------------------


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
        terms.update(
            per_logit=per["logit"], per_total=per["total"], per_low=per["low"], per_sem=per["sem"]
        )
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


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate_reconstruction(
    tokenizer: VQTokenizer, store: ImageStore, count: int, batch_size: int, device: torch.device
) -> dict[str, float]:
    """L1, PSNR and codebook usage over the first ``count`` images of ``store`` (eval mode).

    PSNR per image on the [0, 1] scale of the clamped reconstruction, 10 log10(1 / MSE), averaged
    over images. Usage = fraction of the K codes used at least once and exp(entropy) of the code
    histogram, over all positions of all images.
    """
    modes = [(m, m.training) for m in tokenizer.modules()]  # restored exactly (phase 2 mixes modes)
    tokenizer.eval()
    usage = CodebookUsage(tokenizer.quantizer.codebook_size)
    n = min(count, len(store))
    l1_sum = psnr_sum = 0.0
    for start in range(0, n, batch_size):
        x = to_model_input(np.array(store.images[start : min(start + batch_size, n)]), device)
        with autocast_context(device):
            _, ids, _ = tokenizer.encode(x)
            recon = tokenizer.decode_ids(ids).float().clamp(-1.0, 1.0)
        usage.update(ids)
        l1_sum += float((recon - x).abs().mean(dim=(1, 2, 3)).sum())
        mse = ((recon - x) / 2.0).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnr_sum += float((10.0 * torch.log10(1.0 / mse)).sum())
    for module, mode in modes:
        module.training = mode
    fraction, perplexity = usage.compute()
    return {
        "l1": l1_sum / n,
        "psnr": psnr_sum / n,
        "codebook_fraction_used": fraction,
        "codebook_perplexity": perplexity,
        "count": n,
    }


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


class TokenizerRun:
    """Modules, optimisers and the two alternating steps of one training run.

    ``train_step(x, step)`` is one full iteration (generator step, then the discriminator step once
    the GAN is on); ``state()`` / ``load()`` are the resume state. The benchmark times this class.
    """

    def __init__(
        self,
        params: Params,
        phase: Phase,
        tokenizer: VQTokenizer,
        perceptual: SemanticPerceptualLoss | None,
        ctx: Distributed,
    ) -> None:
        self.params = params
        self.phase = phase
        self.settings = phase_settings(params, phase)
        self.ctx = ctx
        self.device = ctx.device
        # channels_last everywhere: convolutions dominate a step and run faster in NHWC on CUDA
        # and on CPU alike (benchmarks/bench_cpu.py measures the ratio on the machine at hand).
        memory_format = torch.channels_last
        self.memory_format = memory_format
        self.tokenizer = tokenizer.to(self.device, memory_format=memory_format)
        self.perceptual = (
            perceptual.to(self.device, memory_format=memory_format) if perceptual is not None else None
        )
        trainable = self.tokenizer if phase == 1 else self.tokenizer.decoder
        self.trainable: nn.Module = ctx.wrap(trainable)
        self.opt_g = make_adam(
            [p for p in trainable.parameters() if p.requires_grad], self.settings
        )
        self.disc: StyleGAN2Discriminator | None = None
        self.disc_ddp: nn.Module | None = None
        self.opt_d: torch.optim.Optimizer | None = None
        if params.tokenizer.gan.weight > 0:
            self.disc = build_discriminator(params).to(self.device, memory_format=memory_format)
            self.disc_ddp = ctx.wrap(self.disc)
            self.opt_d = make_adam(list(self.disc.parameters()), self.settings)
        self.last_logged: dict[str, float] = {}

    # -- resume state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "tokenizer": self.tokenizer.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "last_logged": dict(self.last_logged),
        }
        if self.disc is not None and self.opt_d is not None:
            state["disc"] = self.disc.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        return state

    def load(self, state: dict[str, Any]) -> None:
        self.tokenizer.load_state_dict(state["tokenizer"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.last_logged = dict(state["last_logged"])
        if self.disc is not None and self.opt_d is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])

    def set_modes(self) -> None:
        """Train mode for what trains; phase 2 keeps the frozen encoder and codebook in eval."""
        self.tokenizer.train()
        if self.phase == 2:
            freeze_encoder_and_codebook(self.tokenizer)
        if self.disc is not None:
            self.disc.train()

    # -- one step -------------------------------------------------------------------------------
    def gan_active(self, step: int) -> bool:
        return self.disc is not None and step >= self.params.tokenizer.gan.start_step

    def reconstruct(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """(x_hat, weighted quantizer losses (phase 1; empty in phase 2), the batch's usage)."""
        with autocast_context(self.device):
            if self.phase == 1:
                recon, _, quant, stats = self.trainable(x, return_stats=True)
                return recon, quant, stats
            with torch.no_grad():  # frozen: no loss term reaches encoder or codebook
                _, ids, _, stats = self.tokenizer.encode_with_stats(x)
                z_q = self.tokenizer.quantizer.lookup(ids).contiguous(
                    memory_format=self.memory_format
                )
            return self.trainable(z_q), {}, stats

    def generator_step(
        self, x: Tensor, step: int
    ) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """Forward, loss assembly, NaN guard, backward, Adam step. Returns (terms, x_hat, stats)."""
        recon, quant, stats = self.reconstruct(x)
        terms = reconstruction_terms(recon, x, self.perceptual)
        rec_loss = weighted_reconstruction(terms, self.params)
        total = rec_loss
        if quant:
            terms.update({k: quant[k].float() for k in QUANTIZER_COLUMNS})
            total = total + total_quantizer_loss(terms)
        if self.gan_active(step):
            assert self.disc is not None
            terms.update(
                generator_adversarial(
                    self.disc,
                    recon,
                    rec_loss,
                    self.tokenizer.decoder.last_layer,
                    self.params,
                    self.device,
                )
            )
            total = total + terms["gan_weight"] * terms["gan_g"]
        terms["total"] = total
        guard_finite(terms, step, self.ctx)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        return {k: v.detach() for k, v in terms.items()}, recon.detach(), stats

    def discriminator_step(self, real: Tensor, fake: Tensor, step: int) -> dict[str, Tensor]:
        """One discriminator update on (x, sg[x_hat]) with R1; NaN-guarded."""
        assert self.disc_ddp is not None and self.opt_d is not None
        terms = discriminator_loss(self.disc_ddp, real, fake, self.params, self.device)
        guard_finite({"gan_d": terms["gan_d"], "r1": terms["r1"]}, step, self.ctx)
        self.opt_d.zero_grad(set_to_none=True)
        (terms["gan_d"] + terms["r1"]).backward()
        self.opt_d.step()
        return {k: v.detach() for k, v in terms.items()}

    def train_step(self, x: Tensor, step: int) -> dict[str, Tensor]:
        """Generator step, then (once the GAN is on) a discriminator step; all logged values."""
        lr = learning_rate(step, self.settings)
        set_learning_rate(self.opt_g, lr)
        terms, recon, stats = self.generator_step(x, step)
        if self.gan_active(step):
            assert self.opt_d is not None
            set_learning_rate(self.opt_d, lr)
            terms.update(self.discriminator_step(x, recon, step))
        terms["lr"] = torch.tensor(lr)
        terms["perplexity"] = stats["perplexity"]
        terms["used_codes"] = stats["used_codes"]
        return terms

    def gather_log_values(
        self, terms: Mapping[str, Tensor], columns: list[str]
    ) -> dict[str, float]:
        """The logged columns present this step as floats, averaged over ranks."""
        names = [c for c in columns if c in terms]
        stacked = torch.stack(
            [terms[n].detach().float().to(self.device).reshape(()) for n in names]
        )
        values = self.ctx.mean(stacked).tolist()
        return dict(zip(names, values, strict=True))


def _fingerprint(
    params: Params,
    phase: Phase,
    alpha: float,
    perceptual: bool,
    train: ImageStore,
    semantic_sha: str | None,
    init_sha: str | None,
) -> dict[str, Any]:
    """Everything that makes two runs the same run; a resume file of another run is refused."""
    raw = params.raw
    return {
        "phase": int(phase),
        "alpha": float(alpha),
        "perceptual": bool(perceptual),
        "architecture": _plain(raw["tokenizer"]["architecture"]),
        "quantizer": _plain(raw["tokenizer"]["quantizer"]),
        "loss": _plain(raw["tokenizer"]["loss"]),
        "gan": _plain(raw["tokenizer"]["gan"]),
        # checkpoint / log cadence does not change the weights: a resumed job may alter it
        "settings": {
            k: v
            for k, v in _plain(raw["tokenizer"][f"phase{phase}"]).items()
            if k not in ("checkpoint_every", "log_every")
        },
        "semantic_backbone": params.semantic.backbone,
        "semantic_sha256": semantic_sha,
        "init_sha256": init_sha,
        "seed": int(params.run.seed),
        "resolution": params.data.resolution,
        "train_sha256": train.manifest["sha256"],
    }


def _check_run(params: Params, phase: Phase, train: ImageStore, ctx: Distributed) -> None:
    settings = phase_settings(params, phase)
    if train.resolution != params.data.resolution:
        raise ValueError(
            f"{train.directory}: images are {train.resolution} px, data.resolution = "
            f"{params.data.resolution}"
        )
    if len(train) == 0:
        raise ValueError(f"{train.directory}: empty training split")
    if settings.batch_size % ctx.world_size:
        raise ValueError(
            f"tokenizer.phase{phase}.batch_size = {settings.batch_size}: must be divisible by the "
            f"number of processes ({ctx.world_size})"
        )


def train_tokenizer(
    params: Params,
    *,
    phase: Literal[1, 2],
    alpha: float,
    perceptual: bool,
    train_dir: str | os.PathLike[str],
    semantic_weights: Path | None,
    init_weights: Path | None,
    out_path: str | os.PathLike[str],
    resume_path: str | os.PathLike[str],
    log_dir: str | os.PathLike[str],
    progress: bool = True,
) -> dict[str, Any]:
    """Train one tokenizer phase; write ``out_path`` (+ sidecar); return its metrics.

    ``perceptual=False`` is the control tokenizer (no perceptual loss at all). ``alpha`` is the
    semantic ratio of L_per^alpha (phase 2: ``tokenizer.phase2.alpha``). ``init_weights``: phase 1,
    an optional tokenizer to finetune; phase 2, the phase-1 checkpoint (required). Resumes from
    ``resume_path`` when it exists (written every ``checkpoint_every`` steps and at the end).
    """
    wall_start = time.perf_counter()
    alpha = check_alpha(alpha)
    settings = phase_settings(params, phase)
    ctx = init_distributed(resolve_device(params.run.device))
    try:
        train = open_image_store(train_dir)
        _check_run(params, phase, train, ctx)
        seed_everything(params.run.seed)
        tokenizer = prepare_tokenizer(params, phase, init_weights)
        use_perceptual = perceptual and params.tokenizer.loss.perceptual_weight > 0
        per_loss = (
            build_perceptual_loss(params, alpha, semantic_weights) if use_perceptual else None
        )
        run = TokenizerRun(params, phase, tokenizer, per_loss, ctx)
        fingerprint = _fingerprint(
            params,
            phase,
            alpha,
            perceptual,
            train,
            _file_sha256(semantic_weights) if use_perceptual else None,
            _file_sha256(init_weights),
        )
        loop = TrainLoop(
            settings.iterations,
            settings.checkpoint_every,
            resume_path,
            run.state,
            run.load,
            fingerprint,
        )
        start = loop.start_step()
        metrics = _train_steps(run, loop, train, start, use_perceptual, Path(log_dir), progress)
        if not ctx.is_main:
            return metrics
        evaluation = evaluate_reconstruction(
            run.tokenizer, train, USAGE_EVAL_IMAGES, settings.batch_size, ctx.device
        )
        sidecar = _sidecar(
            params,
            phase,
            alpha,
            perceptual,
            fingerprint,
            run,
            evaluation,
            train_dir,
            semantic_weights,
            init_weights,
        )
        save_weights(out_path, run.tokenizer.state_dict(), sidecar)
        return {
            **metrics,
            **{f"train_eval_{k}": v for k, v in evaluation.items()},
            "step": settings.iterations,
            "resumed_from_step": start,
            "num_parameters": count_parameters(run.tokenizer),
            "wall_seconds": time.perf_counter() - wall_start,
        }
    finally:
        close_distributed(ctx)


def _train_steps(
    run: TokenizerRun,
    loop: TrainLoop,
    train: ImageStore,
    start: int,
    use_perceptual: bool,
    log_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    """The step loop: sample, step, log, checkpoint. Returns timing and the last logged values."""
    settings, ctx = run.settings, run.ctx
    sampler = StepSampler(len(train), settings.batch_size, run.params.run.seed)
    columns = log_columns(run.phase, use_perceptual, run.disc is not None)
    logger = None
    if ctx.is_main:
        live = open_live(log_dir, resume=start > 0)
        logger = MetricLogger(log_dir / "train.csv", columns, start_step=start, live=live)
    run.set_modes()
    step_start = time.perf_counter()
    try:
        bar_on = progress and ctx.is_main
        with progress_bar(
            start, settings.iterations, enabled=bar_on, desc=f"tokenizer phase {run.phase}"
        ) as bar:
            for step in range(start, settings.iterations):
                idx = ctx.shard(sampler.indices(step))
                x = to_model_input(train.images[idx], ctx.device).contiguous(
                    memory_format=run.memory_format
                )
                terms = run.train_step(x, step)
                completed = step + 1
                if (
                    completed == 1
                    or completed % settings.log_every == 0
                    or completed == settings.iterations
                ):
                    run.last_logged = run.gather_log_values(terms, columns)
                    if logger is not None:
                        logger.log(completed, run.last_logged)
                    bar.set_postfix(l1=f"{run.last_logged['l1']:.4f}", refresh=False)
                if ctx.is_main:
                    loop.maybe_checkpoint(completed)
                bar.update(1)
    finally:
        if logger is not None:
            logger.close()
    steps_done = settings.iterations - start
    elapsed = time.perf_counter() - step_start
    return {
        "final_losses": dict(run.last_logged),
        "seconds_per_step": elapsed / steps_done if steps_done else math.nan,
    }


def _sidecar(
    params: Params,
    phase: Phase,
    alpha: float,
    perceptual: bool,
    fingerprint: dict[str, Any],
    run: TokenizerRun,
    evaluation: dict[str, float],
    train_dir: str | os.PathLike[str],
    semantic_weights: Path | None,
    init_weights: Path | None,
) -> dict[str, Any]:
    settings = run.settings
    return {
        "kind": WEIGHTS_KIND,
        "phase": int(phase),
        "alpha": float(alpha),
        "perceptual": bool(perceptual),
        "config": tokenizer_config(params, phase),
        "step": settings.iterations,
        "num_parameters": count_parameters(run.tokenizer),
        "training": {
            **copy.deepcopy(fingerprint),
            "optimizer": "Adam (no weight decay), the phase's betas; the discriminator likewise",
            "schedule": "cosine lr -> end_lr over the iterations"
            if settings.lr_decay == "cosine"
            else "constant lr",
            "device": str(run.device),
            "compute": compute_record(run.device, run.memory_format),
            "world_size": run.ctx.world_size,
            "train_dir": str(train_dir),
            "semantic_weights": str(semantic_weights) if semantic_weights else None,
            "init_weights": str(init_weights) if init_weights else None,
        },
        "metrics": {
            "final_losses": dict(run.last_logged),
            "train_eval": evaluation,
            "train_eval_definition": (
                f"first {evaluation['count']} images of the training split, eval mode, "
                "decode_ids(encode ids); L1 on [-1, 1], PSNR per image on [0, 1] (clamped) "
                "averaged; codebook fraction used and exp(entropy) of the code histogram"
            ),
            "final_losses_definition": "loss terms of the last training step (train.csv columns)",
        },
    }
