"""Tests of the tokenizer networks: sizes, shapes, attention patterns, quantizer, discriminator."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqgan.losses.adversarial import (
    adaptive_weight,
    hinge_d_loss,
    hinge_g_loss,
    ns_d_loss,
    ns_g_loss,
    r1_penalty,
)
from seqgan.nets.attention import (
    AttentionSpec,
    BlockRegionalAttention,
    DilatedAttention,
    InterleavedAttention,
)
from seqgan.nets.discriminator import (
    EqualConv2d,
    EqualLinear,
    MinibatchStdDev,
    StyleGAN2Discriminator,
)
from seqgan.nets.quantizer import VectorQuantizer, codebook_usage, total_quantizer_loss
from seqgan.nets.vqgan import (
    Decoder,
    VQTokenizer,
    count_parameters,
    load_phase1_state,
    parameter_breakdown,
)

PAPER = dict(
    base_channels=128,
    channel_mult=(1, 1, 2, 2, 4),
    num_res_blocks=2,
    extra_res_blocks=2,
    code_dim=256,
    codebook_size=1024,
)
SMALL = dict(
    base_channels=32,
    channel_mult=(1, 2, 2),
    num_res_blocks=1,
    extra_res_blocks=1,
    code_dim=16,
    codebook_size=64,
    num_groups=8,
)
SPEC = AttentionSpec(block_size=4, dilation=2, heads=2)


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomise_out_proj(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if "proj_out" in name:
            with torch.no_grad():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


# ----------------------------------------------------------------------------- parameter counts
def test_phase1_parameter_count_matches_paper():
    with torch.device("meta"):
        model = VQTokenizer(**PAPER)
    parts = parameter_breakdown(model)
    assert parts["codebook"] == 1024 * 256
    assert parts["attention"] == 0
    assert parts["encoder"] + parts["codebook"] + parts["decoder"] == parts["total"]
    assert parts["total"] == 54_449_283  # the layout measured when the nets were written (54.45M)
    assert abs(parts["total"] - 54.5e6) / 54.5e6 < 0.01


def test_phase2_parameter_count_matches_paper():
    with torch.device("meta"):
        model = VQTokenizer(**PAPER, attention=AttentionSpec(block_size=8, dilation=8, heads=8))
    parts = parameter_breakdown(model)
    # 5 levels x 2 layers x (4C^2 + 6C) at widths 128, 128, 256, 256, 512
    expected_attn = sum(2 * (4 * c * c + 6 * c) for c in (128, 128, 256, 256, 512))
    assert parts["attention"] == expected_attn == 3_423_232
    assert parts["total"] == 54_449_283 + expected_attn
    assert abs(parts["total"] - 57.9e6) / 57.9e6 < 0.01
    # the attention count does not depend on block size / dilation / heads
    with torch.device("meta"):
        other = VQTokenizer(**PAPER, attention=AttentionSpec(block_size=16, dilation=0, heads=4))
    assert count_parameters(other) == parts["total"]


# ----------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("attention", [None, AttentionSpec(8, 8, 8)])
def test_paper_config_shapes_256px_on_meta(attention):
    with torch.device("meta"):
        model = VQTokenizer(**PAPER, attention=attention)
        x = torch.empty(2, 3, 256, 256)
    assert model.downsample_factor == 16
    z_q, ids, losses = model.encode(x)
    assert z_q.shape == (2, 256, 16, 16)
    assert ids.shape == (2, 16, 16)
    assert set(losses) == {"codebook", "commitment", "entropy"}
    recon, ids2, _ = model(x)
    assert recon.shape == (2, 3, 256, 256)
    assert model.decode_ids(ids).shape == (2, 3, 256, 256)


def test_small_config_round_trip_shapes():
    torch.manual_seed(0)
    model = VQTokenizer(**SMALL).eval()
    assert model.downsample_factor == 4
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    recon, ids, losses, stats = model(x, return_stats=True)
    assert recon.shape == x.shape
    assert ids.shape == (2, 8, 8) and ids.dtype == torch.long
    assert int(ids.min()) >= 0 and int(ids.max()) < 64
    assert all(v.shape == () for v in losses.values())
    assert torch.isfinite(total_quantizer_loss(losses))
    assert 1 <= int(stats["used_codes"]) <= 64
    assert 1.0 <= float(stats["perplexity"]) <= 64.0
    with torch.no_grad():
        assert torch.allclose(model.decode_ids(ids), recon, atol=1e-5)
    with pytest.raises(ValueError):
        model(torch.rand(1, 3, 30, 30))
    # phase 2 small config, including a map (8 x 8) where block size 4 and dilation 2 divide, and
    # a 12 px input whose 3 x 3 lowest map needs padding
    model2 = VQTokenizer(**SMALL, attention=SPEC)
    for size in (32, 12):
        recon2, ids2, _ = model2(torch.rand(1, 3, size, size))
        assert recon2.shape == (1, 3, size, size) and ids2.shape == (1, size // 4, size // 4)


def test_backward_reaches_every_parameter_of_small_phase2_model():
    torch.manual_seed(0)
    model = VQTokenizer(**SMALL, attention=SPEC)
    _randomise_out_proj(model)  # zero-init out-projections would block q, k, v gradients
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    recon, _, losses = model(x)
    ((recon - x).abs().mean() + total_quantizer_loss(losses)).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert no_grad == []


# ----------------------------------------------------------------------------- zero-init attention
def test_phase2_decoder_with_phase1_weights_is_bit_identical():
    torch.manual_seed(0)
    cfg = {k: v for k, v in SMALL.items() if k != "codebook_size"}
    phase1 = Decoder(**cfg).eval()
    phase2 = Decoder(**cfg, attention=SPEC).eval()
    missing = load_phase1_state(phase2, phase1.state_dict())
    assert missing and all(".attn." in k for k in missing)
    z = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        y1, y2 = phase1(z), phase2(z)
    assert torch.equal(y1, y2)
    _randomise_out_proj(phase2.levels[1])  # perturb one level's out-projections
    with torch.no_grad():
        y3 = phase2(z)
    assert not torch.allclose(y1, y3, atol=1e-4)


def test_phase1_checkpoint_loads_into_phase2_tokenizer():
    torch.manual_seed(1)
    phase1 = VQTokenizer(**SMALL).eval()
    phase2 = VQTokenizer(**SMALL, attention=SPEC).eval()
    load_phase1_state(phase2, phase1.state_dict())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        r1, i1, _ = phase1(x)
        r2, i2, _ = phase2(x)
    assert torch.equal(i1, i2) and torch.equal(r1, r2)
    # a state dict missing a non-attention key is refused
    sd = phase1.state_dict()
    sd.pop("decoder.conv_out.weight")
    with pytest.raises(RuntimeError):
        load_phase1_state(phase2, sd)


# ----------------------------------------------------------------------------- attention patterns
def _naive_attention(module, x: torch.Tensor, groups: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Reference: explicit per-group multi-head softmax attention, no padding, no reshapes."""
    b, c, h, w = x.shape
    heads = module.heads
    hd = c // heads
    y = x.clone()
    for bi in range(b):
        for grp in groups:
            tok = torch.stack([x[bi, :, i, j] for i, j in grp])  # (L, C)
            tok = F.layer_norm(tok, (c,), module.norm.weight, module.norm.bias, module.norm.eps)
            qkv = tok @ module.qkv.weight.t() + module.qkv.bias  # (L, 3C)
            q, k, v = qkv[:, :c], qkv[:, c : 2 * c], qkv[:, 2 * c :]
            outs = []
            for hh in range(heads):
                sl = slice(hh * hd, (hh + 1) * hd)
                a = torch.softmax(q[:, sl] @ k[:, sl].t() / math.sqrt(hd), dim=-1)
                outs.append(a @ v[:, sl])
            o = torch.cat(outs, dim=1) @ module.proj_out.weight.t() + module.proj_out.bias
            for (i, j), val in zip(grp, o, strict=True):
                y[bi, :, i, j] = x[bi, :, i, j] + val
    return y


