"""FID through clean-fid with a configurable feature network, reference statistics, Inception Score.

Two feature networks, one interface (:class:`FeatureNetwork`):

* ``semantic_feature_network(net)`` -- the embedded default's classifier
  (:class:`~seqgan.nets.semantic.SemanticNet`). Feature = relu5_3 (the last ReLU of the last
  stage) global-average-pooled over space, a ``widths[-1]``-dimensional vector. This is the exact
  analogue of Inception's FID feature ("pool3", the 2048-d global average of its last block):
  the input of the classifier's linear head, the most semantic layer that is still a generic
  embedding rather than class scores. No resize: images are used at their stored resolution,
  which is the resolution the net was trained at (clean-fid gets an identity ``custom_fn_resize``).
* ``inception_feature_network()`` -- clean-fid's Inception-v3 torchscript file (the standard FID
  network, 2048-d pool3 features) in clean-fid's "clean" mode: PIL bicubic resize to 299 x 299 in
  float, without quantising. The file is never downloaded here: ``require_weights("inception")``
  runs first and raises :class:`~seqgan.nets.pretrained.MissingWeightsError` naming
  ``seqgan fetch-weights``.

How clean-fid is called (offline, in memory). clean-fid's own in-memory path is
``cleanfid.fid.get_model_features(G, model, ...)``, the function behind ``compute_fid(gen=...)``:
it calls ``G(z)`` for a (B, 3, H, W) batch in 0..255, resizes each image with the mode's resizer
(or ``custom_fn_resize``) as an (H, W, 3) numpy array, stacks them back into a tensor and calls
``model(batch.to(device))`` under ``no_grad``. We call it once per batch with a "generator" that
returns the batch (``num_gen = batch_size = len(batch)``, so no padding and no truncation), with an
explicit ``device`` (clean-fid defaults to CUDA) and ``verbose=False``; there is no DataLoader in
this path, so ``num_workers`` does not arise. It draws a dummy ``torch.randn`` latent per batch;
that draw runs inside ``torch.random.fork_rng`` so evaluation never moves the caller's RNG.
The batch reaches the network as float32 0..255 (B, 3, H, W), as in clean-fid's folder path
(``ToTensor() * 255``) -- stored uint8 images are converted to float before the resizer.
Reference statistics are this project's pipeline outputs (``save_reference`` / ``load_reference``),
never clean-fid's cache inside site-packages.

The Frechet distance is computed as clean-fid's ``frechet_distance`` computes it (SciPy's matrix
square root of the covariance product; where that is not finite, again with 1e-6 added to both
diagonals; the real part, refused when the diagonal's imaginary part exceeds 1e-3), written out
here because clean-fid's function passes ``sqrtm(disp=False)``, an argument SciPy 1.18 removed:
GPU images ship SciPy 1.18 (the first GPU run's image did), so no pin can keep it away.

Inception Score (Salimans et al. 2016), for class-conditional models::

    IS = exp( E_x KL( p(y|x) || p(y) ) ),   p(y) = mean of p(y|x) over the split,

computed on ``splits`` equal consecutive chunks; mean and standard deviation over the chunks. With
the embedded default, the semantic classifier's softmax plays Inception's role (its 10 shape
classes instead of ImageNet's 1008), so IS lies in [1, num_classes]; the two are not comparable.
For Inception the probabilities are those of the torchscript's softmax head with
``no_output_bias=True``, as in StyleGAN2-ADA's ``metrics/inception_score.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqgan.artefacts.files import atomic_write, file_sha256
from seqgan.artefacts.images import store_batches
from seqgan.nets.pretrained import INCEPTION_FILENAME, require_weights
from seqgan.progress import progress_bar

__all__ = [
    "FeatureNetwork",
    "ReferenceStatistics",
    "RESIZE_CLEAN",
    "RESIZE_NONE",
    "class_probabilities_of_images",
    "compute_reference",
    "check_reference_matches",
    "features_of_images",
    "features_of_store",
    "fid_from_features",
    "file_sha256",
    "frechet_distance",
    "inception_feature_network",
    "inception_score",
    "load_reference",
    "module_sha256",
    "progress_bar",
    "reference_statistics",
    "save_reference",
    "semantic_feature_network",
]

RESIZE_NONE = "none"
RESIZE_CLEAN = "clean"
RESIZE_POLICIES: dict[str, str] = {
    RESIZE_NONE: "none: images enter at their stored resolution (identity custom_fn_resize)",
    RESIZE_CLEAN: "clean-fid 'clean' mode: PIL bicubic to 299x299 in float32, no quantisation",
}
DEFAULT_BATCH_SIZE = 64
REFERENCE_FORMAT_VERSION = 1


def _identity(image: np.ndarray) -> np.ndarray:
    return image


# --------------------------------------------------------------------------------------------
# Identities of weights (every metric names the network it was computed with)
# --------------------------------------------------------------------------------------------


def module_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes, bytes; sorted by name).

    Identifies the weights an in-memory network carries, whichever file it came from.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # reshape(-1): a 0-d tensor (BatchNorm's num_batches_tracked) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_identity(module: nn.Module, weights_file: str | Path | None = None) -> dict[str, Any]:
    """How a metric names the network it used: the state-dict hash, and the file when known."""
    identity: dict[str, Any] = {"sha256": module_sha256(module)}
    if weights_file is not None:
        identity["file"] = str(weights_file)
    return identity


# --------------------------------------------------------------------------------------------
# Feature networks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureNetwork:
    """A feature extractor as clean-fid calls it, plus what a metric must record about it.

    ``extract`` maps a batch AFTER resizing -- a (B, 3, H, W) tensor with values in 0..255 (float
    or uint8) -- to (B, D) features; ``__call__`` is that function (it is what clean-fid's
    ``get_batch_features`` calls). To go from raw stored images use :func:`features_of_images`,
    which applies the ``resize`` policy first.
    """

    name: str
    extract: Callable[[Tensor], Tensor]
    resize: str  # RESIZE_NONE | RESIZE_CLEAN
    device: torch.device
    layer: str
    weights: Mapping[str, Any]  # {"sha256": ...} and, where known, {"file": ...}
    class_probabilities: Callable[[Tensor], Tensor] | None = None  # (B, 3, H, W) 0..255 -> (B, C)
    classes: str | None = None  # what the probabilities range over (for IS records)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize must be one of {sorted(RESIZE_POLICIES)}, got {self.resize!r}")

    def __call__(self, batch: Tensor) -> Tensor:
        return self.extract(batch)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record of the network: name, layer, weights identity, resize policy."""
        out: dict[str, Any] = {
            "name": self.name,
            "layer": self.layer,
            "weights": dict(self.weights),
            "resize": self.resize,
            "resize_policy": RESIZE_POLICIES[self.resize],
        }
        out.update(self.extra)
        return out


