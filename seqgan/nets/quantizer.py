"""Nearest-neighbour vector quantizer with SeQ-GAN's entropy codebook-usage regulariser.

Plain VQGAN-style VQ (main paper section 2): no l2-normalisation, no factorisation, no EMA; the
codebook is trained by gradient. Loss terms, all mean-squared errors (means, not sums), returned
SEPARATELY so the trainer weights and logs each one:

* ``codebook``   = mean ||sg[z_e] - z_q||^2          -- gradient reaches the codebook only;
* ``commitment`` = beta * mean ||z_e - sg[z_q]||^2   -- gradient reaches the encoder only
  (beta = 0.25 sits on the ENCODER side, as in the paper; several public repos swap it);
* ``entropy``    = -entropy_weight * H(p_bar), where p[i, k] = softmax_k(-D[i, k] / temperature)
  is the soft assignment of position i to code k (D = squared L2 distance), p_bar = mean_i p[i]
  over all positions of the batch, H(p_bar) = -sum_k p_bar_k log p_bar_k.
  SIGN: we MAXIMISE the entropy of the mean soft assignment (more codes in use), so the term added
  to the minimised loss is -gamma * H. The paper prints "+gamma H", which only makes sense with a
  negative-entropy convention; minimising +gamma H would collapse usage, the opposite of its
  Table 5 (43.5% -> 100% usage). Gradients of this term reach both the encoder and the codebook.
  The temperature is not stated in the paper (softmax_k(-D) i.e. temperature 1 is the literal
  reading); it is an argument here.

The forward output uses the straight-through estimator z_e + sg[z_q - z_e]: its value is z_q and
its gradient w.r.t. z_e is the identity.

Codebook initialisation: uniform(-1/K, 1/K), as in taming-transformers; a training run may replace
it with encoder outputs (:meth:`VectorQuantizer.init_from_samples`, ``tokenizer.quantizer.init``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "VectorQuantizer",
    "CodebookUsage",
    "codebook_usage",
    "LOSS_KEYS",
    "total_quantizer_loss",
]

LOSS_KEYS: tuple[str, ...] = ("codebook", "commitment", "entropy")


def total_quantizer_loss(losses: dict[str, Tensor]) -> Tensor:
    """Sum of the three quantizer loss terms (each already carries its own weight)."""
    return sum(losses[k] for k in LOSS_KEYS)  # type: ignore[return-value]


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Disable autocast for the distance computation when it is on (no-op otherwise)."""
    if device_type in ("cuda", "cpu", "xpu", "mps") and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _histogram_perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) of a histogram of code counts (nats); 1 for a single used code."""
    p = counts.double() / counts.sum().clamp_min(1)
    h = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return torch.exp(h)


class VectorQuantizer(nn.Module):
    """z_e (B, C, H, W) -> (z_q (B, C, H, W) straight-through, ids (B, H, W) long, losses, stats).

    ``losses``: {"codebook", "commitment", "entropy"}, scalar tensors with gradients (module doc).
    ``stats`` (detached): "perplexity" = exp(entropy of this batch's hard-assignment histogram),
    "used_codes" = number of distinct codes in this batch, "soft_entropy" = H(p_bar) in nats.
    (On the meta device, used only for shape/parameter checks, the two histogram statistics are
    omitted because their computation needs data.)
    """

    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        beta: float = 0.25,
        entropy_weight: float = 0.01,
        entropy_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if entropy_temperature <= 0:
            raise ValueError("entropy_temperature must be > 0")
        self.codebook_size = codebook_size
        self.code_dim = code_dim
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.entropy_temperature = entropy_temperature
        self.embedding = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)

    @torch.no_grad()
    def init_from_samples(self, z_e: Tensor, generator: torch.Generator) -> None:
        """Set the K codes to K distinct encoder outputs drawn at random from ``z_e`` (B, C, H, W).

        Codes that start where the encoder's outputs are get selected and follow them; codes that
        start near 0 (the uniform init) can fall behind an encoder whose outputs grow, leaving
        z_q ~ 0 and a codebook term that grows past the reconstruction loss.
        """
        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1]).float()
        if flat.shape[1] != self.code_dim:
            raise ValueError(f"expected {self.code_dim} channels, got {flat.shape[1]}")
        if flat.shape[0] < self.codebook_size:
            raise ValueError(
                f"the codebook's {self.codebook_size} codes need at least as many encoder outputs; got "
                f"{flat.shape[0]} (raise tokenizer.phase1.init_images)"
            )
        rows = torch.randperm(flat.shape[0], generator=generator)[: self.codebook_size]
        self.embedding.weight.copy_(flat[rows.to(flat.device)].to(self.embedding.weight.dtype))

    @property
    def codebook(self) -> Tensor:
        """(K, C) code vectors."""
        return self.embedding.weight

    def distances(self, flat: Tensor) -> Tensor:
        """Squared L2 distances (N, K) = ||z||^2 - 2 z.e + ||e||^2 by one matmul (no (N, K, C))."""
        e = self.embedding.weight.to(flat.dtype)
        return flat.pow(2).sum(1, keepdim=True) - 2.0 * flat @ e.t() + e.pow(2).sum(1).unsqueeze(0)

    def lookup(self, ids: Tensor) -> Tensor:
        """ids (B, H, W) -> code vectors (B, C, H, W)."""
        return self.embedding(ids).permute(0, 3, 1, 2).contiguous()

    def _flat_distances(self, z_e: Tensor) -> tuple[Tensor, Tensor]:
        """z_e (B, C, H, W) -> (flat (N = B*H*W, C), squared distances (N, K) in float32)."""
        c = z_e.shape[1]
        if c != self.code_dim:
            raise ValueError(f"expected {self.code_dim} channels, got {c}")
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, c)  # (N, C)
        # distances in float32 even under autocast (argmin and softmax are precision sensitive)
        with _no_autocast(flat.device.type):
            return flat, self.distances(flat.float())

    def nearest_ids(self, z_e: Tensor) -> Tensor:
        """z_e (B, C, H, W) -> ids (B, H, W) of the nearest codes: ``forward``'s ids without its losses
        and statistics (the (N, K) softmax of the entropy term is most of an encoding pass's quantizer
        cost). Same computation as ``forward`` up to the argmin, so the same ids."""
        b, _, h, w = z_e.shape
        return self._flat_distances(z_e)[1].argmin(dim=1).view(b, h, w)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        b, c, h, w = z_e.shape
        flat, d = self._flat_distances(z_e)  # (N, C), (N, K)
        ids_flat = d.argmin(dim=1)  # (N,)
        z_q_flat = self.embedding(ids_flat)  # (N, C)

        codebook_loss = F.mse_loss(z_q_flat, flat.detach())
        commitment_loss = self.beta * F.mse_loss(flat, z_q_flat.detach())

        # entropy of the mean soft assignment over all positions (maximised -> sign below)
        # (with weight 0 it is only logged: no graph is kept for the (N, K) soft assignment)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.entropy_weight != 0):
            p = torch.softmax(-d / self.entropy_temperature, dim=1)  # (N, K)
            p_bar = p.mean(0)  # (K,)
            soft_entropy = -(p_bar * torch.log(p_bar.clamp_min(1e-30))).sum()
        entropy_loss = -self.entropy_weight * soft_entropy

        z_q = z_q_flat.view(b, h, w, c).permute(0, 3, 1, 2)  # (B, C, H, W)
        z_q = z_e + (z_q - z_e).detach()  # straight-through: value z_q, d/dz_e = identity
        ids = ids_flat.view(b, h, w)

        stats: dict[str, Tensor] = {"soft_entropy": soft_entropy.detach()}
        if not ids_flat.is_meta:  # bincount has a data-dependent size: skipped for meta counting
            with torch.no_grad():
                counts = torch.bincount(ids_flat, minlength=self.codebook_size)
                stats["perplexity"] = _histogram_perplexity(counts).float()
                stats["used_codes"] = (counts > 0).sum()
        losses = {
            "codebook": codebook_loss,
            "commitment": commitment_loss,
            "entropy": entropy_loss,
        }
        return z_q, ids, losses, stats

    def extra_repr(self) -> str:
        return (
            f"codebook_size={self.codebook_size}, code_dim={self.code_dim}, beta={self.beta}, "
            f"entropy_weight={self.entropy_weight}, entropy_temperature={self.entropy_temperature}"
        )


class CodebookUsage:
    """Accumulates code counts over many batches; ``compute()`` -> (fraction_used, perplexity)."""

    def __init__(self, codebook_size: int) -> None:
        self.codebook_size = codebook_size
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, ids: Tensor) -> None:
        ids = ids.detach().reshape(-1).to("cpu", torch.long)
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.codebook_size):
            raise ValueError("code id out of range")
        self.counts += torch.bincount(ids, minlength=self.codebook_size)

    def compute(self) -> tuple[float, float]:
        if self.counts.sum() == 0:
            return 0.0, math.nan
        fraction = (self.counts > 0).sum().item() / self.codebook_size
        return fraction, float(_histogram_perplexity(self.counts))


def codebook_usage(ids: Tensor | Iterable[Tensor], codebook_size: int) -> tuple[float, float]:
    """(fraction of the K codes used at least once, perplexity = exp(H) of the code histogram).

    ``ids`` is one tensor of any shape or an iterable of tensors (e.g. per-batch ids of a whole
    validation set); counts are accumulated over all of them before the statistics are taken.
    """
    acc = CodebookUsage(codebook_size)
    if isinstance(ids, Tensor):
        acc.update(ids)
    else:
        for t in ids:
            acc.update(t)
    return acc.compute()
