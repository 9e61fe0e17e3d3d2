"""The embedded semantic network's recipe, measured: a learning-rate sweep and a seed / thread check.

    .venv/bin/python benchmarks/semantic_recipe.py sweep --data data/shapes32 \\
        --lrs 0.001 0.002 0.004 0.008 0.016 0.032 [--seed 0] [--threads 1] [--out FILE.csv]
    .venv/bin/python benchmarks/semantic_recipe.py seeds --data data/shapes32 \\
        --seeds 0 1 2 3 4 --threads 1 2 [--out FILE.csv]

Both train :func:`seqgan.train.classifier.train_semantic_classifier` with params.yaml's
``semantic`` section, changing only the swept value (the learning rate, or the seed and the
torch thread count), in a temporary directory, and print one row per run: final validation
accuracy and loss, the first step at which validation accuracy reached 0.5 (``stall``: never),
whether the run ended at chance (``diverged``: val loss within 1% of ln(num_classes)), and wall
seconds. ``--data`` is a prepared data directory with ``train/`` and ``val/`` (the workflow's
``data/<data.name>``; ``snakemake data/shapes32/val/manifest.json --cores 2`` makes it).

``--out`` writes the rows as CSV (docs/embedded-default.md's recipe table is generated from
``results/reference/semantic_sweep.csv`` and ``semantic_seeds.csv``). Wall seconds are for the
machine and load at hand (printed with the CPU model): run nothing else beside it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from seqgan.config import load_params
from seqgan.train.classifier import train_semantic_classifier
from seqgan.train.runtime import cpu_description

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (
    "lr",
    "iterations",
    "seed",
    "threads",
    "val_accuracy",
    "val_loss",
    "first_step_above_half",
    "diverged",
    "wall_seconds",
)


def first_step_above(curve: Path, threshold: float) -> int | None:
    """The first validation step whose accuracy is at least ``threshold`` (None: never)."""
    with curve.open() as fh:
        for row in csv.DictReader(fh):
            if float(row["val_accuracy"]) >= threshold:
                return int(row["step"])
    return None


def train_once(
    data: Path, params_file: Path, lr: float, seed: int, threads: int, iterations: int | None
) -> dict[str, Any]:
    """One training run of the params' recipe with ``lr``, ``seed``, ``threads`` (and, when
    given, ``iterations``) changed."""
    sem = load_params(params_file).semantic
    if iterations is not None:
        sem = dataclasses.replace(sem, iterations=iterations, eval_every=min(sem.eval_every, max(1, iterations // 8)))
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="semantic-recipe-") as tmp:
        start = time.perf_counter()
        metrics = train_semantic_classifier(
            data / "train",
            data / "val",
            Path(tmp) / "net.safetensors",
            widths=sem.widths,
            iterations=sem.iterations,
            batch_size=sem.batch_size,
            lr=lr,
            weight_decay=sem.weight_decay,
            warmup_steps=sem.warmup_steps,
            hflip=sem.hflip,
            seed=seed,
            device="cpu",
            checkpoint_every=sem.iterations,
            eval_every=sem.eval_every,
            resume_path=Path(tmp) / "resume.pt",
            log_dir=Path(tmp) / "logs",
            progress=False,
            min_val_accuracy=0.0,  # measured here, not gated
        )
        wall = time.perf_counter() - start
        first = first_step_above(Path(tmp) / "logs" / "val.csv", 0.5)
    num_classes = json.loads((data / "train" / "manifest.json").read_text())["num_classes"]
    diverged = abs(metrics["val_loss"] - math.log(num_classes)) < 0.01 * math.log(num_classes)
    return {
        "lr": lr,
        "iterations": sem.iterations,
        "seed": seed,
        "threads": threads,
        "val_accuracy": metrics["val_accuracy"],
        "val_loss": round(metrics["val_loss"], 5),
        "first_step_above_half": first if first is not None else "stall",
        "diverged": diverged,
        "wall_seconds": round(wall, 1),
    }


def print_row(row: dict[str, Any]) -> None:
    print("  ".join(f"{k}={row[k]}" for k in COLUMNS), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("sweep", "seeds"):
        p = sub.add_parser(name)
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--params", type=Path, default=REPO / "params.yaml")
        p.add_argument("--out", type=Path)
        p.add_argument("--iterations", type=int, help="override semantic.iterations (exploration only)")
    sub.choices["sweep"].add_argument("--lrs", type=float, nargs="+", required=True)
    sub.choices["sweep"].add_argument("--seed", type=int, default=0)
    sub.choices["sweep"].add_argument("--threads", type=int, default=1)
    sub.choices["seeds"].add_argument("--seeds", type=int, nargs="+", required=True)
    sub.choices["seeds"].add_argument("--threads", type=int, nargs="+", required=True)
    args = parser.parse_args()
    print(f"{cpu_description()}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}")
    if args.mode == "sweep":
        plan = [(lr, args.seed, args.threads) for lr in args.lrs]
    else:
        lr = load_params(args.params).semantic.lr
        plan = [(lr, seed, threads) for threads in args.threads for seed in args.seeds]
    rows = []
    for lr, seed, threads in plan:
        rows.append(train_once(args.data, args.params, lr, seed, threads, args.iterations))
        print_row(rows[-1])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
