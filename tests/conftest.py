"""Fixtures shared by test files."""

from __future__ import annotations

import pytest

from seqgan.train.runtime import torch_threads


@pytest.fixture
def one_thread():
    """Tiny models: thread-pool overhead dominates on a shared 2-core CPU, so pin one thread."""
    with torch_threads(1):
        yield
