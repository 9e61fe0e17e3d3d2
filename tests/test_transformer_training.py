"""Generative-transformer training on token splits: lr schedules, learning beyond unigram
statistics (AR and NAR), the validation curve, fixed NAR validation masks, exact resume after a
real kill, class conditioning, the NaN guard and checkpoint loading.

Token splits are drawn from a Markov chain over K = 16 codes on a 4x4 grid (raster order): a
transformer can learn it, and its unigram cross-entropy (ln 16 = 2.77 nats) is far above what the
position and the neighbouring codes leave (at most ln 4 = 1.39). Models are 2-layer, d = 32; one
thread; CPU.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from resume_helpers import assert_same_weights, kill_when

from seqgan.artefacts.checkpoints import load_resume_state, load_weights
from seqgan.artefacts.tokens import open_token_split, write_token_split
from seqgan.config import Params, validate_params
from seqgan.nets.transformer import GenerativeTransformer
from seqgan.nets.transformer_factory import build_transformer
from seqgan.train import transformer as tt
from seqgan.train.loop import NonFiniteLossError
from seqgan.train.runtime import torch_threads

REPO = Path(__file__).resolve().parents[1]
K = 16  # codes
GRID = 4  # 4x4 tokens per image (16 px images, compression 4)
CLASSES = 4


# --------------------------------------------------------------------------------------------
# Toy token splits and params
# --------------------------------------------------------------------------------------------


def markov_ids(count: int, seed: int, first: np.ndarray | None = None) -> np.ndarray:
    """(count, 4, 4) ids of a Markov chain over the K = 16 codes, in raster order.

    Code s_i = 4 a_i + (i mod 4): the position fixes the code's residue mod 4 (structure any
    model with positions learns quickly, AR or NAR), and a_i is a sticky chain over 4 states
    (a_{i+1} = a_i with probability 0.7, else uniform), a_0 uniform or ``first``. Code
    frequencies are uniform (unigram cross-entropy ln 16 = 2.77 nats); given the position the
    entropy is at most ln 4 = 1.39, given the previous code 0.78.
    """
    rng = np.random.default_rng(seed)
    n = GRID * GRID
    state = np.empty((count, n), dtype=np.int64)
    state[:, 0] = rng.integers(0, 4, count) if first is None else first
    for i in range(1, n):
        stay = rng.random(count) < 0.7
        state[:, i] = np.where(stay, state[:, i - 1], rng.integers(0, 4, count))
    ids = 4 * state + np.arange(n) % 4
    return ids.reshape(count, GRID, GRID)


def write_split(directory: Path, ids: np.ndarray, labels: np.ndarray) -> Path:
    meta = {"tokenizer": {"file": "toy", "sha256": "0" * 64}, "source": {"directory": "toy"}}
    write_token_split(directory, ids, labels, meta, codebook_size=K)
    return directory


@pytest.fixture(scope="module")
def markov(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Unconditional Markov train / val splits (labels all 0)."""
    root = tmp_path_factory.mktemp("markov_tokens")
    return {
        "train": write_split(root / "train", markov_ids(512, 1), np.zeros(512, np.int64)),
        "val": write_split(root / "val", markov_ids(128, 2), np.zeros(128, np.int64)),
    }


@pytest.fixture(scope="module")
def classed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Class-dependent splits: the class c fixes the first code (4c); the rest is the chain."""
    root = tmp_path_factory.mktemp("class_tokens")
    out = {}
    for name, count, seed in (("train", 512, 3), ("val", 128, 4)):
        labels = np.random.default_rng(seed + 100).integers(0, CLASSES, count)
        out[name] = write_split(root / name, markov_ids(count, seed, first=labels), labels)
    return out


def tiny_raw(objective: str = "ar", **settings: Any) -> dict[str, Any]:
    """params.yaml with 16 px images -> 4x4 tokens, K = 16 and a 2-layer d = 32 "base" size."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"].update(seed=0, device="cpu")
    raw["data"]["resolution"] = 16
    raw["data"]["synthetic"]["num_classes"] = CLASSES
    raw["tokenizer"]["architecture"].update(channel_mult=[1, 2, 2], codebook_size=K)
    t = raw["transformer"]
    t.update(conditional=False, num_classes=CLASSES, eval_every=20, val_batches=2, checkpoint_every=50)
    t["sizes"]["base"].update(layers=2, heads=2, dim=32, mlp_dim=64, dropout=0.1)
    t["optimizer"].update(lr=3e-3, weight_decay=0.01)
    t["ar"].update(batch_size=32, iterations=150, lr_decay="exponential", end_lr=3e-4, decay_start=75)
    t["nar"].update(batch_size=32, iterations=200, lr_decay="linear", end_lr=0.0, decay_start=100)
    t[objective].update(settings)
    return raw


