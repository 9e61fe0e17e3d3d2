"""The measurement a trained tokenizer's sidecar carries: L1, PSNR and codebook usage on a fixed
set of training images.

It exists so that the trainer can record, without the evaluation stage's networks (no FID
features, no classifier), how well the tokenizer it just wrote reconstructs and how much of its
codebook it uses; ``benchmarks/tokenizer_recipe.py`` measures its trials with the same function.
The set is the first :data:`USAGE_EVAL_IMAGES` images of the split the trainer is given (the train
split: validation metrics belong to the evaluation stage, :mod:`seqgan.evaluate.reconstruction`).

PSNR is the evaluation stage's definition (:mod:`seqgan.losses.psnr`): on the uint8 images
(``to_uint8`` of the reconstruction against the stored uint8 originals), so the ``psnr`` of a
sidecar and the ``psnr`` of a metrics file are the same quantity. L1 is measured on the [-1, 1]
model scale (the training loss's scale).
"""

from __future__ import annotations

import numpy as np
import torch

from seqgan.artefacts.images import ImageStore
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.losses.psnr import mean_psnr, psnr, psnr_definition
from seqgan.nets.quantizer import CodebookUsage
from seqgan.nets.vqgan import VQTokenizer

__all__ = ["USAGE_EVAL_IMAGES", "evaluate_reconstruction", "evaluation_definition"]

# Size of the fixed evaluation set (the first images of the train split) on which the sidecar's
# codebook usage and reconstruction metrics are measured: 1024 images x 64 positions (embedded) or
# x 256 (paper) are far more positions than codes, so "fraction used" is not limited by the
# sample. An algorithmic constant, like the classifier's STATS_MAX_IMAGES.
USAGE_EVAL_IMAGES = 1024


@torch.no_grad()
def evaluate_reconstruction(
    tokenizer: VQTokenizer, store: ImageStore, count: int, batch_size: int, device: torch.device
) -> dict[str, float]:
    """L1, PSNR and codebook usage over the first ``count`` images of ``store`` (eval mode).

    Reconstruction = ``decode_ids`` of the ``encode`` ids. L1 per image on the [-1, 1] scale of the
    clamped reconstruction, averaged over images. PSNR: :func:`seqgan.losses.psnr.mean_psnr` of the
    per-image PSNR of ``to_uint8(reconstruction)`` against the stored uint8 images. Usage = fraction
    of the K codes used at least once and exp(entropy) of the code histogram, over all positions of
    all images.
    """
    modes = [(m, m.training) for m in tokenizer.modules()]  # restored exactly (phase 2 mixes modes)
    tokenizer.eval()
    usage = CodebookUsage(tokenizer.quantizer.codebook_size)
    n = min(count, len(store))
    l1_sum = 0.0
    psnr_values: list[np.ndarray] = []
    for start in range(0, n, batch_size):
        images = np.array(store.images[start : min(start + batch_size, n)])
        x = to_model_input(images, device)
        # fp32 (TF32 on CUDA), as the evaluation stage: under bf16 some codes flip (README)
        _, ids, _ = tokenizer.encode(x)
        recon = tokenizer.decode_ids(ids).float().clamp(-1.0, 1.0)
        usage.update(ids)
        l1_sum += float((recon - x).abs().mean(dim=(1, 2, 3)).sum())
        psnr_values.append(psnr(to_uint8(recon), images))
    for module, mode in modes:
        module.training = mode
    fraction, perplexity = usage.compute()
    height, width = (int(size) for size in store.images.shape[1:3])
    return {
        "l1": l1_sum / n,
        "psnr": mean_psnr(np.concatenate(psnr_values), height, width),
        "codebook_fraction_used": fraction,
        "codebook_perplexity": perplexity,
        "count": n,
    }


def evaluation_definition(count: int, height: int, width: int) -> str:
    """How :func:`evaluate_reconstruction` measured ``count`` images of ``height`` x ``width``."""
    return (
        f"first {count} images of the training split, eval mode, decode_ids(encode ids); "
        "L1 on [-1, 1] per image, averaged; PSNR on the uint8 images (to_uint8 of the "
        f"reconstruction against the stored images): {psnr_definition(height, width)}; "
        "codebook fraction used and exp(entropy) of the code histogram"
    )