def _block_groups(h, w, bs):
    bh, bw = min(bs, h), min(bs, w)
    keys = sorted({(i // bh, j // bw) for i in range(h) for j in range(w)})
    return [[(i, j) for i in range(h) for j in range(w) if (i // bh, j // bw) == k] for k in keys]


def _dilated_groups(h, w, d):
    dh, dw = min(d, h), min(d, w)
    keys = sorted({(i % dh, j % dw) for i in range(h) for j in range(w)})
    return [[(i, j) for i in range(h) for j in range(w) if (i % dh, j % dw) == k] for k in keys]


@pytest.mark.parametrize("h,w,bs", [(8, 8, 4), (7, 10, 4), (6, 5, 16), (5, 9, 1)])
def test_block_attention_matches_naive_reference(h, w, bs):
    torch.manual_seed(0)
    m = BlockRegionalAttention(8, heads=2, block_size=bs)
    _randomise_out_proj(m)
    x = torch.randn(2, 8, h, w)
    with torch.no_grad():
        assert torch.allclose(m(x), _naive_attention(m, x, _block_groups(h, w, bs)), atol=1e-5)


@pytest.mark.parametrize("h,w,d", [(8, 8, 2), (7, 10, 3), (4, 6, 9), (9, 9, 1)])
def test_dilated_attention_matches_naive_reference(h, w, d):
    torch.manual_seed(0)
    m = DilatedAttention(8, heads=2, dilation=d)
    _randomise_out_proj(m)
    x = torch.randn(2, 8, h, w)
    with torch.no_grad():
        assert torch.allclose(m(x), _naive_attention(m, x, _dilated_groups(h, w, d)), atol=1e-5)


def test_dilated_attention_hit_rule():
    """dilation=0: d = ceil(side / block_size), so groups have about block_size^2 tokens."""
    torch.manual_seed(0)
    m = DilatedAttention(8, heads=2, dilation=0, block_size=2)
    _randomise_out_proj(m)
    x = torch.randn(1, 8, 8, 6)  # d = (4, 3): groups of 2 x 2 tokens
    ref = _naive_attention(
        m,
        x,
        [[(i, j) for i in range(8) for j in range(6) if (i % 4, j % 3) == (r, s)] for r in range(4) for s in range(3)],
    )
    with torch.no_grad():
        assert torch.allclose(m(x), ref, atol=1e-5)


def _changed_positions(m, x, i0, j0):
    x2 = x.clone()
    # a random vector, not a constant shift (which the per-position LayerNorm would remove)
    g = torch.Generator().manual_seed(1)
    x2[:, :, i0, j0] += 3.0 * torch.randn(x.shape[0], x.shape[1], generator=g)
    with torch.no_grad():
        diff = (m(x2) - m(x)).abs().amax(dim=(0, 1))  # (H, W)
    return diff > 1e-6


@pytest.mark.parametrize("h,w", [(8, 8), (10, 7)])
def test_block_attention_is_local_to_its_window(h, w):
    torch.manual_seed(0)
    m = BlockRegionalAttention(8, heads=2, block_size=4)
    _randomise_out_proj(m)
    x = torch.randn(1, 8, h, w)
    i0, j0 = 5, 1
    changed = _changed_positions(m, x, i0, j0)
    expected = torch.zeros(h, w, dtype=torch.bool)
    expected[4:8, 0:4] = True  # the window containing (5, 1)
    assert torch.equal(changed, expected)


@pytest.mark.parametrize("h,w", [(9, 9), (8, 10)])
def test_dilated_attention_touches_only_its_grid(h, w):
    torch.manual_seed(0)
    d = 3
    m = DilatedAttention(8, heads=2, dilation=d)
    _randomise_out_proj(m)
    x = torch.randn(1, 8, h, w)
    i0, j0 = 4, 5
    changed = _changed_positions(m, x, i0, j0)
    ii, jj = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    expected = (ii % d == i0 % d) & (jj % d == j0 % d)
    assert torch.equal(changed, expected)


def test_interleaved_attention_is_global_and_starts_as_identity():
    torch.manual_seed(0)
    # block_size >= dilation: a window holds every residue mod d, so two hops reach everything
    m = InterleavedAttention(8, AttentionSpec(block_size=4, dilation=4, heads=2))
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(m(x), x)  # zero-initialised out-projections
    _randomise_out_proj(m)
    assert bool(_changed_positions(m, x, 0, 0).all())  # two hops reach every position
    # ... whereas with block_size < dilation they do not (only residues 0, 1 mod 4)
    m2 = InterleavedAttention(8, AttentionSpec(block_size=2, dilation=4, heads=2))
    _randomise_out_proj(m2)
    ii, jj = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    assert torch.equal(_changed_positions(m2, x, 0, 0), (ii % 4 < 2) & (jj % 4 < 2))


# ----------------------------------------------------------------------------- quantizer
def test_quantizer_ids_are_nearest_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(32, 8)
    with torch.no_grad():
        vq.embedding.weight.normal_()
    z = torch.randn(3, 8, 5, 4)
    z_q, ids, _, _ = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    # The reference takes another path (cdist in float64), so equal ids need a data set without
    # near-ties: every vector's nearest code beats the second by far more than float32 rounding.
    dist = torch.cdist(flat.double(), vq.codebook.detach().double()).pow(2)  # (60, 32)
    nearest_two = dist.topk(2, dim=1, largest=False).values
    assert (nearest_two[:, 1] - nearest_two[:, 0]).min() > 1e-3  # 0.016 here; distances <= 19
    ref = dist.argmin(1).view(3, 5, 4)
    assert torch.equal(ids, ref)
    assert torch.allclose(z_q, vq.lookup(ids), atol=1e-6)
    assert torch.equal(vq.nearest_ids(z), ids)  # the encoding path: the same ids, no losses


def test_quantizer_straight_through_gradient_is_identity():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_q, _, _, _ = vq(z)
    g = torch.randn_like(z)
    (z_q * g).sum().backward()
    assert torch.equal(z.grad, g)


def test_quantizer_gradient_routing_and_beta_side():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4, beta=0.25, entropy_weight=0.0)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    _, _, losses, _ = vq(z)
    assert torch.allclose(losses["commitment"], 0.25 * losses["codebook"])

    losses["codebook"].backward(retain_graph=True)
    assert z.grad is None or not z.grad.any()
    assert vq.embedding.weight.grad is not None and vq.embedding.weight.grad.abs().sum() > 0

    vq.zero_grad(set_to_none=True)
    losses["commitment"].backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert vq.embedding.weight.grad is None or not vq.embedding.weight.grad.any()


def test_entropy_term_is_minus_weight_times_entropy_of_mean_soft_assignment():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 3, entropy_weight=0.5, entropy_temperature=2.0)
    with torch.no_grad():
        vq.embedding.weight.normal_()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    _, _, losses, stats = vq(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    p_bar = torch.softmax(-torch.cdist(flat, vq.codebook).pow(2) / 2.0, dim=1).mean(0)
    h = -(p_bar * p_bar.log()).sum()
    assert torch.allclose(stats["soft_entropy"], h, atol=1e-5)
    assert torch.allclose(losses["entropy"], -0.5 * h, atol=1e-5)
    losses["entropy"].backward()  # reaches both the encoder side and the codebook
    assert z.grad.abs().sum() > 0 and vq.embedding.weight.grad.abs().sum() > 0


def _toy_usage(entropy_weight: float, steps: int = 300, seed: int = 0) -> tuple[float, float]:
    """Linear autoencoder + VQ on 8 Gaussian clusters; 14 of 16 codes start dead, far away."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ang = torch.arange(8) * (2 * math.pi / 8)
    centers = 2.0 * torch.stack([ang.cos(), ang.sin()], 1)

    def sample(n):
        return centers[torch.randint(8, (n,), generator=g)] + 0.1 * torch.randn(n, 2, generator=g)

    enc, dec = nn.Linear(2, 2), nn.Linear(2, 2)
    vq = VectorQuantizer(16, 2, beta=0.25, entropy_weight=entropy_weight, entropy_temperature=1.0)
    with torch.no_grad():
        vq.embedding.weight.copy_(4.0 + 0.1 * torch.randn(16, 2, generator=g))
        vq.embedding.weight[:2] = 0.01 * torch.randn(2, 2, generator=g)
    params = [*enc.parameters(), *dec.parameters(), *vq.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    for _ in range(steps):
        x = sample(256)
        z_q, _, losses, _ = vq(enc(x)[:, :, None, None])
        loss = F.mse_loss(dec(z_q[:, :, 0, 0]), x) + total_quantizer_loss(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, ids, _, _ = vq(enc(sample(2048))[:, :, None, None])
    return codebook_usage(ids, 16)


def test_entropy_regulariser_revives_dead_codes():
    used_without, ppl_without = _toy_usage(0.0)
    used_with, ppl_with = _toy_usage(0.1)
    assert used_without <= 3 / 16
    assert used_with >= 6 / 16
    assert ppl_with > 2.0 * ppl_without


def test_codebook_usage_accumulates_over_batches():
    frac, ppl = codebook_usage([torch.tensor([0, 1, 1, 0]), torch.tensor([[2, 3], [3, 2]])], 8)
    assert frac == 0.5
    assert math.isclose(ppl, 4.0, rel_tol=1e-9)
    frac1, ppl1 = codebook_usage(torch.zeros(5, dtype=torch.long), 8)
    assert frac1 == 1 / 8 and math.isclose(ppl1, 1.0)


def test_quantizer_defaults_init_and_refusal():
    """The paper's beta 0.25 and the documented entropy weight 0.01 and temperature 1 by default; the
    codebook starts uniform in (-1/K, 1/K) (taming-transformers); a temperature of 0 is refused."""
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 4)
    assert (vq.beta, vq.entropy_weight, vq.entropy_temperature) == (0.25, 0.01, 1.0)
    w = vq.codebook.detach()
    assert -1 / 16 <= w.min() < -1 / 32 and 1 / 32 < w.max() <= 1 / 16  # 64 draws fill the interval
    with pytest.raises(ValueError, match="entropy_temperature"):
        VectorQuantizer(16, 4, entropy_temperature=0.0)


def test_quantizer_distances_are_squared_l2_in_the_inputs_precision():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 3)
    flat = torch.randn(5, 3, dtype=torch.float64)
    d = vq.distances(flat)
    assert d.dtype == torch.float64
    torch.testing.assert_close(d, torch.cdist(flat, vq.codebook.detach().double()).pow(2), rtol=1e-10, atol=1e-12)


def test_quantizer_distances_stay_float32_under_cpu_autocast():
    """argmin and the softmax are precision sensitive: under bfloat16 autocast the distances are still
    computed (and returned) in float32, equal to those without autocast."""
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 8)
    z = torch.randn(2, 8, 3, 3)
    _, plain = vq._flat_distances(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, d = vq._flat_distances(z)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, plain, rtol=0, atol=0)


def test_quantizer_used_codes_and_the_entropy_terms_graph():
    """``used_codes`` counts the codes used at least once (a code used once counts); the entropy term
    carries a gradient for any non-zero weight (1 included) and keeps no graph with weight 0."""
    vq = VectorQuantizer(4, 2, entropy_weight=1.0)
    with torch.no_grad():
        vq.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]]))
    z = torch.tensor([[0.1, 0.0], [0.0, 0.1], [4.9, 0.0]]).t().reshape(1, 2, 1, 3).requires_grad_(True)
    _, ids, losses, stats = vq(z)
    assert ids.flatten().tolist() == [0, 0, 1] and int(stats["used_codes"]) == 2
    assert losses["entropy"].requires_grad
    vq.entropy_weight = 0.0
    assert not vq(z)[2]["entropy"].requires_grad


def test_codebook_usage_of_single_uses_one_id_and_none():
    """A code used once counts as used; one id in all is a perplexity of 1 (not the sqrt(2) a
    denominator clamped at 2 would give); no ids at all use 0 of the codebook with an undefined
    perplexity (NaN, not 1)."""
    assert codebook_usage(torch.tensor([0, 1, 1]), 4) == (
        0.5,
        pytest.approx(math.exp(-(math.log(1 / 3) + 2 * math.log(2 / 3)) / 3)),
    )
    assert codebook_usage(torch.tensor([3]), 8) == (1 / 8, 1.0)
    fraction, perplexity = codebook_usage(torch.zeros(0, dtype=torch.long), 8)
    assert fraction == 0.0 and math.isnan(perplexity)


@pytest.mark.parametrize("ids", [[-1, 0], [0, 8]])
def test_codebook_usage_refuses_an_id_outside_the_codebook(ids):
    with pytest.raises(ValueError, match="code id out of range"):
        codebook_usage(torch.tensor(ids), 8)


# ----------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize(
    "kwargs,res",
    [
        (dict(resolution=32, channel_base=1024, channel_max=64), 32),
        (dict(resolution=256, channels=[8, 8, 16, 16, 32, 32, 32]), 256),
    ],
)
def test_discriminator_output_shape(kwargs, res):
    torch.manual_seed(0)
    d = StyleGAN2Discriminator(**kwargs)
    out = d(torch.randn(3, 3, res, res))
    assert out.shape == (3, 1) and torch.isfinite(out).all()


def test_discriminator_default_256px_on_meta():
    with torch.device("meta"):
        d = StyleGAN2Discriminator(resolution=256)
        out = d(torch.empty(4, 3, 256, 256))
    assert out.shape == (4, 1)
    assert d.channels == {256: 128, 128: 256, 64: 512, 32: 512, 16: 512, 8: 512, 4: 512}


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalised_learning_rate(lr_mul):
    torch.manual_seed(0)
    conv = EqualConv2d(256, 128, 3, padding=1, lr_mul=lr_mul)
    fan_in = 256 * 9
    assert abs(conv.weight.std().item() * lr_mul - 1.0) < 0.02  # stored ~ N(0, 1) / lr_mul
    assert math.isclose(conv.weight_gain, lr_mul / math.sqrt(fan_in))
    assert abs(conv.effective_weight().std().item() * math.sqrt(fan_in) - 1.0) < 0.02
    x = torch.randn(2, 256, 5, 5)
    ref = F.conv2d(x, conv.weight * lr_mul / math.sqrt(fan_in), conv.bias * lr_mul, padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-5)
    lin = EqualLinear(1024, 64, lr_mul=lr_mul)
    assert abs(lin.weight.std().item() * lr_mul - 1.0) < 0.02
    assert abs(lin.effective_weight().std().item() * math.sqrt(1024) - 1.0) < 0.05


def test_minibatch_stddev_is_zero_for_identical_images_in_a_group():
    torch.manual_seed(0)
    mb = MinibatchStdDev(group_size=4)
    same = torch.randn(1, 6, 4, 4).expand(4, -1, -1, -1)
    x = torch.cat([same, torch.randn(4, 6, 4, 4)])  # group 0 identical, group 1 random
    feat = mb.stddev_feature(x)
    assert feat.shape == (8, 1, 4, 4)
    assert feat[:4].abs().max() < 1e-3  # sqrt(eps) = 1e-4
    assert feat[4:].min() > 0.5
    assert mb(x).shape == (8, 7, 4, 4)
    assert mb.stddev_feature(torch.randn(6, 6, 4, 4)).shape == (6, 1, 4, 4)  # groups of 3


class _ConstantD(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.b.expand(x.shape[0], 1)


def test_r1_penalty_zero_for_input_independent_discriminator():
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    assert r1_penalty(_ConstantD()(x), x, gamma=10.0).item() == 0.0
    assert r1_penalty((x * 0.0).flatten(1).sum(1, keepdim=True), x, gamma=10.0).item() == 0.0
    torch.manual_seed(0)
    d = StyleGAN2Discriminator(resolution=32, channel_base=512, channel_max=32)
    pen = r1_penalty(d(x), x, gamma=10.0)
    assert pen.item() > 0
    pen.backward()  # create_graph: the penalty trains the discriminator
    assert d.from_rgb.weight.grad is not None and d.from_rgb.weight.grad.abs().sum() > 0
    # exact value for a linear critic: grad = w, R1 = gamma / 2 * ||w||^2
    w = torch.randn(3, 32, 32)
    y = torch.randn(4, 3, 32, 32, requires_grad=True)
    pen_lin = r1_penalty((y * w).flatten(1).sum(1, keepdim=True), y, gamma=2.0)
    assert torch.allclose(pen_lin, w.pow(2).sum(), rtol=1e-5)


def test_gan_losses_and_adaptive_weight():
    real, fake = torch.tensor([[3.0], [-1.0]]), torch.tensor([[0.5], [-2.0]])
    assert torch.allclose(ns_d_loss(real, fake), F.softplus(-real).mean() + F.softplus(fake).mean())
    assert torch.allclose(ns_g_loss(fake), -F.logsigmoid(fake).mean())
    assert torch.allclose(hinge_d_loss(real, fake), torch.tensor((0 + 2) / 2 + (1.5 + 0) / 2))
    assert torch.allclose(hinge_g_loss(fake), torch.tensor(0.75))
    last = nn.Parameter(torch.randn(4, 4))
    rec = (3.0 * last).sum()
    gan = (last * 1.0).sum()
    w = adaptive_weight(rec, gan, last)
    assert not w.requires_grad
    assert math.isclose(w.item(), 3.0 * 4.0 / (4.0 + 1e-4), rel_tol=1e-5)
    assert adaptive_weight(rec, 0.0 * last.sum(), last, max_weight=100.0).item() == 100.0