def _float_0_255(batch: Tensor, device: torch.device) -> Tensor:
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) batch in 0..255, got {tuple(batch.shape)}")
    return batch.to(device=device, dtype=torch.float32)


def semantic_feature_network(semantic_net: nn.Module, *, weights_file: str | Path | None = None) -> FeatureNetwork:
    """The embedded classifier's global-average-pooled relu5_3 features (module docstring).

    ``semantic_net`` implements ``features(images in [-1, 1]) -> (taps, logits)`` (a
    :class:`~seqgan.nets.semantic.SemanticNet`, usually from ``load_semantic_net``). Input
    conversion: 0..255 -> x / 127.5 - 1, exactly ``to_model_input``'s. The net is used in place
    (not copied, not moved); its device is that of its parameters. ``weights_file`` is recorded
    beside the state-dict hash when given.
    """
    return _classifier_feature_network(
        semantic_net,
        name="semantic_relu5_3_gap",
        layer="relu5_3 (last ReLU of stage 5), global average pooled",
        classes=f"{getattr(semantic_net, 'num_classes', '?')} classes of the embedded classifier",
        weights_file=weights_file,
    )


def judge_feature_network(judge: nn.Module, *, weights_file: str | Path | None = None) -> FeatureNetwork:
    """The embedded judge's last stage, global-average pooled, and its class probabilities: the
    evaluation network no tokenizer optimises (:mod:`seqgan.nets.judge`)."""
    return _classifier_feature_network(
        judge,
        name="judge_stage3_gap",
        layer="last residual stage (after its norm and ReLU), global average pooled",
        classes=f"{getattr(judge, 'num_classes', '?')} classes of the embedded judge",
        weights_file=weights_file,
    )


