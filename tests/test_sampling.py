"""Tests of sampling: mask schedules, top-k / top-p, AR (cached and uncached) and NAR decoding."""

from __future__ import annotations

import math

import pytest
import torch

from seqgan.nets.mask_schedule import (
    mask_ratio,
    tokens_revealed_per_step,
    tokens_to_keep_masked_per_step,
)
from seqgan.nets.transformer import GenerativeTransformer, TransformerConfig, eval_mode
from seqgan.sample.ar import sample_ar, teacher_forced_argmax, top1_accuracy_per_image
from seqgan.sample.filtering import sample_from_logits, top_k_filter, top_p_filter
from seqgan.sample.nar import confidence_temperature, gumbel_noise, sample_nar

K, N, CLASSES = 16, 12, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(causal: bool, num_classes: int = 0, seq_len: int = N, seed: int = 0) -> GenerativeTransformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(
        vocab_size=K,
        seq_len=seq_len,
        num_classes=num_classes,
        layers=2,
        heads=2,
        dim=16,
        mlp_dim=32,
        dropout=0.1,
        causal=causal,
    )
    model = GenerativeTransformer(cfg)
    with torch.no_grad():  # sharpen the random model so that sampling is not near-uniform
        model.head.weight.mul_(30)
    return model


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------- schedules
def test_mask_ratio_endpoints_and_shape():
    for schedule in ("cosine", "linear"):
        assert mask_ratio(schedule, 0.0) == 1.0
        assert abs(mask_ratio(schedule, 1.0)) < 1e-12
        t = torch.linspace(0, 1, 11)
        assert torch.all(mask_ratio(schedule, t)[1:] < mask_ratio(schedule, t)[:-1])  # decreasing
    assert mask_ratio("cosine", 0.5) == pytest.approx(math.cos(math.pi / 4))
    assert mask_ratio("linear", 0.25) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="schedule"):
        mask_ratio("square", 0.5)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("seq_len, steps", [(256, 12), (256, 1), (256, 256), (12, 8), (5, 5), (1024, 20), (3, 2)])
def test_schedule_reveals_everything_at_least_one_per_step(schedule, seq_len, steps):
    masked = tokens_to_keep_masked_per_step(seq_len, steps, schedule)
    revealed = tokens_revealed_per_step(seq_len, steps, schedule)
    assert len(masked) == len(revealed) == steps
    assert masked[-1] == 0
    assert sum(revealed) == seq_len
    assert min(revealed) >= 1
    assert all(a > b for a, b in zip([seq_len, *masked[:-1]], masked, strict=True))  # strictly decreasing


def test_schedule_follows_maskgit_floor_rule():
    # where the clamps are inactive, step t keeps floor(gamma((t+1)/T) * N) masked
    masked = tokens_to_keep_masked_per_step(256, 12, "cosine")
    assert masked[:-1] == [math.floor(math.cos(math.pi / 2 * (t + 1) / 12) * 256) for t in range(11)]
    assert masked[0] == 253 and masked[-2] == 33  # few reveals first, many at the end
    assert tokens_to_keep_masked_per_step(100, 4, "linear") == [75, 50, 25, 0]


def test_schedule_rejects_more_steps_than_tokens():
    with pytest.raises(ValueError, match="steps"):
        tokens_to_keep_masked_per_step(8, 9, "cosine")


def test_schedule_small_cases_exactly():
    """Where the clamps decide: one token in one step; a reveal of exactly one token when the floor
    rule would keep as many masked as before (cosine N = 3, T = 2: floor(3 cos(pi/4)) = 2, and
    linear N = 6, T = 4: 4.5, 3, 1.5 floored); and the tensor form of gamma is the float form."""
    for schedule in ("cosine", "linear"):
        assert tokens_to_keep_masked_per_step(1, 1, schedule) == [0]
    assert tokens_to_keep_masked_per_step(3, 2, "cosine") == [2, 0]
    assert tokens_to_keep_masked_per_step(6, 4, "linear") == [4, 3, 1, 0]
    t = [0.0, 0.25, 0.5, 0.75, 1.0]
    for schedule in ("cosine", "linear"):
        expected = torch.tensor([mask_ratio(schedule, x) for x in t], dtype=torch.float64)
        assert torch.allclose(mask_ratio(schedule, torch.tensor(t, dtype=torch.float64)), expected, atol=1e-12)


# ------------------------------------------------------------------------------- filtering
PROBS = torch.tensor([0.05, 0.5, 0.0125, 0.3, 0.1, 0.0375])  # sorted: 1, 3, 4, 0, 5, 2


