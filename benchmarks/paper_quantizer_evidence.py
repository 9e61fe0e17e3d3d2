"""Evidence for two paper-configuration choices the paper is silent on (run by hand, CPU is enough).

With a paper configuration's tokenizer at its resolution, initialised as training initialises it,
one forward pass over a few images measures

* the entropy regulariser's soft assignment p[i, k] = softmax_k(-D[i, k] / T) at T = 1.0 and
  T = 0.01: the mean per-vector entropy H(p_i) and the entropy of the batch average H(p_bar), both
  as fractions of log K. When H(p_i) is ~1 (every vector spread over all codes), p_bar is uniform
  whatever the assignment, so the regulariser H(p_bar) is flat: it cannot raise usage;
* the spread of the distances D across codes, in units of T (how peaked the softmax can be);
* the logit term's size against L1: the raw MSE of VGG16's logits between the images and their
  reconstructions, beside the L1 of the same reconstructions (needs the VGG16 weights; without
  them the script says so instead of guessing).

Usage: python benchmarks/paper_quantizer_evidence.py [configs/imagenet.yaml] [--images 4]
The images are the embedded synthetic shapes rendered at the configuration's resolution (the
paper's data is not here): at initialisation the encoder has seen no data, so the question is
about the network's scale, which any natural-looking input answers.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import load_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.pretrained import MissingWeightsError, require_weights
from seqgan.train.runtime import cpu_description, seed_everything


def soft_assignment_entropy(d: torch.Tensor, temperature: float) -> tuple[float, float]:
    """(mean H(p_i), H(p_bar)) as fractions of log K for distances ``d`` (N, K)."""
    k = d.shape[1]
    p = torch.softmax(-d / temperature, dim=1)
    per_vector = -(p * torch.log(p.clamp_min(1e-30))).sum(dim=1).mean()
    p_bar = p.mean(dim=0)
    batch = -(p_bar * torch.log(p_bar.clamp_min(1e-30))).sum()
    return float(per_vector) / math.log(k), float(batch) / math.log(k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("params", nargs="?", default="configs/imagenet.yaml")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    params = load_params(args.params)
    res = params.data.resolution
    print(
        f"{args.params}: {res} px, codebook {params.tokenizer.architecture.codebook_size}, "
        f"configured entropy_temperature {params.tokenizer.quantizer.entropy_temperature}, "
        f"logit_weight {params.tokenizer.loss.logit_weight}; {args.images} images; {cpu_description()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic_split(
            Path(tmp) / "s", num_images=args.images, resolution=res, num_classes=10, seed=1234, split="val"
        )
        images = np.array(open_image_store(Path(tmp) / "s").images[: args.images])
    seed_everything(args.seed)
    tokenizer = build_tokenizer(params, 1).eval()
    x = to_model_input(images, torch.device("cpu"))
    with torch.no_grad():
        z_e = tokenizer.encoder(x)
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        d = tokenizer.quantizer.distances(flat)  # (N, K) squared distances
        recon, _, _ = tokenizer(x)
    spread = (d.max(dim=1).values - d.min(dim=1).values).mean()
    print(
        f"distances to the codes: mean {float(d.mean()):.4g}, mean per-vector spread (max - min) {float(spread):.4g}; "
        f"{flat.shape[0]} vectors"
    )
    for temperature in (1.0, 0.01):
        per_vector, batch = soft_assignment_entropy(d, temperature)
        print(
            f"T = {temperature}: spread / T = {float(spread) / temperature:.4g}; mean H(p_i) = {per_vector:.4f} log K, "
            f"H(p_bar) = {batch:.4f} log K"
        )
    l1 = float((recon - x).abs().mean())
    try:
        require_weights("vgg16")
    except MissingWeightsError:
        print(
            f"L1 of the initial reconstructions {l1:.4g}; logit term not measured: the VGG16 weights are absent "
            "(`seqgan fetch-weights --only vgg16` on a machine with network)"
        )
        return
    from seqgan.nets.pretrained import load_vgg16_imagenet

    vgg = load_vgg16_imagenet().eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def logits(images: torch.Tensor) -> torch.Tensor:
        rgb = (images.clamp(-1, 1) + 1) / 2
        return vgg(torch.nn.functional.interpolate((rgb - mean) / std, size=224, mode="bilinear", antialias=True))

    with torch.no_grad():
        mse = float(((logits(recon) - logits(x)) ** 2).mean())
    print(f"L1 of the initial reconstructions {l1:.4g}; raw logit MSE {mse:.4g} ({mse / l1:.3g} x L1)")


if __name__ == "__main__":
    main()
