"""CPU speed levers of the embedded default, each measured against the current path in one run.

    .venv/bin/python benchmarks/bench_cpu.py [--threads 1] [--repeats 3] [--steps 12] [--stages ar ...]

For every training stage of the main job, one lever at a time is timed beside the path the code
takes now, interleaved (current, lever, current, lever, ...) so that a shared, noisy machine slows
both alike; each reported time is the median step over all repeats, and the ratio is
lever / current (below 1: the lever is faster). Printed first: the CPU model and capability.

Levers (what the code does now is marked ``[current]`` in the output):

* tokenizer phase-1 step (alpha = 1, the costliest perceptual term; params.yaml's architecture and
  batch): NCHW vs channels_last memory format; fp32 vs bf16 autocast; eager vs ``torch.compile``
  (inductor; skipped with a note where it fails to compile);
* semantic network: its training step (BatchNorm) and the frozen forward with BatchNorm folded
  into the convolutions vs not folded;
* AR transformer step (params.yaml's base size and AR batch): dropout 0.1 vs 0.0 (with dropout
  the attention runs through SDPA's math path and draws Bernoulli masks); fp32 vs bf16 autocast.

``breakdown``: where a tokenizer step and an AR step go -- each part (encoder, quantizer, decoder,
the perceptual term's semantic-net passes, the optimizer; AR forward, backward, optimizer) timed on
its own with the real modules; its ratio is its share of the whole step.

The decision for each lever is the code's, not this script's: it reports ratios only. Thread
counts and concurrent jobs are compared by the reference run's per-rule benchmark files (Snakemake
runs two one-thread jobs at a time on a 2-core machine).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

import seqgan.train.tokenizer as tokenizer_training
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import validate_params
from seqgan.data.synthetic import generate_images
from seqgan.nets.semantic import SemanticNet, fold_batchnorm, semantic_pools
from seqgan.nets.transformer_factory import build_transformer
from seqgan.train import tokenizer_losses
from seqgan.train.distributed import Distributed
from seqgan.train.runtime import cpu_description, seed_everything
from seqgan.train.tokenizer_losses import timing_perceptual_loss
from seqgan.train.tokenizer_model import prepare_tokenizer
from seqgan.train.tokenizer_schedule import make_adam, phase_settings
from seqgan.train.transformer import make_optimizer, objective_loss

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def semantic_stand_in(params) -> SemanticNet:
    """The embedded semantic network's layout (widths, poolings) with random weights."""
    return SemanticNet(params.semantic.widths, params.data.synthetic.num_classes, semantic_pools(params))


def raw_params() -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"]["device"] = "cpu"
    return raw


def bf16() -> contextlib.AbstractContextManager[object]:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def fp32() -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext()


