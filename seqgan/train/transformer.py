"""Train SeQ-GAN's generative transformers (AR and NAR) on pre-extracted token ids.

Objective (one definition, in :mod:`seqgan.nets.transformer`; this module only feeds it):

    AR:   ar_loss            next-token cross-entropy over all N positions of each sequence
    NAR:  nar_loss_with_mask cross-entropy over the [MASK]ed positions only; the mask of training
                             step s is ``random_masks`` drawn from a generator seeded by (seed, s)

Both are in nats per token. A validation point (supplement Fig. 2) is the mean cross-entropy per
scored token over the first ``transformer.val_batches x batch_size`` validation sequences (all of
them if fewer), in eval mode (no dropout), token-weighted (sum over every scored token / their
count, so it does not depend on how the set is cut into batches). NAR points are scored on ONE
fixed mask set (``make_fixed_masks`` seeded from ``run.seed``), so every point of a curve -- and
every curve of an alpha sweep run with the same seed -- scores the same positions.

Baselines (reported beside every validation loss), computed once at the start on
the SAME validation sequences: ``unigram_cross_entropy(train tokens, val tokens, K)`` (a model
that ignores context and class) and ``token_entropy(val tokens)``. A transformer that learned
anything beyond code frequencies ends below the unigram cross-entropy.

Choices, and why:

- Optimiser: AdamW(lr, betas = (beta1, beta2), eps = 1e-8) from ``transformer.optimizer``
  (supplement Table 4: 1e-4, (0.9, 0.96), weight decay 1e-2). Weight decay applies to the weight
  matrices of the linear layers only (attention qkv / out projections, MLP, head); biases,
  LayerNorm parameters, the token embedding and the position embedding are not decayed (the
  minGPT / taming-transformers convention: decaying embeddings shrinks rarely used codes' vectors
  towards zero, and norms / biases are not "weights" that decay is meant to regularise). Dropout
  is ``transformer.sizes.<size>.dropout``. No gradient clipping and no warm-up: the paper states
  neither.
- Learning rate, a pure function of the 0-based step s (so resume needs no scheduler state); T =
  the objective's iterations, s0 = its ``decay_start``, lr = ``transformer.optimizer.lr`` (see
  :func:`lr_at`)::

      constant:     lr
      exponential:  lr                                   s <= s0     (AR in Table 4)
                    lr * (end_lr / lr) ** ((s - s0) / (T - 1 - s0))   s >= s0
      linear:       lr                                   s <= s0     (NAR in Table 4)
                    lr + (end_lr - lr) * (s - s0) / (T - 1 - s0)       s >= s0

  so the last iteration (s = T - 1) runs at exactly ``end_lr``; with ``decay_start >= T - 1``
  the decay never starts. Exponential decay needs ``end_lr > 0``.
- Data: the global batch of step s is ``StepSampler(len(train), batch_size, run.seed)
  .indices(s)``; ids are flattened to (B, h*w) int64 in raster order; labels come from the token
  split when ``transformer.conditional`` (``transformer.num_classes`` must equal the largest
  label of the train and val splits + 1).
- Logging: ``log_dir/train.csv`` = step, loss (this step's training loss), lr -- every step;
  ``log_dir/curve.csv`` = step, train_loss (mean training loss of the steps since the previous
  point), val_loss -- every ``transformer.eval_every`` steps and at the last step (the figure
  reads this file); both also to DVCLive in ``log_dir``. Rows logged after the last checkpoint
  of a killed run are dropped when it resumes, so a resumed curve equals an uninterrupted one.
- Resume: a :class:`TrainLoop` state every ``transformer.checkpoint_every`` steps and at the end
  (model, optimizer, global RNGs, step, the running train-loss window and best validation loss);
  its fingerprint covers every setting that changes the weights or the curve and the SHA-256 of
  both token splits. Resume is bit-exact on CPU at a fixed thread count (tested with a real kill);
  on CUDA it is exact up to GPU kernel non-determinism.
- Device: ``run.device``; bf16 autocast on CUDA, fp32 on CPU. ``compile_model=True`` wraps the
  training forward in ``torch.compile`` on CUDA (ignored on CPU; params key ``run.compile``, an
  execution setting like the device: it changes speed, not the result beyond kernel rounding, so it
  reruns no rule; the sidecar records ``training.compiled``). Validation always runs the plain model.
- Distributed: under ``torchrun`` (WORLD_SIZE > 1; ``run.gpus_per_job`` > 1 in the workflow; the
  plumbing is :mod:`seqgan.train.distributed`) every rank takes a contiguous 1/world slice of the
  same global batch, and of the same global NAR mask; each rank's loss is scaled by its share of
  the globally scored tokens, so DistributedDataParallel's gradient average equals the
  single-process token-weighted loss. Validation is split across ranks and its sums all-reduced.
  A non-finite loss on any rank stops every rank. Only rank 0 writes logs, checkpoints and weights.
  With dropout 0 the loss trajectory equals the single-process one up to float rounding (tested
  with 2 gloo ranks). Dropout: every rank starts from the same seeded RNG, so before each step
  each rank reseeds torch from (run.seed, rank, step) -- otherwise rank r's rows would draw the
  very masks rank 0's rows draw; the masks then differ from a single process's draws (same
  distribution), and resume stays exact because they are a pure function of the step.
- Gradient accumulation (``run.accumulation_steps`` = A): each rank's slice runs as A equal
  micro-batches, each weighted by its share of the globally scored tokens, DDP synchronising only
  after the last; one optimiser step. The summed gradient is the one-batch gradient up to float
  rounding (tests/test_accumulation.py); recorded as training.accumulation_steps.

Final weights: ``save_weights(out_path, model.state_dict(), sidecar)``; the sidecar holds the
:class:`TransformerConfig` (``load_transformer_checkpoint`` rebuilds the model from it alone), the
objective, size, step, the training settings and the metrics (final / best validation loss, final
training-window loss, the two baselines, the number of validation sequences and the identity of the
token splits: their tokenizer, source split and array hashes).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import Tensor, nn

from seqgan.artefacts.checkpoints import load_weights, save_weights
from seqgan.artefacts.tokens import (
    TokenSplit,
    open_token_split,
    token_entropy,
    unigram_cross_entropy,
)
from seqgan.config import ArParams, NarParams, Params
from seqgan.nets.common import count_parameters
from seqgan.nets.transformer import (
    GenerativeTransformer,
    TransformerConfig,
    ar_loss,
    make_fixed_masks,
    nar_loss_with_mask,
    random_masks,
)
from seqgan.nets.transformer_factory import build_transformer, tokens_per_image
from seqgan.progress import progress as progress_bar
from seqgan.runs import run_values
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

__all__ = [
    "CURVE_COLUMNS",
    "TRAIN_COLUMNS",
    "WEIGHTS_KIND",
    "TransformerRun",
    "ValidationSet",
    "batch_ids",
    "batch_labels",
    "load_transformer_checkpoint",
    "lr_at",
    "objective_loss",
    "objective_settings",
    "param_groups",
    "train_transformer",
    "training_mask",
    "validation_loss",
    "validation_set",
]

Objective = Literal["ar", "nar"]
Size = Literal["base", "large"]
ObjectiveSettings = ArParams | NarParams

WEIGHTS_KIND = "transformer"
TRAIN_COLUMNS = ("loss", "lr")
CURVE_COLUMNS = ("train_loss", "val_loss")  # curve.csv header: step,train_loss,val_loss
# Independent random streams derived from run.seed (NumPy SeedSequence keys).
_TRAIN_MASK_STREAM = 1
_VAL_MASK_STREAM = 2
_DROPOUT_STREAM = 3  # per-rank dropout seeds under torchrun (module doc, Distributed)


# --------------------------------------------------------------------------------------------
# Schedule and settings
# --------------------------------------------------------------------------------------------


def lr_at(step: int, base_lr: float, decay: str, end_lr: float, decay_start: int, total: int) -> float:
    """Learning rate of the 0-based ``step`` of ``total``: constant up to ``decay_start``, then
    ``exponential`` or ``linear`` decay reaching ``end_lr`` at the last step (``total - 1``);
    ``constant`` ignores ``end_lr``. Steps past the end stay at ``end_lr``. See the module doc."""
    if decay not in ("constant", "exponential", "linear"):
        raise ValueError(f"unknown lr decay {decay!r}: expected exponential, linear or constant")
    if total <= 0:
        raise ValueError(f"total steps must be positive, got {total}")
    if step < 0 or decay_start < 0:
        raise ValueError(f"step ({step}) and decay_start ({decay_start}) must be >= 0")
    if decay == "exponential" and (base_lr <= 0 or end_lr <= 0):
        raise ValueError(f"exponential lr decay needs lr > 0 and end_lr > 0, got lr = {base_lr}, end_lr = {end_lr}")
    if decay == "constant" or step <= decay_start:
        return float(base_lr)
    span = total - 1 - decay_start
    progress_ = 1.0 if span <= 0 else (step - decay_start) / span
    if progress_ >= 1.0:
        return float(end_lr)  # exactly, not up to rounding
    if decay == "linear":
        return float(base_lr + (end_lr - base_lr) * progress_)
    return float(base_lr * (end_lr / base_lr) ** progress_)


def objective_settings(params: Params, objective: Objective) -> ObjectiveSettings:
    """``transformer.ar`` or ``transformer.nar`` (batch, iterations, lr schedule, ...)."""
    if objective not in ("ar", "nar"):
        raise ValueError(f"objective must be 'ar' or 'nar', got {objective!r}")
    return getattr(params.transformer, objective)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay the weight matrices of linear layers; not biases, norms or embeddings (module doc)."""
    decay_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in decay_ids], "weight_decay": float(weight_decay)},
        {"params": [p for p in params if id(p) not in decay_ids], "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, params: Params) -> torch.optim.AdamW:
    opt = params.transformer.optimizer
    return torch.optim.AdamW(param_groups(model, opt.weight_decay), lr=opt.lr, betas=(opt.beta1, opt.beta2), eps=1e-8)


def _stream_seed(*key: int) -> int:
    """A 64-bit torch seed for the random stream named by ``key`` (e.g. (seed, stream, step))."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0])


def training_mask(seed: int, step: int, batch_size: int, seq_len: int, schedule: str) -> Tensor:
    """The NAR mask (B, N) bool of the GLOBAL batch of ``step``: a pure function of (seed, step),
    so a resumed run and every rank of a distributed one draw exactly the same masks."""
    generator = torch.Generator().manual_seed(_stream_seed(seed, _TRAIN_MASK_STREAM, step))
    return random_masks(batch_size, seq_len, generator, schedule)  # type: ignore[arg-type]


def batch_ids(split: TokenSplit, indices: np.ndarray) -> Tensor:
    """Token ids of ``indices`` flattened in raster order: (B, h, w) uint16 -> (B, h*w) int64."""
    ids = np.asarray(split.tokens[indices], dtype=np.int64)
    return torch.from_numpy(ids.reshape(len(indices), -1))


def batch_labels(split: TokenSplit, indices: np.ndarray, conditional: bool) -> Tensor | None:
    return torch.from_numpy(np.asarray(split.labels[indices], dtype=np.int64)) if conditional else None


# --------------------------------------------------------------------------------------------
# Loss and validation
# --------------------------------------------------------------------------------------------


class _WrappedForward:
    """What the nets' loss functions read from a model (``config``, ``special_id``), with the call
    going through the training wrapper (DDP must see the forward to synchronise gradients;
    ``torch.compile`` to use its graph). Neither wrapper exposes the model's attributes."""

    def __init__(self, model: GenerativeTransformer, forward: Callable[..., Tensor]):
        self.config = model.config
        self.special_id = model.special_id
        self._forward = forward

    def __call__(self, ids: Tensor, labels: Tensor | None) -> Tensor:
        return self._forward(ids, labels)


def objective_loss(model: Any, ids: Tensor, labels: Tensor | None, mask: Tensor | None) -> Tensor:
    """Mean cross-entropy (nats/token) of the model's objective: AR over all positions, NAR over
    ``mask`` (B, N)."""
    if model.config.causal:
        return ar_loss(model, ids, labels)
    if mask is None:
        raise ValueError("a NAR loss needs a mask")
    return nar_loss_with_mask(model, ids, labels, mask)


def scored_tokens(ids: Tensor, mask: Tensor | None) -> int:
    """How many positions the loss averages over: all (AR) or the masked ones (NAR)."""
    return int(ids.numel()) if mask is None else int(mask.sum())


@dataclass(frozen=True)
class ValidationSet:
    """The fixed held-out sequences of a validation curve (CPU tensors).

    ids (n, N) int64; labels (n,) int64 or None (unconditional); masks (n, N) bool (NAR) or None.
    """

    ids: Tensor
    labels: Tensor | None
    masks: Tensor | None

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def validation_set(
    val: TokenSplit, count: int, *, conditional: bool, objective: Objective, seed: int, schedule: str
) -> ValidationSet:
    """The first ``count`` sequences of ``val`` (all if fewer) and, for NAR, their fixed masks."""
    n = min(int(count), len(val))
    if n <= 0:
        raise ValueError(f"{val.directory}: no validation sequences")
    idx = np.arange(n, dtype=np.int64)
    ids = batch_ids(val, idx)
    masks = None
    if objective == "nar":
        masks = make_fixed_masks(n, ids.shape[1], _stream_seed(seed, _VAL_MASK_STREAM), schedule)  # type: ignore[arg-type]
    return ValidationSet(ids=ids, labels=batch_labels(val, idx, conditional), masks=masks)


@torch.no_grad()
def validation_loss(
    model: GenerativeTransformer,
    vset: ValidationSet,
    batch_size: int,
    device: torch.device | str = "cpu",
    ctx: Distributed | None = None,
) -> float:
    """Mean cross-entropy per scored token over ``vset``, eval mode (the caller's mode restored).

    Token-weighted: sum of every scored token's loss / number of scored tokens. With a distributed
    ``ctx`` each rank scores a contiguous part and the sums are all-reduced (every rank must call).
    """
    device = torch.device(device)
    rows = np.arange(len(vset))
    if ctx is not None and ctx.enabled:
        rows = np.array_split(rows, ctx.world_size)[ctx.rank]
    total = torch.zeros(2, dtype=torch.float64)  # (sum of losses, scored tokens)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(rows), batch_size):
            sel = torch.from_numpy(rows[start : start + batch_size])
            ids = vset.ids[sel].to(device)
            labels = None if vset.labels is None else vset.labels[sel].to(device)
            mask = None if vset.masks is None else vset.masks[sel].to(device)
            with autocast_context(device):
                loss = objective_loss(model, ids, labels, mask)
            count = scored_tokens(ids, mask)
            total += torch.tensor([float(loss) * count, count], dtype=torch.float64)
    finally:
        model.train(was_training)
    if ctx is not None and ctx.enabled:
        reduced = total.to(ctx.device)
        torch_dist.all_reduce(reduced)
        total = reduced.cpu()
    return float(total[0] / total[1])


# --------------------------------------------------------------------------------------------
# Checks, fingerprint, provenance
# --------------------------------------------------------------------------------------------


def _label_classes(train: TokenSplit, val: TokenSplit) -> int:
    """Largest label over both splits + 1 (the class count the splits imply)."""
    lows = [int(s.labels.min()) for s in (train, val)]
    if min(lows) < 0:
        raise ValueError(f"negative class labels in {train.directory} or {val.directory}")
    return max(int(s.labels.max()) for s in (train, val)) + 1


def _check_run(params: Params, objective: Objective, train: TokenSplit, val: TokenSplit, ctx: Distributed) -> None:
    """Fail before any work on data or settings this run cannot use, naming the key to fix."""
    settings = objective_settings(params, objective)
    k = params.tokenizer.architecture.codebook_size
    n = tokens_per_image(params)
    for split in (train, val):
        if len(split) == 0:
            raise ValueError(f"{split.directory}: empty token split")
        if split.codebook_size != k:
            raise ValueError(
                f"{split.directory}: tokens of a {split.codebook_size}-code tokenizer, but "
                f"tokenizer.architecture.codebook_size = {k}"
            )
        h, w = split.grid
        if h * w != n:
            raise ValueError(
                f"{split.directory}: {h}x{w} = {h * w} tokens per image, but params imply {n} "
                "(data.resolution / tokenizer compression from tokenizer.architecture.channel_mult)"
            )
    train_tok = (train.manifest.get("tokenizer") or {}).get("sha256")
    val_tok = (val.manifest.get("tokenizer") or {}).get("sha256")
    if train_tok and val_tok and train_tok != val_tok:
        raise ValueError(
            f"{train.directory} and {val.directory} were encoded by different tokenizers "
            f"(sha256 {train_tok[:12]} vs {val_tok[:12]}); validate on the same tokenizer's tokens"
        )
    if params.transformer.conditional:
        classes = _label_classes(train, val)
        if classes != params.transformer.num_classes:
            raise ValueError(
                f"transformer.num_classes = {params.transformer.num_classes}: the token splits' labels "
                f"imply {classes} classes (largest label + 1 over {train.directory} and "
                f"{val.directory}); set transformer.num_classes = {classes}"
            )
    if settings.lr_decay == "exponential" and settings.end_lr <= 0:
        raise ValueError(
            f"transformer.{objective}.end_lr = {settings.end_lr}: exponential decay needs end_lr > 0 "
            "(use lr_decay: linear to decay to 0)"
        )
    parts = ctx.world_size * params.run.accumulation_steps
    if settings.batch_size % parts:
        raise ValueError(
            f"transformer.{objective}.batch_size = {settings.batch_size}: must be divisible by the "
            f"number of processes x run.accumulation_steps ({ctx.world_size} x {params.run.accumulation_steps})"
        )


def _plain(value: Any) -> Any:
    """A JSON round trip: tuples become lists, so params and sidecars compare equal."""
    return json.loads(json.dumps(value))


def _schedule_settings(params: Params, objective: Objective) -> dict[str, Any]:
    """The objective's settings that change the weights (sampling settings excluded)."""
    s = objective_settings(params, objective)
    out: dict[str, Any] = {
        "batch_size": s.batch_size,
        "iterations": s.iterations,
        "lr_decay": s.lr_decay,
        "end_lr": s.end_lr,
        "decay_start": s.decay_start,
    }
    if isinstance(s, NarParams):
        out["mask_schedule"] = s.mask_schedule
    return out


def _fingerprint(
    params: Params,
    objective: Objective,
    size: Size,
    config: TransformerConfig,
    train: TokenSplit,
    val: TokenSplit,
) -> dict[str, Any]:
    """Everything that makes two runs the same run (weights and curve); checkpoint cadence is
    left out, so a resumed job may change it."""
    t = params.transformer
    return {
        "objective": objective,
        "size": size,
        "run": run_values(f"train_{objective}", params.raw, {"size": size}, gates=False),
        "config": dataclasses.asdict(config),
        "optimizer": _plain(params.raw["transformer"]["optimizer"]),
        "schedule": _schedule_settings(params, objective),
        "eval_every": t.eval_every,
        "val_batches": t.val_batches,
        "seed": int(params.run.seed),
        "train_tokens_sha256": train.manifest["tokens_sha256"],
        "train_labels_sha256": train.manifest["labels_sha256"],
        "val_tokens_sha256": val.manifest["tokens_sha256"],
        "val_labels_sha256": val.manifest["labels_sha256"],
    }


def _split_identity(split: TokenSplit) -> dict[str, Any]:
    """Which tokenizer produced a token split, from which images, and the arrays' hashes."""
    m = split.manifest
    return {
        "directory": str(split.directory),
        "count": len(split),
        "tokenizer": m.get("tokenizer"),
        "source": m.get("source"),
        "tokens_sha256": m["tokens_sha256"],
        "labels_sha256": m["labels_sha256"],
    }


# --------------------------------------------------------------------------------------------
# One training run
# --------------------------------------------------------------------------------------------


class TransformerRun:
    """Model, optimiser and the running statistics of one transformer training run."""

    def __init__(
        self,
        params: Params,
        objective: Objective,
        size: Size,
        ctx: Distributed,
        compile_model: bool = False,
    ):
        self.params = params
        self.objective = objective
        self.size = size
        self.settings = objective_settings(params, objective)
        self.ctx = ctx
        self.device = ctx.device
        self.model = build_transformer(params, size, objective).to(self.device)
        self.optimizer = make_optimizer(self.model, params)
        self.accumulation_steps = params.run.accumulation_steps
        self.ddp: nn.Module = ctx.wrap(self.model)
        forward: nn.Module = self.ddp
        self.compiled = compile_model and self.device.type == "cuda"
        if self.compiled:
            forward = torch.compile(forward)  # type: ignore[assignment]
        self.forward = self.model if forward is self.model else _WrappedForward(self.model, forward)
        # running statistics (part of the resume state)
        self.window_sum = 0.0  # training losses since the last validation point
        self.window_count = 0
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_train_loss: float | None = None
        self.val_history: list[list[float]] = []  # [step, val_loss] per validation point

    @property
    def conditional(self) -> bool:
        return self.model.config.num_classes > 0

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "window_sum": float(self.window_sum),
            "window_count": int(self.window_count),
            "best_val_loss": self.best_val_loss,
            "last_val_loss": self.last_val_loss,
            "last_train_loss": self.last_train_loss,
            "val_history": [[int(step), float(loss)] for step, loss in self.val_history],
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.window_sum = float(state["window_sum"])
        self.window_count = int(state["window_count"])
        self.best_val_loss = state["best_val_loss"]
        self.last_val_loss = state["last_val_loss"]
        self.last_train_loss = state["last_train_loss"]
        self.val_history = [[int(step), float(loss)] for step, loss in state["val_history"]]

    def set_lr(self, step: int) -> float:
        s = self.settings
        lr = lr_at(step, self.params.transformer.optimizer.lr, s.lr_decay, s.end_lr, s.decay_start, s.iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def global_batch(
        self, train: TokenSplit, sampler: StepSampler, step: int
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """ids (B, N), labels (B,) | None and NAR mask (B, N) | None of step's GLOBAL batch."""
        idx = sampler.indices(step)
        ids = batch_ids(train, idx)
        mask = None
        if self.objective == "nar":
            mask = training_mask(
                self.params.run.seed, step, ids.shape[0], ids.shape[1], self.params.transformer.nar.mask_schedule
            )
        return ids, batch_labels(train, idx, self.conditional), mask

    def train_step(self, ids: Tensor, labels: Tensor | None, mask: Tensor | None, step: int) -> float:
        """One optimiser step on the global batch; returns its loss (nats/token, all ranks).

        The rank's rows run as ``run.accumulation_steps`` micro-batches whose gradients add up
        before the step; each micro-batch's loss is scaled by its share of the globally scored
        tokens (times the world size, which DDP's average divides out), so the summed gradient is
        the single-process token-weighted mean over the whole global batch.
        """
        ctx = self.ctx
        parts = micro_batches(ctx.shard(np.arange(ids.shape[0])), self.accumulation_steps)
        weighted = ctx.enabled or len(parts) > 1
        global_tokens = scored_tokens(ids, mask)
        if ctx.enabled:  # independent dropout masks per rank, a pure function of the step
            torch.manual_seed(_stream_seed(self.params.run.seed, _DROPOUT_STREAM, ctx.rank, step))
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for i, rows in enumerate(parts):
            local_ids = ids[rows].to(self.device)
            local_labels = None if labels is None else labels[rows].to(self.device)
            local_mask = None if mask is None else mask[rows].to(self.device)
            with sync_gradients_if(self.ddp, sync=i == len(parts) - 1):
                with autocast_context(self.device):
                    loss = objective_loss(self.forward, local_ids, local_labels, local_mask)
                if weighted:
                    # weight each micro-batch by its share of the globally scored tokens: NAR
                    # micro-batches mask unequal counts
                    loss = loss * (scored_tokens(local_ids, local_mask) * ctx.world_size / global_tokens)
                guard_finite({"cross_entropy": loss}, step, ctx)
                loss.backward()
            total = total + loss.detach().float() if weighted else loss.detach()
        self.optimizer.step()
        value = float(ctx.mean(total.reshape(1))) if ctx.enabled else float(total)
        self.window_sum += value
        self.window_count += 1
        return value

    def close_window(self, step: int, val_loss: float) -> float:
        """A validation point after ``step`` steps: the mean training loss since the previous one;
        reset the window and remember the point (the sidecar's validation curve)."""
        train_loss = self.window_sum / max(1, self.window_count)
        self.window_sum, self.window_count = 0.0, 0
        self.last_train_loss = train_loss
        self.last_val_loss = val_loss
        self.val_history.append([int(step), float(val_loss)])
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
        return train_loss


def train_transformer(
    params: Params,
    *,
    objective: Objective,
    size: Size,
    train_tokens: str | os.PathLike[str],
    val_tokens: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    resume_path: str | os.PathLike[str],
    log_dir: str | os.PathLike[str],
    progress: bool = True,
    compile_model: bool = False,
) -> dict[str, Any]:
    """Train one generative transformer on a token split; write ``out_path`` (+ sidecar); return
    its metrics.

    Writes ``log_dir/train.csv``, ``log_dir/curve.csv`` and DVCLive files (module doc). Resumes from
    ``resume_path`` when it exists (written every ``transformer.checkpoint_every`` steps and at the
    end, and left in place). ``compile_model``: ``torch.compile`` the training forward on CUDA.
    """
    wall_start = time.perf_counter()
    settings = objective_settings(params, objective)
    if size not in ("base", "large"):
        raise ValueError(f"size must be 'base' or 'large', got {size!r}")
    ctx = init_distributed(resolve_device(params.run.device))
    try:
        train = open_token_split(train_tokens)
        val = open_token_split(val_tokens)
        _check_run(params, objective, train, val, ctx)
        seed_everything(params.run.seed)
        run = TransformerRun(params, objective, size, ctx, compile_model)
        vset = validation_set(
            val,
            params.transformer.val_batches * settings.batch_size,
            conditional=run.conditional,
            objective=objective,
            seed=params.run.seed,
            schedule=params.transformer.nar.mask_schedule,
        )
        k = params.tokenizer.architecture.codebook_size
        baselines = {
            "unigram_cross_entropy": unigram_cross_entropy(train.tokens, vset.ids.numpy(), k),
            "val_token_entropy": token_entropy(vset.ids.numpy(), k),
        }
        fingerprint = _fingerprint(params, objective, size, run.model.config, train, val)
        loop = TrainLoop(
            settings.iterations, params.transformer.checkpoint_every, resume_path, run.state, run.load, fingerprint
        )
        start = loop.start_step()
        timing = _train_steps(run, loop, train, vset, start, Path(log_dir), progress)
        metrics = {
            "final_val_loss": run.last_val_loss,
            "best_val_loss": run.best_val_loss,
            "final_train_loss": run.last_train_loss,
            # every validation point, for the plateau rule and the endpoint (seqgan/report/convergence.py)
            "val_curve": {"step": [int(s) for s, _ in run.val_history], "val_loss": [v for _, v in run.val_history]},
            **baselines,
            "val_sequences": len(vset),
            "tokens": {"train": _split_identity(train), "val": _split_identity(val)},
        }
        if ctx.is_main:
            save_weights(
                out_path, run.model.state_dict(), _sidecar(run, fingerprint, metrics, train_tokens, val_tokens, start)
            )
        return {
            **metrics,
            "step": settings.iterations,
            "resumed_from_step": start,
            "num_parameters": count_parameters(run.model),
            "wall_seconds": time.perf_counter() - wall_start,
            **timing,
        }
    finally:
        close_distributed(ctx)


def _train_steps(
    run: TransformerRun,
    loop: TrainLoop,
    train: TokenSplit,
    vset: ValidationSet,
    start: int,
    log_dir: Path,
    progress: bool,
) -> dict[str, float]:
    """The step loop: lr, batch, step, log, validate, checkpoint. Returns timing."""
    params, ctx, settings = run.params, run.ctx, run.settings
    total, eval_every = settings.iterations, params.transformer.eval_every
    sampler = StepSampler(len(train), settings.batch_size, params.run.seed)
    train_log = curve_log = None
    if ctx.is_main:
        live = open_live(log_dir, resume=start > 0)
        train_log = MetricLogger(log_dir / "train.csv", TRAIN_COLUMNS, start_step=start, live=live)
        curve_log = MetricLogger(log_dir / "curve.csv", CURVE_COLUMNS, start_step=start, live=live)
    run.model.train()
    step_start = time.perf_counter()
    try:
        desc = f"{run.objective} transformer ({run.size})"
        with progress_bar(start, total, enabled=progress and ctx.is_main, desc=desc) as bar:
            for step in range(start, total):
                lr = run.set_lr(step)
                ids, labels, mask = run.global_batch(train, sampler, step)
                loss = run.train_step(ids, labels, mask, step)
                completed = step + 1
                if train_log is not None:
                    train_log.log(completed, {"loss": loss, "lr": lr})
                if completed % eval_every == 0 or completed == total:
                    val_loss = validation_loss(run.model, vset, settings.batch_size, run.device, ctx)
                    train_loss = run.close_window(completed, val_loss)
                    if curve_log is not None:
                        curve_log.log(completed, {"train_loss": train_loss, "val_loss": val_loss})
                    bar.set_postfix(val=f"{val_loss:.4f}", refresh=False)
                if ctx.is_main:
                    loop.maybe_checkpoint(completed)
                bar.update(1)
    finally:
        for logger in (train_log, curve_log):
            if logger is not None:
                logger.close()
    steps_done = total - start
    elapsed = time.perf_counter() - step_start
    return {"seconds_per_step": elapsed / steps_done if steps_done else math.nan}


def _sidecar(
    run: TransformerRun,
    fingerprint: Mapping[str, Any],
    metrics: Mapping[str, Any],
    train_tokens: str | os.PathLike[str],
    val_tokens: str | os.PathLike[str],
    resumed_from_step: int,
) -> dict[str, Any]:
    s = run.settings
    opt = run.params.transformer.optimizer
    schedule = {
        "constant": "constant lr",
        "exponential": f"constant lr to step {s.decay_start}, then exponential decay to end_lr at the last step",
        "linear": f"constant lr to step {s.decay_start}, then linear decay to end_lr at the last step",
    }[s.lr_decay]
    return {
        "kind": WEIGHTS_KIND,
        "objective": run.objective,
        "size": run.size,
        "config": dataclasses.asdict(run.model.config),
        "step": s.iterations,
        "num_parameters": count_parameters(run.model),
        "training": {
            **_plain(dict(fingerprint)),
            "optimizer_description": (
                f"AdamW(betas=({opt.beta1}, {opt.beta2}), eps=1e-8), weight decay {opt.weight_decay} "
                "on linear-layer weight matrices only (not biases, LayerNorms, token / position embeddings)"
            ),
            "schedule_description": schedule,
            "device": str(run.device),
            "compute": compute_record(run.device),
            "compiled": run.compiled,
            "world_size": run.ctx.world_size,
            "accumulation_steps": run.accumulation_steps,
            "resumed_from_step": int(resumed_from_step),
            "train_tokens": str(train_tokens),
            "val_tokens": str(val_tokens),
        },
        "metrics": _plain(dict(metrics)),
        "metrics_definition": (
            "val_loss: mean cross-entropy (nats per scored token, token-weighted) on the first "
            "val_sequences validation sequences, eval mode; NAR scores only masked positions of a "
            "fixed seeded mask set. train_loss: mean per-step training loss since the previous "
            "validation point. unigram_cross_entropy / val_token_entropy: of the same validation "
            "sequences' tokens (add-one smoothed train unigram; plug-in entropy)."
        ),
    }


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _config_keys(size: str) -> dict[str, str]:
    """The params key(s) behind each TransformerConfig field (for mismatch messages)."""
    return {
        "vocab_size": "tokenizer.architecture.codebook_size",
        "seq_len": "data.resolution (with tokenizer.architecture.channel_mult: tokens per image)",
        "num_classes": "transformer.num_classes (with transformer.conditional)",
        "layers": f"transformer.sizes.{size}.layers",
        "heads": f"transformer.sizes.{size}.heads",
        "dim": f"transformer.sizes.{size}.dim",
        "mlp_dim": f"transformer.sizes.{size}.mlp_dim",
        "dropout": f"transformer.sizes.{size}.dropout",
        "causal": "the objective (ar = causal)",
    }


def load_transformer_checkpoint(
    path: str | os.PathLike[str],
    params: Params,
    device: str | torch.device = "cpu",
    *,
    strict: bool = True,
) -> tuple[GenerativeTransformer, dict[str, Any]]:
    """Rebuild a trained transformer (eval mode, frozen) from its weights + sidecar.

    The network is built from the sidecar's config, so a checkpoint loads even after params
    changed; with ``strict`` (default) that config must equal what ``build_transformer(params,
    size, objective)`` would build, else a ValueError names the params key that differs.
    """
    state, sidecar = load_weights(path, device="cpu")
    if sidecar.get("kind") != WEIGHTS_KIND:
        raise ValueError(f"{path}: sidecar kind is {sidecar.get('kind')!r}, expected {WEIGHTS_KIND!r}")
    stored = dict(sidecar["config"])
    config = TransformerConfig(**stored)
    if strict:
        size, objective = sidecar["size"], sidecar["objective"]
        with torch.device("meta"):
            expected = dataclasses.asdict(build_transformer(params, size, objective).config)
        keys = _config_keys(size)
        for field, ours in expected.items():
            if stored.get(field) != ours:
                raise ValueError(
                    f"{path}: {keys[field]} gives {field} = {ours!r} in params, but the {objective} "
                    f"transformer ({size}) was trained with {stored.get(field)!r}; use the params it "
                    "was trained with, or load_transformer_checkpoint(..., strict=False) to load it as stored"
                )
    model = GenerativeTransformer(config)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    return model.to(device), sidecar