def _classifier_feature_network(
    net: nn.Module, *, name: str, layer: str, classes: str, weights_file: str | Path | None
) -> FeatureNetwork:
    """``net.features(images in [-1, 1]) -> (taps, logits)`` as a FeatureNetwork: the last tap's
    global average and the softmax of the logits."""
    device = next(net.parameters()).device

    def to_input(batch: Tensor) -> Tensor:
        return _float_0_255(batch, device).div_(127.5).sub_(1.0)

    @torch.no_grad()
    def extract(batch: Tensor) -> Tensor:
        taps, _ = net.features(to_input(batch))
        return taps[-1].float().mean(dim=(2, 3))  # (B, C, h, w) -> (B, C)

    @torch.no_grad()
    def probabilities(batch: Tensor) -> Tensor:
        _, logits = net.features(to_input(batch))
        return torch.softmax(logits.float(), dim=1)  # (B, num_classes)

    return FeatureNetwork(
        name=name,
        extract=extract,
        resize=RESIZE_NONE,
        device=device,
        layer=layer,
        weights=weights_identity(net, weights_file),
        class_probabilities=probabilities,
        classes=classes,
    )


def inception_feature_network(device: str | torch.device = "cpu") -> FeatureNetwork:
    """clean-fid's Inception-v3 (torchscript, 2048-d pool3) in "clean" mode; never downloads.

    Raises MissingWeightsError (naming ``seqgan fetch-weights``) when the file is absent. The module
    is clean-fid's own ``InceptionV3W`` (the class ``build_feature_extractor("clean")`` uses),
    built with ``download=False`` and without DataParallel.
    """
    path = require_weights("inception")
    if path.name != INCEPTION_FILENAME:
        raise ValueError(f"clean-fid loads {INCEPTION_FILENAME}; the weights path is {path}")
    from cleanfid.inception_torchscript import InceptionV3W

    device = torch.device(device)
    model = InceptionV3W(str(path.parent), download=False, resize_inside=False).to(device).eval()

    @torch.no_grad()
    def extract(batch: Tensor) -> Tensor:
        return model(_float_0_255(batch, device))  # (B, 2048)

    @torch.no_grad()
    def probabilities(batch: Tensor) -> Tensor:
        # StyleGAN2-ADA's IS call of the same torchscript file: softmax without the output bias.
        return model.base(_float_0_255(batch, device), no_output_bias=True).float()

    return FeatureNetwork(
        name="inception_v3_clean_fid",
        extract=extract,
        resize=RESIZE_CLEAN,
        device=device,
        layer="pool3 (2048-d), clean-fid torchscript inception-2015-12-05",
        weights={"file": str(path), "sha256": file_sha256(path)},
        class_probabilities=probabilities,
        classes="1008 ImageNet classes of inception-2015-12-05 (no output bias)",
    )


# --------------------------------------------------------------------------------------------
# Running images through clean-fid
# --------------------------------------------------------------------------------------------


def _resizer(network: FeatureNetwork) -> Callable[[np.ndarray], np.ndarray] | None:
    """clean-fid's ``custom_fn_resize``: identity, or None (= the "clean" mode's own resizer)."""
    return _identity if network.resize == RESIZE_NONE else None


def _check_batch(batch: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch)
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected (B, H, W, 3) uint8 images, got shape {batch.shape} dtype {batch.dtype}")
    return batch


def _clean_fid_batch(batch: np.ndarray, model: Callable[[Tensor], Tensor], network: FeatureNetwork) -> np.ndarray:
    """One batch of (B, H, W, 3) uint8 images through ``cleanfid.fid.get_model_features``."""
    from cleanfid.fid import get_model_features

    images = torch.from_numpy(np.array(batch)).permute(0, 3, 1, 2).float()  # (B, 3, H, W) 0..255
    n = int(images.shape[0])

    def serve(_z: Tensor) -> Tensor:  # clean-fid's "generator": returns the batch, ignores z
        return images

    with torch.random.fork_rng(devices=[]):  # clean-fid draws a dummy latent from the CPU RNG
        return get_model_features(
            serve,
            model,
            mode="clean",
            z_dim=1,
            num_gen=n,
            batch_size=n,
            device=network.device,
            verbose=False,
            custom_fn_resize=_resizer(network),
        )


def _batches(images: np.ndarray | Iterable[np.ndarray], batch_size: int) -> Iterator[np.ndarray]:
    if isinstance(images, np.ndarray):
        _check_batch(images)
        for start in range(0, len(images), batch_size):
            yield images[start : start + batch_size]
    else:
        for batch in images:
            yield _check_batch(batch)


