"""Sampling and training throughput of the generative transformers (run by hand, not a test).

    .venv/bin/python benchmarks/bench_sampling.py [--layers 4] [--dim 256] [--heads 4]
        [--batch 8] [--seq-len 256] [--vocab 1024] [--classes 10] [--threads 1] [--repeats 1]

On one model size, in one run (wall-clock seconds, best of ``--repeats``):

1. AR sampling of ``seq_len`` tokens with the KV cache and with full recomputation (the uncached
   path re-runs the whole prefix at every step: O(N^2) token forwards against O(N));
2. NAR MaskGIT sampling with 12 steps against AR sampling with ``seq_len`` cached steps (NAR runs
   12 full passes over N tokens, 12 N token forwards, against N cached ones: on a compute-bound CPU
   it is not faster; its advantage is 12 sequential steps instead of N on a parallel device);
3. training tokens/s (forward + backward + AdamW step) for the AR and the NAR objective.

One-token decode steps are tiny (B x d matrices): on a busy 2-core machine a second thread mostly
waits for the first (measured here: 2 ms per cached step with 1 thread, 11-38 ms with 2 threads
while other jobs ran), so compare runs made at the same ``--threads`` and load (printed).

It also checks that the cached and uncached AR paths drew the same tokens. The paper's sizes
(24 blocks, d = 768) are far beyond a CPU; the ratios, not the absolute times, carry over.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from seqgan.nets.transformer import (
    GenerativeTransformer,
    TransformerConfig,
    ar_loss,
    count_parameters,
    nar_loss,
)
from seqgan.sample.ar import sample_ar
from seqgan.sample.nar import sample_nar


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Smallest wall-clock time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def training_tokens_per_s(
    model: GenerativeTransformer, loss_fn: Callable[[], torch.Tensor], tokens: int, steps: int
) -> float:
    """Tokens per second of forward + backward + optimiser step (one warm-up step not timed)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return tokens * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--nar-steps", type=int, default=12)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def build(causal: bool) -> GenerativeTransformer:
        torch.manual_seed(0)
        cfg = TransformerConfig(
            vocab_size=args.vocab,
            seq_len=args.seq_len,
            num_classes=args.classes,
            layers=args.layers,
            heads=args.heads,
            dim=args.dim,
            mlp_dim=4 * args.dim,
            dropout=0.1,
            causal=causal,
        )
        return GenerativeTransformer(cfg)

    ar, nar = build(True), build(False)
    b, n = args.batch, args.seq_len
    labels = torch.arange(b) % args.classes if args.classes else None
    print(
        f"model: {args.layers} layers, d={args.dim}, heads={args.heads}, MLP {4 * args.dim}, "
        f"K={args.vocab}, "
        f"N={n}, {args.classes} classes; {count_parameters(ar) / 1e6:.2f}M parameters; batch {b}; "
        f"{torch.get_num_threads()} threads; torch {torch.__version__}"
    )
    # other processes on the cores make multi-threaded tiny ops wait on each other: say so
    print(f"load average before the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    t_cached, ids_cached = best_time(
        lambda: sample_ar(ar, b, labels, 1.0, 0, 0.98, torch.Generator().manual_seed(0), use_cache=True),
        args.repeats,
    )
    t_full, ids_full = best_time(
        lambda: sample_ar(ar, b, labels, 1.0, 0, 0.98, torch.Generator().manual_seed(0), use_cache=False),
        args.repeats,
    )
    t_nar, _ = best_time(
        lambda: sample_nar(nar, b, labels, args.nar_steps, 0.65, "cosine", torch.Generator().manual_seed(0)),
        args.repeats,
    )
    same = torch.equal(ids_cached, ids_full)

    tokens = b * n
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, args.vocab, (b, n), generator=g)
    ar_tps = training_tokens_per_s(ar, lambda: ar_loss(ar, ids, labels), tokens, args.train_steps)
    nar_tps = training_tokens_per_s(nar, lambda: nar_loss(nar, ids, labels, g), tokens, args.train_steps)

    rows = [
        ("AR sampling, KV cache", f"{t_cached:8.2f} s", f"{tokens / t_cached:8.0f} tok/s", ""),
        (
            "AR sampling, full recompute",
            f"{t_full:8.2f} s",
            f"{tokens / t_full:8.0f} tok/s",
            f"cache speed-up {t_full / t_cached:5.1f}x (identical ids: {same})",
        ),
        (
            f"NAR sampling, {args.nar_steps} steps",
            f"{t_nar:8.2f} s",
            f"{tokens / t_nar:8.0f} tok/s",
            f"time / cached AR {t_nar / t_cached:4.2f}, / uncached AR {t_nar / t_full:4.2f}",
        ),
        ("AR training (fwd+bwd+AdamW)", "", f"{ar_tps:8.0f} tok/s", ""),
        (
            "NAR training (fwd+bwd+AdamW)",
            "",
            f"{nar_tps:8.0f} tok/s",
            f"NAR/AR {nar_tps / ar_tps:4.2f}",
        ),
    ]
    for name, t, rate, note in rows:
        print(f"{name:32s} {t:>10s} {rate:>16s}   {note}")


if __name__ == "__main__":
    main()
