"""The generative transformer of SeQ-GAN: one backbone, two objectives (supplement Table 2).

The supplement says the AR and NAR transformers "share the same architecture, except for the causal
attention used in the AR transformer", so there is ONE module here; ``TransformerConfig.causal``
picks the objective. Layout (pre-norm GPT / ViT block, every size an argument) ::

    tokens (B, L)  ->  tok_emb + pos_emb  ->  dropout
    layers x [ x + Attn(LN(x)) ; x + MLP(LN(x)) ]        Attn: fused qkv, SDPA, out proj
                                                          MLP: Linear(d, m) - GELU - Linear(m, d)
    LN  ->  head Linear(d, K)                             logits (B, L, K)

Vocabulary of the token embedding (K = ``vocab_size`` codebook entries) ::

    0 .. K-1             codebook ids
    K                    the special token: [START] for AR (unconditional models), [MASK] for NAR
    K+1 .. K+num_classes class tokens (class c -> K + 1 + c)

The head is K-way: the special and class tokens are inputs only and are never predicted. The class
token is a separate id from the special token (not ``K + c``) so AR and NAR share one layout and a
conditional AR model still has a well-defined [START] id.

Input sequences (N = ``seq_len`` tokens per image, raster order):

* AR (taming/VQGAN style): ``[cond] + s_0 .. s_{N-2}`` where cond is the class token
  (conditional) or [START] (unconditional); the output at position i predicts s_i.
  ``forward(ids, labels)`` takes the clean ids s_0 .. s_{N-1} and builds the shifted input
  itself, so ``ar_loss`` is a plain cross-entropy of ``forward(ids)`` against ``ids``.
  Positions: N.
* NAR (MaskGIT): the N ids with some replaced by [MASK]; conditional models prepend the class token
  (its output is dropped). Positions: N (+1 for the class token). Loss: cross-entropy on masked
  positions only.

Parameter counts (measured with ``count_parameters`` on the meta device; K = 1024, 1000 classes,
N = 256, 24 blocks, 16 heads): d = 768, MLP 3072 -> 172,649,728 (paper: 172M); d = 1024, MLP 4096
-> 305,696,768 (paper: 305M). A conditional NAR model has one more position row (+d).

KV cache (AR only; LlamaGen-style): ``KVCache.allocate`` reserves (layers, B, H, max_len, d_head)
for keys and values once; ``prefill`` runs the condition prefix through the model and fills the
cache; ``decode_one`` feeds one token at a given position and attends to the cached keys. The
uncached path (``forward_tokens`` over the whole prefix) is kept for the equality tests and the
benchmark.

Masked-token training: ``nar_loss`` draws r ~ U(0, 1) per sequence and masks
``max(1, ceil(gamma(r) * N))`` random positions, gamma the mask schedule (cosine in MaskGIT); the
schedule itself lives in ``seqgan.nets.mask_schedule`` (a leaf module with no imports of the package)
because the decoder uses the same function. Validation uses a FIXED mask set
(``make_fixed_masks``) so that points of a validation curve are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqgan.nets.common import count_parameters
from seqgan.nets.mask_schedule import MaskSchedule, mask_ratio

__all__ = [
    "TransformerConfig",
    "GenerativeTransformer",
    "KVCache",
    "count_parameters",
    "eval_mode",
    "masked_cross_entropy",
    "ar_loss",
    "nar_loss",
    "nar_loss_with_mask",
    "random_masks",
    "make_fixed_masks",
    "apply_mask",
]


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of one generative transformer.

    vocab_size:  codebook size K (the head is K-way).
    seq_len:     tokens per image N (16 x 16 = 256 in the paper).
    num_classes: class tokens; 0 = unconditional.
    layers, heads, dim, mlp_dim, dropout: supplement Table 2 (24, 16, 768, 3072, 0.1 for the base).
    causal:      True = AR (causal attention, shifted input); False = NAR (bidirectional, [MASK]).
    """

    vocab_size: int
    seq_len: int
    num_classes: int
    layers: int
    heads: int
    dim: int
    mlp_dim: int
    dropout: float
    causal: bool

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "layers", "heads", "dim", "mlp_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"TransformerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 0:
            raise ValueError(f"TransformerConfig.num_classes must be >= 0, got {self.num_classes}")
        if self.dim % self.heads:
            raise ValueError(f"TransformerConfig.heads = {self.heads} must divide dim = {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_size(
        cls, size: Any, *, vocab_size: int, seq_len: int, num_classes: int, causal: bool
    ) -> TransformerConfig:
        """Build from any object with ``layers, heads, dim, mlp_dim, dropout`` attributes
        (``seqgan.config.TransformerSizeParams``), so the nets layer need not import the config."""
        return cls(
            vocab_size=vocab_size,
            seq_len=seq_len,
            num_classes=num_classes,
            layers=size.layers,
            heads=size.heads,
            dim=size.dim,
            mlp_dim=size.mlp_dim,
            dropout=size.dropout,
            causal=causal,
        )

    @property
    def special_id(self) -> int:
        """[START] (AR) / [MASK] (NAR) token id."""
        return self.vocab_size

    @property
    def embedding_rows(self) -> int:
        """K codes + 1 special token + the class tokens."""
        return self.vocab_size + 1 + self.num_classes

    @property
    def has_class_prefix_position(self) -> bool:
        """A conditional NAR model keeps all N code positions and puts the class token in front."""
        return not self.causal and self.num_classes > 0

    @property
    def num_positions(self) -> int:
        return self.seq_len + int(self.has_class_prefix_position)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (no dropout) inside the block, the caller's mode restored afterwards: samplers
    are called from training loops and must not leave the model in the wrong mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


