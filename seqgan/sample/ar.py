"""Autoregressive sampling (one token per step, VQGAN style) and the teacher-forced visualization.

``sample_ar`` decodes the N = ``config.seq_len`` codes of a batch in raster order. Two decoders give
the next-token logits: the KV-cached one (prefill the condition token, then ``decode_one`` per step;
cost O(N) token forwards) and the full recomputation (the whole prefix every step; O(N^2)), kept
because the cached one must reproduce it exactly (tests) and to measure the gain (benchmark). Both
feed one shared loop, so the draws, filters and seeds are the same code.

``teacher_forced_argmax`` is the pipeline of main-paper Fig. 4 / supplement Fig. 3: one
teacher-forced pass over the ground-truth tokens, argmax at every position, predictions never fed
back.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from seqgan.nets.transformer import GenerativeTransformer, KVCache, eval_mode
from seqgan.sample.filtering import sample_from_logits

__all__ = ["sample_ar", "teacher_forced_argmax", "top1_accuracy_per_image"]


class _NextTokenLogits(Protocol):
    """Gives the logits (B, K) of code s_t once s_0 .. s_{t-1} are known."""

    def first(self) -> Tensor: ...

    def next(self, generated: Tensor, t: int) -> Tensor:
        """generated: (B, N) with columns 0 .. t-1 filled; returns the logits of s_t."""
        ...


class _CachedDecoder:
    """Prefill the condition token once, then one cached token per step."""

    def __init__(self, model: GenerativeTransformer, prefix: Tensor) -> None:
        self.model = model
        self.prefix = prefix  # (B, 1)
        # input positions 0 .. N-1 hold [cond] + s_0 .. s_{N-2}
        self.cache: KVCache = model.allocate_cache(prefix.shape[0], model.config.seq_len)

    def first(self) -> Tensor:
        return self.model.prefill(self.prefix, self.cache)[:, -1]

    def next(self, generated: Tensor, t: int) -> Tensor:
        # s_{t-1} sits at input position t (after the one condition token)
        return self.model.decode_one(generated[:, t - 1], t, self.cache)


class _FullRecompute:
    """Run the whole prefix [cond] + s_0 .. s_{t-1} through the model at every step."""

    def __init__(self, model: GenerativeTransformer, prefix: Tensor) -> None:
        self.model = model
        self.prefix = prefix  # (B, 1)

    def first(self) -> Tensor:
        return self.model.forward_tokens(self.prefix)[:, -1]

    def next(self, generated: Tensor, t: int) -> Tensor:
        tokens = torch.cat([self.prefix, generated[:, :t]], dim=1)  # (B, t + 1)
        return self.model.forward_tokens(tokens)[:, -1]


@torch.no_grad()
def sample_ar(
    model: GenerativeTransformer,
    batch_size: int,
    labels: Tensor | None,
    temperature: float,
    top_k: int,
    top_p: float,
    generator: torch.Generator | None,
    use_cache: bool = True,
    progress: bool = False,
) -> Tensor:
    """Sample code ids (B, N) from a causal model, N = ``model.config.seq_len`` steps.

    labels: (B,) class ids for a conditional model, None otherwise. Deterministic for a seeded
    ``generator`` (on the model's device); cached and uncached decoding draw identical tokens up to
    floating-point ties. The model is put in eval mode for the call and restored afterwards."""
    if not model.config.causal:
        raise ValueError("sample_ar needs a causal (AR) model; use sample_nar for NAR models")
    with eval_mode(model):
        prefix = model.condition_tokens(batch_size, labels)  # (B, 1)
        decoder: _NextTokenLogits = (_CachedDecoder if use_cache else _FullRecompute)(model, prefix)
        n = model.config.seq_len
        generated = torch.zeros(batch_size, n, dtype=torch.long, device=prefix.device)
        for t in tqdm(range(n), desc="AR sampling", disable=not progress, leave=False):
            logits = decoder.first() if t == 0 else decoder.next(generated, t)  # (B, K)
            generated[:, t] = sample_from_logits(logits, temperature, top_k, top_p, generator)
        return generated


@torch.no_grad()
def teacher_forced_argmax(model: GenerativeTransformer, ids: Tensor, labels: Tensor | None = None) -> Tensor:
    """The AR model's argmax prediction s'_i at every position given the TRUE s_0 .. s_{i-1}
    (B, N): one forward pass, nothing fed back (main-paper Fig. 4)."""
    if not model.config.causal:
        raise ValueError("teacher_forced_argmax visualises a causal (AR) model")
    with eval_mode(model):
        return model(ids, labels).argmax(dim=-1)


def top1_accuracy_per_image(predicted: Tensor, target: Tensor) -> Tensor:
    """Fraction of positions where ``predicted`` equals ``target``, per image: (B, N) -> (B,)."""
    if predicted.shape != target.shape:
        raise ValueError(f"shape mismatch: predicted {tuple(predicted.shape)} vs target {tuple(target.shape)}")
    return (predicted == target).float().mean(dim=1)
