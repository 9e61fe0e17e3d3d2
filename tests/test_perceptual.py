"""Semantic-enhanced perceptual loss: LPIPS agreement, alpha weighting, gradients, plain formula."""

from __future__ import annotations

import copy
import warnings

import lpips
import pytest
import torch
import torchvision
from torch import Tensor, nn

from seqgan.losses.perceptual import (
    TABLE6_WEIGHTS,
    PerceptualWeights,
    SemanticPerceptualLoss,
    VGG16Backbone,
    WeightedPerceptualLoss,
    alpha_weights,
)
from seqgan.nets.backbone import TAP_NAMES, FeatureBackbone

LOGIT_WEIGHT = 0.002


@pytest.fixture(scope="module")
def vgg_pair() -> tuple[VGG16Backbone, nn.Module]:
    """Randomly initialised torchvision VGG16 (offline) inside the LPIPS wrapper, plus an
    independent copy of the same torchvision model for reference computations."""
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16(weights=None).eval()
    twin = copy.deepcopy(vgg)
    return VGG16Backbone(vgg), twin


@pytest.fixture(scope="module")
def vgg_backbone(vgg_pair: tuple[VGG16Backbone, nn.Module]) -> VGG16Backbone:
    return vgg_pair[0]


@pytest.fixture(scope="module")
def reference_lpips(vgg_backbone: VGG16Backbone) -> lpips.LPIPS:
    """An independent lpips.LPIPS with the same trunk weights copied in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    ref.net.load_state_dict(vgg_backbone.lpips.net.state_dict())
    return ref.eval()


def images(batch: int, size: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1


class StandIn(nn.Module):
    """A tiny FeatureBackbone with no ReLU on the taps (so no all-zero feature vectors)."""

    tap_names = TAP_NAMES
    num_classes = 7

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        widths = (4, 6, 8, 8, 10)
        chans = (3, *widths)
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(5))
        self.head = nn.Linear(widths[-1], self.num_classes)
        self.dropout = nn.Dropout(0.5)  # must be inactive: the loss keeps the backbone in eval

    def features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            x = conv(x if i == 0 else torch.tanh(nn.functional.avg_pool2d(x, 2)))
            taps.append(x)
        return taps, self.head(self.dropout(x.mean(dim=(2, 3))))


def hand_tap_distance(fx: Tensor, fy: Tensor) -> Tensor:
    """(2 - 2 cos) / C per position, spatially averaged: the documented plain formula, in float64."""
    fx, fy = fx.double(), fy.double()
    cos = (fx * fy).sum(1) / (fx.norm(dim=1) * fy.norm(dim=1))
    return ((2 - 2 * cos) / fx.shape[1]).mean(dim=(1, 2))


def hand_logit_distance(zx: Tensor, zy: Tensor) -> Tensor:
    return ((zx.double() - zy.double()) ** 2).mean(dim=1)


# ---------------------------------------------------------------- weights


def test_alpha_weights_mapping() -> None:
    assert alpha_weights(0.0) == TABLE6_WEIGHTS["low"]
    assert alpha_weights(1.0) == TABLE6_WEIGHTS["sem"]
    w = alpha_weights(0.25)
    assert w.taps == (0.75, 0.75, 0.75, 0.75, 1.0) and w.logit == 0.25


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan")])
def test_alpha_out_of_range(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha") as info:
        SemanticPerceptualLoss(StandIn(), alpha=alpha, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    assert str(alpha) in str(info.value)


def test_bad_weights_rejected() -> None:
    with pytest.raises(ValueError):
        PerceptualWeights((1.0, 1.0, 1.0, 1.0), 0.0)
    with pytest.raises(ValueError):
        PerceptualWeights((1.0, 1.0, 1.0, 1.0, -1.0), 0.0)
    with pytest.raises(ValueError, match="logit_weight"):
        SemanticPerceptualLoss(StandIn(), alpha=0.5, layer_weights=None, logit_weight=-1.0)


# ---------------------------------------------------------------- VGG16 / LPIPS


def test_vgg_backbone_is_a_feature_backbone_sharing_one_trunk(vgg_backbone: VGG16Backbone) -> None:
    assert isinstance(vgg_backbone, FeatureBackbone)
    assert all(not p.requires_grad for p in vgg_backbone.parameters())
    # lpips's trunk and the module list feeding the classifier are the same parameters
    n_params = sum(p.numel() for p in vgg_backbone.parameters())
    lins = sum(p.numel() for p in vgg_backbone.lpips.lins.parameters())
    assert n_params == 138_357_544 + lins  # torchvision VGG16, counted once


def test_lpips_scaling_is_imagenet_normalisation(vgg_pair: tuple[VGG16Backbone, nn.Module]) -> None:
    """One trunk pass serves both: logits equal torchvision's VGG16 on ImageNet-normalised input."""
    vgg_backbone, vgg = vgg_pair
    x = images(2, 64, seed=3)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        taps, logits = vgg_backbone.features(x)
        expected = vgg(((x + 1) / 2 - mean) / std)
        assert torch.allclose(vgg_backbone.normalize(x), ((x + 1) / 2 - mean) / std, atol=1e-6)
    assert logits.shape == (2, 1000)
    assert torch.allclose(logits, expected, rtol=1e-4, atol=1e-5)
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512, 512]