def test_top_k_keeps_exactly_the_k_largest():
    logits = PROBS.log()
    kept = top_k_filter(logits, 2).isfinite()
    assert kept.tolist() == [False, True, False, True, False, False]
    assert torch.equal(top_k_filter(logits, 0), logits)
    assert top_k_filter(logits[None].expand(3, -1), 1).isfinite().sum(-1).tolist() == [1, 1, 1]


@pytest.mark.parametrize(
    "p, nucleus",
    [
        (0.4, {1}),
        (0.5, {1}),
        (0.75, {1, 3}),
        (0.85, {1, 3, 4}),
        (0.92, {1, 3, 4, 0}),
        (1.0, set(range(6))),
    ],
)
def test_top_p_is_the_smallest_prefix_with_mass_p(p, nucleus):
    kept = top_p_filter(PROBS.log(), p).isfinite()
    assert set(kept.nonzero().flatten().tolist()) == nucleus


def test_top_p_of_one_is_off_and_beyond_one_is_refused():
    """p = 1 returns the logits untouched, even where float rounding puts the mass before a tail
    token at exactly 1 (the filter would drop it); p > 1 is an error, not "off"."""
    logits = torch.tensor([[0.0, -100.0, -120.0]])
    assert torch.equal(top_p_filter(logits, 1.0), logits)
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 1.5)


def test_gumbel_noise_is_finite_where_rand_returns_0_or_1(monkeypatch):
    """u is clamped to [1e-20, 1 - 1e-7]: -log(-log u) is finite, and equal to the bounds' values,
    even for u = 0 or u = 1."""
    ends = torch.tensor([0.0, 1.0, 0.5])
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: ends.clone())
    g = gumbel_noise((3,), None, torch.device("cpu"))
    assert torch.isfinite(g).all()
    assert g[2].item() == pytest.approx(-math.log(-math.log(0.5)), rel=1e-6)
    top = torch.tensor(1.0 - 1e-7)  # the clamp's bound, in float32
    assert g[1].item() == pytest.approx(-torch.log(-torch.log(top)).item(), rel=1e-6)
    assert g[0].item() == pytest.approx(-math.log(-math.log(1e-20)), rel=1e-6)


def test_top_p_always_keeps_the_top_token():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # second row: three-way tie
    kept = top_p_filter(logits, 1e-6).isfinite()
    assert kept.sum(-1).tolist() == [1, 1]
    assert kept[0, 0]


# top-k first, then the nucleus of the RENORMALISED top-k distribution (0.56, 0.33, 0.11 for k = 3)
@pytest.mark.parametrize(
    "top_k, top_p, support",
    [
        (0, 0.75, {1, 3}),
        (3, 1.0, {1, 3, 4}),
        (3, 0.85, {1, 3}),
        (3, 0.95, {1, 3, 4}),
        (0, 1.0, set(range(6))),
    ],
)
def test_sampling_never_leaves_the_filtered_support(top_k, top_p, support):
    logits = PROBS.log().expand(20000, -1)
    ids = sample_from_logits(logits, 1.0, top_k, top_p, gen(0))
    seen = set(ids.unique().tolist())
    assert seen == support  # never outside, and every kept token is reachable
    # frequencies follow the renormalised distribution
    expected = torch.zeros(6)
    expected[list(support)] = PROBS[list(support)]
    expected /= expected.sum()
    freq = torch.bincount(ids, minlength=6).float() / ids.numel()
    assert (freq - expected).abs().max() < 0.02


def test_sample_from_logits_seeded_and_greedy():
    logits = torch.randn(4, 7, K, generator=gen(0))
    a = sample_from_logits(logits, 1.0, 0, 1.0, gen(1))
    b = sample_from_logits(logits, 1.0, 0, 1.0, gen(1))
    c = sample_from_logits(logits, 1.0, 0, 1.0, gen(2))
    assert a.shape == (4, 7) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_from_logits(logits, 0.0, 0, 1.0, gen(1)), logits.argmax(-1))
    with pytest.raises(ValueError, match="top_p"):
        sample_from_logits(logits, 1.0, 0, 0.0, gen(1))