def _map_images(
    images: np.ndarray | Iterable[np.ndarray],
    model: Callable[[Tensor], Tensor],
    network: FeatureNetwork,
    *,
    batch_size: int,
    progress: bool,
    desc: str,
    total: int | None = None,
) -> np.ndarray:
    """Run every batch through clean-fid with ``model``; concatenate the (B, D) outputs."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if total is None and isinstance(images, np.ndarray):
        total = len(images)
    out: list[np.ndarray] = []
    with progress_bar(total, progress, desc) as bar:
        for batch in _batches(images, batch_size):
            if len(batch):
                out.append(np.asarray(_clean_fid_batch(batch, model, network), dtype=np.float32))
                bar.update(len(batch))
    if not out:
        raise ValueError("no images to compute features of")
    return np.concatenate(out)


def features_of_images(
    images: np.ndarray | Iterable[np.ndarray],
    network: FeatureNetwork,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> np.ndarray:
    """(N, H, W, 3) uint8 images, or an iterable of such batches -> (N, D) float32 features.

    An iterable's batches are used as they come (``batch_size`` only chunks an array).
    """
    return _map_images(
        images,
        network.extract,
        network,
        batch_size=batch_size,
        progress=progress,
        desc=f"{network.name} features",
    )


def features_of_store(
    store: Any,
    network: FeatureNetwork,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    max_images: int | None = None,
) -> np.ndarray:
    """Features of a prepared split (:class:`~seqgan.artefacts.images.ImageStore`), in store order.

    ``max_images`` keeps the first that many images (None: all).
    """
    total = len(store) if max_images is None else min(len(store), int(max_images))
    return _map_images(
        store_batches(store, batch_size, max_images),
        network.extract,
        network,
        batch_size=batch_size,
        progress=progress,
        desc=f"{network.name} features",
        total=total,
    )


def class_probabilities_of_images(
    images: np.ndarray | Iterable[np.ndarray],
    network: FeatureNetwork,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
) -> np.ndarray:
    """(N, C) class probabilities of the network's classifier head (for the Inception Score),
    through the same clean-fid path and resize policy as the features."""
    if network.class_probabilities is None:
        raise ValueError(f"feature network {network.name!r} has no classifier head")
    return _map_images(
        images,
        network.class_probabilities,
        network,
        batch_size=batch_size,
        progress=progress,
        desc=f"{network.name} probabilities",
    )


# --------------------------------------------------------------------------------------------
# Statistics, reference files, distance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceStatistics:
    """Mean and covariance of a reference set's features plus how they were computed."""

    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64
    meta: dict[str, Any]

    @property
    def count(self) -> int | None:
        value = self.meta.get("count")
        return None if value is None else int(value)


