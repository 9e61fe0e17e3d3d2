"""Fixtures and hooks shared by test files.

The suite runs on pytest-xdist workers (``-n auto --dist loadfile`` in pyproject.toml; ``-n 0``
runs it in one process). Much of the slow end-to-end time is waiting (Snakemake start-up,
SLURM's submission and status checks), which a second worker fills with other test files.
"""

from __future__ import annotations

import os

import pytest
import torch

from seqgan.train.runtime import torch_threads


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker gets its share of the cores for torch's intra-op threads: with torch's
    default (every core) in every worker, N workers run N x N threads on N cores."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // workers))


# The longest files (measured on 2 cores: each 1.5-5 minutes), started first.
LONGEST_FIRST = ("test_workflow.py", "test_dvc.py", "test_slurm.py", "test_gpu_smoke.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files first, then the other files with end-to-end (``slow``) tests, then the rest
    in their usual order. With ``--dist loadfile`` a file runs on one worker; starting the long ones
    first leaves the many short files to fill in at the end, instead of one long file running alone
    there (``--no-loadscope-reorder`` keeps this order)."""
    has_slow = {item.path for item in items if item.get_closest_marker("slow") is not None}

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.path.name in LONGEST_FIRST:
            return (0, LONGEST_FIRST.index(item.path.name))
        return (1 if item.path in has_slow else 2, 0)

    items.sort(key=rank)  # stable: the order within a file and among equals is kept


@pytest.fixture
def one_thread():
    """Tiny models: thread-pool overhead dominates on a shared 2-core CPU, so pin one thread."""
    with torch_threads(1):
        yield
