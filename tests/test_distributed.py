"""Multi-GPU training (run.gpus_per_job > 1): torchrun + DistributedDataParallel, checked on CPU.

Two gloo ranks under ``python -m torch.distributed.run --standalone --nproc_per_node 2`` (what the
training rules launch) run the SAME ``seqgan`` CLI command as one plain process, on the same global
batch. Each rank runs in its own working directory, so what rank 1 writes is visible: it must write
nothing (checkpoints, logs, weights and the published curves are rank 0's job).

Tolerance: relative 1e-5 on every logged training loss and validation point (of the column's
largest magnitude for values near 0, such as a mean discriminator logit), 1e-4 of the largest
weight on the final weights. The ranks compute the same sums in another order (each half batch
reduced separately, then gloo's all-reduce), so float32 results differ in the last bits: measured
max 2.6e-7 relative over 20-30 steps (transformer AR and NAR; control tokenizer with its
discriminator and R1). A real fault is orders of magnitude larger: NAR ranks without the
token-share weighting of their loss are off by ~1e-3 after a few steps, a wrong batch slice by ~1e-1.

Not compared exactly, by design (see seqgan/train/distributed.py and the trainers' docstrings):
dropout draws (set to 0 here), the tokenizer's entropy regulariser and adaptive GAN weight (per-rank
batch statistics; off here), the perceptual loss (mathematically identical -- float64 gradients
agree to 1e-15 -- but its unit normalisation amplifies float32 rounding, so two float orders drift
apart; left out by training the control tokenizer), and the batch perplexity / used-codes columns
(per-rank values averaged).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from seqgan.artefacts.checkpoints import load_weights
from seqgan.artefacts.tokens import write_token_split
from seqgan.config import ParamsError, validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.train import distributed

REPO = Path(__file__).resolve().parents[1]
RTOL = 1e-5
K = 16  # transformer vocabulary: 16 codes on a 4x4 grid (16 px images, compression 4)

# Each rank (or the single process) runs the CLI in <workdir>/rank<RANK>/ with absolute inputs and
# relative outputs, so every file a rank writes lands in its own directory.
RUNNER = """
import os, sys
from pathlib import Path
workdir = Path(sys.argv[1]) / f"rank{os.environ.get('RANK', '0')}"
workdir.mkdir(parents=True)
os.chdir(workdir)
from seqgan.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def run_cli(tmp: Path, workdir: Path, args: list[str], nproc: int) -> subprocess.CompletedProcess:
    """``seqgan <args>`` as one process (nproc = 1) or under torchrun with ``nproc`` gloo ranks."""
    runner = tmp / "runner.py"
    runner.write_text(RUNNER)
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    result = subprocess.run(
        [*launcher, str(runner), str(workdir), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def write_params(path: Path, raw: dict[str, Any]) -> Path:
    validate_params(copy.deepcopy(raw), str(path))
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_rows_close(single: Path, ddp: Path, columns: list[str]) -> None:
    a, b = read_rows(single), read_rows(ddp)
    assert [r["step"] for r in a] == [r["step"] for r in b] and a
    for column in columns:
        x = np.array([float(r[column]) for r in a if r[column] != ""])
        y = np.array([float(r[column]) for r in b if r[column] != ""])
        assert len(x) == len(y) and len(x) > 0, column
        # relative to the column's scale: a mean logit that crosses 0 has no relative precision
        scale = float(np.abs(x).max())
        np.testing.assert_allclose(y, x, rtol=RTOL, atol=RTOL * scale, err_msg=f"{ddp.name}: {column}")


def assert_weights_close(single: Path, ddp: Path, accumulation: int = 1) -> None:
    a, sidecar_a = load_weights(single)
    b, sidecar_b = load_weights(ddp)
    assert a.keys() == b.keys()
    scale = max(float(t.abs().max()) for t in a.values())
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-4 * scale, f"weights differ by {worst} (largest weight {scale})"
    assert sidecar_a["training"]["world_size"] == 1 and sidecar_b["training"]["world_size"] == 2
    assert sidecar_a["training"]["accumulation_steps"] == 1
    assert sidecar_b["training"]["accumulation_steps"] == accumulation


def ddp_params(tmp: Path, raw: dict[str, Any], accumulation: int) -> Path:
    """The 2-rank run's params: the same as the single process's, plus ``accumulation`` micro-batches."""
    raw = copy.deepcopy(raw)
    raw["run"]["accumulation_steps"] = accumulation
    return write_params(tmp / f"params_ddp_x{accumulation}.yaml", raw)


def assert_rank1_wrote_nothing(workdir: Path) -> None:
    rank1 = workdir / "rank1"
    assert rank1.is_dir()  # the runner made it, so rank 1 did run there
    assert sorted(p.relative_to(rank1) for p in rank1.rglob("*")) == []


# --------------------------------------------------------------------------------------------
# Fast checks: the plumbing without processes
# --------------------------------------------------------------------------------------------


def test_shards_are_contiguous_equal_slices_of_the_global_batch() -> None:
    indices = np.arange(100, 108)
    parts = [distributed.Distributed(r, 4, torch.device("cpu")).shard(indices) for r in range(4)]
    assert [p.tolist() for p in parts] == [[100, 101], [102, 103], [104, 105], [106, 107]]
    assert distributed.Distributed.single(torch.device("cpu")).shard(indices).tolist() == indices.tolist()


def test_main_process_is_read_from_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.is_main_process()
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_main_process()


def test_more_ranks_than_gpus_names_the_params_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"run\.gpus_per_job"):
        distributed.init_distributed(torch.device("cuda"))


def test_batch_sizes_must_split_evenly_over_the_gpus() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"]["gpus_per_job"] = 3
    with pytest.raises(ParamsError) as info:
        validate_params(raw)
    problems = info.value.problems
    for key in (
        "tokenizer.phase1.batch_size",
        "tokenizer.phase2.batch_size",
        "transformer.ar.batch_size",
        "transformer.nar.batch_size",
    ):
        assert any(
            p.startswith(f"{key} = ") and "run.gpus_per_job x run.accumulation_steps = 3 x 1" in p for p in problems
        ), key
    raw["run"]["gpus_per_job"] = 0
    with pytest.raises(ParamsError, match=r"run\.gpus_per_job = 0: must be within \[1, 64\]"):
        validate_params(raw)


# --------------------------------------------------------------------------------------------
# Transformer: 2 gloo ranks == 1 process
# --------------------------------------------------------------------------------------------


def token_ids(count: int, seed: int) -> np.ndarray:
    """(count, 4, 4) codes of a sticky chain (code = 4 * state + position mod 4): learnable."""
    rng = np.random.default_rng(seed)
    state = np.empty((count, 16), dtype=np.int64)
    state[:, 0] = rng.integers(0, 4, count)
    for i in range(1, 16):
        stay = rng.random(count) < 0.7
        state[:, i] = np.where(stay, state[:, i - 1], rng.integers(0, 4, count))
    return (4 * state + np.arange(16) % 4).reshape(count, 4, 4)


def transformer_raw(objective: str) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"].update(seed=0, device="cpu", gpus_per_job=2)
    raw["data"]["resolution"] = 16
    raw["tokenizer"]["architecture"].update(channel_mult=[1, 2, 2], codebook_size=K)
    t = raw["transformer"]
    t.update(conditional=False, eval_every=10, val_batches=2, checkpoint_every=10)
    t["sizes"]["base"].update(layers=2, heads=2, dim=32, mlp_dim=64, dropout=0.0)
    t["optimizer"].update(lr=3e-3, weight_decay=0.01)
    t[objective].update(batch_size=32, iterations=20, decay_start=10)
    raw["evaluation"]["convergence"]["endpoint_evaluations"] = 1  # 20 steps give two evaluations
    return raw


@pytest.mark.slow
# AR without accumulation (DDP alone); NAR with 2 micro-batches per rank (DDP + no_sync, and the
# token-share weighting of unequal NAR micro-batches): each path once, to keep the suite short
@pytest.mark.parametrize(("objective", "accumulation"), [("ar", 1), ("nar", 2)])
def test_transformer_two_ranks_match_one_process(objective: str, accumulation: int, tmp_path: Path) -> None:
    """2 ranks (x 2 micro-batches each: DDP's no_sync path) == one process on the whole batch."""
    tokens = tmp_path / "tokens"
    meta = {"tokenizer": {"file": "toy", "sha256": "0" * 64}, "source": {"directory": "toy"}}
    for split, count, seed in (("train", 256, 1), ("val", 64, 2)):
        write_token_split(tokens / split, token_ids(count, seed), np.zeros(count, np.int64), meta, codebook_size=K)
    raw = transformer_raw(objective)
    params = write_params(tmp_path / "params.yaml", raw)
    args = [
        "train-transformer",
        "--params",
        str(params),
        "--objective",
        objective,
        "--size",
        "base",
        "--seed",
        "0",
        "--tokens",
        str(tokens),
        "--out",
        "out/model.safetensors",
        "--log-dir",
        "curves",
        "--threads",
        "1",
    ]

    ddp_args = [str(ddp_params(tmp_path, raw, accumulation)) if a == str(params) else a for a in args]
    run_cli(tmp_path, tmp_path / "single", args, nproc=1)
    run_cli(tmp_path, tmp_path / "ddp", ddp_args, nproc=2)

    single, ddp = tmp_path / "single" / "rank0", tmp_path / "ddp" / "rank0"
    assert_rows_close(single / "curves" / "train.csv", ddp / "curves" / "train.csv", ["loss", "lr"])
    assert_rows_close(single / "curves" / "curve.csv", ddp / "curves" / "curve.csv", ["train_loss", "val_loss"])
    assert [r["step"] for r in read_rows(ddp / "curves" / "curve.csv")] == ["10", "20"]
    assert_weights_close(single / "out" / "model.safetensors", ddp / "out" / "model.safetensors", accumulation)
    assert len(list((ddp / "work" / "resume").rglob("state.pt"))) == 1  # rank 0's resume state
    assert_rank1_wrote_nothing(tmp_path / "ddp")


# --------------------------------------------------------------------------------------------
# Tokenizer (with its discriminator): 2 gloo ranks == 1 process
# --------------------------------------------------------------------------------------------


def tokenizer_raw() -> dict[str, Any]:
    """A 16 px, 2-level tokenizer; the GAN (fixed weight, R1) is on from step 3 so both DDP
    modules train; entropy regulariser and adaptive weight off (per-rank statistics)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"].update(seed=0, device="cpu", gpus_per_job=2)
    raw["data"]["resolution"] = 16
    t = raw["tokenizer"]
    t["architecture"].update(
        base_channels=8,
        channel_mult=[1, 2],
        num_res_blocks=1,
        extra_res_blocks=1,
        num_groups=4,
        codebook_size=32,
        code_dim=8,
    )
    t["quantizer"]["entropy_weight"] = 0.0
    t["gan"].update(weight=0.1, adaptive_weight=False, start_step=2, disc_channels=4, r1_gamma=1.0)
    t["phase1"].update(
        batch_size=16, iterations=12, lr=3e-3, end_lr=1e-3, lr_decay="cosine", checkpoint_every=6, log_every=1
    )
    t["control_no_perceptual"] = True
    t["control_no_entropy"] = False  # entropy_weight 0: every tokenizer here is without the regulariser
    return raw


@pytest.mark.slow
@pytest.mark.parametrize("accumulation", [2])  # DDP + no_sync for both networks (plain DDP: the AR case)
def test_tokenizer_two_ranks_match_one_process(accumulation: int, tmp_path: Path) -> None:
    """2 ranks (x 2 micro-batches of 4 each: DDP's no_sync path for both networks) == one process."""
    data = tmp_path / "data"
    write_synthetic_split(data / "train", 64, 16, 10, seed=7, split="train")
    write_synthetic_split(data / "val", 16, 16, 10, seed=7, split="val")  # the validation curve
    raw = tokenizer_raw()
    params = write_params(tmp_path / "params.yaml", raw)
    args = [
        "train-tokenizer",
        "--params",
        str(params),
        "--phase",
        "1",
        "--variant",
        "control",
        "--seed",
        "0",
        "--data",
        str(data),
        "--out",
        "out/tokenizer.safetensors",
        "--log-dir",
        "curves",
        "--threads",
        "1",
    ]

    ddp_args = [str(ddp_params(tmp_path, raw, accumulation)) if a == str(params) else a for a in args]
    run_cli(tmp_path, tmp_path / "single", args, nproc=1)
    run_cli(tmp_path, tmp_path / "ddp", ddp_args, nproc=2)

    single, ddp = tmp_path / "single" / "rank0", tmp_path / "ddp" / "rank0"
    columns = ["l1", "codebook", "commitment", "gan_g", "gan_d", "r1", "d_real", "d_fake", "total", "lr"]
    assert_rows_close(single / "curves" / "train.csv", ddp / "curves" / "train.csv", columns)
    gan_rows = [r for r in read_rows(ddp / "curves" / "train.csv") if r["gan_d"] != ""]
    assert [int(r["step"]) for r in gan_rows] == list(range(3, 13))  # the discriminator trained
    assert_weights_close(single / "out" / "tokenizer.safetensors", ddp / "out" / "tokenizer.safetensors", accumulation)
    sidecar = json.loads((ddp / "out" / "tokenizer.json").read_text())
    assert sidecar["metrics"]["train_eval"]["count"] == 64  # rank 0 evaluated the whole split
    assert_rank1_wrote_nothing(tmp_path / "ddp")