def params_of(raw: dict[str, Any]) -> Params:
    return validate_params(copy.deepcopy(raw), "tiny test params")


def run_training(params: Params, data: dict[str, Path], out: Path, objective: str = "ar") -> dict:
    with torch_threads(1):
        return tt.train_transformer(
            params,
            objective=objective,
            size="base",
            train_tokens=data["train"],
            val_tokens=data["val"],
            out_path=out / "model.safetensors",
            resume_path=out / "resume.pt",
            log_dir=out / "logs",
            progress=False,
        )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def ar_run(markov: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ar_run")
    params = params_of(tiny_raw("ar"))
    return {"out": out, "params": params, "metrics": run_training(params, markov, out, "ar")}


@pytest.fixture(scope="module")
def nar_run(markov: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("nar_run")
    params = params_of(tiny_raw("nar"))
    return {"out": out, "params": params, "metrics": run_training(params, markov, out, "nar")}


# --------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("decay, end_lr", [("exponential", 5e-6), ("linear", 0.0)])
def test_lr_decay_endpoints_and_monotone(decay: str, end_lr: float) -> None:
    base, start, total = 1e-4, 80, 500
    lrs = [tt.lr_at(s, base, decay, end_lr, start, total) for s in range(total)]
    assert lrs[: start + 1] == [base] * (start + 1)  # constant up to and at decay_start
    assert lrs[start + 1] < base
    assert lrs[-1] == end_lr  # the last iteration runs at end_lr
    assert all(b <= a for a, b in zip(lrs, lrs[1:], strict=False))
    assert all(end_lr <= v <= base for v in lrs)
    if decay == "exponential":  # a constant ratio per step after decay_start
        ratios = np.array(lrs[start + 1 :]) / np.array(lrs[start:-1])
        assert np.allclose(ratios, ratios[0])
        assert ratios[0] == pytest.approx((end_lr / base) ** (1 / (total - 1 - start)))
    else:  # equal steps
        diffs = np.diff(lrs[start:])
        assert np.allclose(diffs, diffs[0])


def test_lr_constant_and_invalid() -> None:
    assert {tt.lr_at(s, 2e-4, "constant", 0.0, 0, 100) for s in range(100)} == {2e-4}
    assert tt.lr_at(99, 2e-4, "linear", 0.0, 100, 100) == 2e-4  # decay never starts
    with pytest.raises(ValueError, match="end_lr > 0"):
        tt.lr_at(50, 1e-4, "exponential", 0.0, 10, 100)
    with pytest.raises(ValueError, match="unknown lr decay"):
        tt.lr_at(0, 1e-4, "cosine", 0.0, 10, 100)


def test_train_log_follows_the_schedule(ar_run: dict[str, Any]) -> None:
    rows = read_csv(ar_run["out"] / "logs" / "train.csv")
    s = ar_run["params"].transformer.ar
    assert [int(r["step"]) for r in rows] == list(range(1, s.iterations + 1))
    expected = [tt.lr_at(i, 3e-3, s.lr_decay, s.end_lr, s.decay_start, s.iterations) for i in range(s.iterations)]
    assert [float(r["lr"]) for r in rows] == expected
    assert float(rows[-1]["lr"]) == s.end_lr


# --------------------------------------------------------------------------------------------
# Learning beyond unigram statistics; the curve
# --------------------------------------------------------------------------------------------


def curve_values(out: Path) -> tuple[list[int], list[float]]:
    rows = read_csv(out / "logs" / "curve.csv")
    return [int(r["step"]) for r in rows], [float(r["val_loss"]) for r in rows]


@pytest.mark.parametrize("name", ["ar_run", "nar_run"])
def test_validation_loss_falls_below_unigram(name: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue(name)
    metrics = run["metrics"]
    _, val = curve_values(run["out"])
    unigram = metrics["unigram_cross_entropy"]
    assert unigram == pytest.approx(math.log(K), abs=0.05)  # near-uniform code frequencies
    assert metrics["val_token_entropy"] <= unigram
    assert val[-1] < val[0] - 0.3  # decreases clearly (the first point is at step 20)
    assert metrics["final_val_loss"] == val[-1]
    assert metrics["best_val_loss"] == min(val)
    # well below what code frequencies alone allow: the model learned the chain's structure
    assert metrics["final_val_loss"] < unigram - 1.0
    assert metrics["val_sequences"] == 2 * 32  # val_batches x batch_size of the 128 available


def test_curve_csv_header_and_steps(ar_run: dict[str, Any]) -> None:
    path = ar_run["out"] / "logs" / "curve.csv"
    assert path.read_text().splitlines()[0] == "step,train_loss,val_loss"
    steps, _ = curve_values(ar_run["out"])
    assert steps == [20, 40, 60, 80, 100, 120, 140, 150]  # eval_every multiples and the last step
    rows = read_csv(path)
    # train_loss = mean of the per-step training losses since the previous point
    losses = [float(r["loss"]) for r in read_csv(ar_run["out"] / "logs" / "train.csv")]
    assert float(rows[0]["train_loss"]) == pytest.approx(np.mean(losses[:20]), rel=1e-12)
    assert float(rows[-1]["train_loss"]) == pytest.approx(np.mean(losses[140:150]), rel=1e-12)
    assert ar_run["metrics"]["final_train_loss"] == float(rows[-1]["train_loss"])
    # the sidecar keeps the same curve (the plateau rule and the endpoint are read from it)
    _, sidecar = load_weights(ar_run["out"] / "model.safetensors")
    _, val = curve_values(ar_run["out"])
    assert sidecar["metrics"]["val_curve"] == {"step": steps, "val_loss": pytest.approx(val, rel=1e-12)}


def test_sidecar_records_baselines_and_token_identity(ar_run: dict[str, Any], markov: dict[str, Path]) -> None:
    _, sidecar = load_weights(ar_run["out"] / "model.safetensors")
    assert sidecar["kind"] == "transformer"
    assert (sidecar["objective"], sidecar["size"], sidecar["step"]) == ("ar", "base", 150)
    assert sidecar["config"] == {
        "vocab_size": K,
        "seq_len": GRID * GRID,
        "num_classes": 0,
        "layers": 2,
        "heads": 2,
        "dim": 32,
        "mlp_dim": 64,
        "dropout": 0.1,
        "causal": True,
    }
    m = sidecar["metrics"]
    for key in (
        "final_val_loss",
        "best_val_loss",
        "final_train_loss",
        "unigram_cross_entropy",
        "val_token_entropy",
        "val_sequences",
    ):
        assert m[key] == ar_run["metrics"][key], key
    manifest = open_token_split(markov["train"]).manifest
    assert m["tokens"]["train"]["tokens_sha256"] == manifest["tokens_sha256"]
    assert m["tokens"]["train"]["tokenizer"] == manifest["tokenizer"]
    assert m["tokens"]["val"]["count"] == 128


# --------------------------------------------------------------------------------------------
# Fixed NAR validation masks
# --------------------------------------------------------------------------------------------


def test_nar_validation_uses_fixed_masks(nar_run: dict[str, Any], markov: dict[str, Path]) -> None:
    params = nar_run["params"]
    model, sidecar = tt.load_transformer_checkpoint(nar_run["out"] / "model.safetensors", params)
    vset = tt.validation_set(
        open_token_split(markov["val"]), 64, conditional=False, objective="nar", seed=params.run.seed, schedule="cosine"
    )
    with torch_threads(1):
        first = tt.validation_loss(model, vset, 32)
        second = tt.validation_loss(model, vset, 32)
    assert first == second
    # the trainer scored the same masked positions: its final point is reproduced from the files
    assert first == pytest.approx(sidecar["metrics"]["final_val_loss"], rel=1e-6)
    # and the set is a function of the seed only: rebuilding it gives the same masks
    again = tt.validation_set(
        open_token_split(markov["val"]), 64, conditional=False, objective="nar", seed=params.run.seed, schedule="cosine"
    )
    assert torch.equal(vset.masks, again.masks)
    assert 0 < int(vset.masks.sum()) < vset.masks.numel()


# --------------------------------------------------------------------------------------------
# Checkpoint loading
# --------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_gives_identical_logits(ar_run: dict[str, Any], markov: dict[str, Path]) -> None:
    path = ar_run["out"] / "model.safetensors"
    model, sidecar = tt.load_transformer_checkpoint(path, ar_run["params"])
    assert isinstance(model, GenerativeTransformer) and not model.training
    state, _ = load_weights(path)
    rebuilt = build_transformer(ar_run["params"], "base", "ar")
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    ids = tt.batch_ids(open_token_split(markov["val"]), np.arange(8))
    with torch.no_grad():
        assert torch.equal(model(ids), rebuilt(ids))
    resume = load_resume_state(ar_run["out"] / "resume.pt")
    for key, value in resume["model"].items():  # the final weights are the trained ones
        assert torch.equal(state[key], value), key


def test_checkpoint_config_mismatch_is_named(ar_run: dict[str, Any]) -> None:
    path = ar_run["out"] / "model.safetensors"
    raw = copy.deepcopy(ar_run["params"].raw)
    raw["transformer"]["sizes"]["base"]["dim"] = 64
    changed = params_of(raw)
    with pytest.raises(ValueError, match=r"transformer\.sizes\.base\.dim"):
        tt.load_transformer_checkpoint(path, changed)
    model, _ = tt.load_transformer_checkpoint(path, changed, strict=False)  # built as stored
    assert model.config.dim == 32


# --------------------------------------------------------------------------------------------
# Class conditioning
# --------------------------------------------------------------------------------------------


def first_position_loss(path: Path, params: Params, data: dict[str, Path]) -> float:
    model, _ = tt.load_transformer_checkpoint(path, params)
    val = open_token_split(data["val"])
    idx = np.arange(len(val))
    ids = tt.batch_ids(val, idx)
    labels = tt.batch_labels(val, idx, model.config.num_classes > 0)
    with torch.no_grad():
        logits = model(ids, labels)  # (B, N, K); position 0 predicts s_0 from the prefix token
    return float(torch.nn.functional.cross_entropy(logits[:, 0], ids[:, 0]))


def test_conditional_model_uses_labels(classed: dict[str, Path], tmp_path: Path) -> None:
    losses = {}
    for conditional in (True, False):
        raw = tiny_raw("ar", iterations=100, decay_start=50)
        raw["transformer"]["conditional"] = conditional
        params = params_of(raw)
        out = tmp_path / f"cond_{conditional}"
        run_training(params, classed, out)
        losses[conditional] = first_position_loss(out / "model.safetensors", params, classed)
    # the class fixes the first token: ~0 nats with the label, ~ln 4 without it
    assert losses[True] < 0.3
    assert losses[False] > math.log(CLASSES) - 0.3


def test_num_classes_mismatch_is_named(classed: dict[str, Path], tmp_path: Path) -> None:
    raw = tiny_raw("ar")
    raw["transformer"].update(conditional=True, num_classes=6)
    raw["data"]["synthetic"]["num_classes"] = 6
    with pytest.raises(ValueError, match=r"transformer\.num_classes = 6.*imply 4 classes"):
        run_training(params_of(raw), classed, tmp_path)
    assert not (tmp_path / "model.safetensors").exists()


# --------------------------------------------------------------------------------------------
# NaN guard
# --------------------------------------------------------------------------------------------


def test_non_finite_loss_names_term_and_step(
    markov: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = tt.objective_loss
    training_calls: list[int] = []

    def poisoned(model, ids, labels, mask):  # NaN from the 7th training step (step index 6) on
        loss = original(model, ids, labels, mask)
        if model.training:
            training_calls.append(1)
            if len(training_calls) >= 7:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(tt, "objective_loss", poisoned)
    raw = tiny_raw("ar", iterations=20)
    raw["transformer"]["checkpoint_every"] = 5
    raw["evaluation"]["convergence"]["endpoint_evaluations"] = 1  # one evaluation in 20 steps
    with pytest.raises(NonFiniteLossError, match=r"'cross_entropy' is nan at step 6") as info:
        run_training(params_of(raw), markov, tmp_path)
    assert info.value.terms == {"cross_entropy": "nan"} and info.value.step == 6
    assert not (tmp_path / "model.safetensors").exists()
    assert load_resume_state(tmp_path / "resume.pt")["step"] == 5  # the last good state is kept


# --------------------------------------------------------------------------------------------
# Exact resume after a real kill (subprocesses, one thread each)
# --------------------------------------------------------------------------------------------

HELPER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from seqgan.config import validate_params
    from seqgan.train import transformer as tt

    raw, train, val, out, slow = json.loads(sys.argv[1])
    if slow:  # widen the window after the first checkpoint (numerics untouched)
        original = tt.TransformerRun.train_step
        def slowed(self, *args):
            time.sleep(slow)
            return original(self, *args)
        tt.TransformerRun.train_step = slowed
    tt.train_transformer(
        validate_params(raw), objective="nar", size="base", train_tokens=train, val_tokens=val,
        out_path=out + "/model.safetensors", resume_path=out + "/resume.pt", log_dir=out + "/logs",
        progress=False,
    )
    """
)


def _launch(raw: dict, data: dict[str, Path], out: Path, slow: float) -> subprocess.Popen:
    args = json.dumps([raw, str(data["train"]), str(data["val"]), str(out), slow])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", HELPER, args], cwd=out, env=env)


def _curve_steps(out: Path) -> list[int]:
    path = out / "logs" / "curve.csv"
    if not path.is_file():
        return []
    return [int(line.split(",")[0]) for line in path.read_text().splitlines()[1:] if line]


@pytest.mark.slow
def test_resume_after_kill_is_bit_exact(classed: dict[str, Path], tmp_path: Path) -> None:
    # NAR (its random masks must resume) and conditional, with dropout (global RNG must resume);
    # eval_every does not divide checkpoint_every, so the train-loss window of steps 15..20 must
    # resume too
    raw = tiny_raw("nar", iterations=60, decay_start=30)
    raw["transformer"].update(conditional=True, eval_every=7, checkpoint_every=20)

    reference = tmp_path / "reference"
    assert _launch(raw, classed, reference, slow=0.0).wait(timeout=120) == 0

    killed = tmp_path / "killed"
    # kill after the first checkpoint (step 20) once a curve point past it is logged (step 21)
    kill_when(
        _launch(raw, classed, killed, slow=0.1),
        lambda: (killed / "resume.pt").exists() and max(_curve_steps(killed), default=0) > 20,
    )
    assert not (killed / "model.safetensors").exists()
    assert load_resume_state(killed / "resume.pt")["step"] == 20

    assert _launch(raw, classed, killed, slow=0.0).wait(timeout=120) == 0
    assert_same_weights(reference / "model.safetensors", killed / "model.safetensors")
    for name in ("curve.csv", "train.csv"):  # rows after the checkpoint replaced, not duplicated
        assert (killed / "logs" / name).read_text() == (reference / "logs" / name).read_text()
    assert _curve_steps(killed) == [*range(7, 60, 7), 60]
    _, ref_sidecar = load_weights(reference / "model.safetensors")
    _, killed_sidecar = load_weights(killed / "model.safetensors")
    assert killed_sidecar["metrics"]["val_curve"] == ref_sidecar["metrics"]["val_curve"]  # history resumed
