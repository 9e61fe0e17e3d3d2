"""Semantic-enhanced perceptual loss L_per^alpha (SeQ-GAN, Sec. 3; Table 6).

Paper definition (main-paper facts, section 1)::

    L_per^low  = sum over the five taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of d_l
    L_per^sem  = d_relu5_3 + d_logit
    L_per^alpha = alpha * L_per^sem + (1 - alpha) * L_per^low,   alpha in [0, 1]

which is the special case ``w = alpha_weights(alpha)`` of the general weighted form implemented here::

    L = sum_l w_l * d_l  +  w_logit * logit_weight * d_logit

    alpha_weights(alpha): w_1..w_4 = 1 - alpha, w_5 = 1, w_logit = alpha

so the shallow four taps fade out as alpha grows, relu5_3 always counts fully, and the logit term
fades in. The Table 6 layer ablations (rows A-E) are other choices of ``w`` (``TABLE6_WEIGHTS``).

Per-tap distance (both backbones; LPIPS v0.1's formula)::

    f_hat = f / (||f||_2 over channels + 1e-10)                 (each spatial position separately)
    d_l(x, y) = mean over (h, w) of  sum_c v_{l,c} * (f_hat_l(x) - f_hat_l(y))_{c,h,w} ** 2

* ImageNet VGG16: ``v_l`` = LPIPS's learned linear layer ``lin{l}`` (its 1x1-conv weights), so the
  five d_l are exactly the per-layer outputs of ``lpips.LPIPS(net='vgg')`` and
  ``sum_l d_l`` = LPIPS (alpha = 0 reproduces the LPIPS loss of previous VQ tokenizers).
* ``layer_weights=None`` (the embedded default's SemanticNet, which has no learned LPIPS layers):
  ``v_{l,c} = 1 / C_l``, i.e. the mean over channels of the squared difference of unit-normalised
  feature vectors. Per position this is ``(2 - 2 cos(f_l(x), f_l(y))) / C_l``, in [0, 4 / C_l].
  (Calibrated, the constant factor per tap does not matter: each term is divided by its own mean.)
  Pass explicit ones to get the sum instead.

Logit distance::

    d_logit(x, y) = mean over classes of (z(x) - z(y)) ** 2       (z: logits before softmax)

i.e. the logit MSE. Its scale is unrelated to the taps': between an untrained tokenizer's
reconstructions and their targets it is hundreds (the embedded default's network: 378), against
taps of O(0.01-0.1). Two forms put it on the taps' scale:

* **calibrated** (``calibrated=True``, the embedded default's ``tokenizer.loss.calibration:
  initial_mean``): every term, taps and logit alike, is divided by its mean over calibration images
  at initialisation (``term_scales``, set by :meth:`WeightedPerceptualLoss.set_term_scales` from
  :meth:`~WeightedPerceptualLoss.term_means`), and L_low, L_sem are the MEANS of their terms
  (:func:`calibrated_alpha_weights`), so both start at 1 and so does every alpha's L_per^alpha. A
  typed constant once went 11x stale when the network changed; a measured one cannot.
* **the paper's sums** (``calibrated=False``): ``logit_weight`` (lambda) rescales d_logit inside
  L_per^sem = d_relu5_3 + lambda * d_logit (paper configurations: 1).

All distances are averaged over the batch.

Gradients: the backbone is frozen (``requires_grad=False``, kept in eval mode even when the loss is
put in training mode); the target's features are computed under ``no_grad``; gradients flow only to
the reconstruction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from seqgan.nets.backbone import TAP_NAMES, FeatureBackbone

if TYPE_CHECKING:  # torchvision costs 1.4 s of import per job; only the VGG16 backbone needs it
    import torchvision

NORM_EPS = 1e-10  # lpips.normalize_tensor's epsilon, kept identical for bit-level agreement


@dataclass(frozen=True)
class PerceptualWeights:
    """Weights of the general form ``sum_l taps[l] * d_l + logit * logit_weight * d_logit``."""

    taps: tuple[float, ...]
    logit: float

    def __post_init__(self) -> None:
        values = (*self.taps, self.logit)
        if len(self.taps) != len(TAP_NAMES) or not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(
                f"PerceptualWeights needs {len(TAP_NAMES)} tap weights and one logit weight, all "
                f"finite and >= 0; got taps={self.taps}, logit={self.logit}"
            )


def check_alpha(alpha: float) -> float:
    """Return alpha as a float; ValueError naming the value unless 0 <= alpha <= 1."""
    value = float(alpha)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"alpha (the semantic ratio) must be in [0, 1], got alpha={alpha!r}")
    return value


def alpha_weights(alpha: float) -> PerceptualWeights:
    """L_per^alpha as a weighted form: taps (1-a, 1-a, 1-a, 1-a, 1), logit factor a."""
    a = check_alpha(alpha)
    return PerceptualWeights(taps=(1.0 - a,) * 4 + (1.0,), logit=a)


def calibrated_alpha_weights(alpha: float) -> PerceptualWeights:
    """L_per^alpha with L_low and L_sem as the MEANS of their calibrated terms (module doc).

    L_low = (d_1 + ... + d_5) / 5 and L_sem = (d_5 + d_logit) / 2, each d already divided by its
    calibration mean, so both start at 1 and every alpha's L_per^alpha starts at 1:
    taps ((1-a)/5, ..., (1-a)/5 + a/2), logit factor a/2.
    """
    a = check_alpha(alpha)
    low = (1.0 - a) / len(TAP_NAMES)
    return PerceptualWeights(taps=(low,) * (len(TAP_NAMES) - 1) + (low + a / 2.0,), logit=a / 2.0)


# Names of the six calibrated terms, in the order of ``WeightedPerceptualLoss.term_scales``.
TERM_NAMES: tuple[str, ...] = (*TAP_NAMES, "logit")


# Table 6 of the paper: which layers each loss uses. Layers in a set are weighted 1 (uniform, our
# reading; the paper lists sets, not weights); the logit factor still multiplies logit_weight.
TABLE6_WEIGHTS: dict[str, PerceptualWeights] = {
    "low": PerceptualWeights((1.0, 1.0, 1.0, 1.0, 1.0), 0.0),
    "A": PerceptualWeights((1.0, 1.0, 1.0, 1.0, 1.0), 1.0),
    "B": PerceptualWeights((0.0, 1.0, 1.0, 1.0, 1.0), 1.0),
    "C": PerceptualWeights((0.0, 0.0, 1.0, 1.0, 1.0), 1.0),
    "D": PerceptualWeights((0.0, 0.0, 0.0, 1.0, 1.0), 1.0),
    "sem": PerceptualWeights((0.0, 0.0, 0.0, 0.0, 1.0), 1.0),
    "E": PerceptualWeights((0.0, 0.0, 0.0, 0.0, 0.0), 1.0),
}


def normalize_channels(features: Tensor, eps: float = NORM_EPS) -> Tensor:
    """Unit-normalise each spatial position's feature vector (lpips.normalize_tensor)."""
    norm = torch.sqrt(torch.sum(features**2, dim=1, keepdim=True))
    return features / (norm + eps)


