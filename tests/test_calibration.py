"""The measured balances of a tokenizer run: the calibrated perceptual objective, the codebook
initialised from encoder outputs, the codebook's learning-rate group, and the semantic network's
VGG16-like geometry (relu5_3 on the token grid)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from torch import Tensor, nn

from seqgan.config import ParamsError, validate_params
from seqgan.losses.perceptual import SemanticPerceptualLoss, calibrated_alpha_weights
from seqgan.nets.backbone import TAP_NAMES
from seqgan.nets.quantizer import VectorQuantizer
from seqgan.nets.semantic import SemanticNet, semantic_pools
from seqgan.train.tokenizer_schedule import make_adam, set_learning_rate

REPO = Path(__file__).resolve().parents[1]


class StandIn(nn.Module):
    """A tiny FeatureBackbone; ``logit_scale`` multiplies its logits (the same net otherwise)."""

    tap_names = TAP_NAMES
    num_classes = 5

    def __init__(self, logit_scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(3)
        chans = (3, 4, 6, 8, 8, 10)
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(5))
        self.head = nn.Linear(chans[-1], self.num_classes)
        self.logit_scale = logit_scale

    def features(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            x = conv(x if i == 0 else torch.tanh(nn.functional.avg_pool2d(x, 2)))
            taps.append(x)
        return taps, self.logit_scale * self.head(x.mean(dim=(2, 3)))


def batch(seed: int, n: int = 6) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def calibrated(backbone: nn.Module, alpha: float, recon: Tensor, target: Tensor) -> SemanticPerceptualLoss:
    loss = SemanticPerceptualLoss(backbone, alpha, None, 1.0, calibrated=True)
    loss.set_term_scales(loss.term_means(recon, target))
    return loss


def test_calibrated_weights_make_every_alpha_a_mix_of_two_means() -> None:
    for alpha in (0.0, 0.3, 1.0):
        w = calibrated_alpha_weights(alpha)
        assert sum(w.taps) + w.logit == pytest.approx(1.0)  # every term at 1 -> total 1
        assert w.taps[:4] == ((1 - alpha) / 5,) * 4
        assert w.taps[4] == pytest.approx((1 - alpha) / 5 + alpha / 2) and w.logit == pytest.approx(alpha / 2)


def test_low_at_alpha0_and_sem_at_alpha1_start_equal_and_every_alpha_starts_at_one() -> None:
    recon, target = batch(0), batch(1)
    totals = {}
    for alpha in (0.0, 0.5, 1.0):
        out = calibrated(StandIn(), alpha, recon, target)(recon, target)
        totals[alpha] = float(out["total"])
        assert float(out["low"]) == pytest.approx(1.0, rel=1e-5)
        assert float(out["sem"]) == pytest.approx(1.0, rel=1e-5)
    assert totals == pytest.approx({0.0: 1.0, 0.5: 1.0, 1.0: 1.0}, rel=1e-5)
    # (on a training batch rather than the calibration batch: test_tokenizer_training)


def test_scaling_the_logits_by_10_leaves_the_calibrated_loss_and_its_gradient_unchanged() -> None:
    target = batch(1)
    results = []
    for scale in (1.0, 10.0):
        recon = batch(0).requires_grad_(True)
        loss = calibrated(StandIn(scale), 1.0, recon.detach(), target)
        # the raw logit distance grew 100x, the divisor with it
        total = loss(recon, target)["total"]
        total.backward()
        results.append((loss.term_scales[-1].item(), total.detach(), recon))
    (s1, t1, r1), (s10, t10, r10) = results
    assert s10 == pytest.approx(100 * s1, rel=1e-4)
    assert float(t10) == pytest.approx(float(t1), rel=1e-5)
    scale = r1.grad.abs().max().item()
    torch.testing.assert_close(r10.grad, r1.grad, rtol=0, atol=1e-4 * scale)
    # the logit term matters: without it the gradient differs (so the check above can fail)
    recon = batch(0).requires_grad_(True)
    no_logit = calibrated(StandIn(), 1.0, recon.detach(), target)
    no_logit.weights = calibrated_alpha_weights(0.0).__class__(taps=(0, 0, 0, 0, 0.5), logit=0.0)
    no_logit(recon, target)["total"].backward()
    assert (recon.grad - r1.grad).abs().max().item() > 1e-2 * scale


def test_calibrated_loss_refuses_to_run_uncalibrated_and_bad_scales() -> None:
    loss = SemanticPerceptualLoss(StandIn(), 0.5, None, 1.0, calibrated=True)
    with pytest.raises(RuntimeError, match="set_term_scales"):
        loss(batch(0), batch(1))
    with pytest.raises(ValueError, match="positive term means"):
        loss.set_term_scales(torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="logit_weight must be 1"):
        SemanticPerceptualLoss(StandIn(), 0.5, None, 0.002, calibrated=True)
    with pytest.raises(ValueError, match="not calibrated"):
        SemanticPerceptualLoss(StandIn(), 0.5, None, 0.002).set_term_scales(torch.ones(6))


def test_term_means_are_checked_as_the_float32_scales_they_become() -> None:
    """A float64 mean that is positive but 0 (or infinite) once stored in the float32 buffer would
    divide by 0 (or zero the term): refused; valid float64 means are stored as float32."""
    loss = SemanticPerceptualLoss(StandIn(), 0.5, None, 1.0, calibrated=True)
    for tiny_or_huge in (1e-50, 1e50):
        with pytest.raises(ValueError, match="positive term means"):
            loss.set_term_scales(torch.tensor([1.0, 1.0, tiny_or_huge, 1.0, 1.0, 1.0], dtype=torch.float64))
    loss.set_term_scales(torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64))
    assert loss.term_scales.dtype == torch.float32 and loss.term_scales.tolist() == [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_the_magic_logit_constant_is_gone_and_the_keys_are_checked() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert "logit_weight" not in raw["tokenizer"]["loss"]
    assert raw["tokenizer"]["loss"]["calibration"] == "initial_mean"
    stale = copy.deepcopy(raw)
    stale["tokenizer"]["loss"]["logit_weight"] = 6.4e-5
    with pytest.raises(ParamsError, match="tokenizer.loss.logit_weight"):
        validate_params(stale)
    paper = copy.deepcopy(raw)
    paper["tokenizer"]["loss"]["calibration"] = "none"
    with pytest.raises(ParamsError, match="required when tokenizer.loss.calibration = none"):
        validate_params(paper)
    paper["tokenizer"]["loss"]["logit_weight"] = 1.0
    assert validate_params(paper).tokenizer.loss.logit_weight == 1.0


def test_codebook_starts_at_distinct_encoder_outputs_drawn_by_its_seed() -> None:
    q = VectorQuantizer(16, 4)
    z_e = torch.randn(2, 4, 4, 4)  # 32 vectors
    q.init_from_samples(z_e, torch.Generator().manual_seed(5))
    rows = z_e.permute(0, 2, 3, 1).reshape(-1, 4)
    matches = [(rows == code).all(dim=1).nonzero().flatten().tolist() for code in q.codebook]
    assert all(len(m) == 1 for m in matches) and len({m[0] for m in matches}) == 16
    again = VectorQuantizer(16, 4)
    again.init_from_samples(z_e, torch.Generator().manual_seed(5))
    assert torch.equal(again.codebook, q.codebook)
    with pytest.raises(ValueError, match="init_images"):
        VectorQuantizer(64, 4).init_from_samples(z_e, torch.Generator().manual_seed(5))


def test_codebook_group_follows_the_schedule_at_its_scale() -> None:
    params = validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    body, codes = nn.Linear(2, 2), nn.Embedding(4, 2)
    scale = params.tokenizer.quantizer.codebook_lr_scale
    opt = make_adam([*body.parameters(), codes.weight], params.tokenizer.phase1, scaled=([codes.weight], scale))
    set_learning_rate(opt, 0.01)
    by_size = {len(g["params"]): g["lr"] for g in opt.param_groups}
    assert by_size == {2: pytest.approx(0.01), 1: pytest.approx(0.01 * scale)}


def test_semantic_relu5_3_sits_on_the_token_grid() -> None:
    params = validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    pools = semantic_pools(params)
    grid = params.data.resolution // params.tokenizer.architecture.compression
    taps, _ = SemanticNet((4, 4, 4, 4, 4), 3, pools).eval().features(torch.zeros(1, 3, 32, 32))
    sizes = [t.shape[-1] for t in taps]
    assert sizes[-1] == grid and all(s > grid for s in sizes[:3]) and sizes == sorted(sizes, reverse=True)
    vgg_like, _ = SemanticNet((4, 4, 4, 4, 4), 3, 4).eval().features(torch.zeros(1, 3, 256, 256))
    assert [t.shape[-1] for t in vgg_like] == [256, 128, 64, 32, 16]  # VGG16's taps at 256 px
