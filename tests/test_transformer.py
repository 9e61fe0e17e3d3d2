"""Tests of the generative transformer: sizes, masking, losses, KV cache."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqgan.nets.transformer import (
    GenerativeTransformer,
    KVCache,
    TransformerConfig,
    apply_mask,
    ar_loss,
    count_parameters,
    make_fixed_masks,
    masked_cross_entropy,
    nar_loss,
    nar_loss_with_mask,
    random_masks,
)

K, N, CLASSES = 16, 12, 3


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(causal: bool, num_classes: int = 0, seed: int = 0, **overrides) -> GenerativeTransformer:
    sizes = dict(
        vocab_size=K,
        seq_len=N,
        num_classes=num_classes,
        layers=2,
        heads=2,
        dim=16,
        mlp_dim=32,
        dropout=0.0,
    )
    sizes.update(overrides)
    torch.manual_seed(seed)
    return GenerativeTransformer(TransformerConfig(causal=causal, **sizes)).eval()


def random_ids(batch: int, seed: int = 1, n: int = N) -> torch.Tensor:
    return torch.randint(0, K, (batch, n), generator=torch.Generator().manual_seed(seed))


def labels_for(model: GenerativeTransformer, batch: int) -> torch.Tensor | None:
    return torch.arange(batch) % model.config.num_classes if model.config.num_classes else None


# ----------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(
    "dim, mlp_dim, paper, measured",
    [(768, 3072, 172e6, 172_649_728), (1024, 4096, 305e6, 305_696_768)],
)
def test_parameter_count_matches_supplement_table2(causal, dim, mlp_dim, paper, measured):
    cfg = TransformerConfig(
        vocab_size=1024,
        seq_len=256,
        num_classes=1000,
        layers=24,
        heads=16,
        dim=dim,
        mlp_dim=mlp_dim,
        dropout=0.1,
        causal=causal,
    )
    with torch.device("meta"):
        model = GenerativeTransformer(cfg)
    total = count_parameters(model)
    # a conditional NAR model has one more position row, for the class token in front
    assert total == measured + (0 if causal else dim)
    assert abs(total - paper) / paper < 0.01


def test_vocabulary_layout():
    cfg = tiny(causal=True, num_classes=CLASSES).config
    assert cfg.special_id == K
    assert cfg.embedding_rows == K + 1 + CLASSES
    assert tiny(causal=True, num_classes=CLASSES).head.out_features == K  # codes only are predicted


@pytest.mark.parametrize("bad", [dict(heads=3), dict(dim=0), dict(dropout=1.0), dict(num_classes=-1)])
def test_config_rejects_bad_sizes(bad):
    sizes = dict(
        vocab_size=K,
        seq_len=N,
        num_classes=0,
        layers=1,
        heads=2,
        dim=16,
        mlp_dim=32,
        dropout=0.0,
        causal=True,
    )
    sizes.update(bad)
    with pytest.raises(ValueError):
        TransformerConfig(**sizes)


# -------------------------------------------------------------------------------- masking
@pytest.mark.parametrize("num_classes", [0, CLASSES])
def test_causal_masking_is_real_in_ar_and_absent_in_nar(num_classes):
    ids = random_ids(2)
    j = 6
    changed = ids.clone()
    changed[:, j] = (changed[:, j] + 1) % K
    for causal in (True, False):
        model = tiny(causal, num_classes)
        labels = labels_for(model, 2)
        with torch.no_grad():
            a, b = model(ids, labels), model(changed, labels)
        assert a.shape == (2, N, K)
        if causal:
            # output i sees s_0 .. s_{i-1}: positions <= j are blind to s_j, later ones are not
            torch.testing.assert_close(a[:, : j + 1], b[:, : j + 1], rtol=0, atol=0)
            assert (a[:, j + 1 :] - b[:, j + 1 :]).abs().amax(dim=-1).min() > 0
        else:
            assert (a[:, :j] - b[:, :j]).abs().amax() > 1e-4


def test_class_token_conditions_the_first_prediction():
    model = tiny(causal=True, num_classes=CLASSES)
    ids = random_ids(1).expand(CLASSES, N)
    with torch.no_grad():
        logits = model(ids, torch.arange(CLASSES))
    assert (logits[0, 0] - logits[1, 0]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="labels"):
        model(ids, None)
    with pytest.raises(ValueError, match="labels"):
        model(ids, torch.tensor([0, 1, CLASSES]))


# -------------------------------------------------------------------------------- losses
def test_ar_loss_is_next_token_cross_entropy():
    model = tiny(causal=True)
    ids = random_ids(3)
    loss = ar_loss(model, ids, None)
    # hand computation: input [START] + s_0 .. s_{N-2}, target s_0 .. s_{N-1}
    tokens = torch.cat([torch.full((3, 1), K), ids[:, :-1]], dim=1)
    logp = model.forward_tokens(tokens).log_softmax(-1)
    expected = -logp.gather(-1, ids[..., None]).mean()
    torch.testing.assert_close(loss, expected)
    assert abs(loss.item() - math.log(K)) < 0.5  # near-uniform at initialisation


def test_masked_cross_entropy_ignores_unmasked_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, N, K, generator=g)
    targets = torch.randint(0, K, (2, N), generator=g)
    mask = torch.zeros(2, N, dtype=torch.bool)
    mask[0, [1, 5]] = True
    mask[1, [0, 2, 11]] = True
    loss = masked_cross_entropy(logits, targets, mask)
    # hand computation over the five masked positions
    terms = [-(logits[b, i].log_softmax(-1)[targets[b, i]]) for b, i in mask.nonzero().tolist()]
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    # scrambling logits and targets at unmasked positions changes nothing
    logits2 = torch.where(mask[..., None], logits, 100 * torch.randn(2, N, K, generator=g))
    targets2 = torch.where(mask, targets, (targets + 3) % K)
    assert masked_cross_entropy(logits2, targets2, mask) == loss
    # while changing a masked one does
    targets2[0, 1] = (targets2[0, 1] + 1) % K
    assert masked_cross_entropy(logits2, targets2, mask) != loss


@pytest.mark.parametrize("num_classes", [0, CLASSES])
def test_nar_loss_with_mask_matches_hand_computation(num_classes):
    model = tiny(causal=False, num_classes=num_classes)
    ids = random_ids(2)
    labels = labels_for(model, 2)
    mask = make_fixed_masks(2, N, seed=3)
    loss = nar_loss_with_mask(model, ids, labels, mask)
    inputs = torch.where(mask, torch.full_like(ids, K), ids)  # [MASK] = K
    if num_classes:
        tokens = torch.cat([K + 1 + labels[:, None], inputs], dim=1)
        logits = model.forward_tokens(tokens)[:, 1:]
    else:
        logits = model.forward_tokens(inputs)
    expected = F.cross_entropy(logits[mask], ids[mask])
    torch.testing.assert_close(loss, expected)
    # the targets at unmasked positions are visible inputs, not targets: the loss must equal the
    # one computed from the same masked input with garbage targets there
    garbage = torch.where(mask, ids, (ids + 5) % K)
    torch.testing.assert_close(masked_cross_entropy(model(apply_mask(ids, mask, K), labels), garbage, mask), loss)


def test_random_masks_follow_the_cosine_count_rule():
    g = torch.Generator().manual_seed(0)
    masks = random_masks(400, N, g)
    counts = masks.sum(1)
    assert counts.min() >= 1 and counts.max() <= N
    # replay the draws: counts = max(1, ceil(cos(pi/2 r) N)) with r the first draw
    r = torch.rand(400, generator=torch.Generator().manual_seed(0))
    expected = torch.ceil(torch.cos(r * math.pi / 2) * N).long().clamp(1, N)
    assert torch.equal(counts, expected)
    # E[cos(pi/2 r)] = 2/pi: the mean masked fraction is about 0.64 (+ the ceil)
    assert 0.6 < counts.float().mean().item() / N < 0.75


def test_fixed_masks_are_reproducible():
    a, b, c = (
        make_fixed_masks(8, N, seed=1),
        make_fixed_masks(8, N, seed=1),
        make_fixed_masks(8, N, seed=2),
    )
    assert a.dtype == torch.bool and a.shape == (8, N)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_nar_loss_seeded_and_trains():
    model = tiny(causal=False, num_classes=CLASSES).train()
    ids = random_ids(4)
    labels = labels_for(model, 4)
    l1 = nar_loss(model.eval(), ids, labels, torch.Generator().manual_seed(5))
    l2 = nar_loss(model, ids, labels, torch.Generator().manual_seed(5))
    assert l1 == l2
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(30):
        loss = nar_loss(model, ids, labels, g)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first  # it can memorise four sequences


def test_losses_reject_the_wrong_objective():
    with pytest.raises(ValueError, match="causal"):
        ar_loss(tiny(causal=False), random_ids(1), None)
    with pytest.raises(ValueError, match="bidirectional"):
        nar_loss_with_mask(tiny(causal=True), random_ids(1), None, make_fixed_masks(1, N, 0))


# ------------------------------------------------------------------------------- KV cache
@pytest.mark.parametrize("num_classes", [0, CLASSES])
def test_cached_decode_matches_full_forward(num_classes):
    model = tiny(causal=True, num_classes=num_classes)
    ids = random_ids(3)
    labels = labels_for(model, 3)
    with torch.no_grad():
        full = model(ids, labels)  # (B, N, K)
        cache = model.allocate_cache(3)
        prefix = model.condition_tokens(3, labels)
        steps = [model.prefill(prefix, cache)[:, -1]]
        for t in range(1, N):
            steps.append(model.decode_one(ids[:, t - 1], t, cache))
    torch.testing.assert_close(torch.stack(steps, dim=1), full, rtol=0, atol=1e-5)
    assert cache.length == N


def test_cached_chunk_after_prefix_uses_the_right_causal_alignment():
    # a multi-token chunk at start > 0 needs a bottom-right causal mask, not SDPA's top-left one
    model = tiny(causal=True)
    tokens = torch.cat([torch.full((2, 1), K), random_ids(2)[:, :-1]], dim=1)  # (2, N)
    with torch.no_grad():
        full = model.forward_tokens(tokens)
        cache = model.allocate_cache(2)
        a = model.prefill(tokens[:, :4], cache)
        b = model.forward_tokens(tokens[:, 4:], cache, start=4)
    torch.testing.assert_close(torch.cat([a, b], dim=1), full, rtol=0, atol=1e-5)


def test_cache_is_allocated_once_and_guarded():
    model = tiny(causal=True)
    cache = model.allocate_cache(2)
    assert isinstance(cache, KVCache)
    assert cache.keys.shape == (2, 2, 2, N, 8)  # (layers, B, heads, max_len, head_dim)
    keys = cache.keys
    with torch.no_grad():
        model.prefill(torch.full((2, 1), K), cache)
        model.decode_one(torch.zeros(2, dtype=torch.long), 1, cache)
    assert cache.keys is keys  # written in place
    with pytest.raises(ValueError, match="position"):
        model.decode_one(torch.zeros(2, dtype=torch.long), 5, cache)
    with pytest.raises(ValueError, match="causal"):
        tiny(causal=False).forward_tokens(
            torch.zeros(2, 1, dtype=torch.long), KVCache.allocate(tiny(causal=True).config, 2)
        )


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("objective", ["ar", "nar"])
def test_the_training_forward_compiles_without_graph_breaks(objective, conditional):
    """run.compile wraps this forward in torch.compile on CUDA: one graph, no breaks (checked on CPU
    with torch._dynamo.explain, which traces without compiling kernels)."""
    import torch._dynamo as dynamo
    from tiny_models import tiny_model_raw

    from seqgan.config import validate_params
    from seqgan.nets.transformer_factory import build_transformer

    params = validate_params(tiny_model_raw(conditional=conditional))
    model = build_transformer(params, "base", objective)
    ids = torch.randint(0, model.config.vocab_size, (2, model.config.seq_len))
    labels = torch.tensor([0, 3]) if conditional else None
    explained = dynamo.explain(model)(ids, labels)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
    dynamo.reset()
