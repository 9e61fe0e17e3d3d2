"""Kill-and-resume checks shared by the trainer tests (a real SIGKILL, then bit-exact comparison)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from seqgan.artefacts.checkpoints import load_weights


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends first or the wait times out."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def assert_same_weights(reference: Path, resumed: Path) -> None:
    """Both weight files hold bit-identical tensors and the same sidecar metrics."""
    ref_state, ref_sidecar = load_weights(reference)
    state, sidecar = load_weights(resumed)
    assert ref_state.keys() == state.keys()
    for key in ref_state:
        assert torch.equal(ref_state[key], state[key]), key
    assert sidecar["metrics"] == ref_sidecar["metrics"]
