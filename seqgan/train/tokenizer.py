"""Train SeQ-GAN's VQ tokenizer: phase 1 (encoder + codebook + conv decoder) and phase 2 (decoder).

This module is the training loop -- :class:`TokenizerRun` (modules, optimisers, one generator and
one discriminator step) and :func:`train_tokenizer` (data, resume, logging, the final weights and
sidecar). The pieces it drives each have their own module:

- :mod:`seqgan.train.tokenizer_schedule`: which settings a phase uses, the learning rate at a
  step, Adam;
- :mod:`seqgan.train.tokenizer_losses`: the objective (its docstring has the formulas of the
  generator and the discriminator step) and the names of the logged terms;
- :mod:`seqgan.train.tokenizer_model`: the configuration record, loading and checking a
  checkpoint (:func:`~seqgan.train.tokenizer_model.load_tokenizer_checkpoint`), the network a phase
  starts from;
- :mod:`seqgan.train.tokenizer_eval`: the metrics the sidecar records;
- :mod:`seqgan.train.tokenizer_init`: what a fresh run derives from its initial networks before
  step 0 (the codebook from encoder outputs, the perceptual calibration; :func:`initialise_run`),
  kept in the resume state and the sidecar.

Choices the paper leaves open, and why:

- The discriminator uses the SAME Adam settings as the phase it trains in (lr schedule, beta1,
  beta2 of ``tokenizer.phase1`` / ``tokenizer.phase2``): the paper gives one optimizer setting per
  phase, and VQGAN / MaskGIT use one for both networks. ``gan.start_step`` counts steps of the
  current phase. Phase 2 starts a FRESH discriminator (seeded by ``run.seed``): the phase-1
  discriminator is not an artefact of the workflow, and a file-presence switch would be a hidden
  input.
- Learning rate (both networks): a pure function of the step (cosine from lr to end_lr, or
  constant; :mod:`seqgan.train.tokenizer_schedule`), so resume needs no scheduler state.
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
- Gradient accumulation (``run.accumulation_steps`` = A): each rank's slice runs as A equal
  micro-batches, each generator / discriminator loss divided by A, DDP synchronising only after the
  last; one Adam step. The per-image terms then give the whole batch's gradient (tested,
  tests/test_accumulation.py); the entropy regulariser and the adaptive weight see each
  micro-batch (recorded as training.accumulation_steps); the discriminator's minibatch-stddev
  groups of 4 stay exact while the micro-batch is a multiple of 4. Logged values are the
  micro-batches' means.

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
architecture (to rebuild with :func:`~seqgan.train.tokenizer_model.load_tokenizer_checkpoint`), phase, alpha,
perceptual, the
training settings and metrics measured on a fixed evaluation set -- the first
``USAGE_EVAL_IMAGES`` images of the TRAIN split (the split the trainer is given; validation
metrics belong to the evaluation stage): L1, PSNR (the evaluation stage's definition, on uint8
images; :mod:`seqgan.losses.psnr`), fraction of codes used, code perplexity
(:mod:`seqgan.train.tokenizer_eval`).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from seqgan.artefacts.checkpoints import save_weights
from seqgan.artefacts.files import file_sha256
from seqgan.artefacts.images import ImageStore, open_image_store
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import Params
from seqgan.losses.perceptual import SemanticPerceptualLoss, check_alpha
from seqgan.nets.common import count_parameters
from seqgan.nets.discriminator import StyleGAN2Discriminator
from seqgan.nets.factory import build_discriminator
from seqgan.nets.quantizer import total_quantizer_loss
from seqgan.nets.vqgan import VQTokenizer
from seqgan.progress import progress as progress_bar
from seqgan.train.distributed import (
    Distributed,
    close_distributed,
    guard_finite,
    init_distributed,
    micro_batches,
    sync_gradients_if,
)
from seqgan.train.live import MetricLogger, open_live
from seqgan.train.loop import StepSampler, TrainLoop
from seqgan.train.runtime import (
    autocast_context,
    compute_record,
    resolve_device,
    seed_everything,
)
from seqgan.train.tokenizer_eval import (
    USAGE_EVAL_IMAGES,
    evaluate_reconstruction,
    evaluation_definition,
)
from seqgan.train.tokenizer_init import apply_phase1_calibration, calibrate_perceptual, init_codebook
from seqgan.train.tokenizer_losses import (
    QUANTIZER_COLUMNS,
    build_perceptual_loss,
    discriminator_loss,
    generator_adversarial,
    log_columns,
    reconstruction_terms,
    weighted_reconstruction,
)
from seqgan.train.tokenizer_model import (
    WEIGHTS_KIND,
    freeze_encoder_and_codebook,
    plain_json,
    prepare_tokenizer,
    tokenizer_config,
)
from seqgan.train.tokenizer_schedule import (
    Phase,
    learning_rate,
    make_adam,
    phase_settings,
    set_learning_rate,
)

__all__ = ["TokenizerRun", "train_tokenizer"]


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
        self.accumulation_steps = params.run.accumulation_steps
        # channels_last everywhere: convolutions dominate a step and run faster in NHWC on CUDA
        # and on CPU alike (benchmarks/bench_cpu.py measures the ratio on the machine at hand).
        memory_format = torch.channels_last
        self.memory_format = memory_format
        self.tokenizer = tokenizer.to(self.device, memory_format=memory_format)
        self.perceptual = perceptual.to(self.device, memory_format=memory_format) if perceptual is not None else None
        trainable = self.tokenizer if phase == 1 else self.tokenizer.decoder
        self.trainable: nn.Module = ctx.wrap(trainable)
        codebook = [self.tokenizer.quantizer.embedding.weight] if phase == 1 else []
        self.opt_g = make_adam(
            [p for p in trainable.parameters() if p.requires_grad],
            self.settings,
            scaled=(codebook, params.tokenizer.quantizer.codebook_lr_scale),
        )
        self.disc: StyleGAN2Discriminator | None = None
        self.disc_ddp: nn.Module | None = None
        self.opt_d: torch.optim.Optimizer | None = None
        if params.tokenizer.gan.weight > 0:
            self.disc = build_discriminator(params).to(self.device, memory_format=memory_format)
            self.disc_ddp = ctx.wrap(self.disc)
            self.opt_d = make_adam(list(self.disc.parameters()), self.settings)
        self.last_logged: dict[str, float] = {}
        # What the run derived from its initial networks (codebook init, perceptual calibration):
        # set before the first step, part of the resume state, recorded in the sidecar.
        self.init_record: dict[str, Any] = {}
        self.val_history: list[list[float]] = []  # [step, validation loss] per validation point

    # -- resume state ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "tokenizer": self.tokenizer.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "last_logged": dict(self.last_logged),
            "init_record": copy.deepcopy(self.init_record),
            "val_history": [[int(step), float(loss)] for step, loss in self.val_history],
        }
        if self.perceptual is not None:
            state["perceptual_term_scales"] = self.perceptual.term_scales.detach().cpu().clone()
        if self.disc is not None and self.opt_d is not None:
            state["disc"] = self.disc.state_dict()
            state["opt_d"] = self.opt_d.state_dict()
        return state

    def load(self, state: dict[str, Any]) -> None:
        self.tokenizer.load_state_dict(state["tokenizer"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.last_logged = dict(state["last_logged"])
        self.init_record = copy.deepcopy(state["init_record"])
        self.val_history = [[int(step), float(loss)] for step, loss in state["val_history"]]
        if self.perceptual is not None:
            self.perceptual.term_scales.copy_(state["perceptual_term_scales"].to(self.perceptual.term_scales.device))
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

    # -- validation ------------------------------------------------------------------------------
    def validation_loss(self, images: np.ndarray) -> float:
        """The phase's reconstruction objective (``weighted_reconstruction``: L1 + perceptual, without
        the codebook, entropy and GAN terms) on uint8 validation ``images``, eval mode, image-weighted.

        Every rank computes it alike (no communication); the training modes are restored after.
        """
        self.tokenizer.eval()
        total = 0.0
        try:
            with torch.no_grad():
                for start in range(0, len(images), self.settings.batch_size):
                    chunk = images[start : start + self.settings.batch_size]
                    x = to_model_input(chunk, self.device).contiguous(memory_format=self.memory_format)
                    with autocast_context(self.device):
                        recon = self.tokenizer(x)[0]
                    terms = reconstruction_terms(recon, x, self.perceptual)
                    total += float(weighted_reconstruction(terms, self.params)) * len(chunk)
        finally:
            self.set_modes()
        return total / len(images)

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
                z_q = self.tokenizer.quantizer.lookup(ids).contiguous(memory_format=self.memory_format)
            return self.trainable(z_q), {}, stats

    def generator_loss(self, x: Tensor, step: int) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """Forward and loss assembly of one (micro-)batch. Returns (terms with ``total``, x_hat, stats)."""
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
        return terms, recon, stats

    def generator_step(self, x: Tensor, step: int) -> tuple[dict[str, Tensor], Tensor, dict[str, Tensor]]:
        """Forward, loss, NaN guard and backward per micro-batch, then one Adam step.

        Returns (terms, x_hat, stats): terms and stats are the micro-batches' means, x_hat the
        whole batch's reconstruction (detached).
        """
        parts = self.micro_batches(x)
        self.opt_g.zero_grad(set_to_none=True)
        terms_list, recons, stats_list = [], [], []
        for i, xi in enumerate(parts):
            with sync_gradients_if(self.trainable, sync=i == len(parts) - 1):
                terms, recon, stats = self.generator_loss(xi, step)
                guard_finite(terms, step, self.ctx)
                (terms["total"] if len(parts) == 1 else terms["total"] / len(parts)).backward()
            terms_list.append({k: v.detach() for k, v in terms.items()})
            recons.append(recon.detach())
            stats_list.append(stats)
        self.opt_g.step()
        return _mean_terms(terms_list), torch.cat(recons) if len(recons) > 1 else recons[0], _mean_terms(stats_list)

    def discriminator_step(self, real: Tensor, fake: Tensor, step: int) -> dict[str, Tensor]:
        """One discriminator update on (x, sg[x_hat]) with R1, per micro-batch; NaN-guarded."""
        assert self.disc_ddp is not None and self.opt_d is not None
        reals, fakes = self.micro_batches(real), self.micro_batches(fake)
        self.opt_d.zero_grad(set_to_none=True)
        terms_list = []
        for i, (ri, fi) in enumerate(zip(reals, fakes, strict=True)):
            with sync_gradients_if(self.disc_ddp, sync=i == len(reals) - 1):
                terms = discriminator_loss(self.disc_ddp, ri, fi, self.params, self.device)
                guard_finite({"gan_d": terms["gan_d"], "r1": terms["r1"]}, step, self.ctx)
                loss = terms["gan_d"] + terms["r1"]
                (loss if len(reals) == 1 else loss / len(reals)).backward()
            terms_list.append({k: v.detach() for k, v in terms.items()})
        self.opt_d.step()
        return _mean_terms(terms_list)

    def micro_batches(self, x: Tensor) -> list[Tensor]:
        """``x`` (this rank's batch) as ``run.accumulation_steps`` equal micro-batches."""
        parts = micro_batches(np.arange(x.shape[0]), self.accumulation_steps)
        if len(parts) == 1:
            return [x]
        return [x[int(rows[0]) : int(rows[-1]) + 1] for rows in parts]  # views; memory format kept

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

    def gather_log_values(self, terms: Mapping[str, Tensor], columns: list[str]) -> dict[str, float]:
        """The logged columns present this step as floats, averaged over ranks."""
        names = [c for c in columns if c in terms]
        stacked = torch.stack([terms[n].detach().float().to(self.device).reshape(()) for n in names])
        values = self.ctx.mean(stacked).tolist()
        return dict(zip(names, values, strict=True))


def _mean_terms(parts: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Per-key mean over micro-batches (the one dict itself when there is one, bit for bit)."""
    if len(parts) == 1:
        return parts[0]
    return {k: torch.stack([p[k].float() for p in parts]).mean() for k in parts[0]}


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
        "architecture": plain_json(raw["tokenizer"]["architecture"]),
        "quantizer": plain_json(raw["tokenizer"]["quantizer"]),
        "loss": plain_json(raw["tokenizer"]["loss"]),
        "gan": plain_json(raw["tokenizer"]["gan"]),
        # checkpoint / log cadence does not change the weights: a resumed job may alter it
        "settings": {
            k: v
            for k, v in plain_json(raw["tokenizer"][f"phase{phase}"]).items()
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
            f"{train.directory}: images are {train.resolution} px, data.resolution = {params.data.resolution}"
        )
    if len(train) == 0:
        raise ValueError(f"{train.directory}: empty training split")
    parts = ctx.world_size * params.run.accumulation_steps
    if settings.batch_size % parts:
        raise ValueError(
            f"tokenizer.phase{phase}.batch_size = {settings.batch_size}: must be divisible by the "
            f"number of processes x run.accumulation_steps ({ctx.world_size} x {params.run.accumulation_steps})"
        )


def train_tokenizer(
    params: Params,
    *,
    phase: Literal[1, 2],
    alpha: float,
    perceptual: bool,
    train_dir: str | os.PathLike[str],
    val_dir: str | os.PathLike[str],
    semantic_weights: Path | None,
    init_weights: Path | None,
    out_path: str | os.PathLike[str],
    resume_path: str | os.PathLike[str],
    log_dir: str | os.PathLike[str],
    progress: bool = True,
    run_identity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one tokenizer phase; write ``out_path`` (+ sidecar); return its metrics.

    ``perceptual=False`` is the control tokenizer (no perceptual loss at all). ``alpha`` is the
    semantic ratio of L_per^alpha (phase 2: ``tokenizer.phase2.alpha``). ``init_weights``: phase 1,
    an optional tokenizer to finetune; phase 2, the phase-1 checkpoint (required). Resumes from
    ``resume_path`` when it exists (written every ``checkpoint_every`` steps and at the end).
    ``run_identity``: the workflow's declared values of this run (:func:`seqgan.runs.run_values`),
    part of the fingerprint a resume state must match and recorded in the sidecar. ``val_dir``: the
    prepared validation split whose first ``val_images`` images give the validation curve (every
    ``val_every`` steps and at the last; ``log_dir/val.csv`` and the sidecar's ``metrics.val_curve``).
    """
    wall_start = time.perf_counter()
    alpha = check_alpha(alpha)
    settings = phase_settings(params, phase)
    ctx = init_distributed(resolve_device(params.run.device))
    try:
        train = open_image_store(train_dir)
        val = open_image_store(val_dir)
        _check_run(params, phase, train, ctx)
        val_images = _validation_images(val, settings.val_images, params.data.resolution)
        seed_everything(params.run.seed)
        tokenizer = prepare_tokenizer(params, phase, init_weights)
        use_perceptual = perceptual and params.tokenizer.loss.perceptual_weight > 0
        per_loss = build_perceptual_loss(params, alpha, semantic_weights) if use_perceptual else None
        run = TokenizerRun(params, phase, tokenizer, per_loss, ctx)
        fingerprint = _fingerprint(
            params,
            phase,
            alpha,
            perceptual,
            train,
            file_sha256(semantic_weights) if use_perceptual and semantic_weights is not None else None,
            file_sha256(init_weights) if init_weights is not None else None,
        )
        fingerprint["val_sha256"] = val.manifest["sha256"]
        if run_identity is not None:
            fingerprint["run"] = dict(run_identity)
        loop = TrainLoop(
            settings.iterations,
            settings.checkpoint_every,
            resume_path,
            run.state,
            run.load,
            fingerprint,
        )
        start = loop.start_step()
        if start == 0:
            run.init_record = initialise_run(run, train, init_weights, fingerprint["semantic_sha256"])
        metrics = _train_steps(run, loop, train, val_images, start, use_perceptual, Path(log_dir), progress)
        if not ctx.is_main:
            return metrics
        evaluation = evaluate_reconstruction(run.tokenizer, train, USAGE_EVAL_IMAGES, settings.batch_size, ctx.device)
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
            start,
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


def initialise_run(
    run: TokenizerRun, train: ImageStore, init_weights: Path | None, semantic_sha: str | None
) -> dict[str, Any]:
    """Before step 0: the codebook init and the perceptual calibration the params ask for
    (:mod:`seqgan.train.tokenizer_init`). Returns what the sidecar records."""
    params, record = run.params, {}
    fresh_phase1 = run.phase == 1 and init_weights is None
    if fresh_phase1 and params.tokenizer.quantizer.init == "encoder_samples":
        record["codebook_init"] = init_codebook(run.tokenizer, train, params, run.device)
    if run.perceptual is not None and run.perceptual.calibrated:
        if run.phase == 1:
            record["calibration"] = calibrate_perceptual(run.tokenizer, run.perceptual, train, params, run.device)
        else:
            assert init_weights is not None
            record["calibration"] = apply_phase1_calibration(run.perceptual, init_weights, semantic_sha)
    return record


def _validation_images(val: ImageStore, count: int, resolution: int) -> np.ndarray:
    """The first ``count`` validation images (uint8), checked: the curve needs real images."""
    if val.resolution != resolution:
        raise ValueError(f"{val.directory}: images are {val.resolution} px, data.resolution = {resolution}")
    if len(val) == 0:
        raise ValueError(f"{val.directory}: empty validation split (the tokenizer's validation curve needs images)")
    return np.array(val.images[: min(count, len(val))])


def _train_steps(
    run: TokenizerRun,
    loop: TrainLoop,
    train: ImageStore,
    val_images: np.ndarray,
    start: int,
    use_perceptual: bool,
    log_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    """The step loop: sample, step, log, validate, checkpoint. Returns timing and the last logged values."""
    settings, ctx = run.settings, run.ctx
    sampler = StepSampler(len(train), settings.batch_size, run.params.run.seed)
    columns = log_columns(run.phase, use_perceptual, run.disc is not None)
    logger = val_logger = None
    if ctx.is_main:
        live = open_live(log_dir, resume=start > 0)
        logger = MetricLogger(log_dir / "train.csv", columns, start_step=start, live=live)
        val_logger = MetricLogger(log_dir / "val.csv", ["val_loss"], start_step=start, live=live)
    run.set_modes()
    step_start = time.perf_counter()
    try:
        bar_on = progress and ctx.is_main
        with progress_bar(start, settings.iterations, enabled=bar_on, desc=f"tokenizer phase {run.phase}") as bar:
            for step in range(start, settings.iterations):
                idx = ctx.shard(sampler.indices(step))
                x = to_model_input(train.images[idx], ctx.device).contiguous(memory_format=run.memory_format)
                terms = run.train_step(x, step)
                completed = step + 1
                if completed == 1 or completed % settings.log_every == 0 or completed == settings.iterations:
                    run.last_logged = run.gather_log_values(terms, columns)
                    if logger is not None:
                        logger.log(completed, run.last_logged)
                    bar.set_postfix(l1=f"{run.last_logged['l1']:.4f}", refresh=False)
                if completed % settings.val_every == 0 or completed == settings.iterations:
                    val_loss = run.validation_loss(val_images)
                    run.val_history.append([completed, val_loss])
                    if val_logger is not None:
                        val_logger.log(completed, {"val_loss": val_loss})
                if ctx.is_main:
                    loop.maybe_checkpoint(completed)
                bar.update(1)
    finally:
        for open_logger in (logger, val_logger):
            if open_logger is not None:
                open_logger.close()
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
    resumed_from_step: int,
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
            "schedule": "cosine lr -> end_lr over the iterations" if settings.lr_decay == "cosine" else "constant lr",
            "device": str(run.device),
            "compute": compute_record(run.device, run.memory_format),
            "world_size": run.ctx.world_size,
            "accumulation_steps": run.accumulation_steps,
            "resumed_from_step": int(resumed_from_step),
            "train_dir": str(train_dir),
            "semantic_weights": str(semantic_weights) if semantic_weights else None,
            "init_weights": str(init_weights) if init_weights else None,
            **copy.deepcopy(run.init_record),
        },
        "metrics": {
            "final_losses": dict(run.last_logged),
            # every validation point, for the plateau rule (seqgan/report/convergence.py)
            "val_curve": {"step": [int(s) for s, _ in run.val_history], "val_loss": [v for _, v in run.val_history]},
            "val_curve_definition": (
                f"l1_weight x L1 + perceptual_weight x L_per^alpha (the run's calibrated perceptual term; L1 alone "
                f"without one) of the first {settings.val_images} validation images, eval mode, every "
                f"{settings.val_every} steps and at the last"
            ),
            "train_eval": evaluation,
            "train_eval_definition": evaluation_definition(
                int(evaluation["count"]), params.data.resolution, params.data.resolution
            ),
            "final_losses_definition": "loss terms of the last training step (train.csv columns)",
        },
    }
