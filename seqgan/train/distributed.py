"""torchrun / DDP plumbing shared by the tokenizer and transformer trainers.

A single process (no WORLD_SIZE, or WORLD_SIZE=1) is the default and needs nothing; under
``torchrun --nproc_per_node N`` every rank draws the same global batch indices and takes its own
slice, gradients are averaged by DistributedDataParallel, and only rank 0 writes files.
"""

from __future__ import annotations

import os
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


def init_distributed(device: torch.device) -> Distributed:
    """Join the torchrun process group if WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed.single(device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=rank, world_size=world_size, device=device)


def close_distributed(ctx: Distributed) -> None:
    if ctx.enabled and torch_dist.is_initialized():
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
