"""How far bf16 autocast moves each inference path, on a finished workspace's trained models (by hand).

The evidence behind which paths run in bf16 on CUDA (sampling and decoding) and which stay fp32
(token encoding, evaluation features). The paths run under CPU bf16 autocast, which rounds to the
same format as CUDA's (the kernels differ, the precision does not):

* encoding: fraction of code ids that equal the fp32 ones, and reconstruction PSNR both ways;
* decoding the fp32 codes: uint8 pixel differences;
* the AR transformer's teacher-forced next-token distributions: total variation, and the NLL;
* the FID feature network: relative feature error and the FID of the decoded images against the
  train split in both precisions.

Usage: python benchmarks/bf16_agreement.py WORKSPACE [--alpha 1.0] [--images 500]
(WORKSPACE: a checkout where the embedded default's main job has run, e.g. a reference-run clone).
Output: results/evidence/bf16_agreement.txt is this script's stdout, kept by hand.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from seqgan.artefacts.images import open_image_store
from seqgan.evaluate.fid import features_of_images, frechet_distance, reference_statistics, semantic_feature_network
from seqgan.losses.psnr import mean_psnr, psnr
from seqgan.models import load_tokenizer, load_transformer
from seqgan.nets.semantic import load_semantic_net
from seqgan.train.runtime import cpu_description


def bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def reported_psnr(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """The evaluation stage's PSNR (mean over images, capped) of uint8 (B, H, W, 3) arrays."""
    return mean_psnr(psnr(images, reconstructions), images.shape[1], images.shape[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--alpha", default="1.0")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--dataset", default="shapes32")
    args = parser.parse_args()
    w = args.workspace
    torch.manual_seed(0)
    tok = load_tokenizer(w / f"models/tokenizer/phase1/alpha{args.alpha}/seed0")
    val = np.array(open_image_store(w / f"data/{args.dataset}/val").images[: args.images])
    print(f"{w}: tokenizer alpha {args.alpha}, {len(val)} val images; CPU bf16 autocast vs fp32; {cpu_description()}")
    with torch.no_grad():
        ids32 = tok.encode(val)
        with bf16():
            ids16 = tok.encode(val)
        rec32 = tok.decode(ids32)
        with bf16():
            dec16 = tok.decode(ids32)
            rec16 = tok.decode(tok.encode(val))
        print(f"encoding: {np.mean(ids32 == ids16):.4f} of the code ids equal fp32's")
        print(
            f"reconstruction PSNR: fp32 {reported_psnr(val, rec32):.4f} dB, "
            f"bf16 decode {reported_psnr(val, dec16):.4f} dB, bf16 encode + decode {reported_psnr(val, rec16):.4f} dB"
        )
        d = np.abs(rec32.astype(int) - dec16.astype(int))
        print(f"decoding fp32 codes: pixels differ by {d.mean():.3f} levels on average, {d.max()} at most")

        model, _ = load_transformer(w / f"models/transformer/ar/base/alpha{args.alpha}/seed0")
        x = torch.as_tensor(ids32.reshape(len(ids32), -1)[:200])
        lp32 = model(x, None).float().log_softmax(-1)
        with bf16():
            lp16 = model(x, None).float().log_softmax(-1)
        tv = 0.5 * (lp32.exp() - lp16.exp()).abs().sum(-1)
        nll32 = float(-lp32[:, :-1].gather(-1, x[:, 1:, None]).mean())
        nll16 = float(-lp16[:, :-1].gather(-1, x[:, 1:, None]).mean())
        print(
            f"AR next-token distributions ({len(x)} images): total variation {float(tv.mean()):.4f} mean, "
            f"{float(tv.max()):.4f} max; teacher-forced NLL {nll32:.4f} vs {nll16:.4f} nats/token"
        )

        net = semantic_feature_network(load_semantic_net(w / "models/semantic/net.safetensors"))
        f32 = features_of_images(rec32, net)
        with bf16():
            f16 = features_of_images(rec32, net)
        worst = np.abs(f32 - f16).max() / np.abs(f32).max()
        print(f"FID features: largest difference {worst:.4f} of the largest feature")
        train = np.array(open_image_store(w / f"data/{args.dataset}/train").images[:2000])
        mu, sigma = reference_statistics(features_of_images(train, net))
        fid32 = frechet_distance(*reference_statistics(f32), mu, sigma)
        fid16 = frechet_distance(*reference_statistics(f16), mu, sigma)
        print(
            f"semantic FID of the reconstructions vs 2000 train images: fp32 {fid32:.4f}, bf16 features {fid16:.4f} "
            f"({100 * (fid16 - fid32) / fid32:+.2f} %)"
        )


if __name__ == "__main__":
    main()