def test_alpha0_equals_lpips(vgg_backbone: VGG16Backbone, reference_lpips: lpips.LPIPS) -> None:
    x, y = images(4, 64, seed=1), images(4, 64, seed=2)
    loss = SemanticPerceptualLoss(
        vgg_backbone,
        alpha=0.0,
        layer_weights=vgg_backbone.lpips_layer_weights(),
        logit_weight=LOGIT_WEIGHT,
    )
    with torch.no_grad():
        out = loss(x, y)
        expected, per_layer = reference_lpips(x, y, retPerLayer=True)
        shared = vgg_backbone.lpips(x, y)
    torch.testing.assert_close(out["total"], expected.mean(), rtol=1e-6, atol=0)
    torch.testing.assert_close(shared, expected, rtol=1e-6, atol=0)
    for name, ref in zip(TAP_NAMES, per_layer, strict=True):
        torch.testing.assert_close(out[name], ref.mean(), rtol=1e-5, atol=0)
    assert out["logit"] == 0


def test_vgg_gradients_reach_recon_not_backbone(vgg_backbone: VGG16Backbone) -> None:
    loss = SemanticPerceptualLoss(
        vgg_backbone,
        alpha=1.0,
        layer_weights=vgg_backbone.lpips_layer_weights(),
        logit_weight=LOGIT_WEIGHT,
    )
    loss.train()
    assert not vgg_backbone.training  # the classifier's dropout stays off
    x = images(2, 32, seed=4).requires_grad_(True)
    loss(x, images(2, 32, seed=5))["total"].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg_backbone.parameters())


# ---------------------------------------------------------------- alpha weighting (stand-in)


@pytest.fixture
def standin() -> StandIn:
    return StandIn()


def test_train_without_an_argument_is_training_mode_with_the_backbone_kept_in_eval(standin: StandIn) -> None:
    loss = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    assert loss.train() is loss and loss.training and not standin.training
    assert not loss.train(False).training and not standin.training


def test_a_feature_vector_far_shorter_than_the_epsilon_is_scaled_not_blown_up() -> None:
    """normalize_channels divides by ||f|| + 1e-10 (lpips's epsilon): a near-zero feature vector (a dead
    ReLU position) shrinks towards 0 instead of being divided by a vanishing or negative norm."""
    from seqgan.losses.perceptual import normalize_channels

    f = torch.tensor([1e-12, 0.0], dtype=torch.float64).view(1, 2, 1, 1)
    assert normalize_channels(f).flatten().tolist() == pytest.approx([1e-12 / (1e-12 + 1e-10), 0.0], rel=1e-12)


