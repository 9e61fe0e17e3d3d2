"""Pretrained weights the paper configurations need, resolved offline-first.

The paper's perceptual loss uses torchvision's ImageNet VGG16 (trunk for the five LPIPS taps AND its
classifier head for the logit term), LPIPS's learned linear layers on top of the trunk, and FID uses
clean-fid's Inception torchscript file. Many compute nodes (and the development machine) have no
network, where torchvision / lpips / clean-fid would try, and fail, to download inside a training or
evaluation job, hours into a run and with an unhelpful ``URLError``. This module:

* says where each file is expected (the same paths the libraries themselves use, so one download
  serves both this project and direct library calls);
* checks for it up front and fails with a message naming the file, its purpose, and the command that
  fetches it (``seqgan fetch-weights``) plus how to copy it to a node without network;
* downloads missing files (idempotently, atomically) on a machine with network;
* loads VGG16 from the cache without ever touching the network.

Locations (read from the installed libraries' sources, torchvision 0.29 / clean-fid 0.1.35):

* VGG16: ``torch.hub.get_dir() / "checkpoints" / "vgg16-397923af.pth"``. ``torch.hub.get_dir()``
  honours ``torch.hub.set_dir``, then ``$TORCH_HOME/hub``, then ``$XDG_CACHE_HOME/torch/hub``, then
  ``~/.cache/torch/hub``; this is where ``torchvision.models.vgg16(weights=...)`` looks.
* Inception: clean-fid hard-codes the directory: ``/tmp`` on every non-Windows system (``./``, i.e.
  the current directory, on Windows) and the file name ``inception-2015-12-05.pt``
  (``cleanfid.features.feature_extractor``). It honours NO environment variable (not even
  ``TMPDIR``). ``/tmp`` is usually node-local and may be wiped between jobs, so keep a copy somewhere
  persistent and copy it into place at the start of an evaluation job.
* LPIPS linear layers: shipped inside the ``lpips`` wheel (``lpips/weights/v0.1/vgg.pth``); never
  downloaded.
"""

from __future__ import annotations

import os
import platform
import urllib.error
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # imported where used: 1.4 s per job that never builds VGG16
    import torchvision

# The URLs are the libraries' own (checked against them in tests/test_pretrained.py), so a file
# fetched here is byte-identical to the one the library would have downloaded itself.
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_FILENAME = "inception-2015-12-05.pt"

FETCH_COMMAND = "seqgan fetch-weights"


