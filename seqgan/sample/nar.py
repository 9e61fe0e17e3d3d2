"""MaskGIT iterative (non-autoregressive) decoding.

Start with every position [MASK]. At step t = 0 .. T-1:

1. one bidirectional forward pass gives logits (B, N, K) at every position;
2. a token is drawn at every still-masked position (``sample_from_logits``, softmax temperature
   ``token_temperature``, 1 in MaskGIT); revealed positions keep their token;
3. confidence of a drawn token = log p(token) + tau_t * g, g ~ Gumbel(0, 1), with the annealed
   ``tau_t = temperature * (1 - (t+1)/T)`` (``confidence_temperature``) -- MaskGIT's
   ``mask_by_random_topk`` (its ``choice_temperature``; read here as the supplement's "sampling
   temperature" 0.45 / 0.65). Note MaskGIT ranks by the LOG-probability, as done here. Revealed
   positions get +inf confidence, so they are never re-masked;
4. the ``tokens_to_keep_masked_per_step(N, T, schedule)[t]`` least confident positions are masked
   again; the others are revealed for good.

Step 4 masks an exact count (``topk`` of the lowest confidences) rather than MaskGIT's
"confidence < cut-off", which can mask fewer tokens on ties.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from seqgan.nets.mask_schedule import MaskSchedule, tokens_to_keep_masked_per_step
from seqgan.nets.transformer import GenerativeTransformer, eval_mode
from seqgan.sample.filtering import sample_from_logits

__all__ = ["sample_nar", "gumbel_noise", "confidence_temperature"]


def gumbel_noise(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Standard Gumbel samples -log(-log u), u ~ U(0, 1) kept away from 0 and 1."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def confidence_temperature(temperature: float, step: int, steps: int) -> float:
    """Gumbel scale of step ``step`` (0-based) of ``steps``: temperature * (1 - (step+1)/steps).

    Annealed as in MaskGIT: early steps, which fix few tokens from little context, explore; the
    scale reaches 0 at the last step (which reveals everything anyway)."""
    return temperature * (1.0 - (step + 1) / steps)


@torch.no_grad()
def sample_nar(
    model: GenerativeTransformer,
    batch_size: int,
    labels: Tensor | None,
    steps: int,
    temperature: float,
    schedule: MaskSchedule,
    generator: torch.Generator | None,
    progress: bool = False,
    token_temperature: float = 1.0,
    callback: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Sample code ids (B, N) from a bidirectional model in ``steps`` MaskGIT iterations.

    temperature: Gumbel noise scale of the confidence ranking, annealed linearly to 0.
    callback(t, ids): called after every step with the current ids (B, N) ([MASK] =
    ``model.special_id`` where still masked); useful to record the reveal history.
    Deterministic for a seeded ``generator`` on the model's device."""
    if model.config.causal:
        raise ValueError("sample_nar needs a bidirectional (NAR) model; use sample_ar for AR models")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    n = model.config.seq_len
    keep_masked = tokens_to_keep_masked_per_step(n, steps, schedule)
    with eval_mode(model):
        device = model.pos_emb.device
        ids = torch.full((batch_size, n), model.special_id, dtype=torch.long, device=device)
        for t in tqdm(range(steps), desc="NAR sampling", disable=not progress, leave=False):
            logits = model(ids, labels)  # (B, N, K)
            unknown = ids == model.special_id  # (B, N)
            drawn = sample_from_logits(logits, token_temperature, generator=generator)  # (B, N)
            drawn = torch.where(unknown, drawn, ids)
            log_probs = logits.float().log_softmax(dim=-1)  # (B, N, K)
            log_p = log_probs.gather(-1, drawn[..., None])[..., 0]  # (B, N)
            tau = confidence_temperature(temperature, t, steps)
            confidence = log_p + tau * gumbel_noise(log_p.shape, generator, device)
            confidence = confidence.masked_fill(~unknown, float("inf"))
            ids = drawn
            if keep_masked[t] > 0:
                remask = confidence.topk(keep_masked[t], dim=-1, largest=False).indices  # (B, n_t)
                ids = ids.scatter(-1, remask, model.special_id)
            if callback is not None:
                callback(t, ids.clone())
        return ids