def test_the_logged_sem_and_low_are_the_papers_quantities(standin: StandIn) -> None:
    """Uncalibrated: L_sem = d_relu5_3 + lambda d_logit and L_low = the sum of the five taps. Calibrated
    (scales measured on another batch, so no term is 1): the means of their terms, each divided by its
    scale. The stand-in's deep terms are tiny (relu5_3 1.5e-6, logit 1.9e-8): compared without an atol."""

    def close(actual: Tensor, expected: Tensor) -> None:
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=0)

    x, y = images(3, 16, seed=8), images(3, 16, seed=9)
    loss = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=1.0)
    calibrated = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=1.0, calibrated=True)
    calibrated.set_term_scales(calibrated.term_means(images(3, 16, seed=10), images(3, 16, seed=11)))
    with torch.no_grad():
        out, out_calibrated, d = loss(x, y), calibrated(x, y), loss.distances(x, y)
    taps, logit = [t.mean() for t in d.taps], d.logit.mean()
    close(out["sem"], taps[4] + logit)
    close(out["low"], sum(taps))
    s = calibrated.term_scales
    scaled = [t / s[i] for i, t in enumerate(taps)]
    assert len({round(float(t), 4) for t in scaled}) == 5  # the five scaled taps differ
    close(out_calibrated["sem"], (scaled[4] + logit / s[5]) / 2)
    close(out_calibrated["low"], torch.stack(scaled).mean())


def test_distances_carry_the_logits_gradient_unless_told_not_to(standin: StandIn) -> None:
    loss = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    x = images(2, 16, seed=12).requires_grad_(True)
    loss.distances(x, images(2, 16, seed=13)).logit.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not loss.distances(x, images(2, 16, seed=13), logit_grad=False).logit.requires_grad