class MissingWeightsError(FileNotFoundError):
    """A pretrained weight file is not on disk and this code will not download it at run time.

    A ``FileNotFoundError`` so generic handlers still see a missing file; the message is written
    for a person who has to fix it (what, where, why, which command).
    """

    def __init__(self, name: str, path: Path, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.path = path
        self.filename = str(path)

    def __str__(self) -> str:  # FileNotFoundError would prefix "[Errno ...]" when errno is set.
        return str(self.args[0])


class WeightsDownloadError(RuntimeError):
    """``fetch_weights`` could not download one or more files (usually: no network)."""


def vgg16_weights_path() -> Path:
    """Where torchvision caches the ImageNet VGG16 weights (honours TORCH_HOME / set_dir)."""
    import torchvision

    filename = os.path.basename(torchvision.models.VGG16_Weights.IMAGENET1K_V1.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def inception_weights_path() -> Path:
    """Where clean-fid loads (and downloads) its Inception torchscript file.

    Mirrors ``cleanfid.features.feature_extractor``: a fixed ``/tmp`` directory (``./`` on
    Windows); no environment variable changes it.
    """
    directory = "./" if platform.system() == "Windows" else "/tmp"
    return Path(directory) / INCEPTION_FILENAME


def lpips_linear_weights_path() -> Path:
    """The LPIPS v0.1 VGG linear-layer weights shipped inside the installed ``lpips`` package."""
    import lpips  # local import: lpips prints nothing on import, but is only needed here

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / "vgg.pth"


@dataclass(frozen=True)
class WeightSpec:
    """One pretrained file: where it lives, what it is for, and how to get it."""

    name: str
    purpose: str
    path: Callable[[], Path]
    url: str | None  # None: shipped with a package, nothing to download
    how_to_restore: str


def _copy_hint(path: Path) -> str:
    return f"then copy it to the same path on the machine without network, e.g.\n    scp {path} <node>:{path}"


WEIGHTS: dict[str, WeightSpec] = {
    "vgg16": WeightSpec(
        name="vgg16",
        purpose=(
            "torchvision's ImageNet VGG16 (IMAGENET1K_V1): the trunk of the LPIPS / semantic-enhanced "
            "perceptual loss and its classifier head for the logit term (paper configurations)"
        ),
        path=vgg16_weights_path,
        url=VGG16_URL,
        how_to_restore=(
            "The location follows torch.hub: $TORCH_HOME/hub/checkpoints (default "
            "~/.cache/torch/hub/checkpoints). Setting the same TORCH_HOME on both machines (a shared "
            "file system, say) lets one download serve every node."
        ),
    ),
    "inception": WeightSpec(
        name="inception",
        purpose="clean-fid's Inception-v3 torchscript network, the feature extractor for FID / rFID",
        path=inception_weights_path,
        url=INCEPTION_URL,
        how_to_restore=(
            "clean-fid hard-codes this path (no environment variable changes it). /tmp is often "
            "node-local and cleared between jobs: keep a copy on persistent storage and copy it to "
            "this path at the start of each evaluation job."
        ),
    ),
    "lpips_vgg": WeightSpec(
        name="lpips_vgg",
        purpose="LPIPS v0.1 learned linear layers (lin0..lin4) for the VGG trunk",
        path=lpips_linear_weights_path,
        url=None,
        how_to_restore=(
            "This file ships inside the lpips package and is never downloaded; its absence means a "
            "broken install: reinstall it with `pip install --force-reinstall lpips`."
        ),
    ),
}


def _spec(name: str) -> WeightSpec:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise ValueError(f"unknown pretrained weights {name!r}; known names: {sorted(WEIGHTS)}") from None


def missing_weights_error(name: str) -> MissingWeightsError:
    """Build the user-facing error for a missing file (also used when a file is unreadable)."""
    spec = _spec(name)
    path = spec.path()
    lines = [
        f"Pretrained weights {name!r} not found at {path}",
        f"  used for: {spec.purpose}.",
    ]
    if spec.url is not None:
        lines += [
            "  They are not downloaded at run time (compute nodes often have no network). On a machine",
            "  with network access, in this project's environment, run",
            f"    {FETCH_COMMAND} --only {name}",
            f"  (or `{FETCH_COMMAND}` for every file), which downloads {spec.url}",
            f"  to {path};",
            "  " + _copy_hint(path).replace("\n", "\n  "),
        ]
    lines.append("  " + spec.how_to_restore)
    return MissingWeightsError(name, path, "\n".join(lines))


def require_weights(name: str) -> Path:
    """Return the path of pretrained file ``name``; raise MissingWeightsError if it is absent.

    Call this before a long job starts, so a missing file fails in seconds, not hours.
    """
    path = _spec(name).path()
    if not path.is_file() or path.stat().st_size == 0:
        raise missing_weights_error(name)
    return path


def _download_vgg16(path: Path, progress: bool) -> None:
    """torch.hub's own download: temp file + rename, SHA-256 prefix checked against the name."""
    torch.hub.load_state_dict_from_url(
        VGG16_URL,
        model_dir=str(path.parent),
        map_location="cpu",
        progress=progress,
        check_hash=True,
        file_name=path.name,
        weights_only=True,
    )


def _download_inception(path: Path, progress: bool) -> None:
    """Download to clean-fid's path atomically.

    clean-fid's own ``check_download_inception`` streams straight into the final file, so an
    interrupted download leaves a truncated file that clean-fid then treats as present forever;
    ``torch.hub.download_url_to_file`` writes a temporary file and renames it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(INCEPTION_URL, str(path), progress=progress)


_DOWNLOADERS: dict[str, Callable[[Path, bool], None]] = {
    "vgg16": _download_vgg16,
    "inception": _download_inception,
}


def _is_network_error(err: BaseException) -> bool:
    """URLError, socket errors, timeouts and refused connections are all OSErrors."""
    return isinstance(err, (urllib.error.URLError, OSError))


def fetch_weights(only: Iterable[str] | None = None, progress: bool = True) -> dict[str, Path]:
    """Download the missing pretrained files; return ``{name: path}`` for every requested name.

    Idempotent: a file already present is left alone (no network access at all). Every requested
    file is attempted; failures are collected and raised together as one WeightsDownloadError that
    says which files are still missing and why (typically: no network on this machine).
    """
    names = list(WEIGHTS) if only is None else list(dict.fromkeys(only))
    for name in names:
        _spec(name)  # validate every name before downloading anything
    paths: dict[str, Path] = {}
    failures: list[str] = []
    for name in names:
        spec = WEIGHTS[name]
        path = spec.path()
        try:
            paths[name] = require_weights(name)
            continue
        except MissingWeightsError:
            if spec.url is None:
                failures.append(f"{name}: missing at {path} and not downloadable. {spec.how_to_restore}")
                continue
        try:
            _DOWNLOADERS[name](path, progress)
            paths[name] = require_weights(name)
        except Exception as err:
            kind = "network unreachable?" if _is_network_error(err) else "download failed"
            failures.append(f"{name}: could not download {spec.url} to {path} ({kind}: {err})")
    if failures:
        raise WeightsDownloadError(
            "fetch-weights could not provide every file:\n  "
            + "\n  ".join(failures)
            + "\nRun `seqgan fetch-weights` on a machine with network access and copy the files to "
            "the same paths here. Already present: " + (", ".join(f"{n} ({p})" for n, p in paths.items()) or "none")
        )
    return paths


def load_vgg16_imagenet() -> torchvision.models.VGG:
    """torchvision VGG16 with ImageNet weights from the local cache, in eval mode; never downloads.

    The model is built on the meta device and the weights are assigned in place, which skips
    torchvision's random initialisation of 138M parameters (seconds on a CPU).
    """
    import torchvision

    path = require_weights("vgg16")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise MissingWeightsError(
            "vgg16",
            path,
            f"Pretrained weights 'vgg16' at {path} could not be read ({type(err).__name__}: {err}). "
            f"The file is probably truncated or not a VGG16 state dict: delete it and run "
            f"`{FETCH_COMMAND} --only vgg16` again.",
        ) from err
    with torch.device("meta"):
        model = torchvision.models.vgg16(weights=None)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise MissingWeightsError(
            "vgg16",
            path,
            f"Pretrained weights 'vgg16' at {path} do not match torchvision's VGG16 ({err}). "
            f"Delete the file and run `{FETCH_COMMAND} --only vgg16` again.",
        ) from err
    return model.eval()
