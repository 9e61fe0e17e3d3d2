"""Tokenizer training (phase 1 and phase 2): learning, exact resume after a kill, frozen tokens,
GAN path, NaN guard, the no-perceptual control and checkpoint loading.

Every run uses a tiny 16 px tokenizer, discriminator and semantic network on a synthetic split, on
CPU with one thread, so the whole file takes well under a minute.
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
import torch.nn.functional as F
import yaml
from resume_helpers import assert_same_weights, kill_when

from seqgan.artefacts.checkpoints import load_resume_state, load_weights, save_weights
from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.tensors import to_model_input
from seqgan.config import Params, validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.losses.perceptual import SemanticPerceptualLoss
from seqgan.nets.backbone import TAP_NAMES
from seqgan.nets.semantic import CONVS_PER_STAGE, NORMALIZATION, SemanticNet
from seqgan.train import tokenizer as tok
from seqgan.train import tokenizer_losses
from seqgan.train.loop import NonFiniteLossError
from seqgan.train.runtime import torch_threads
from seqgan.train.tokenizer_model import load_tokenizer_checkpoint, prepare_tokenizer
from seqgan.train.tokenizer_schedule import learning_rate

REPO = Path(__file__).resolve().parents[1]
RES = 16
NUM_CLASSES = 4
TRAIN_IMAGES = 128
VAL_IMAGES = 24


def tiny_raw(**phase1: Any) -> dict[str, Any]:
    """params.yaml with a 16 px, 2-level tokenizer (0.03M parameters) and a tiny discriminator."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["run"].update(seed=0, device="cpu")
    raw["data"]["resolution"] = RES
    raw["data"]["synthetic"]["num_classes"] = NUM_CLASSES
    raw["transformer"]["num_classes"] = NUM_CLASSES
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
    # Calibrated, the perceptual term starts at 1 against an L1 of about 0.6, on an untrained
    # semantic network: 0.05 keeps L1 the main signal of a 60-step run.
    t["loss"].update(l1_weight=1.0, perceptual_weight=0.05)
    t["gan"].update(weight=0.0, adaptive_weight=False, start_step=0, disc_channels=4, r1_gamma=1.0)
    t["phase1"].update(
        batch_size=16,
        iterations=60,
        lr=3e-3,
        end_lr=1e-3,
        lr_decay="cosine",
        checkpoint_every=20,
        log_every=1,
        val_every=20,
        val_images=VAL_IMAGES,
    )
    t["phase2"].update(
        batch_size=16,
        iterations=8,
        lr=1e-3,
        end_lr=1e-3,
        lr_decay="constant",
        checkpoint_every=4,
        log_every=1,
        val_every=4,
        val_images=VAL_IMAGES,
    )
    t["phase2"]["attention"].update(block_size=2, dilation=2, heads=2)
    t["phase1"].update(phase1)
    return raw


def tiny_params(**phase1: Any) -> Params:
    return validate_params(tiny_raw(**phase1), "tiny test params")