def test_a_backbone_returning_fewer_taps_than_it_names_is_refused() -> None:
    class FourTaps(StandIn):
        def features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
            taps, logits = super().features(x)
            return taps[:4], logits

    loss = SemanticPerceptualLoss(FourTaps(), alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    with pytest.raises(ValueError, match="argument 3 is shorter"):  # the taps, against names and weights
        loss(images(2, 16, seed=14), images(2, 16, seed=15))


def test_a_zero_logit_weight_is_allowed_and_alpha_is_recorded(standin: StandIn) -> None:
    loss = SemanticPerceptualLoss(standin, alpha=0.25, layer_weights=None, logit_weight=0.0)
    with torch.no_grad():
        assert loss(images(2, 16, seed=16), images(2, 16, seed=17))["logit"] == 0
    assert loss.alpha == 0.25 and "alpha=0.25" in repr(loss)


def test_tap_distance_casts_the_layer_weights_to_the_features_dtype() -> None:
    """LPIPS's channel weights are float32; float64 features give a float64 distance (the weights follow
    the features' dtype) instead of an einsum dtype error."""
    from seqgan.losses.perceptual import tap_distance

    g = torch.Generator().manual_seed(0)
    fx, fy = (torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(2))
    w = torch.tensor([0.5, 1.0, 2.0])
    nx, ny = (f / (f.norm(dim=1, keepdim=True) + 1e-10) for f in (fx, fy))
    expected = ((nx - ny) ** 2 * w.double().view(1, 3, 1, 1)).sum(1).mean(dim=(1, 2))
    got = tap_distance(fx, fy, w)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_alpha_half_is_average_of_sem_and_low(standin: StandIn) -> None:
    x, y = images(3, 16, seed=6), images(3, 16, seed=7)
    loss = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    with torch.no_grad():
        out = loss(x, y)
        d = loss.distances(x, y)
    taps = [t.mean() for t in d.taps]
    low = sum(taps)
    sem = taps[4] + LOGIT_WEIGHT * d.logit.mean()
    torch.testing.assert_close(out["total"], 0.5 * sem + 0.5 * low)
    torch.testing.assert_close(out["low"], low)
    torch.testing.assert_close(out["sem"], sem)
    for i, name in enumerate(TAP_NAMES):  # logged terms are the weighted contributions
        torch.testing.assert_close(out[name], (0.5 if i < 4 else 1.0) * taps[i])
    torch.testing.assert_close(out["logit"], 0.5 * LOGIT_WEIGHT * d.logit.mean())
    assert all(t > 0 for t in taps) and d.logit.mean() > 0


@pytest.mark.parametrize("calibrated", [False, True])
def test_the_logit_term_scales_with_alpha_and_carries_a_gradient(standin: StandIn, calibrated: bool) -> None:
    """The logit contribution is alpha times the alpha-1 one (alpha / 2 calibrated): checked at a
    lambda that makes the term a sizeable part of the loss (1000 for this stand-in's small logits;
    calibrated: 1, each term divided by its own mean) and with no absolute tolerance, so a logit
    term at full weight for every alpha > 0 cannot pass for a tiny one (with lambda 0.002 above it
    is about 1e-11, under float32's atol). Its gradient reaches the reconstruction at every
    alpha > 0, and at alpha 0 the logits are not even differentiated."""
    x, y = images(3, 16, seed=12), images(3, 16, seed=13)
    logit_weight = 1.0 if calibrated else 1000.0

    def loss(alpha: float) -> SemanticPerceptualLoss:
        made = SemanticPerceptualLoss(
            standin, alpha=alpha, layer_weights=None, logit_weight=logit_weight, calibrated=calibrated
        )
        if calibrated:
            made.set_term_scales(made.term_means(x, y))
        return made

    with torch.no_grad():
        terms = {a: loss(a)(x, y) for a in (0.0, 0.25, 0.5, 1.0)}
    full = terms[1.0]["logit"]
    assert full > 0.1 * terms[1.0]["total"]  # large enough to matter
    for a in (0.0, 0.25, 0.5):
        torch.testing.assert_close(terms[a]["logit"], a * full, rtol=1e-5, atol=0.0)
    if calibrated:  # L_sem is the mean of relu5_3 and the logit, each 1 on the calibration batch
        torch.testing.assert_close(full, torch.tensor(0.5), rtol=1e-5, atol=0.0)
    for a in (0.25, 1.0):
        grad = _grad(lambda r, a=a: loss(a)(r, y)["logit"], x)
        assert grad.abs().sum() > 0, f"no logit gradient at alpha {a}"
    assert not loss(0.0)(x.clone().requires_grad_(True), y)["logit"].requires_grad


def _grad(loss_fn, x: Tensor) -> Tensor:
    x = x.clone().requires_grad_(True)
    loss_fn(x).backward()
    return x.grad


def test_alpha1_shallow_taps_do_not_contribute_to_gradient(standin: StandIn) -> None:
    x, y = images(2, 16, seed=8), images(2, 16, seed=9)
    loss = SemanticPerceptualLoss(standin, alpha=1.0, layer_weights=None, logit_weight=LOGIT_WEIGHT)

    def sem_only(r: Tensor) -> Tensor:  # relu5_3 + lambda * logit, written out by hand
        (fx, zx), (fy, zy) = standin.features(r), standin.features(y)
        return hand_tap_distance(fx[4], fy[4]).mean() + LOGIT_WEIGHT * hand_logit_distance(zx, zy).mean()

    def shallow_only(r: Tensor) -> Tensor:
        fx, fy = standin.features(r)[0], standin.features(y)[0]
        return sum(hand_tap_distance(a, b).mean() for a, b in zip(fx[:4], fy[:4], strict=True))

    g_total = _grad(lambda r: loss(r, y)["total"], x)
    g_sem = _grad(sem_only, x)
    torch.testing.assert_close(g_total, g_sem.float(), rtol=1e-4, atol=1e-9)
    # the check can fail: the shallow taps do have a gradient, and alpha = 0.5 includes it
    assert _grad(shallow_only, x).abs().sum() > 1e-3 * g_sem.abs().sum()
    half = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    assert not torch.allclose(_grad(lambda r: half(r, y)["total"], x), g_sem.float(), rtol=1e-3)


def test_identical_inputs_give_zero_and_gradients_flow_to_recon_only(standin: StandIn) -> None:
    loss = SemanticPerceptualLoss(standin, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    x = images(2, 16, seed=10)
    with torch.no_grad():
        assert loss(x, x.clone())["total"] == 0
    recon = images(2, 16, seed=11).requires_grad_(True)
    target = x.clone().requires_grad_(True)
    loss(recon, target)["total"].backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    assert target.grad is None  # target features are computed without a graph
    assert all(p.grad is None and not p.requires_grad for p in standin.parameters())


def test_plain_distance_matches_hand_formula(standin: StandIn) -> None:
    """layer_weights=None: mean over channels of squared unit-vector differences = (2 - 2cos)/C."""
    x, y = images(3, 16, seed=12), images(3, 16, seed=13)
    loss = WeightedPerceptualLoss(standin, TABLE6_WEIGHTS["A"], layer_weights=None, logit_weight=0.1)
    with torch.no_grad():
        d = loss.distances(x, y)
        (fx, zx), (fy, zy) = standin.features(x), standin.features(y)
        out = loss(x, y)
    for got, a, b in zip(d.taps, fx, fy, strict=True):
        torch.testing.assert_close(got.double(), hand_tap_distance(a, b), rtol=1e-5, atol=1e-8)
    torch.testing.assert_close(d.logit.double(), hand_logit_distance(zx, zy), rtol=1e-5, atol=1e-8)
    expected = sum(hand_tap_distance(a, b).mean() for a, b in zip(fx, fy, strict=True))
    expected = expected + 0.1 * hand_logit_distance(zx, zy).mean()
    torch.testing.assert_close(out["total"].double(), expected, rtol=1e-5, atol=1e-8)


def test_table6_rows_select_layers(standin: StandIn) -> None:
    x, y = images(2, 16, seed=14), images(2, 16, seed=15)
    out = WeightedPerceptualLoss(standin, TABLE6_WEIGHTS["D"], None, LOGIT_WEIGHT)(x, y)
    assert [out[n].item() == 0 for n in TAP_NAMES] == [True, True, True, False, False]
    out = WeightedPerceptualLoss(standin, TABLE6_WEIGHTS["E"], None, LOGIT_WEIGHT)(x, y)
    torch.testing.assert_close(out["total"], out["logit"])
    assert out["logit"] > 0


# ---------------------------------------------------------------- the embedded SemanticNet


def test_semantic_net_backbone() -> None:
    semantic = pytest.importorskip("seqgan.nets.semantic")
    torch.manual_seed(2)
    net = semantic.SemanticNet(widths=(8, 8, 16, 16, 16), num_classes=10)
    assert isinstance(net, FeatureBackbone)
    loss = SemanticPerceptualLoss(net, alpha=0.5, layer_weights=None, logit_weight=LOGIT_WEIGHT)
    x, y = images(2, 32, seed=16), images(2, 32, seed=17)
    recon = x.clone().requires_grad_(True)
    out = loss(recon, y)
    out["total"].backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
    with torch.no_grad():
        (fx, zx), (fy, zy) = net.features(x), net.features(y)

    # ReLU taps can be all-zero vectors; lpips's eps makes those unit vectors 0, so compare on the
    # documented formula with the same eps rather than the cosine identity.
    def plain(a: Tensor, b: Tensor) -> Tensor:
        na = a.double() / (a.double().norm(dim=1, keepdim=True) + 1e-10)
        nb = b.double() / (b.double().norm(dim=1, keepdim=True) + 1e-10)
        return ((na - nb) ** 2).mean(dim=(1, 2, 3))

    taps = [plain(a, b).mean() for a, b in zip(fx, fy, strict=True)]
    expected = 0.5 * sum(taps[:4]) + taps[4] + 0.5 * LOGIT_WEIGHT * hand_logit_distance(zx, zy).mean()
    torch.testing.assert_close(out["total"].detach().double(), expected, rtol=1e-5, atol=1e-8)
    assert loss(x, x.clone())["total"] == 0