# ------------------------------------------------------------------------------- AR sampling
def redraw_jittered(model, labels, tokens, top_k, top_p, seed, jitter):
    """sample_ar's draws replayed from the teacher-forced logits of ``tokens`` (one full forward),
    every logit moved by +-``jitter``, with the same seeded uniforms (one per row and step)."""
    with eval_mode(model), torch.no_grad():
        prefix = model.condition_tokens(len(tokens), labels)
        logits = model.forward_tokens(torch.cat([prefix, tokens[:, :-1]], dim=1))  # (B, N, K)
    signs = torch.randint(0, 2, logits.shape, generator=gen(99)).to(logits.dtype) * 2 - 1
    logits = logits + jitter * signs
    g = gen(seed)
    steps = [sample_from_logits(logits[:, t], 1.0, top_k, top_p, g) for t in range(tokens.shape[1])]
    return torch.stack(steps, dim=1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("seq_len, num_classes", [(1, 0), (5, CLASSES), (12, 0), (20, CLASSES)])
def test_cached_and_uncached_ar_sampling_draw_identical_tokens(dtype, seq_len, num_classes):
    model = tiny(causal=True, num_classes=num_classes, seq_len=seq_len).to(dtype)
    labels = torch.tensor([0, 2, 1, 0]) if num_classes else None
    for top_k, top_p in ((0, 1.0), (5, 0.9)):
        cached = sample_ar(model, 4, labels, 1.0, top_k, top_p, gen(7), use_cache=True)
        uncached = sample_ar(model, 4, labels, 1.0, top_k, top_p, gen(7), use_cache=False)
        assert cached.shape == (4, seq_len)
        # Two float paths (KV cache vs full recompute, logits equal up to ~1e-6 in float32) drawing
        # discrete tokens: identical because no draw of this data is near a tie (a top-k / top-p
        # boundary or a CDF step of the uniform; the closest is 3e-4 away), which the jittered
        # replay checks: logits moved by +-2e-5, 20x the paths' rounding, draw the same tokens.
        assert torch.equal(cached, uncached)
        assert torch.equal(redraw_jittered(model, labels, cached, top_k, top_p, 7, 2e-5), cached)


def test_ar_sampling_seeded_conditional_and_restores_mode():
    model = tiny(causal=True, num_classes=CLASSES).train()
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    a = sample_ar(model, 6, labels, 1.0, 0, 0.98, gen(0), use_cache=True)
    b = sample_ar(model, 6, labels, 1.0, 0, 0.98, gen(0), use_cache=True)
    c = sample_ar(model, 6, labels, 1.0, 0, 0.98, gen(1), use_cache=True)
    assert model.training  # dropout was off while sampling, and the mode is restored
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.long and a.min() >= 0 and a.max() < K
    with pytest.raises(ValueError, match="causal"):
        sample_ar(tiny(causal=False), 2, None, 1.0, 0, 1.0, gen(0))


def test_teacher_forced_argmax_reproduces_greedy_samples():
    # greedy decoding picks the argmax given its own prefix; teacher forcing on that very sequence
    # sees the same prefixes, so the two must agree at every position (accuracy 1)
    model = tiny(causal=True, num_classes=CLASSES)
    labels = torch.tensor([2, 0, 1])
    greedy = sample_ar(model, 3, labels, 0.0, 0, 1.0, None)
    predicted = teacher_forced_argmax(model, greedy, labels)
    # cached steps vs one full forward are two float paths; their argmaxes agree exactly because
    # this data has no near-tie: the top two logits differ by far more than float32 rounding
    with torch.no_grad():
        top2 = model.eval()(greedy, labels).topk(2, dim=-1).values  # (3, N, 2)
    assert (top2[..., 0] - top2[..., 1]).min() > 1e-3  # 0.013 here
    assert torch.equal(predicted, greedy)
    assert top1_accuracy_per_image(predicted, greedy).tolist() == [1.0, 1.0, 1.0]
    # on other ground truth: one forward pass, argmax per position, nothing fed back
    truth = torch.randint(0, K, (3, N), generator=gen(4))
    with torch.no_grad():
        expected = model.eval()(truth, labels).argmax(-1)
    predicted = teacher_forced_argmax(model, truth, labels)
    assert torch.equal(predicted, expected)
    acc = top1_accuracy_per_image(predicted, truth)
    assert torch.allclose(acc, (expected == truth).float().sum(1) / N)


# ------------------------------------------------------------------------------ NAR sampling
@pytest.mark.parametrize("num_classes", [0, CLASSES])
@pytest.mark.parametrize("schedule, steps", [("cosine", 4), ("linear", 6), ("cosine", N)])
def test_nar_sampling_never_changes_a_revealed_token(num_classes, schedule, steps):
    model = tiny(causal=False, num_classes=num_classes)
    labels = torch.tensor([0, 1, 2, 1, 0]) if num_classes else None
    history: list[torch.Tensor] = []
    ids = sample_nar(model, 5, labels, steps, 4.5, schedule, gen(0), callback=lambda t, x: history.append(x))
    assert len(history) == steps and torch.equal(history[-1], ids)
    mask_id = model.special_id
    expected_masked = tokens_to_keep_masked_per_step(N, steps, schedule)
    previous = torch.full_like(ids, mask_id)
    for t, current in enumerate(history):
        assert (current == mask_id).sum(1).tolist() == [expected_masked[t]] * 5
        revealed = previous != mask_id
        assert torch.equal(current[revealed], previous[revealed])  # revealed tokens stay
        previous = current
    assert ids.min() >= 0 and ids.max() < K  # no [MASK] left


def test_nar_sampling_seeded():
    model = tiny(causal=False, num_classes=CLASSES)
    labels = torch.tensor([0, 1, 2, 0])
    a = sample_nar(model, 4, labels, 5, 0.65, "cosine", gen(0))
    b = sample_nar(model, 4, labels, 5, 0.65, "cosine", gen(0))
    c = sample_nar(model, 4, labels, 5, 0.65, "cosine", gen(1))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="bidirectional"):
        sample_nar(tiny(causal=True), 2, None, 4, 1.0, "cosine", gen(0))


