"""The embedded tokenizer's recipe, measured: train phase-1 variants of params.yaml and compare them.

    .venv/bin/python benchmarks/tokenizer_recipe.py --data data/shapes32 \\
        --semantic models/semantic/net.safetensors --out results/reference/tokenizer_recipe.csv \\
        'default={}' \\
        'lr 1e-3={"tokenizer.phase1.lr": 0.001}' \\
        'width 32, control={"tokenizer.architecture.base_channels": 32, "variant": "control"}'

Each positional argument is ``NAME=JSON``: dotted params.yaml keys and their values for that trial
(plus the optional pseudo-keys ``variant``: ``alpha<value>`` (default: alpha1.0, the costliest
perceptual term) or ``control`` (no perceptual loss), and ``seed``). Every trial trains
:func:`seqgan.train.tokenizer.train_tokenizer` exactly as the workflow does (one torch thread, the
``--threads`` value), in a temporary directory, then measures on the first 1000 validation
images: PSNR, L1, codebook usage and perplexity (``evaluate_reconstruction``), the ground-truth
instrument of synthetic data (mask IoU, shape colour and background delta E in CIELAB,
:func:`seqgan.evaluate.ground_truth.instrument_metrics`), and the wall seconds per step. One CSV
row per trial (appended, so two invocations can run side by side on two cores); ``--grid`` writes
the first 16 validation images and every trial's reconstructions as one PNG (rows in trial order) to look at colour.

Wall seconds are for the machine and load at hand (printed with the CPU model).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import validate_params
from seqgan.evaluate.ground_truth import instrument_metrics
from seqgan.evaluate.tokenizer_job import split_truth
from seqgan.train.runtime import cpu_description
from seqgan.train.tokenizer import train_tokenizer
from seqgan.train.tokenizer_eval import evaluate_reconstruction
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint

REPO = Path(__file__).resolve().parents[1]
COLUMNS = (
    "trial",
    "variant",
    "seed",
    "changes",
    "iterations",
    "batch_size",
    "psnr",
    "l1",
    "codebook_usage",
    "codebook_perplexity",
    "mask_iou",
    "colour_delta_e",
    "background_delta_e",
    "seconds_per_step",
    "wall_seconds",
    "threads",
    "cpu",
)
EVAL_IMAGES = 1000
GRID_IMAGES = 16


def append_csv_rows(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to a CSV (header first when the file is new): runs can add to one record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def parse_trial(text: str) -> tuple[str, dict[str, Any]]:
    if "=" not in text:
        raise SystemExit(f"error: trial {text!r} is not NAME=JSON")
    name, changes = text.split("=", 1)
    try:
        parsed = json.loads(changes)
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: trial {name!r}: {err}") from None
    if not isinstance(parsed, dict):
        raise SystemExit(f"error: trial {name!r}: JSON must be an object of dotted keys")
    return name.strip(), parsed


def trial_params(raw: dict[str, Any], changes: dict[str, Any]):
    changed = copy.deepcopy(raw)
    changed["run"]["device"] = "cpu"
    for key, value in changes.items():
        if key in ("variant", "seed"):
            continue
        node = changed
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        if leaf not in node:
            raise SystemExit(f"error: {key}: no such params.yaml key")
        node[leaf] = value
    if "seed" in changes:
        changed["run"]["seed"] = int(changes["seed"])
    return validate_params(changed, "params.yaml (trial)")


def _rounded(value: float | None, digits: int) -> float | str:
    return "" if value is None else round(float(value), digits)


def reconstruct(tokenizer: torch.nn.Module, images: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """(N, R, R, 3) uint8 reconstructions (encode, quantise, decode) of uint8 ``images``, eval mode."""
    tokenizer.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            recon = tokenizer(to_model_input(images[start : start + batch_size], torch.device("cpu")))[0]
            out.append(((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def run_trial(
    name: str, changes: dict[str, Any], raw: dict[str, Any], data: Path, semantic: Path, threads: int
) -> tuple[dict[str, Any], np.ndarray]:
    params = trial_params(raw, changes)
    variant = changes.get("variant", "alpha1.0")
    perceptual = variant != "control"
    alpha = 0.0 if variant == "control" else float(variant.removeprefix("alpha"))
    torch.set_num_threads(threads)
    val = open_image_store(data / "val")
    with tempfile.TemporaryDirectory(prefix="tokenizer-recipe-") as tmp:
        out = Path(tmp) / "tokenizer.safetensors"
        start = time.perf_counter()
        metrics = train_tokenizer(
            params,
            phase=1,
            alpha=alpha,
            perceptual=perceptual,
            train_dir=data / "train",
            val_dir=data / "val",
            semantic_weights=semantic if perceptual else None,
            init_weights=None,
            out_path=out,
            resume_path=Path(tmp) / "resume.pt",
            log_dir=Path(tmp) / "logs",
            progress=False,
        )
        wall = time.perf_counter() - start
        tokenizer, _ = load_tokenizer_checkpoint(out, params)
    evaluation = evaluate_reconstruction(tokenizer, val, EVAL_IMAGES, 100, torch.device("cpu"))
    count = min(EVAL_IMAGES, len(val))
    recon = reconstruct(tokenizer, np.array(val.images[:count]))
    truth = split_truth(val)
    instrument = instrument_metrics(recon, truth) if truth is not None else {}
    phase1 = params.tokenizer.phase1
    row = {
        "trial": name,
        "variant": variant,
        "seed": params.run.seed,
        "changes": json.dumps(changes),
        "iterations": phase1.iterations,
        "batch_size": phase1.batch_size,
        "psnr": round(evaluation["psnr"], 3),
        "l1": round(evaluation["l1"], 4),
        "codebook_usage": round(evaluation["codebook_fraction_used"], 4),
        "codebook_perplexity": round(evaluation["codebook_perplexity"], 1),
        "mask_iou": _rounded(instrument.get("mask_iou"), 4),
        "colour_delta_e": _rounded(instrument.get("shape_colour_delta_e"), 2),
        "background_delta_e": _rounded(instrument.get("background_delta_e"), 2),
        "seconds_per_step": round(metrics["seconds_per_step"], 4),
        "wall_seconds": round(wall, 1),
        "threads": threads,
        "cpu": cpu_description(),
    }
    return row, np.concatenate(list(recon[:GRID_IMAGES]), axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trials", nargs="+", help="NAME=JSON of dotted params.yaml keys")
    parser.add_argument("--data", type=Path, required=True, help="prepared data directory (train/, val/)")
    parser.add_argument("--semantic", type=Path, required=True, help="the trained semantic network")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="CSV to append one row per trial to")
    parser.add_argument("--grid", type=Path, help="PNG: validation images, then each trial's reconstructions")
    args = parser.parse_args()
    trials = [parse_trial(t) for t in args.trials]
    raw = yaml.safe_load(args.params.read_text())
    print(f"{cpu_description()}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}", flush=True)
    rows, strips = [], []
    for name, changes in trials:
        row, strip = run_trial(name, changes, raw, args.data, args.semantic, args.threads)
        rows.append(row)
        strips.append(strip)
        print("  ".join(f"{k}={row[k]}" for k in COLUMNS if k != "cpu"), flush=True)
    if args.out:
        append_csv_rows(args.out, COLUMNS, rows)
    if args.grid:
        originals = np.concatenate(list(np.array(open_image_store(args.data / "val").images[:GRID_IMAGES])), axis=1)
        grid = np.concatenate([originals, *strips], axis=0)
        args.grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(args.grid)


if __name__ == "__main__":
    main()
