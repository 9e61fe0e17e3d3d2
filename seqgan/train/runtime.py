"""Run-time plumbing shared by every trainer: seeding, device choice, mixed precision, provenance.

Kept free of any model code so that the tokenizer, transformer and classifier trainers all make
the same choices (one place decides what "auto" means and when bf16 autocast is used).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Data order does not depend on these generators (see :class:`seqgan.train.loop.StepSampler`);
    they cover weight initialisation and any stochastic layer.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def resolve_device(name: str) -> torch.device:
    """Map the params value ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a device.

    ``"auto"`` picks CUDA when available so the same params file runs on a laptop and a GPU node.
    An explicit CUDA request on a machine without CUDA fails loudly instead of silently running a
    GPU-sized job on the CPU for days.
    """
    name = str(name).strip().lower()
    if name == "auto":
        return resolve_device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {name!r} requested but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); set device: auto or cpu in params.yaml"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        enable_tf32()
        return device
    raise ValueError(f"unknown device {name!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def enable_tf32() -> None:
    """TF32 tensor cores for float32 matmuls and convolutions on CUDA (the float32 parts outside
    bf16 autocast, e.g. the quantizer's distances): ~10 mantissa bits instead of 23, several times
    faster on A100 / H100. Recorded as ``compute.tf32`` in every sidecar; no effect on a CPU."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def autocast_context(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA, a no-op on CPU.

    bf16 needs no loss scaling (same exponent range as fp32). On CPU we stay in fp32: CPU bf16
    autocast is slower on most hosts and would make CPU results differ from the documented
    embedded-default numbers.
    """
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_of(device: torch.device) -> str:
    """What :func:`autocast_context` runs in on ``device`` (recorded in sidecars and manifests)."""
    return "bf16 autocast" if device.type == "cuda" else "fp32"


def set_threads(threads: int) -> None:
    """Torch's intra-op CPU thread count for a whole job (0 leaves torch's default). Part of what a
    CPU run's float rounding depends on; the trainers record it in their sidecars."""
    if threads > 0:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (``None`` leaves it alone).

    CPU results are reproducible bit for bit only at a fixed thread count; tests use this to pin it
    without leaking the setting into other tests.
    """
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def machine_info() -> dict[str, object]:
    """What a timing or a float result depends on: CPU model and capability, cores, torch.

    Virtual machines often report a generic model name ("Intel(R) Xeon(R) Processor"), so the
    family / model / stepping numbers and the instruction-set flags that change kernels (AVX2,
    AVX-512, native bf16, AMX) are recorded too.
    """
    import platform

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {
        "cpu_model": info.get("model name") or platform.processor() or "unknown",
        "cpu_family_model_stepping": "/".join(info.get(k, "?") for k in ("cpu family", "model", "stepping")),
        "cpu_flags": sorted(f for f in wanted if f in flags),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def compute_record(device: torch.device, memory_format: torch.memory_format | None = None) -> dict[str, object]:
    """How a network was computed, for its sidecar: precision, memory format, threads, machine.

    Results must never depend silently on the machine: CPU runs are fp32 whatever the CPU offers
    (:func:`autocast_context`), and the record says so beside the CPU's capability.
    """
    record: dict[str, object] = {
        "precision": precision_of(device),
        "tf32": device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32,
        "threads": torch.get_num_threads(),
        "machine": machine_info(),
    }
    if memory_format is not None:
        record["memory_format"] = str(memory_format).removeprefix("torch.")
    return record


def cpu_description() -> str:
    """One line naming the CPU (for benchmark output)."""
    m = machine_info()
    return (
        f"CPU {m['cpu_model']} (family/model/stepping {m['cpu_family_model_stepping']}), "
        f"{m['cores']} cores, torch capability {m['cpu_capability']}, flags "
        f"{','.join(m['cpu_flags']) or 'none'}"  # type: ignore[arg-type]
    )