def first_reveal(model: GenerativeTransformer, batch: int, temperature: float) -> torch.Tensor:
    """Positions revealed by step 0 of a greedy-token 4-step cosine decode (B, N) bool."""
    history: list[torch.Tensor] = []
    sample_nar(
        model, batch, None, 4, temperature, "cosine", gen(0), token_temperature=0.0,
        callback=lambda t, x: history.append(x),
    )  # fmt: skip
    return history[0] != K


def test_nar_keeps_the_most_confident_tokens_without_noise():
    # temperature 0: the revealed tokens of step 0 are exactly the most probable draws
    model = tiny(causal=False)
    revealed = first_reveal(model, 3, 0.0)
    with torch.no_grad():
        logits = model.eval()(torch.full((3, N), K), None)  # (3, N, K)
    confidence = logits.log_softmax(-1).amax(-1)  # (3, N) log-prob of the greedy draw
    n_rev = N - tokens_to_keep_masked_per_step(N, 4, "cosine")[0]
    top = confidence.topk(n_rev, dim=-1).indices
    assert torch.equal(revealed, torch.zeros_like(revealed).scatter(1, top, True))


def test_step_zero_reveal_at_the_configured_temperature_is_the_top_k_of_log_p_plus_scaled_gumbel():
    """MaskGIT's confidence is log p + tau * g (its mask_by_random_topk), not p + tau * g: at tau > 0
    the two rank differently. Recomputed by hand from the same generator stream (greedy draws take
    no randomness, so the first numbers drawn are step 0's Gumbel noise) at the embedded NAR
    temperature 0.65 over a 4-step cosine decode."""
    model, batch, temperature = tiny(causal=False), 8, 0.65
    revealed = first_reveal(model, batch, temperature)
    with torch.no_grad():
        logits = model.eval()(torch.full((batch, N), K), None)  # (B, N, K)
    log_p = logits.float().log_softmax(-1).amax(-1)  # (B, N) log-prob of each greedy draw
    u = torch.rand((batch, N), generator=gen(0)).clamp_(1e-20, 1.0 - 1e-7)
    g = -torch.log(-torch.log(u))
    tau = temperature * (1 - 1 / 4)
    n_rev = N - tokens_to_keep_masked_per_step(N, 4, "cosine")[0]

    def reveal_by(confidence: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(revealed).scatter(1, confidence.topk(n_rev, dim=-1).indices, True)

    assert torch.equal(revealed, reveal_by(log_p + tau * g))
    # the precondition that makes this test able to fail: ranking probabilities would reveal others
    assert not torch.equal(reveal_by(log_p + tau * g), reveal_by(log_p.exp() + tau * g))


def test_confidence_noise_is_annealed_and_matters():
    assert [confidence_temperature(4.5, t, 3) for t in range(3)] == pytest.approx([3.0, 1.5, 0.0])
    # with a large Gumbel scale the first reveal is no longer the most confident set
    model = tiny(causal=False)
    assert not torch.equal(first_reveal(model, 8, 0.0), first_reveal(model, 8, 1e3))