# ------------------------------------------------------------------------------------ KV cache
@dataclass
class KVCache:
    """Keys and values of every layer for one batch of AR decoding, allocated once.

    keys, values: (layers, B, heads, max_len, head_dim). Position p of the input sequence is
    written at index p; ``length`` is the number of positions filled so far.
    """

    keys: Tensor
    values: Tensor
    length: int = 0

    @classmethod
    def allocate(
        cls,
        config: TransformerConfig,
        batch_size: int,
        max_len: int | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> KVCache:
        max_len = config.num_positions if max_len is None else max_len
        if not 1 <= max_len <= config.num_positions:
            raise ValueError(f"KV cache max_len must be in [1, {config.num_positions}], got {max_len}")
        shape = (config.layers, batch_size, config.heads, max_len, config.dim // config.heads)
        return cls(
            keys=torch.zeros(shape, device=device, dtype=dtype),
            values=torch.zeros(shape, device=device, dtype=dtype),
        )

    @property
    def max_len(self) -> int:
        return self.keys.shape[3]


# ------------------------------------------------------------------------------------- blocks
class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``, optionally cached."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.resid_drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        causal: bool,
        cache: tuple[Tensor, Tensor] | None = None,
        start: int = 0,
    ) -> Tensor:
        """x (B, L, d) at input positions start .. start+L-1.

        With ``cache = (keys, values)`` (each (B, H, max_len, d_head) views of one layer of a
        ``KVCache``) the new keys/values are written at [start, start+L) and the queries attend to
        every cached position up to their own (the cache is AR-only, hence always causal)."""
        b, length, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        # (B, L, d) -> (B, H, L, d_head)
        q, k, v = (t.view(b, length, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        mask: Tensor | None = None
        is_causal = causal
        if cache is not None:
            cache_k, cache_v = cache
            end = start + length
            cache_k[:, :, start:end] = k
            cache_v[:, :, start:end] = v
            k, v = cache_k[:, :, :end], cache_v[:, :, :end]  # (B, H, end, d_head)
            if length == 1:
                is_causal = False  # one query at the newest position sees every cached key
            elif start > 0:
                # SDPA's is_causal aligns the mask top-left; queries sit at the END of the keys here
                is_causal = False
                q_pos = torch.arange(start, end, device=x.device)[:, None]
                mask = torch.arange(end, device=x.device)[None, :] <= q_pos  # (L, end)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
        )
        y = y.transpose(1, 2).reshape(b, length, d)  # (B, L, d)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, causal: bool, cache: tuple[Tensor, Tensor] | None = None, start: int = 0) -> Tensor:
        x = x + self.attn(self.ln1(x), causal, cache, start)
        return x + self.mlp(self.ln2(x))


# -------------------------------------------------------------------------------------- model
class GenerativeTransformer(nn.Module):
    """AR (``config.causal``) or NAR generative transformer over tokenizer ids; see module doc."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.embedding_rows, config.dim)
        self.pos_emb = nn.Parameter(torch.zeros(config.num_positions, config.dim))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(config.dim, config.heads, config.mlp_dim, config.dropout) for _ in range(config.layers)
        )
        self.ln_f = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, residual projections scaled by
        1/sqrt(2 * layers) so the residual stream's variance does not grow with depth."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.pos_emb, std=0.02)
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * self.config.layers))

    # ----------------------------------------------------------------------- token bookkeeping
    @property
    def special_id(self) -> int:
        """[START] (AR) / [MASK] (NAR) id."""
        return self.config.special_id

    def condition_tokens(self, batch_size: int, labels: Tensor | None) -> Tensor:
        """The prefix token of each sequence (B, 1): the class token, or [START] for an
        unconditional AR model. Unconditional NAR models have no prefix: (B, 0)."""
        cfg = self.config
        device = self.pos_emb.device
        if cfg.num_classes > 0:
            if labels is None:
                raise ValueError(f"this model is class-conditional ({cfg.num_classes} classes): pass labels")
            labels = labels.to(device=device, dtype=torch.long)
            if labels.shape != (batch_size,):
                raise ValueError(f"labels must have shape ({batch_size},), got {tuple(labels.shape)}")
            # a data-dependent check: eager only (under torch.compile it would split the graph)
            if not torch.compiler.is_compiling() and (labels.min() < 0 or labels.max() >= cfg.num_classes):
                raise ValueError(f"labels must lie in [0, {cfg.num_classes}), got {labels.min()}..{labels.max()}")
            return (cfg.vocab_size + 1 + labels)[:, None]
        if labels is not None:
            raise ValueError("this model is unconditional (num_classes = 0): pass labels=None")
        width = 1 if cfg.causal else 0
        return torch.full((batch_size, width), cfg.special_id, dtype=torch.long, device=device)

    def input_tokens(self, ids: Tensor, labels: Tensor | None) -> Tensor:
        """Build the model input from code ids (B, N): see the module docstring."""
        prefix = self.condition_tokens(ids.shape[0], labels)
        body = ids[:, :-1] if self.config.causal else ids  # AR: shift right by the prefix
        return torch.cat([prefix, body], dim=1)

    # -------------------------------------------------------------------------------- forward
    def forward_tokens(self, tokens: Tensor, cache: KVCache | None = None, start: int = 0) -> Tensor:
        """Already-built input tokens (B, L) at positions start .. start+L-1 -> logits (B, L, K).

        This is the one code path shared by training, full recomputation, prefill and cached
        decoding; with ``cache`` the keys/values of these positions are stored."""
        cfg = self.config
        length = tokens.shape[1]
        if start + length > cfg.num_positions:
            raise ValueError(f"positions {start}..{start + length - 1} exceed the model's {cfg.num_positions}")
        if cache is not None:
            if not cfg.causal:
                raise ValueError("the KV cache is for causal (AR) models only")
            if start + length > cache.max_len:
                raise ValueError(f"positions up to {start + length - 1} do not fit a cache of {cache.max_len}")
        x = self.drop(self.tok_emb(tokens) + self.pos_emb[start : start + length])  # (B, L, d)
        for i, block in enumerate(self.blocks):
            layer_cache = None if cache is None else (cache.keys[i], cache.values[i])
            x = block(x, cfg.causal, layer_cache, start)
        if cache is not None:
            cache.length = start + length
        return self.head(self.ln_f(x))

    def forward(self, ids: Tensor, labels: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, N, K) for code ids (B, N).

        AR: ``ids`` are clean codes; output i predicts ids[:, i] from the prefix. NAR: ``ids`` are
        codes with [MASK] (``special_id``) at the positions to predict."""
        logits = self.forward_tokens(self.input_tokens(ids, labels))
        if self.config.has_class_prefix_position:
            logits = logits[:, 1:]  # drop the class token's output
        return logits

    # ---------------------------------------------------------------------- cached AR decoding
    def allocate_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        """A cache on this model's device, in the dtype its keys and values will have: the
        autocast dtype while autocast is on for that device (bf16 sampling on CUDA; keys stored
        in fp32 would meet bf16 queries), else the parameters' (max_len defaults to N positions)."""
        device = self.pos_emb.device
        dtype = self.pos_emb.dtype
        if torch.is_autocast_enabled(device.type):
            dtype = torch.get_autocast_dtype(device.type)
        return KVCache.allocate(self.config, batch_size, max_len, device=device, dtype=dtype)

    def prefill(self, prefix_tokens: Tensor, cache: KVCache) -> Tensor:
        """Fill the cache with the prefix (B, P) at positions 0 .. P-1; logits (B, P, K)."""
        return self.forward_tokens(prefix_tokens, cache, start=0)

    def decode_one(self, token: Tensor, position: int, cache: KVCache) -> Tensor:
        """Feed one token (B,) at input ``position`` (all earlier positions cached) -> logits (B, K)
        for the NEXT code, i.e. s_position in the AR layout."""
        if position != cache.length:
            raise ValueError(f"decode_one at position {position}, but the cache holds {cache.length} positions")
        return self.forward_tokens(token[:, None], cache, start=position)[:, 0]


# ------------------------------------------------------------------------------------- losses
def masked_cross_entropy(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Mean cross-entropy over positions where ``mask`` is True (logits (B, N, K), targets and mask
    (B, N)). Unmasked positions do not enter the computation at all."""
    if not mask.any():
        raise ValueError("masked_cross_entropy: the mask selects no position")
    return F.cross_entropy(logits[mask], targets[mask])  # (M, K) vs (M,)


def ar_loss(model: GenerativeTransformer, ids: Tensor, labels: Tensor | None) -> Tensor:
    """Next-token cross-entropy (nats/token) of an AR model on code ids (B, N)."""
    if not model.config.causal:
        raise ValueError("ar_loss needs a causal model (config.causal=True)")
    logits = model(ids, labels)  # (B, N, K)
    return F.cross_entropy(logits.flatten(0, 1), ids.flatten())


def random_masks(
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    schedule: MaskSchedule = "cosine",
) -> Tensor:
    """MaskGIT training masks (B, N) bool: r ~ U(0, 1) per sequence, then
    ``max(1, ceil(gamma(r) N))`` positions chosen uniformly at random are masked. Draws on
    ``generator``'s device."""
    device = generator.device
    r = torch.rand(batch_size, generator=generator, device=device)
    counts = torch.ceil(mask_ratio(schedule, r) * seq_len).long().clamp(1, seq_len)  # (B,)
    scores = torch.rand(batch_size, seq_len, generator=generator, device=device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # (B, N): rank of each position's score
    return ranks < counts[:, None]


def make_fixed_masks(num_sequences: int, seq_len: int, seed: int, schedule: MaskSchedule = "cosine") -> Tensor:
    """A reproducible mask set (num_sequences, N) bool on the CPU, drawn exactly like training
    masks, so that every validation point of a NAR curve scores the same masked positions."""
    return random_masks(num_sequences, seq_len, torch.Generator().manual_seed(seed), schedule)


def apply_mask(ids: Tensor, mask: Tensor, mask_id: int) -> Tensor:
    """ids (B, N) with [MASK] where ``mask`` is True."""
    return torch.where(mask, torch.full_like(ids, mask_id), ids)


def nar_loss_with_mask(model: GenerativeTransformer, ids: Tensor, labels: Tensor | None, mask: Tensor) -> Tensor:
    """Masked-token cross-entropy for a GIVEN mask (B, N): the evaluation form of ``nar_loss``."""
    if model.config.causal:
        raise ValueError("nar_loss needs a bidirectional model (config.causal=False)")
    mask = mask.to(ids.device)
    logits = model(apply_mask(ids, mask, model.special_id), labels)  # (B, N, K)
    return masked_cross_entropy(logits, ids, mask)


def nar_loss(
    model: GenerativeTransformer,
    ids: Tensor,
    labels: Tensor | None,
    generator: torch.Generator,
    schedule: MaskSchedule = "cosine",
) -> Tensor:
    """MaskGIT training loss: a fresh random mask (``random_masks``) per call."""
    mask = random_masks(ids.shape[0], ids.shape[1], generator, schedule)
    return nar_loss_with_mask(model, ids, labels, mask)
