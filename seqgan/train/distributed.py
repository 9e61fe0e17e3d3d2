"""torchrun / DDP plumbing shared by the tokenizer and transformer trainers.

A single process (no WORLD_SIZE, or WORLD_SIZE=1) is the default and needs nothing; under
``torchrun --nproc_per_node N`` (the workflow's training rules launch that when
``run.gpus_per_job`` = N > 1) every rank draws the same global batch indices and takes its own
contiguous slice, gradients are averaged by DistributedDataParallel, and only rank 0 writes files
(checkpoints, logs, weights; the CLI publishes logs from rank 0 only, see :func:`is_main_process`).
One node only (``torchrun --standalone``): the ranks share the working directory.

On CPU the backend is gloo, on CUDA nccl with rank r on ``cuda:LOCAL_RANK``. tests/test_distributed.py
checks that 2 gloo ranks reproduce the single-process loss trajectory of a transformer and of a
tokenizer (with its discriminator) and that rank 1 writes nothing.

Gradient accumulation (``run.accumulation_steps`` = A) splits each rank's slice again into A equal
micro-batches (:func:`micro_batches`); the trainers sum their gradients, with DDP's all-reduce only
after the last one (:func:`sync_gradients_if`), and take one optimiser step.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from seqgan.train.loop import NonFiniteLossError, check_finite


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job; ``world_size == 1`` is the plain single process."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device) -> Distributed:
        """The plain single-process run (what benchmarks and tests use directly)."""
        return cls(rank=0, world_size=1, device=device)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of the global batch (all ranks draw the same indices)."""
        per_rank = len(indices) // self.world_size
        return indices[self.rank * per_rank : (self.rank + 1) * per_rank]

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around a trainable module (the module itself when single)."""
        if not self.enabled:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def all_true(self, flag: bool) -> bool:
        """True only if ``flag`` holds on every rank (so all ranks stop together)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1 if flag else 0], device=self.device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MIN)
        return bool(value.item())

    def mean(self, values: Tensor) -> Tensor:
        """Average a tensor over ranks (identity when single)."""
        if not self.enabled:
            return values
        values = values.clone()
        torch_dist.all_reduce(values)
        return values / self.world_size


def micro_batches(rows: np.ndarray, steps: int) -> list[np.ndarray]:
    """``rows`` (this rank's slice) as ``steps`` equal consecutive micro-batches."""
    if steps < 1 or len(rows) % steps:
        raise ValueError(
            f"a rank's batch of {len(rows)} does not split into run.accumulation_steps = {steps} equal "
            "micro-batches; make the batch size a multiple of run.gpus_per_job x run.accumulation_steps"
        )
    return np.split(rows, steps)


def sync_gradients_if(module: nn.Module, sync: bool) -> contextlib.AbstractContextManager[object]:
    """Around one micro-batch's forward and backward: DDP's ``no_sync`` unless ``sync`` (the last
    micro-batch), so the ranks all-reduce the summed gradients once per optimiser step. A no-op for
    a plain module."""
    if sync or not isinstance(module, DistributedDataParallel):
        return contextlib.nullcontext()
    return module.no_sync()


def is_main_process() -> bool:
    """True unless this process is a torchrun rank other than 0 (read from the environment, so
    the CLI can ask before or after the trainer's process group exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device: torch.device) -> Distributed:
    """Join the torchrun process group if WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed.single(device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', world_size)} processes on this "
                f"node but only {torch.cuda.device_count()} CUDA device(s) are visible; lower "
                "run.gpus_per_job in params.yaml (or request as many GPUs from the scheduler)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=rank, world_size=world_size, device=device)


def close_distributed(ctx: Distributed) -> None:
    """Tear the process group down. On a normal end (no exception in flight: this runs in the
    trainers' ``finally``) every rank first meets at a barrier, so no rank destroys its gloo pairs
    while another still uses them: a rank that left early (the non-main ranks skip the final
    evaluation) once aborted at exit with "terminate called without an active exception". After an
    exception there is no barrier: the other ranks may never arrive."""
    if ctx.enabled and torch_dist.is_initialized():
        if sys.exc_info()[0] is None:
            torch_dist.barrier()
        torch_dist.destroy_process_group()


def guard_finite(terms: Mapping[str, Tensor], step: int, ctx: Distributed) -> None:
    """NonFiniteLossError naming the bad terms and the step (on every rank if any rank is bad).

    One host sync for all terms; the per-term check only runs to name the culprits.
    """
    ok = bool(torch.isfinite(torch.stack([t.detach().float() for t in terms.values()])).all())
    if ctx.all_true(ok):
        return
    check_finite(terms, step)
    raise NonFiniteLossError({"(another rank)": "non-finite"}, step)