def reference_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (mu (D,), sigma (D, D)), float64, as clean-fid computes them
    (``np.mean(axis=0)``, ``np.cov(rowvar=False)``, i.e. the N - 1 normalised covariance)."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features for a covariance, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf")
    feats = features.astype(np.float64)
    return np.mean(feats, axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def compute_reference(
    store: Any,
    network: FeatureNetwork,
    *,
    name: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    max_images: int | None = None,
) -> ReferenceStatistics:
    """Reference statistics of a split, with the metadata every FID against it records."""
    feats = features_of_store(store, network, batch_size=batch_size, progress=progress, max_images=max_images)
    mu, sigma = reference_statistics(feats)
    manifest = getattr(store, "manifest", {}) or {}
    meta = {
        "name": str(name),
        "count": int(len(feats)),
        "feature_dim": int(feats.shape[1]),
        "feature_network": network.describe(),
        "source": {
            "directory": str(getattr(store, "directory", "")),
            "sha256": manifest.get("sha256"),
            "count": int(len(store)),
            "resolution": manifest.get("resolution"),
        },
        "selection": "all images" if max_images is None else f"first {len(feats)} images",
    }
    return ReferenceStatistics(mu=mu, sigma=sigma, meta=meta)


def save_reference(path: str | Path, mu: np.ndarray, sigma: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write ``mu``, ``sigma`` and ``meta`` (as a JSON string, no pickle) to one .npz, atomically.

    Also writes ``<path>.json`` beside it with the same metadata, for people and ``git diff``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} are not (D,) and (D, D)")
    meta = {"format_version": REFERENCE_FORMAT_VERSION, **dict(meta)}
    meta_json = json.dumps(meta, indent=2, sort_keys=True)  # fails here on non-JSON metadata

    def write(tmp: Path) -> None:
        buffer = io.BytesIO()  # np.savez appends ".npz" to a path without it; a buffer avoids that
        np.savez(buffer, mu=mu, sigma=sigma, meta_json=np.array(meta_json))
        tmp.write_bytes(buffer.getvalue())

    path = atomic_write(path, write)
    atomic_write(Path(f"{path}.json"), lambda tmp: tmp.write_text(meta_json + "\n", encoding="utf-8"))
    return path


def load_reference(path: str | Path) -> ReferenceStatistics:
    """Read a file written by :func:`save_reference` (no pickle); checks shapes and finiteness."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference statistics {path} not found (the workflow's reference-statistics rule writes it)"
        )
    with np.load(path, allow_pickle=False) as data:
        missing = {"mu", "sigma", "meta_json"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: not a reference-statistics file (missing {sorted(missing)})")
        mu, sigma, meta = data["mu"], data["sigma"], json.loads(str(data["meta_json"]))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} are not (D,) and (D, D)")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{path}: statistics contain NaN or inf")
    return ReferenceStatistics(mu=mu, sigma=sigma, meta=meta)


def check_reference_matches(reference: ReferenceStatistics, network: FeatureNetwork) -> None:
    """Refuse an FID between features of two different networks (or two weight versions)."""
    recorded = reference.meta.get("feature_network")
    if not isinstance(recorded, Mapping):
        return  # a reference without provenance: nothing to compare against
    problems = []
    if recorded.get("name") != network.name:
        problems.append(f"network {recorded.get('name')!r} != {network.name!r}")
    ref_sha = (recorded.get("weights") or {}).get("sha256")
    if ref_sha and network.weights.get("sha256") and ref_sha != network.weights["sha256"]:
        problems.append(f"weights sha256 {ref_sha[:12]}... != {network.weights['sha256'][:12]}...")
    if recorded.get("resize") not in (None, network.resize):
        problems.append(f"resize {recorded.get('resize')!r} != {network.resize!r}")
    if problems:
        raise ValueError(
            f"reference statistics {reference.meta.get('name')!r} were computed with another "
            f"feature network ({'; '.join(problems)}); recompute the reference with this network"
        )


FRECHET_EPS = 1e-6  # clean-fid's diagonal offset for a singular covariance product


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), step for step as clean-fid computes it.

    Values within numerical error of 0 may come out slightly negative (e.g. -1e-6 for a set
    against itself when N < D makes the covariance singular); they are returned as computed.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"statistics disagree in dimension: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}"
        )
    diff = mu1 - mu2
    # sqrtm(A) without keywords returns the root alone in every SciPy (disp=True was the default)
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # a singular product: clean-fid's diagonal offset
        offset = np.eye(d) * FRECHET_EPS
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):  # numerical error may leave a slight imaginary part
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"Frechet distance: the matrix square root has an imaginary part of "
                f"{np.abs(covmean.imag).max():.3g}; the covariances are not valid statistics"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features: np.ndarray, reference: ReferenceStatistics) -> float:
    """FID of (N, D) features against reference statistics."""
    mu, sigma = reference_statistics(features)
    return frechet_distance(mu, sigma, reference.mu, reference.sigma)


# --------------------------------------------------------------------------------------------
# Inception Score
# --------------------------------------------------------------------------------------------


def inception_score(
    probs: np.ndarray | None = None,
    *,
    logits: np.ndarray | None = None,
    splits: int = 10,
) -> tuple[float, float]:
    """(mean, std) over ``splits`` chunks of exp(mean_i KL(p(y|x_i) || p(y))) (module docstring).

    Give either ``probs`` (N, C) (rows sum to 1) or ``logits`` (N, C) (softmax is applied in
    float64). The N images are cut into ``splits`` consecutive chunks of N // splits images (the
    remainder is dropped, as in the original implementation); std is numpy's (ddof = 0).
    """
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of probs or logits")
    if logits is not None:
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"logits must be (N, C), got shape {z.shape}")
        log_p = z - z.max(axis=1, keepdims=True)
        log_p = log_p - np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        p = np.exp(log_p)
    else:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2:
            raise ValueError(f"probs must be (N, C), got shape {p.shape}")
        if (p < 0).any() or not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
            raise ValueError("probs rows must be non-negative and sum to 1 (pass logits= instead?)")
        p = p / p.sum(axis=1, keepdims=True)
    n = p.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"need at least splits = {splits} >= 1 images, got {n}")
    size = n // splits
    scores = []
    for k in range(splits):
        part = p[k * size : (k + 1) * size]
        marginal = part.mean(axis=0, keepdims=True)
        # KL with 0 log 0 = 0 (one-hot predictions are exact zeros almost everywhere)
        ratio = np.where(part > 0, part / np.where(marginal > 0, marginal, 1.0), 1.0)
        kl = np.sum(part * np.log(ratio), axis=1)
        scores.append(math.exp(float(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