def edited(raw: dict[str, Any], section: str, **values: Any) -> Params:
    """A copy of ``raw`` with ``tokenizer.<section>`` updated, validated."""
    raw = copy.deepcopy(raw)
    raw["tokenizer"][section].update(values)
    return validate_params(raw, "tiny test params")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A synthetic train split and an (untrained, seeded) tiny semantic network."""
    root = tmp_path_factory.mktemp("tokenizer_assets")
    write_synthetic_split(root / "train", TRAIN_IMAGES, RES, NUM_CLASSES, seed=7, split="train")
    write_synthetic_split(root / "val", VAL_IMAGES, RES, NUM_CLASSES, seed=7, split="val")
    torch.manual_seed(0)
    net = SemanticNet((4, 4, 8, 8, 8), NUM_CLASSES)
    sidecar = {
        "kind": "semantic_net",
        "config": {
            "widths": [4, 4, 8, 8, 8],
            "num_classes": NUM_CLASSES,
            "convs_per_stage": list(CONVS_PER_STAGE),
            "normalization": NORMALIZATION,
        },
    }
    save_weights(root / "semantic.safetensors", net.state_dict(), sidecar)
    return {"train": root / "train", "val": root / "val", "semantic": root / "semantic.safetensors"}


def run_training(
    params: Params,
    assets: dict[str, Path],
    out: Path,
    *,
    phase: int = 1,
    alpha: float = 1.0,
    perceptual: bool = True,
    init: Path | None = None,
) -> dict:
    with torch_threads(1):
        return tok.train_tokenizer(
            params,
            phase=phase,
            alpha=alpha,
            perceptual=perceptual,
            train_dir=assets["train"],
            val_dir=assets["val"],
            semantic_weights=assets["semantic"] if perceptual else None,
            init_weights=init,
            out_path=out / "tok.safetensors",
            resume_path=out / "resume.pt",
            log_dir=out / "logs",
            progress=False,
        )


def read_log(out: Path) -> list[dict[str, str]]:
    with open(out / "logs" / "train.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def phase1_run(assets: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One 60-step phase-1 run (alpha 1, perceptual on, no GAN) shared by several tests."""
    out = tmp_path_factory.mktemp("phase1")
    params = tiny_params()
    metrics = run_training(params, assets, out)
    return {"out": out, "params": params, "metrics": metrics, "ckpt": out / "tok.safetensors"}


def fixed_batch(assets: dict[str, Path], n: int = 16) -> torch.Tensor:
    images = np.array(open_image_store(assets["train"]).images[:n])  # a writable copy
    return to_model_input(images, torch.device("cpu"))


# --------------------------------------------------------------------------------------------


def test_learning_rate_schedule() -> None:
    params = tiny_params()
    s = params.tokenizer.phase1  # cosine 3e-3 -> 1e-3 over 60 steps
    assert learning_rate(0, s) == pytest.approx(3e-3)
    assert learning_rate(30, s) == pytest.approx(2e-3)
    assert learning_rate(59, s) == pytest.approx(1e-3, rel=2e-3)
    constant = params.tokenizer.phase2
    assert learning_rate(5, constant) == constant.lr


def test_phase1_lowers_reconstruction_l1(phase1_run: dict[str, Any]) -> None:
    rows = read_log(phase1_run["out"])
    assert [int(r["step"]) for r in rows] == list(range(1, 61))
    l1 = [float(r["l1"]) for r in rows]
    first, last = sum(l1[:10]) / 10, sum(l1[-10:]) / 10
    assert last < 0.6 * first, (first, last)
    # every logged term is a number; usage of the batch is logged
    for name in (
        "codebook",
        "commitment",
        "entropy",
        "per_relu5_3",
        "per_logit",
        "total",
        "lr",
        "perplexity",
        "used_codes",
    ):
        assert all(math.isfinite(float(r[name])) for r in rows), name
    assert "gan_g" not in rows[0]  # gan.weight = 0: no discriminator, no GAN columns


def test_sidecar_and_checkpoint_round_trip(phase1_run: dict[str, Any]) -> None:
    params, ckpt = phase1_run["params"], phase1_run["ckpt"]
    state, sidecar = load_weights(ckpt)
    assert sidecar["kind"] == "tokenizer" and sidecar["phase"] == 1
    assert sidecar["alpha"] == 1.0 and sidecar["perceptual"] is True and sidecar["step"] == 60
    assert sidecar["config"]["architecture"]["channel_mult"] == [1, 2]
    assert sidecar["config"]["resolution"] == RES
    usage = sidecar["metrics"]["train_eval"]
    assert usage["count"] == TRAIN_IMAGES and 0 < usage["codebook_fraction_used"] <= 1
    assert usage["codebook_perplexity"] >= 1 and usage["psnr"] > 0
    assert set(sidecar["metrics"]["final_losses"]) >= {"l1", "total", "perplexity"}

    model, loaded_sidecar = load_tokenizer_checkpoint(ckpt, params)
    assert loaded_sidecar == sidecar and not model.training
    assert model.decoder.levels[0].attn is None  # phase 1: conv-only decoder
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_checkpoint_architecture_mismatch_is_named(phase1_run: dict[str, Any]) -> None:
    raw = tiny_raw()
    raw["tokenizer"]["architecture"]["codebook_size"] = 64
    other = validate_params(raw)
    with pytest.raises(ValueError, match=r"tokenizer\.architecture\.codebook_size = 64 in params.*32"):
        load_tokenizer_checkpoint(phase1_run["ckpt"], other)


