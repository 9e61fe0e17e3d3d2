"""Checkpoints: final weights as safetensors + JSON sidecar, resume state as a weights-only pickle.

Two kinds of file, with different jobs:

- **Weights** (``<name>.safetensors`` + ``<name>.json``) are the artefacts other stages and users
  load. safetensors is a flat header + raw bytes, so loading never executes code (no pickle), and
  the sidecar JSON says what the tensors are (config, step, metrics, git revision, time) so a
  model can be rebuilt from the two files alone.
- **Resume state** (optimiser moments, scheduler, step, RNG states) only ever feeds the trainer
  that wrote it. It is written with ``torch.save`` and read with ``torch.load(weights_only=True)``,
  whose restricted unpickler only rebuilds tensors and plain containers. :func:`save_resume_state`
  checks the state holds only such values before writing, so an unloadable file is caught when
  it is written rather than hours later when a resumed job starts.

Every file is written to a temporary name and renamed into place (:mod:`seqgan.artefacts.files`), so a job
killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import Tensor

from seqgan.artefacts.files import atomic_write, atomic_write_text
from seqgan.artefacts.provenance import git_revision

SIDECAR_SUFFIX = ".json"


def sidecar_path(weights_path: str | os.PathLike[str]) -> Path:
    """``model.safetensors`` -> ``model.json`` (the metadata that travels with the weights)."""
    return Path(weights_path).with_suffix(SIDECAR_SUFFIX)


def _json_default(value: Any) -> Any:
    """Make the values callers typically put in a sidecar JSON-serialisable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"sidecar value of type {type(value).__name__} is not JSON-serialisable")


def _plain_tensors(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies that own their storage.

    safetensors refuses tensors that share storage (tied embeddings/heads) and non-contiguous
    views; cloning every tensor sidesteps both at the cost of one transient copy.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"state_dict[{key!r}] is a {type(value).__name__}, not a tensor")
        out[str(key)] = value.detach().to("cpu").contiguous().clone()
    return out


def save_weights(
    path: str | os.PathLike[str], state_dict: Mapping[str, Tensor], sidecar: Mapping[str, Any]
) -> tuple[Path, Path]:
    """Write ``path`` (safetensors) and its ``.json`` sidecar, both atomically.

    The sidecar is the caller's dict plus ``git_revision``, ``timestamp`` (UTC, ISO 8601),
    ``weights_file`` and ``num_tensors``; a caller key of the same name wins (e.g. a revision
    captured when training started). The weights are written first, so a sidecar never describes
    weights that are not there yet.
    """
    path = Path(path)
    if path.suffix == SIDECAR_SUFFIX:
        raise ValueError(f"{path}: weights path must not end in {SIDECAR_SUFFIX} (sidecar clash)")
    tensors = _plain_tensors(state_dict)
    atomic_write(path, lambda tmp: safetensors.torch.save_file(tensors, str(tmp)))
    meta: dict[str, Any] = {
        "git_revision": git_revision(),
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "weights_file": path.name,
        "num_tensors": len(tensors),
    }
    meta.update(dict(sidecar))
    side = sidecar_path(path)
    atomic_write_text(side, json.dumps(meta, indent=2, default=_json_default) + "\n")
    return path, side


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read weights written by :func:`save_weights`: ``(state_dict, sidecar)``. Never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(
            f"sidecar {side} not found next to {path}: it holds the config needed to rebuild the "
            "model (copy both files together)"
        )
    tensors = safetensors.torch.load_file(str(path), device=str(torch.device(device)))
    return tensors, json.loads(side.read_text(encoding="utf-8"))


# --- resume state -----------------------------------------------------------------------------

_PLAIN_LEAVES = (int, float, bool, str, bytes, type(None), torch.device, torch.dtype)


def check_weights_only_safe(obj: Any, where: str = "state") -> None:
    """Raise ``TypeError`` naming the first value ``torch.load(weights_only=True)`` would reject.

    Exact type checks on purpose: ``numpy.float64`` subclasses ``float`` but unpickles through
    NumPy, which the weights-only loader refuses.
    """
    kind = type(obj)
    if isinstance(obj, Tensor) or kind in _PLAIN_LEAVES or kind is torch.Size:
        return
    if kind in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where}: key {key!r} of type {type(key).__name__} (use str/int)")
            check_weights_only_safe(value, f"{where}[{key!r}]")
        return
    if kind in (list, tuple):
        for i, value in enumerate(obj):
            check_weights_only_safe(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {kind.__module__}.{kind.__name__}, which torch.load(weights_only=True) "
        "cannot read back; convert it to tensors / ints / floats / str / lists / dicts"
    )


def save_resume_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """``torch.save`` the resume state atomically after checking it is weights-only loadable."""
    state = dict(state)
    check_weights_only_safe(state)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume_state(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a resume state with the restricted (weights-only) unpickler.

    Tensors land on ``map_location`` (CPU by default); ``load_state_dict`` of modules and
    optimisers moves them to the parameters' device, so a run may resume on another device.
    """
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def capture_rng_state() -> dict[str, Any]:
    """Snapshot every global generator in a weights-only-safe form.

    Python's state becomes a list of ints, NumPy's MT19937 key a tensor; CUDA states are included
    only when CUDA is available (one ByteTensor per device).
    """
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_key, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [int(py_version), [int(v) for v in py_internal], py_gauss],
        "numpy": {
            "name": str(np_name),
            "key": torch.from_numpy(np.asarray(np_key, dtype=np.int64).copy()),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "torch_cpu": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generators from :func:`capture_rng_state` output (or a resume state holding it
    under ``"rng"``). CUDA states are restored for as many devices as both runs have."""
    rng = state["rng"] if "rng" in state else state
    py_version, py_internal, py_gauss = rng["python"]
    random.setstate((int(py_version), tuple(int(v) for v in py_internal), py_gauss))
    npst = rng["numpy"]
    np.random.set_state(
        (
            npst["name"],
            npst["key"].cpu().numpy().astype(np.uint32),
            int(npst["pos"]),
            int(npst["has_gauss"]),
            float(npst["cached_gaussian"]),
        )
    )
    torch.set_rng_state(rng["torch_cpu"].cpu())
    cuda_states = rng.get("torch_cuda")
    if cuda_states and torch.cuda.is_available():
        for index, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)
