"""Gradient accumulation (run.accumulation_steps): A micro-batches == one batch A times as large.

In-process, on CPU, without dropout: the same global batch taken as one batch and as 2 (or 4)
micro-batches must give the same optimiser steps. Tolerance: the micro-batches sum the same
per-example terms in another order, so float32 results differ in the last bits. Measured on this
project's CPU (AMD EPYC, torch 2.14.1): first-step gradients 1.9e-7 to 1.2e-6 of the largest
gradient, weights after 5-6 Adam steps 3e-7 to 4.6e-6 of the largest weight (Adam turns tiny
gradient differences of near-zero entries into lr-sized ones, hence the looser weight tolerance).
A real fault is orders of magnitude larger: unweighted NAR micro-batch means are off by ~1e-2 in
the loss, and a missing division by the micro-batch count doubles every gradient -- which the
weights hardly show, since Adam's step is scale-invariant, so gradients are compared directly.
The tokenizer's entropy regulariser and adaptive GAN weight are batch statistics and left off here,
as in tests/test_distributed.py, which also runs 2 gloo ranks x 2 micro-batches (DDP's no_sync
path) against one process.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from test_distributed import REPO, token_ids, tokenizer_raw, transformer_raw

from seqgan.config import ParamsError, validate_params
from seqgan.train.distributed import Distributed, micro_batches
from seqgan.train.tokenizer import TokenizerRun
from seqgan.train.tokenizer_model import prepare_tokenizer
from seqgan.train.transformer import TransformerRun, training_mask

CPU = Distributed.single(torch.device("cpu"))
RTOL = 1e-5  # logged losses
GRAD_TOL = 1e-5  # one step's gradients, of the largest
WEIGHT_TOL = 1e-4  # weights after a few Adam steps, of the largest (as tests/test_distributed.py)


def with_accumulation(raw: dict[str, Any], steps: int) -> Any:
    raw = copy.deepcopy(raw)
    raw["run"].update(gpus_per_job=1, accumulation_steps=steps)
    return validate_params(raw)


def assert_states_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str, tol: float) -> None:
    """Every entry within ``tol`` of the largest magnitude (weights, or one step's gradients)."""
    assert a.keys() == b.keys() and a
    scale = max(float(t.abs().max()) for t in a.values() if t.is_floating_point())
    worst = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert worst <= tol * scale, f"{what}: differ by {worst} (largest magnitude {scale})"


def gradients(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The gradients the last optimiser step used (kept until the next step's zero_grad)."""
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


def test_micro_batches_are_equal_consecutive_slices() -> None:
    parts = micro_batches(np.arange(8, 16), 4)
    assert [p.tolist() for p in parts] == [[8, 9], [10, 11], [12, 13], [14, 15]]
    with pytest.raises(ValueError, match=r"run\.accumulation_steps = 3"):
        micro_batches(np.arange(8), 3)


def test_batch_sizes_must_split_into_gpus_times_micro_batches() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"].update(gpus_per_job=2, accumulation_steps=3)
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    assert any(p.startswith("tokenizer.phase1.batch_size = 16") and "2 x 3" in p for p in info.value.problems), (
        info.value.problems
    )
    raw["run"]["accumulation_steps"] = 0
    with pytest.raises(ParamsError, match=r"run\.accumulation_steps = 0: must be within \[1, 1024\]"):
        validate_params(raw)


@pytest.mark.parametrize(("objective", "steps"), [("ar", 2), ("nar", 2), ("nar", 4)])
def test_transformer_micro_batches_equal_one_batch(objective: str, steps: int) -> None:
    """Loss per step and final weights: 1 x 32 vs steps x (32 / steps); NAR masks score unequal
    token counts per micro-batch, so this also checks the token-share weighting."""
    raw = transformer_raw(objective)
    ids = torch.from_numpy(token_ids(32, seed=3).reshape(32, 16))
    runs = []
    for accumulation in (1, steps):
        params = with_accumulation(raw, accumulation)
        torch.manual_seed(0)
        run = TransformerRun(params, objective, "base", CPU)
        losses, first_grads = [], {}
        for step in range(6):
            mask = training_mask(0, step, 32, 16, params.transformer.nar.mask_schedule) if objective == "nar" else None
            run.set_lr(step)
            losses.append(run.train_step(ids, None, mask, step))
            first_grads = first_grads or gradients(run.model)
        runs.append((losses, first_grads, run.model.state_dict()))
    (one, grads_one, weights_one), (many, grads_many, weights_many) = runs
    np.testing.assert_allclose(many, one, rtol=RTOL)
    assert one[-1] < one[0]  # it trained
    # the first step's gradients (same weights in both runs): Adam would hide a wrong scale
    assert_states_close(grads_one, grads_many, f"{objective} x{steps} gradients", GRAD_TOL)
    assert_states_close(weights_one, weights_many, f"{objective} x{steps} weights", WEIGHT_TOL)


def test_tokenizer_micro_batches_equal_one_batch() -> None:
    """Phase 1 with the discriminator and R1 on from step 2: generator and discriminator both
    accumulate. 16 images as 1 x 16 and 2 x 8 (the discriminator's minibatch-stddev groups of 4
    stay inside a micro-batch)."""
    raw = tokenizer_raw()
    raw["tokenizer"]["gan"]["start_step"] = 2
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.uniform(-1, 1, (16, 3, 16, 16)).astype(np.float32)).contiguous(
        memory_format=torch.channels_last
    )
    runs = []
    for accumulation in (1, 2):
        params = with_accumulation(raw, accumulation)
        torch.manual_seed(0)
        run = TokenizerRun(params, 1, prepare_tokenizer(params, 1, None), None, CPU)
        run.set_modes()
        logged = [run.train_step(x, step) for step in range(2)]
        first_grads = gradients(run.tokenizer)  # step 1 (no GAN yet): weights equal in both runs
        logged += [run.train_step(x, step) for step in range(2, 5)]
        assert run.disc is not None
        disc_grads = gradients(run.disc)  # the last step's
        runs.append((logged, first_grads, disc_grads, run.tokenizer.state_dict(), run.disc.state_dict()))
    (log_one, grads_one, dgrads_one, tok_one, disc_one), (log_two, grads_two, dgrads_two, tok_two, disc_two) = runs
    # gradients first: Adam's update hardly changes when every gradient is scaled, so a wrong
    # division by the micro-batch count would hide in the weights
    assert_states_close(grads_one, grads_two, "tokenizer gradients", GRAD_TOL)
    assert_states_close(dgrads_one, dgrads_two, "discriminator gradients", GRAD_TOL)
    for name in ("l1", "codebook", "commitment", "total"):
        np.testing.assert_allclose(
            [float(t[name]) for t in log_two], [float(t[name]) for t in log_one], rtol=RTOL, err_msg=name
        )
    for name in ("gan_d", "r1", "gan_g"):
        one = [float(t[name]) for t in log_one[2:]]
        np.testing.assert_allclose([float(t[name]) for t in log_two[2:]], one, rtol=RTOL, err_msg=name)
    assert_states_close(tok_one, tok_two, "tokenizer", WEIGHT_TOL)
    assert_states_close(disc_one, disc_two, "discriminator", WEIGHT_TOL)