def tap_distance(feat_x: Tensor, feat_y: Tensor, channel_weights: Tensor | None) -> Tensor:
    """Per-sample d_l: weighted channel sum of squared normalised differences, spatially averaged.

    ``channel_weights`` (C,) are LPIPS's linear layer; None means 1/C (mean over channels).
    Returns shape (B,).
    """
    diff = (normalize_channels(feat_x) - normalize_channels(feat_y)) ** 2
    if channel_weights is None:
        per_position = diff.mean(dim=1)
    else:
        if channel_weights.numel() != diff.shape[1]:
            raise ValueError(f"layer weights have {channel_weights.numel()} channels, features have {diff.shape[1]}")
        per_position = torch.einsum("bchw,c->bhw", diff, channel_weights.to(diff.dtype))
    return per_position.mean(dim=(1, 2))


def logit_distance(logits_x: Tensor, logits_y: Tensor) -> Tensor:
    """Per-sample d_logit: mean over classes of the squared logit difference. Shape (B,)."""
    return ((logits_x - logits_y) ** 2).mean(dim=1)


@dataclass
class PerceptualDistances:
    """Unweighted per-sample distances: ``taps[l]`` (B,) for each tap, ``logit`` (B,)."""

    taps: list[Tensor]
    logit: Tensor