def test_phase2_freezes_tokens_and_trains_decoder(
    phase1_run: dict[str, Any], assets: dict[str, Path], tmp_path: Path
) -> None:
    params, ckpt = phase1_run["params"], phase1_run["ckpt"]
    phase1_model, _ = load_tokenizer_checkpoint(ckpt, params)
    x = fixed_batch(assets)

    # step 0: the phase-2 model (zero-init attention) computes exactly the phase-1 function
    start_model = prepare_tokenizer(params, 2, ckpt).eval()
    assert start_model.decoder.levels[0].attn is not None
    with torch.no_grad():
        ids1 = phase1_model.encode(x)[1]
        assert torch.equal(start_model.encode(x)[1], ids1)
        assert torch.equal(start_model.decode_ids(ids1), phase1_model.decode_ids(ids1))
        assert torch.equal(start_model(x)[0], phase1_model(x)[0])

    metrics = run_training(params, assets, tmp_path, phase=2, alpha=0.0, init=ckpt)
    assert metrics["step"] == params.tokenizer.phase2.iterations
    model2, sidecar2 = load_tokenizer_checkpoint(tmp_path / "tok.safetensors", params)
    assert sidecar2["phase"] == 2 and sidecar2["alpha"] == 0.0
    assert sidecar2["config"]["attention"] == {"block_size": 2, "dilation": 2, "heads": 2}
    state1, state2 = phase1_model.state_dict(), model2.state_dict()
    frozen = [k for k in state1 if k.startswith(("encoder.", "quantizer."))]
    assert frozen and all(torch.equal(state1[k], state2[k]) for k in frozen)
    with torch.no_grad():
        assert torch.equal(model2.encode(x)[1], ids1)
    decoder = [k for k in state1 if k.startswith("decoder.")]
    assert any(not torch.equal(state1[k], state2[k]) for k in decoder)
    out_projections = [k for k in state2 if ".attn." in k and k.endswith("proj_out.weight")]
    assert out_projections and any(state2[k].abs().sum() > 0 for k in out_projections)
    columns = read_log(tmp_path)[0].keys()
    assert "codebook" not in columns and "entropy" not in columns  # no quantizer loss in phase 2
    # phase 2 keeps its phase-1 tokenizer's calibration: the same objective's scale, not a new one
    _, sidecar1 = load_tokenizer_checkpoint(ckpt, params)
    cal1, cal2 = sidecar1["training"]["calibration"], sidecar2["training"]["calibration"]
    assert cal2["term_means"] == cal1["term_means"]
    assert cal2["source"].startswith("phase-1 tokenizer") and cal1["source"] == "initial tokenizer"
    assert "codebook_init" not in sidecar2["training"]  # the codebook is frozen in phase 2


def test_fresh_run_derives_calibration_and_codebook_from_its_initial_networks(phase1_run: dict[str, Any]) -> None:
    """The calibration makes L_low (alpha 0) and L_sem (alpha 1) start equal: both are 1 on the
    calibration images. On the first training batch (16 images of this tiny world, an untrained
    semantic network) they agree within 10 %; the embedded default's 32 px run logs 1.012 vs 1.016.
    The codebook starts at encoder outputs, and both records are in the sidecar."""
    _, sidecar = load_tokenizer_checkpoint(phase1_run["ckpt"], phase1_run["params"])
    training = sidecar["training"]
    means = training["calibration"]["term_means"]
    assert list(means) == [*TAP_NAMES, "logit"] and all(v > 0 for v in means.values())
    assert training["calibration"]["images"] == TRAIN_IMAGES  # init_images 256 > the split's 128
    assert training["codebook_init"]["images"] == TRAIN_IMAGES
    first = read_log(phase1_run["out"])[0]
    low, sem = float(first["per_low"]), float(first["per_sem"])
    assert abs(sem - low) <= 0.10 * low, (low, sem)
    assert abs(low - 1.0) < 0.25, low  # every term starts near its calibration mean of 1