def median_step_ms(step: Callable[[], None], steps: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return times


def compare(
    name: str, builders: dict[str, Callable[[], Callable[[], None]]], current: str, repeats: int, steps: int
) -> None:
    """Interleave the variants ``repeats`` times; print each one's median and its ratio to ``current``."""
    times: dict[str, list[float]] = {label: [] for label in builders}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for label, build in builders.items():
            if label in failed:
                continue
            try:
                times[label] += median_step_ms(build(), steps)
            except Exception as exc:  # a lever that cannot run here (e.g. no compiler) is reported
                failed[label] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    base = statistics.median(times[current])
    print(f"\n{name}")
    for label in builders:
        if label in failed:
            print(f"  {label:<56} failed here ({failed[label]})")
            continue
        med = statistics.median(times[label])
        mark = " [current]" if label == current else ""
        print(f"  {label:<56} {med:8.1f} ms/step   ratio {med / base:5.2f}{mark}")


def tokenizer_builders(raw: dict) -> dict[str, Callable[[], Callable[[], None]]]:
    params = validate_params(raw, "params.yaml (bench)")
    batch = params.tokenizer.phase1.batch_size
    images, _ = generate_images(batch, params.data.resolution, params.data.synthetic.num_classes, seed=0, split="bench")

    def build(memory_format: torch.memory_format, autocast: Callable, compiled: bool) -> Callable[[], None]:
        seed_everything(0)
        tok = prepare_tokenizer(params, 1, None)
        net = fold_batchnorm(
            SemanticNet(params.semantic.widths, params.data.synthetic.num_classes, semantic_pools(params)).eval()
        )
        net.requires_grad_(False)
        perceptual = timing_perceptual_loss(params, net, 1.0, None)
        run = tokenizer_training.TokenizerRun(params, 1, tok, perceptual, Distributed.single(CPU))
        run.memory_format = memory_format
        run.tokenizer.to(memory_format=memory_format)
        run.perceptual.to(memory_format=memory_format)
        if compiled:
            run.trainable = torch.compile(run.trainable)
        run.set_modes()
        x = to_model_input(images, CPU).contiguous(memory_format=memory_format)
        counter = iter(range(10**9))

        def step() -> None:
            # the loop's forward and the loss assembly's discriminator passes both autocast
            modules = (tokenizer_training, tokenizer_losses)
            originals = [m.autocast_context for m in modules]
            for m in modules:
                m.autocast_context = lambda device: autocast()
            try:
                run.train_step(x, next(counter))
            finally:
                for m, original in zip(modules, originals, strict=True):
                    m.autocast_context = original

        return step

    return {
        "NCHW, fp32": lambda: build(torch.contiguous_format, fp32, False),
        "channels_last, fp32": lambda: build(torch.channels_last, fp32, False),
        "channels_last, bf16 autocast": lambda: build(torch.channels_last, bf16, False),
        "channels_last, fp32, torch.compile": lambda: build(torch.channels_last, fp32, True),
    }


def tokenizer_breakdown(raw: dict) -> dict[str, Callable[[], Callable[[], None]]]:
    """Where a phase-1 step (alpha 1) goes: each part forward + backward on its own, with the real
    modules and batch. The parts sum to about one train_step (reported beside them)."""
    params = validate_params(raw, "params.yaml (bench)")
    images, _ = generate_images(
        params.tokenizer.phase1.batch_size,
        params.data.resolution,
        params.data.synthetic.num_classes,
        seed=0,
        split="bench",
    )
    seed_everything(0)
    tok = prepare_tokenizer(params, 1, None).to(memory_format=torch.channels_last).train()
    net = fold_batchnorm(
        SemanticNet(params.semantic.widths, params.data.synthetic.num_classes, semantic_pools(params)).eval()
    )
    net.requires_grad_(False)
    perceptual = timing_perceptual_loss(params, net, 1.0, None)
    perceptual.to(memory_format=torch.channels_last)
    x = to_model_input(images, CPU).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        z = tok.encoder(x)
        z_q = tok.quantizer(z)[0]
        recon = tok.decoder(z_q)
    opt = make_adam(list(tok.parameters()), phase_settings(params, 1))

    def encoder() -> None:
        tok.encoder(x).sum().backward()

    def quantizer() -> None:
        _, _, losses, _ = tok.quantizer(z.detach().requires_grad_())
        sum(losses.values()).backward()

    def decoder() -> None:
        tok.decoder(z_q.detach()).sum().backward()

    def perceptual_term() -> None:
        perceptual(recon.detach().requires_grad_(), x)["total"].backward()

    def optimizer() -> None:
        for p in tok.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()

    whole = tokenizer_builders(raw)["channels_last, fp32"]
    return {
        "whole train_step [current]": whole,
        "encoder forward + backward": lambda: encoder,
        "quantizer (distances, losses) + backward": lambda: quantizer,
        "decoder forward + backward": lambda: decoder,
        "perceptual term (semantic net: target, recon + backward)": lambda: perceptual_term,
        "Adam step": lambda: optimizer,
    }


def ar_breakdown(raw: dict) -> dict[str, Callable[[], Callable[[], None]]]:
    """Where an AR step goes: forward (loss), backward, AdamW step, each timed on its own."""
    params = validate_params(raw, "params.yaml (bench)")
    arch = params.tokenizer.architecture
    side = params.data.resolution // 2 ** (len(arch.channel_mult) - 1)
    ids = torch.randint(
        0,
        arch.codebook_size,
        (params.transformer.ar.batch_size, side * side),
        generator=torch.Generator().manual_seed(0),
    )
    torch.manual_seed(0)
    model = build_transformer(params, "base", "ar")
    opt = make_optimizer(model, params)

    def forward() -> None:
        with torch.no_grad():
            objective_loss(model, ids, None, None)

    def forward_backward() -> None:
        objective_loss(model, ids, None, None).backward()

    def optimizer() -> None:
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()

    whole = next(iter(ar_builders(raw).values()))
    return {
        "whole step [current]": whole,
        "forward (no grad)": lambda: forward,
        "forward + backward": lambda: forward_backward,
        "AdamW step": lambda: optimizer,
    }


def semantic_builders(raw: dict) -> tuple[dict, dict]:
    params = validate_params(raw, "params.yaml (bench)")
    sem = params.semantic
    images, labels = generate_images(
        sem.batch_size, params.data.resolution, params.data.synthetic.num_classes, seed=0, split="bench"
    )
    x = to_model_input(images, CPU)
    y = torch.from_numpy(labels).long()

    def train_step() -> Callable[[], None]:
        torch.manual_seed(0)
        net = semantic_stand_in(params).train()
        opt = torch.optim.AdamW(net.parameters(), lr=sem.lr)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    def frozen_forward(folded: bool) -> Callable[[], None]:
        torch.manual_seed(0)
        net = semantic_stand_in(params).eval().requires_grad_(False)
        if folded:
            fold_batchnorm(net)

        def step() -> None:
            with torch.no_grad():
                net.features(x)

        return step

    return (
        {"training step (BatchNorm)": train_step},
        {
            "frozen forward, BatchNorm kept": lambda: frozen_forward(False),
            "frozen forward, BatchNorm folded": lambda: frozen_forward(True),
        },
    )


def ar_builders(raw: dict) -> dict[str, Callable[[], Callable[[], None]]]:
    base = validate_params(raw, "params.yaml (bench)")
    arch = base.tokenizer.architecture
    side = base.data.resolution // 2 ** (len(arch.channel_mult) - 1)
    ids = torch.randint(
        0, arch.codebook_size, (base.transformer.ar.batch_size, side * side), generator=torch.Generator().manual_seed(0)
    )

    def build(dropout: float, autocast: Callable, compiled: bool = False) -> Callable[[], None]:
        changed = copy.deepcopy(raw)
        changed["transformer"]["sizes"]["base"]["dropout"] = dropout
        params = validate_params(changed, "params.yaml (bench)")
        torch.manual_seed(0)
        model = build_transformer(params, "base", "ar")
        opt = make_optimizer(model, params)
        forward = torch.compile(model) if compiled else model

        def step() -> None:
            with autocast():
                loss = objective_loss(forward, ids, None, None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    current = base.transformer.sizes.base.dropout
    return {
        f"dropout {current}, fp32": lambda: build(current, fp32),
        f"dropout {0.1 if current == 0 else 0.0}, fp32": lambda: build(0.1 if current == 0 else 0.0, fp32),
        f"dropout {current}, bf16 autocast": lambda: build(current, bf16),
        f"dropout {current}, fp32, torch.compile": lambda: build(current, fp32, True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=["tokenizer", "semantic", "ar", "breakdown"],
        default=["tokenizer", "semantic", "ar", "breakdown"],
        help="which stages to measure",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{cpu_description()}; torch {torch.__version__}; {args.threads} thread(s); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    raw = raw_params()
    if "tokenizer" in args.stages:
        compare(
            "tokenizer phase-1 step (alpha 1, params.yaml architecture and batch)",
            tokenizer_builders(raw),
            "channels_last, fp32",
            args.repeats,
            args.steps,
        )
    if "semantic" in args.stages:
        train, frozen = semantic_builders(raw)
        compare("semantic network training step", train, "training step (BatchNorm)", args.repeats, args.steps)
        compare(
            "semantic network frozen forward (perceptual target, FID features)",
            frozen,
            "frozen forward, BatchNorm folded",
            args.repeats,
            args.steps,
        )
    if "ar" in args.stages:
        ar = ar_builders(raw)
        compare(
            "AR transformer step (params.yaml base size and AR batch)", ar, next(iter(ar)), args.repeats, args.steps
        )
    if "breakdown" in args.stages:
        parts = tokenizer_breakdown(raw)
        compare(
            "where a tokenizer phase-1 step goes (ratio: share of the whole step)",
            parts,
            next(iter(parts)),
            args.repeats,
            args.steps,
        )
        parts = ar_breakdown(raw)
        compare(
            "where an AR step goes (ratio: share of the whole step)", parts, next(iter(parts)), args.repeats, args.steps
        )


if __name__ == "__main__":
    main()