class WeightedPerceptualLoss(nn.Module):
    """``sum_l w_l * d_l + w_logit * logit_weight * d_logit`` over a frozen FeatureBackbone.

    Args:
        backbone: any :class:`~seqgan.nets.backbone.FeatureBackbone` (VGG16Backbone, SemanticNet).
            It is frozen in place (requires_grad False, eval mode).
        weights: tap and logit weights (``alpha_weights(alpha)``, a ``TABLE6_WEIGHTS`` row, ...).
        layer_weights: per-tap channel weights (five 1-D tensors; ``VGG16Backbone.lpips_layer_weights()``
            for LPIPS) or None for the plain mean over channels.
        logit_weight: lambda, the scale of the logit MSE inside L_per^sem (no default on purpose).
    """

    def __init__(
        self,
        backbone: FeatureBackbone,
        weights: PerceptualWeights,
        layer_weights: Sequence[Tensor] | None,
        logit_weight: float,
        calibrated: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(backbone, FeatureBackbone):
            raise TypeError(f"backbone must implement FeatureBackbone, got {type(backbone).__name__}")
        if tuple(backbone.tap_names) != TAP_NAMES:
            raise ValueError(f"backbone taps {backbone.tap_names} != expected {TAP_NAMES}")
        if not (math.isfinite(logit_weight) and logit_weight >= 0):
            raise ValueError(f"logit_weight must be finite and >= 0, got logit_weight={logit_weight!r}")
        self.backbone = backbone
        _freeze(backbone)
        self.weights = weights
        self.logit_weight = float(logit_weight)
        self.use_layer_weights = layer_weights is not None
        self.calibrated = bool(calibrated)
        if self.calibrated and self.logit_weight != 1.0:
            raise ValueError(
                "a calibrated loss divides d_logit by its own calibration mean; logit_weight must be 1, "
                f"got {self.logit_weight!r}"
            )
        # Each term's divisor (five taps, then the logit): ones for the uncalibrated (paper) form;
        # NaN until set_term_scales() for the calibrated one, so it cannot be used uncalibrated.
        fill = math.nan if self.calibrated else 1.0
        self.register_buffer("term_scales", torch.full((len(TERM_NAMES),), fill))
        if layer_weights is not None:
            if len(layer_weights) != len(TAP_NAMES):
                raise ValueError(f"layer_weights needs {len(TAP_NAMES)} tensors, got {len(layer_weights)}")
            for i, w in enumerate(layer_weights):
                self.register_buffer(f"layer_weight_{i}", w.detach().reshape(-1).clone().float())

    def _layer_weight(self, index: int) -> Tensor | None:
        return getattr(self, f"layer_weight_{index}") if self.use_layer_weights else None

    def train(self, mode: bool = True) -> WeightedPerceptualLoss:
        """Switch the loss's mode but keep the frozen backbone in eval mode (dropout, etc.)."""
        super().train(mode)
        if isinstance(self.backbone, nn.Module):
            self.backbone.eval()
        return self

    def distances(self, recon: Tensor, target: Tensor, logit_grad: bool = True) -> PerceptualDistances:
        """Unweighted per-sample distances; gradients flow to ``recon`` only.

        ``logit_grad=False`` detaches the logits, so a zero logit weight (alpha = 0) does not pay
        for a backward pass through VGG16's 120M-parameter classifier.
        """
        if recon.shape != target.shape:
            raise ValueError(f"recon {tuple(recon.shape)} and target {tuple(target.shape)} differ")
        taps_x, logits_x = self.backbone.features(recon)
        if not logit_grad:
            logits_x = logits_x.detach()
        with torch.no_grad():
            taps_y, logits_y = self.backbone.features(target)
        taps = [
            tap_distance(fx, fy, self._layer_weight(i)) for i, (fx, fy) in enumerate(zip(taps_x, taps_y, strict=True))
        ]
        return PerceptualDistances(taps=taps, logit=logit_distance(logits_x, logits_y))

    @torch.no_grad()
    def term_means(self, recon: Tensor, target: Tensor) -> Tensor:
        """(6,) batch means of the unweighted terms d_1..d_5, d_logit (no lambda, no scales)."""
        dist = self.distances(recon, target, logit_grad=False)
        return torch.stack([d.mean() for d in dist.taps] + [dist.logit.mean()]).float()

    def set_term_scales(self, means: Tensor) -> None:
        """Divide every term by its calibration mean from now on (the calibrated form only)."""
        if not self.calibrated:
            raise ValueError("set_term_scales: this loss is not calibrated (tokenizer.loss.calibration = none)")
        means = torch.as_tensor(means, dtype=torch.float32).reshape(-1)
        if means.numel() != len(TERM_NAMES) or not bool(torch.isfinite(means).all() and (means > 0).all()):
            raise ValueError(
                f"calibration needs {len(TERM_NAMES)} finite positive term means ({', '.join(TERM_NAMES)}), "
                f"got {means.tolist()}: a term that is 0 on the calibration batch cannot be calibrated"
            )
        self.term_scales.copy_(means.to(self.term_scales.device))

    def forward(self, recon: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Batch-mean scalars: ``total``; each tap's and ``logit``'s weighted contribution (they sum
        to ``total``); and the unweighted paper quantities ``low`` (L_per^low) and ``sem`` (L_per^sem,
        with lambda applied) for logging. Calibrated: every term divided by its scale, and L_low,
        L_sem the means of their terms (so ``total`` = alpha * sem + (1 - alpha) * low either way)."""
        if self.calibrated and not bool(torch.isfinite(self.term_scales).all()):
            raise RuntimeError("calibrated perceptual loss used before set_term_scales()")
        dist = self.distances(recon, target, logit_grad=self.weights.logit > 0)
        scales = self.term_scales.to(dist.logit.dtype)
        taps = [d.mean() / scales[i] for i, d in enumerate(dist.taps)]
        logit = self.logit_weight * dist.logit.mean() / scales[-1]
        out = {name: w * d for name, w, d in zip(TAP_NAMES, self.weights.taps, taps, strict=True)}
        out["logit"] = self.weights.logit * logit
        out["total"] = torch.stack(list(out.values())).sum()
        if self.calibrated:
            out["low"] = torch.stack(taps).mean().detach()
            out["sem"] = ((taps[-1] + logit) / 2.0).detach()
        else:
            out["low"] = torch.stack(taps).sum().detach()
            out["sem"] = (taps[-1] + logit).detach()
        return out


class SemanticPerceptualLoss(WeightedPerceptualLoss):
    """L_per^alpha = alpha * L_per^sem + (1 - alpha) * L_per^low (see the module docstring)."""

    def __init__(
        self,
        backbone: FeatureBackbone,
        alpha: float,
        layer_weights: Sequence[Tensor] | None,
        logit_weight: float,
        calibrated: bool = False,
    ) -> None:
        weights = calibrated_alpha_weights(alpha) if calibrated else alpha_weights(alpha)
        super().__init__(backbone, weights, layer_weights, logit_weight, calibrated)
        self.alpha = float(alpha)

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, logit_weight={self.logit_weight}, lpips={self.use_layer_weights}, "
            f"calibrated={self.calibrated}"
        )


def _freeze(backbone: object) -> None:
    if isinstance(backbone, nn.Module):
        backbone.requires_grad_(False)
        backbone.eval()


class VGG16Backbone(nn.Module):
    """ImageNet VGG16 as a FeatureBackbone: LPIPS's five taps and the classifier logits, one trunk.

    The trunk modules are shared, not copied: ``self.lpips`` is an ``lpips.LPIPS(net='vgg')`` whose
    trunk slices ARE ``vgg.features[0:30]``, so ``self.lpips(x, y)`` is the LPIPS metric on exactly
    the weights the logits use. The logits continue from relu5_3 through torchvision's own head:
    ``features[30]`` (max-pool) -> ``avgpool`` (adaptive 7x7, so any input size works; at 256 px
    the head sees 8x8 pooled to 7x7, as torchvision itself does for non-224 inputs) -> ``classifier``.

    Normalisation: lpips's ScalingLayer maps [-1, 1] images by (x - shift) / scale with
    shift = (-.030, -.088, -.188), scale = (.458, .448, .450). These are exactly 2*mean - 1 and
    2*std for torchvision's ImageNet mean (.485, .456, .406) and std (.229, .224, .225), so
    ScalingLayer(x) == ((x + 1) / 2 - mean) / std: the one normalisation is what both the LPIPS taps
    and torchvision's classifier expect, and one trunk pass serves both (asserted in the tests).

    Build it with ``VGG16Backbone.from_imagenet()`` for real runs (cached weights, no download) or
    ``VGG16Backbone(torchvision.models.vgg16(weights=None))`` for offline tests. The LPIPS linear
    layers always come from the lpips package's bundled file (no download either).
    """

    tap_names: tuple[str, ...] = TAP_NAMES
    num_classes: int = 1000

    def __init__(self, vgg: torchvision.models.VGG) -> None:
        super().__init__()
        import lpips

        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=`
            warnings.simplefilter("ignore", UserWarning)
            # pnet_rand=True: never download lpips's own trunk; ours replaces it just below.
            self.lpips = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
        _share_trunk(self.lpips.net, vgg.features)
        self.pool5 = vgg.features[30]
        self.avgpool = vgg.avgpool
        self.classifier = vgg.classifier
        _freeze(self)

    @classmethod
    def from_imagenet(cls) -> VGG16Backbone:
        """The paper's backbone from the local torch.hub cache (MissingWeightsError if absent)."""
        from seqgan.nets.pretrained import load_vgg16_imagenet

        return cls(load_vgg16_imagenet())

    def lpips_layer_weights(self) -> list[Tensor]:
        """LPIPS v0.1's learned channel weights lin0..lin4, as five 1-D tensors."""
        return [lin.model[-1].weight.detach().reshape(-1) for lin in self.lpips.lins]

    def normalize(self, images: Tensor) -> Tensor:
        """[-1, 1] images -> ImageNet-normalised input (== lpips ScalingLayer, see class doc)."""
        return self.lpips.scaling_layer(images)

    def features(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Images (B, 3, H, W) in [-1, 1] -> ([relu1_2, ..., relu5_3], ImageNet logits (B, 1000))."""
        taps = list(self.lpips.net(self.normalize(images)))
        pooled = self.avgpool(self.pool5(taps[-1]))
        logits = self.classifier(torch.flatten(pooled, 1))
        return taps, logits

    def forward(self, images: Tensor) -> Tensor:
        """Logits only (classification)."""
        return self.features(images)[1]


def _share_trunk(lpips_trunk: nn.Module, features: nn.Sequential) -> None:
    """Point lpips's trunk slices at ``features``' modules (same objects, so same parameters).

    lpips.pretrained_networks.vgg16 splits torchvision's ``features`` into slice1..slice5 holding
    modules named by their index in ``features`` (0-3, 4-8, 9-15, 16-22, 23-29).
    """
    for slice_index in range(1, 6):
        block = getattr(lpips_trunk, f"slice{slice_index}")
        for name in list(block._modules):
            reference = features[int(name)]
            if type(reference) is not type(block._modules[name]):
                raise RuntimeError(f"lpips trunk layer {name} does not match torchvision's VGG16")
            block._modules[name] = reference