def _discriminator_recorder(monkeypatch: pytest.MonkeyPatch) -> list[tuple[torch.nn.Module, dict]]:
    """Record each discriminator the trainer builds, with a copy of its initial weights."""
    built: list[tuple[torch.nn.Module, dict]] = []
    original = tok.build_discriminator

    def record(params: Params):
        disc = original(params)
        built.append((disc, copy.deepcopy(disc.state_dict())))
        return disc

    monkeypatch.setattr(tok, "build_discriminator", record)
    return built


@pytest.mark.parametrize(("loss", "adaptive"), [("non_saturating", False), ("hinge", False), ("non_saturating", True)])
def test_gan_path_trains_discriminator(
    loss: str,
    adaptive: bool,
    assets: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = tiny_raw(iterations=6, checkpoint_every=6)
    raw["tokenizer"]["gan"].update(weight=0.1, loss=loss, adaptive_weight=adaptive, start_step=2)
    built = _discriminator_recorder(monkeypatch)
    run_training(validate_params(raw), assets, tmp_path, perceptual=False)
    ((disc, initial),) = built
    assert any(not torch.equal(v, initial[k]) for k, v in disc.state_dict().items())
    rows = read_log(tmp_path)
    assert [r["gan_g"] for r in rows[:2]] == ["", ""]  # before gan.start_step
    for row in rows[2:]:
        values = {n: float(row[n]) for n in ("gan_g", "gan_weight", "gan_d", "r1", "d_real", "d_fake")}
        assert all(math.isfinite(v) for v in values.values()), values
        assert values["r1"] >= 0
        assert (values["gan_weight"] != 0.1) if adaptive else values["gan_weight"] == pytest.approx(0.1)
    state = load_resume_state(tmp_path / "resume.pt")
    assert {"disc", "opt_d"} <= set(state)


def test_non_finite_loss_names_term_and_step_and_keeps_checkpoint(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tiny_params(iterations=20, checkpoint_every=5)
    original = SemanticPerceptualLoss.forward
    calls = {"n": 0}

    def poisoned(self, recon, target):
        out = original(self, recon, target)
        calls["n"] += 1
        if calls["n"] == 8:  # 0-based step 7
            out["relu5_3"] = out["relu5_3"] * float("nan")
            out["total"] = out["total"] * float("nan")
        return out

    monkeypatch.setattr(SemanticPerceptualLoss, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"per_relu5_3.*at step 7") as info:
        run_training(params, assets, tmp_path)
    assert {"per_relu5_3", "per_total", "total"} <= set(info.value.terms) and info.value.step == 7
    state = load_resume_state(tmp_path / "resume.pt")
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["tokenizer"].values())
    assert not (tmp_path / "tok.safetensors").exists()

    monkeypatch.setattr(SemanticPerceptualLoss, "forward", original)
    metrics = run_training(params, assets, tmp_path)  # the kept checkpoint resumes
    assert metrics["resumed_from_step"] == 5


def test_control_computes_no_perceptual_terms(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any):
        raise AssertionError("the control tokenizer must not compute a perceptual loss")

    monkeypatch.setattr(SemanticPerceptualLoss, "forward", forbidden)
    monkeypatch.setattr(tokenizer_losses, "load_semantic_net", forbidden)
    run_training(tiny_params(iterations=5, checkpoint_every=5), assets, tmp_path, perceptual=False)
    columns = list(read_log(tmp_path)[0])
    assert not [c for c in columns if c.startswith("per_")]
    assert {"l1", "codebook", "total", "perplexity"} <= set(columns)
    _, sidecar = load_weights(tmp_path / "tok.safetensors")
    assert sidecar["perceptual"] is False


def test_validation_curve_is_the_reconstruction_l1_of_the_first_val_images(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """The control's validation loss is L1 alone: recomputed from the saved tokenizer, the last point
    must equal it; the curve has a point every val_every steps and at the last."""
    params = tiny_params(iterations=25, checkpoint_every=25, val_every=10)
    run_training(params, assets, tmp_path, perceptual=False)
    _, sidecar = load_weights(tmp_path / "tok.safetensors")
    curve = sidecar["metrics"]["val_curve"]
    assert curve["step"] == [10, 20, 25]
    with open(tmp_path / "logs" / "val.csv", newline="") as fh:
        logged = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in logged] == curve["step"]
    assert [float(r["val_loss"]) for r in logged] == pytest.approx(curve["val_loss"], rel=1e-6)

    model, _ = load_tokenizer_checkpoint(tmp_path / "tok.safetensors", params)
    images = np.array(open_image_store(assets["val"]).images[:VAL_IMAGES])
    with torch.no_grad():
        x = to_model_input(images, torch.device("cpu"))
        l1 = float(F.l1_loss(model(x)[0].float(), x))  # one batch of 24 (batch_size 16 + 8: image-weighted)
    assert curve["val_loss"][-1] == pytest.approx(l1, rel=1e-4)
    assert curve["val_loss"][-1] < curve["val_loss"][0]  # it trained


def test_perceptual_weight_zero_skips_the_loss(
    assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tiny_raw(iterations=3, checkpoint_every=3)
    raw["tokenizer"]["loss"]["perceptual_weight"] = 0.0
    monkeypatch.setattr(SemanticPerceptualLoss, "forward", lambda *a, **k: pytest.fail("computed"))
    run_training(validate_params(raw), assets, tmp_path)
    assert not [c for c in read_log(tmp_path)[0] if c.startswith("per_")]


# --------------------------------------------------------------------------------------------
# Exact resume after a real kill (subprocesses, one thread each)
# --------------------------------------------------------------------------------------------

HELPER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from seqgan.config import validate_params
    from seqgan.train import tokenizer as tok

    raw, train, val, semantic, out, slow = json.loads(sys.argv[1])
    if slow:  # widen the window between the first checkpoint and the end (numerics untouched)
        original = tok.TokenizerRun.train_step
        def slowed(self, x, step):
            time.sleep(slow)
            return original(self, x, step)
        tok.TokenizerRun.train_step = slowed
    out = Path(out)
    tok.train_tokenizer(
        validate_params(raw), phase=1, alpha=0.5, perceptual=True, train_dir=train, val_dir=val,
        semantic_weights=Path(semantic), init_weights=None, out_path=out / "tok.safetensors",
        resume_path=out / "resume.pt", log_dir=out / "logs", progress=False,
    )
    """
)


def _launch(raw: dict, assets: dict[str, Path], out: Path, slow: float) -> subprocess.Popen:
    """Train in a fresh Python process (``slow`` s of sleep per step widen the kill window)."""
    args = json.dumps([raw, str(assets["train"]), str(assets["val"]), str(assets["semantic"]), str(out), slow])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-c", HELPER, args], cwd=out, env=env)


@pytest.mark.slow
def test_resume_after_kill_is_bit_exact(assets: dict[str, Path], tmp_path: Path) -> None:
    raw = tiny_raw(iterations=30, checkpoint_every=10)
    raw["tokenizer"]["gan"].update(weight=0.1, start_step=5)  # discriminator state resumes too

    reference = tmp_path / "reference"
    assert _launch(raw, assets, reference, slow=0.0).wait(timeout=120) == 0

    killed = tmp_path / "killed"
    kill_when(_launch(raw, assets, killed, slow=0.1), (killed / "resume.pt").exists)
    assert not (killed / "tok.safetensors").exists()
    assert load_resume_state(killed / "resume.pt")["step"] == 10

    assert _launch(raw, assets, killed, slow=0.0).wait(timeout=120) == 0
    assert_same_weights(reference / "tok.safetensors", killed / "tok.safetensors")
    assert read_log(killed) == read_log(reference)  # rows after the checkpoint were replaced
    _, ref_sidecar = load_weights(reference / "tok.safetensors")
    _, killed_sidecar = load_weights(killed / "tok.safetensors")
    assert killed_sidecar["metrics"]["val_curve"] == ref_sidecar["metrics"]["val_curve"]  # resumed with its history
