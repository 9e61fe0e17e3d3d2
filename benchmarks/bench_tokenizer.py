"""Phase-1 tokenizer training throughput on CPU (run by hand, not a test).

    .venv/bin/python benchmarks/bench_tokenizer.py [--resolution 256] [--batches 1 2]
        [--steps 2] [--threads 1] [--skip-paper] [--native-batch 32]

One training iteration of :class:`seqgan.train.tokenizer.TokenizerRun` -- exactly the trainer's
step: tokenizer forward + backward + Adam, the perceptual loss (alpha = 1, i.e. relu5_3 + logits
with gradient), the generator's adversarial term through the StyleGAN2 discriminator, then the
discriminator's own step with the R1 penalty -- is timed for

* the embedded default architecture (params.yaml: its tokenizer, its discriminator width, and its
  semantic network as the perceptual backbone, randomly initialised: the cost does not depend on
  the weights), and
* the paper architecture (configs/imagenet.yaml sizes: 54.5M-parameter tokenizer, 1024 x 256
  codebook, discriminator with 128 channels at full resolution). ImageNet VGG16 weights are not
  available offline, so its perceptual part is a RANDOMLY initialised ``VGG16Backbone`` (torchvision
  VGG16 without weights, LPIPS linear layers from the lpips package): the same network and cost as
  the real loss.

Both run at ``--resolution`` (default 256 px, the paper's size) and each batch size of
``--batches``; the results are printed side by side as images/s (best of ``--steps`` timed steps
after one untimed warm-up step). The embedded default is also timed at its own resolution and
training batch (``--native-batch``), with and without the GAN, which is what its training time
is made of. Synthetic shape images are used as input.

Compare runs made at the same ``--threads`` and machine load (printed): this machine is shared.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import torch
import torchvision
import yaml

from seqgan.artefacts.tensors import to_model_input
from seqgan.config import Params, validate_params
from seqgan.data.synthetic import generate_images
from seqgan.losses.perceptual import SemanticPerceptualLoss, VGG16Backbone
from seqgan.nets.common import count_parameters
from seqgan.nets.semantic import SemanticNet, semantic_pools
from seqgan.train.distributed import Distributed
from seqgan.train.runtime import seed_everything
from seqgan.train.tokenizer import TokenizerRun
from seqgan.train.tokenizer_losses import timing_perceptual_loss
from seqgan.train.tokenizer_model import prepare_tokenizer

REPO = Path(__file__).resolve().parents[1]
ALPHA = 1.0  # the costliest L_per^alpha: the logit term needs a backward pass through the head


def load_raw(name: str) -> dict:
    path = REPO / ("params.yaml" if name == "embedded" else f"configs/{name}.yaml")
    return yaml.safe_load(path.read_text())


def bench_params(raw: dict, resolution: int, batch: int, gan: bool) -> Params:
    """``raw`` at ``resolution`` and ``batch``, on CPU, GAN on from step 0 (or off)."""
    raw = copy.deepcopy(raw)
    raw["run"]["device"] = "cpu"
    raw["run"]["gpus_per_job"] = 1  # one process (batch sizes need not split over GPUs)
    raw["data"]["resolution"] = resolution
    raw["tokenizer"]["phase1"]["batch_size"] = batch
    raw["tokenizer"]["phase1"]["init_from"] = ""
    gan_params = raw["tokenizer"]["gan"]
    gan_params["start_step"] = 0
    if not gan:
        gan_params["weight"] = 0.0
    elif gan_params["weight"] == 0:
        gan_params["weight"] = 0.1
    return validate_params(raw, "benchmark params")


def perceptual_loss(params: Params, kind: str) -> SemanticPerceptualLoss:
    """A randomly initialised backbone of the right shape (see the module docstring)."""
    if kind == "embedded":
        net = SemanticNet(params.semantic.widths, params.data.synthetic.num_classes, semantic_pools(params))
        return timing_perceptual_loss(params, net, ALPHA, None)
    vgg = VGG16Backbone(torchvision.models.vgg16(weights=None))
    return timing_perceptual_loss(params, vgg, ALPHA, vgg.lpips_layer_weights())


def images_per_second(params: Params, backbone: str, steps: int) -> tuple[float, int]:
    """Best-of-``steps`` throughput of full training iterations; also the tokenizer's size."""
    seed_everything(0)
    device = torch.device("cpu")
    tokenizer = prepare_tokenizer(params, 1, None)
    per = perceptual_loss(params, backbone) if params.tokenizer.loss.perceptual_weight > 0 else None
    run = TokenizerRun(params, 1, tokenizer, per, Distributed.single(device))
    run.set_modes()
    batch = params.tokenizer.phase1.batch_size
    images, _ = generate_images(batch, params.data.resolution, 10, seed=0, split="bench")
    x = to_model_input(images, device)
    run.train_step(x, 0)  # warm-up (allocator, Adam state)
    best = float("inf")
    for step in range(1, steps + 1):
        start = time.perf_counter()
        run.train_step(x, step)
        best = min(best, time.perf_counter() - start)
    return batch / best, count_parameters(tokenizer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per setting (best of)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--native-batch", type=int, default=32)
    parser.add_argument("--skip-paper", action="store_true", help="only the embedded default")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}; load average before the "
        f"run {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )

    embedded = load_raw("embedded")
    native = embedded["data"]["resolution"]
    print(f"\nembedded default at its own {native} px, batch {args.native_batch} (images/s):")
    for gan in (False, True):
        p = bench_params(embedded, native, args.native_batch, gan)
        ips, n = images_per_second(p, "embedded", args.steps)
        step_s = args.native_batch / ips
        label = "on " if gan else "off"
        print(f"  GAN {label}: {ips:8.1f} images/s  ({step_s:.3f} s/step, {n / 1e6:.2f}M params)")

    setups = [("embedded default", embedded, "embedded")]
    if not args.skip_paper:
        setups.append(("paper (imagenet.yaml)", load_raw("imagenet"), "vgg16"))
    print(
        f"\nphase-1 training at {args.resolution} px, GAN + R1 + L_per^1 on (images/s; "
        "perceptual backbone: embedded SemanticNet / random-weight VGG16 + LPIPS):"
    )
    header = f"  {'batch':>5}" + "".join(f"  {name:>24}" for name, _, _ in setups)
    print(header)
    for batch in args.batches:
        cells = []
        for _, raw, backbone in setups:
            p = bench_params(raw, args.resolution, batch, gan=True)
            ips, n = images_per_second(p, backbone, args.steps)
            cells.append(f"{ips:9.3f} ({n / 1e6:5.2f}M params)")
        print(f"  {batch:>5}" + "".join(f"  {c:>24}" for c in cells), flush=True)
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
