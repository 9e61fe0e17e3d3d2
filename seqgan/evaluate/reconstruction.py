"""Reconstruction metrics of a VQ tokenizer on a prepared split (rFID, PSNR, perceptual distance,
codebook usage, classifier accuracy).

Conventions (recorded in every metrics dict under ``computed_with``):

* Reconstructions are turned into images before they are measured: decoder output clamped to
  [-1, 1], mapped to 0..255 and rounded to uint8 (``to_uint8``), i.e. what would be written as a
  PNG. rFID, PSNR, the perceptual distance and the classifier accuracy all see these images.
  Codebook usage counts the ids of ``encode`` (no rounding involved).
* PSNR (dB): :mod:`seqgan.losses.psnr`, the one definition the trainer's sidecar and supplement
  Fig. 1 use too. Per image ``10 log10(255^2 / MSE)``, MSE over all H x W x 3 values of the uint8
  images (in float64); the reported value is the mean over images. An identical image has
  MSE = 0 and PSNR = inf (``psnr`` returns inf); in the mean it counts as the PSNR of the
  smallest non-zero error, one value off by one: ``10 log10(255^2 * H * W * 3)`` (83.0 dB at
  32 px, 101.1 dB at 256 px), so the mean stays finite and valid JSON. How many images were
  identical is reported (``psnr_identical_images``).
* rFID: features of the reconstructions (through clean-fid, see :mod:`seqgan.evaluate.fid`)
  against the reference statistics of the ORIGINAL images of the same split, computed with the
  same feature network (checked).
* Perceptual distance: a :class:`PerceptualDistance` chosen by the caller. Paper configurations:
  LPIPS-VGG (``lpips_vgg_distance``, lpips v0.1 on ImageNet VGG16). Embedded default:
  ``embedded_perceptual_distance``: the alpha = 0 semantic perceptual distance with the embedded
  classifier (sum of the five normalised tap distances, 1/C channel weights; see
  :mod:`seqgan.losses.perceptual`) -- LPIPS's formula on another backbone, not LPIPS's numbers.
  Mean over images.
* Codebook usage: over the whole evaluated split, the fraction of the K codes used at least once
  and the perplexity exp(H) of the code histogram (:class:`~seqgan.nets.quantizer.CodebookUsage`).
* Classifier accuracy (when a classifier is given): top-1 against the split's labels, on the
  reconstructions and on the originals.

Everything runs in eval mode under ``no_grad``; the modules' previous train / eval modes are
restored afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.data.synthetic import SceneTruth
from seqgan.evaluate.fid import (
    FeatureNetwork,
    ReferenceStatistics,
    check_reference_matches,
    features_of_images,
    fid_from_features,
    module_sha256,
    store_batches,
    weights_identity,
)
from seqgan.evaluate.ground_truth import INSTRUMENT_DEFINITION, instrument_metrics
from seqgan.losses.psnr import mean_psnr, psnr, psnr_definition
from seqgan.nets.common import eval_mode
from seqgan.nets.pretrained import lpips_linear_weights_path, require_weights
from seqgan.nets.quantizer import CodebookUsage
from seqgan.progress import progress_bar
from seqgan.train.runtime import resolve_device

__all__ = [
    "PerceptualDistance",
    "embedded_perceptual_distance",
    "evaluate_reconstruction",
    "eval_mode",
    "lpips_vgg_distance",
    "reconstruct_batch",
    "to_uint8",
]


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------


def _device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else resolve_device(device)


def _reconstruct(tokenizer: nn.Module, images: np.ndarray, device: torch.device) -> tuple[np.ndarray, Tensor, Tensor]:
    """-> (reconstructions (B, H, W, 3) uint8, ids (B, h, w), originals (B, 3, H, W) in [-1, 1])."""
    x = to_model_input(images, device)
    recon, ids, _ = tokenizer(x)
    return to_uint8(recon), ids, x


def reconstruct_batch(tokenizer: nn.Module, images_uint8: np.ndarray, device: str | torch.device) -> np.ndarray:
    """Encode + decode (B, H, W, 3) uint8 images; return the reconstructions as uint8 images.

    The tokenizer is moved to ``device`` (in place, as ``nn.Module.to`` does) and run in eval
    mode under no_grad; its previous mode is restored.
    """
    dev = _device(device)
    tokenizer.to(dev)
    with eval_mode(tokenizer):
        return _reconstruct(tokenizer, np.asarray(images_uint8), dev)[0]


# --------------------------------------------------------------------------------------------
# Perceptual distances
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerceptualDistance:
    """A named per-image distance: ``fn(recon, target)`` with (B, 3, H, W) images in [-1, 1]
    on ``device`` -> (B,) distances. ``info`` records how it is computed (weights, formula)."""

    name: str
    fn: Callable[[Tensor, Tensor], Tensor]
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)


def lpips_vgg_distance(device: str | torch.device = "cpu") -> PerceptualDistance:
    """LPIPS v0.1 with the VGG16 trunk (``lpips.LPIPS(net='vgg')``), the paper's rLPIPS-style metric.

    The trunk's ImageNet weights come from torchvision's cache; they are required up front
    (MissingWeightsError naming ``seqgan fetch-weights``), so lpips never tries to download.
    """
    vgg_path = require_weights("vgg16")
    import lpips

    dev = _device(device)
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="vgg", verbose=False).to(dev).eval()
    model.requires_grad_(False)

    def fn(recon: Tensor, target: Tensor) -> Tensor:
        return model(recon, target).reshape(-1)  # (B, 1, 1, 1) -> (B,)

    return PerceptualDistance(
        name="lpips_vgg",
        fn=fn,
        device=dev,
        info={
            "metric": "LPIPS v0.1, VGG16 trunk, learned linear layers (lpips.LPIPS(net='vgg'))",
            "weights": {"vgg16": str(vgg_path), "lpips_linear": str(lpips_linear_weights_path())},
        },
    )


def embedded_perceptual_distance(semantic_net: nn.Module, *, weights_file: str | None = None) -> PerceptualDistance:
    """The alpha = 0 semantic perceptual distance with the embedded classifier (module docstring).

    Per image: sum over relu1_2 .. relu5_3 of the spatial mean of the channel-mean squared
    difference of unit-normalised features (``SemanticPerceptualLoss(alpha=0, layer_weights=None)``;
    the logit term has weight 0). The net is frozen in place (requires_grad False, eval mode).
    """
    from seqgan.losses.perceptual import SemanticPerceptualLoss

    loss = SemanticPerceptualLoss(semantic_net, alpha=0.0, layer_weights=None, logit_weight=0.0)
    device = next(semantic_net.parameters()).device

    def fn(recon: Tensor, target: Tensor) -> Tensor:
        dist = loss.distances(recon, target, logit_grad=False)
        return torch.stack(dist.taps).sum(dim=0)  # (5, B) -> (B,)

    weights = weights_identity(semantic_net, weights_file)
    return PerceptualDistance(
        name="perceptual_embedded_alpha0",
        fn=fn,
        device=device,
        info={
            "metric": (
                "L_per^low of seqgan.losses.perceptual with the embedded classifier: sum over "
                "relu1_2..relu5_3 of mean_(h,w) mean_c (f_hat(x) - f_hat(y))^2, f_hat unit-"
                "normalised over channels (alpha = 0, no learned layer weights)"
            ),
            "weights": weights,
        },
    )


# --------------------------------------------------------------------------------------------
# The evaluation
# --------------------------------------------------------------------------------------------


def _check_classifier(classifier: nn.Module, store: Any) -> None:
    num_classes = int(store.manifest.get("num_classes", 0))
    if num_classes < 2:
        raise ValueError(f"{store.directory}: classifier accuracy needs a labelled split (num_classes = {num_classes})")
    net_classes = getattr(classifier, "num_classes", None)
    if net_classes is not None and int(net_classes) != num_classes:
        raise ValueError(f"classifier predicts {net_classes} classes, split {store.directory} has {num_classes}")


def evaluate_reconstruction(
    tokenizer: nn.Module,
    store: Any,
    *,
    batch_size: int,
    device: str | torch.device,
    fid_network: FeatureNetwork,
    reference: ReferenceStatistics,
    perceptual_distance: PerceptualDistance | None = None,
    classifier: nn.Module | None = None,
    max_images: int | None = None,
    progress: bool = False,
    truth: SceneTruth | None = None,
    judge: nn.Module | None = None,
) -> dict[str, Any]:
    """Encode + decode a split (the first ``max_images`` images, or all) and measure it.

    Returns a JSON-ready dict: ``count``, ``resolution``, ``rfid``, ``psnr``,
    ``psnr_identical_images``, the perceptual distance under its own name (and its name under
    ``perceptual_metric``), ``codebook_usage`` (fraction of K used), ``codebook_perplexity``,
    ``codebook_used_codes``, ``codebook_size``, ``tokenizer_sha256``; with a classifier also
    ``classifier_accuracy_reconstructed`` and ``classifier_accuracy_original``; with the synthetic
    world's ground truth ``truth`` also ``instrument`` (mask IoU, shape colour and background
    error of the reconstructions and of the originals, :mod:`seqgan.evaluate.ground_truth`); and
    ``computed_with``: how each number was computed (module docstring).

    The tokenizer (and classifier) are moved to ``device`` in place; the FID network and the
    perceptual distance run on their own devices.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    dev = _device(device)
    check_reference_matches(reference, fid_network)
    for net in (classifier, judge):
        if net is not None:
            _check_classifier(net, store)
            net.to(dev)
    n = len(store) if max_images is None else min(len(store), int(max_images))
    if n < 2:
        raise ValueError(f"{store.directory}: need at least 2 images for rFID, have {n}")
    codebook_size = int(tokenizer.quantizer.codebook_size)
    tokenizer.to(dev)

    usage = CodebookUsage(codebook_size)
    psnr_values: list[np.ndarray] = []
    features: list[np.ndarray] = []
    perceptual_sum = 0.0
    correct_recon = correct_orig = judged_recon = judged_orig = 0
    kept: list[np.ndarray] = []  # reconstructions for the ground-truth instrument
    resolution = None
    with eval_mode(tokenizer, classifier, judge), progress_bar(n, progress, "reconstruction") as bar:
        start = 0
        for images in store_batches(store, batch_size, n):
            resolution = images.shape[1:3]
            recon, ids, x = _reconstruct(tokenizer, images, dev)  # (B, H, W, 3) uint8, ...
            usage.update(ids)
            if truth is not None:
                kept.append(recon)
            psnr_values.append(psnr(recon, images))
            features.append(features_of_images(recon, fid_network, batch_size=len(recon), progress=False))
            if perceptual_distance is not None or classifier is not None or judge is not None:
                x_recon = to_model_input(recon, dev)  # the uint8-rounded reconstructions
            if perceptual_distance is not None:
                pd = perceptual_distance.device
                d = perceptual_distance.fn(x_recon.to(pd), x.to(pd))
                perceptual_sum += float(d.double().sum())
            labels = torch.from_numpy(np.asarray(store.labels[start : start + len(images)])).to(dev)
            if classifier is not None:
                correct_recon += int((classifier(x_recon).argmax(dim=1) == labels).sum())
                correct_orig += int((classifier(x).argmax(dim=1) == labels).sum())
            if judge is not None:
                judged_recon += int((judge(x_recon).argmax(dim=1) == labels).sum())
                judged_orig += int((judge(x).argmax(dim=1) == labels).sum())
            start += len(images)
            bar.update(len(images))

    assert resolution is not None
    height, width = int(resolution[0]), int(resolution[1])
    per_image_psnr = np.concatenate(psnr_values)
    identical = int(np.isinf(per_image_psnr).sum())
    fraction_used, perplexity = usage.compute()
    feats = np.concatenate(features)
    fid_info = fid_network.describe()

    metrics: dict[str, Any] = {
        "count": n,
        "resolution": [height, width],
        "rfid": fid_from_features(feats, reference),
        "psnr": mean_psnr(per_image_psnr, height, width),
        "psnr_identical_images": identical,
        "codebook_usage": float(fraction_used),
        "codebook_perplexity": float(perplexity),
        "codebook_used_codes": int((usage.counts > 0).sum()),
        "codebook_size": codebook_size,
        "tokenizer_sha256": module_sha256(tokenizer),
    }
    computed_with: dict[str, Any] = {
        "images": {
            "split": str(store.directory),
            "split_sha256": store.manifest.get("sha256"),
            "count": n,
            "selection": "all images" if n == len(store) else f"first {n} of {len(store)} images",
            "reconstructions": "decoder output clamped to [-1, 1], mapped to 0..255, rounded to uint8",
        },
        "rfid": {
            "feature_network": fid_info,
            "reference": {
                "name": reference.meta.get("name"),
                "count": reference.count,
                "source": reference.meta.get("source"),
            },
            "count": n,
            "resize": fid_info["resize_policy"],
            "formula": "clean-fid frechet_distance(mu, sigma) of reconstructions vs reference",
        },
        "psnr": psnr_definition(height, width),
        "codebook": "ids of encode() over the whole evaluated split; fraction of K used, exp(entropy)",
    }
    if perceptual_distance is not None:
        metrics[perceptual_distance.name] = perceptual_sum / n
        metrics["perceptual_metric"] = perceptual_distance.name
        computed_with["perceptual"] = {
            "name": perceptual_distance.name,
            **perceptual_distance.info,
            "reduction": "mean over images",
        }
    if classifier is not None:
        metrics["classifier_accuracy_reconstructed"] = correct_recon / n
        metrics["classifier_accuracy_original"] = correct_orig / n
        computed_with["classifier"] = {
            "weights_sha256": module_sha256(classifier),
            "metric": "top-1 accuracy against the split's labels (eval mode)",
            "network": "the loss network: the semantic network the tokenizer's perceptual loss used",
        }
    if judge is not None:
        metrics["judge_accuracy_reconstructed"] = judged_recon / n
        metrics["judge_accuracy_original"] = judged_orig / n
        computed_with["judge"] = {
            "weights_sha256": module_sha256(judge),
            "metric": "top-1 accuracy against the split's labels (eval mode)",
            "network": "the judge: another network than the loss network, which no tokenizer optimised",
        }
    if truth is not None:
        originals = np.asarray(store.images[:n])
        metrics["instrument"] = {
            "reconstructed": instrument_metrics(np.concatenate(kept), truth),
            "original": instrument_metrics(originals, truth),
        }
        computed_with["instrument"] = {**INSTRUMENT_DEFINITION, "network": "none (ground truth)"}
    metrics["computed_with"] = computed_with
    return metrics
