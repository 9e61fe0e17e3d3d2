"""Shared training utilities: checkpoints, resume state, data order, NaN guard, logging, runtime."""

from __future__ import annotations

import csv
import datetime as dt
import json
import pickle
import random
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from seqgan.artefacts import checkpoints as ckpt
from seqgan.artefacts import provenance
from seqgan.artefacts.checkpoints import (
    capture_rng_state,
    check_weights_only_safe,
    load_resume_state,
    load_weights,
    restore_rng_state,
    save_resume_state,
    save_weights,
    sidecar_path,
)
from seqgan.progress import Progress, progress
from seqgan.train import runtime
from seqgan.train.live import MetricLogger, open_live, truncate_after
from seqgan.train.loop import (
    NonFiniteLossError,
    StepSampler,
    TrainLoop,
    check_finite,
    cosine_schedule,
)

# --- weights ----------------------------------------------------------------------------------


def _example_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(5, 4, generator=g)
    return {
        "embed.weight": shared,
        "head.weight": shared,  # tied: same storage under two names
        "conv.weight": torch.randn(3, 2, 3, 3, generator=g),
        "transposed": torch.randn(4, 6, generator=g).t(),  # non-contiguous view
        "half": torch.randn(7, generator=g).to(torch.bfloat16),
        "counts": torch.arange(10, dtype=torch.int64),
    }


def test_save_load_weights_roundtrip_is_bit_exact(tmp_path: Path) -> None:
    state = _example_state()
    sidecar = {"config": {"widths": (8, 16)}, "step": 42, "metrics": {"acc": np.float32(0.5)}}
    path = tmp_path / "model.safetensors"
    save_weights(path, state, sidecar)

    loaded, meta = load_weights(path)
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype
        assert torch.equal(loaded[key], value), key
    assert sidecar_path(path) == tmp_path / "model.json"
    assert meta["config"] == {"widths": [8, 16]}
    assert meta["step"] == 42 and meta["metrics"] == {"acc": 0.5}
    assert isinstance(meta["git_revision"], str) and meta["git_revision"]
    stamp = dt.datetime.fromisoformat(meta["timestamp"].replace("Z", "+00:00"))
    assert stamp.tzinfo is not None and stamp.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - stamp).total_seconds()) < 600


def test_weights_file_is_safetensors_and_loads_without_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, _example_state(), {"kind": "test"})
    raw = path.read_bytes()
    assert not raw.startswith(b"PK") and raw[:1] != b"\x80"  # neither a torch zip nor a pickle
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert "conv.weight" in header and header["conv.weight"]["dtype"] == "F32"

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load_weights must not unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    monkeypatch.setattr(torch, "load", no_unpickling)
    loaded, meta = load_weights(path)
    assert meta["kind"] == "test" and "conv.weight" in loaded


def test_load_weights_without_sidecar_names_the_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, {"a": torch.zeros(2)}, {})
    sidecar_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="w.json"):
        load_weights(path)


# --- atomicity --------------------------------------------------------------------------------


def test_failed_weights_write_keeps_previous_files(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, {"a": torch.ones(3)}, {"step": 1})
    before = (path.read_bytes(), sidecar_path(path).read_bytes())

    def half_write(tensors, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x00" * 5)  # a few bytes, then the job dies
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", half_write)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, {"a": torch.zeros(3)}, {"step": 2})
    assert (path.read_bytes(), sidecar_path(path).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.safetensors"]  # no temp


def test_failed_resume_write_keeps_previous_state(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "resume.pt"
    save_resume_state(path, {"step": 1, "w": torch.ones(2)})

    def half_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 truncated")
        raise RuntimeError("killed")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(RuntimeError, match="killed"):
        save_resume_state(path, {"step": 2, "w": torch.zeros(2)})
    monkeypatch.undo()
    assert load_resume_state(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["resume.pt"]


# --- resume state and RNG ---------------------------------------------------------------------


def _draws() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(4)


class _Arbitrary:
    """A pickled class instance: what a weights-only load must refuse to construct."""


def test_resume_state_refuses_an_arbitrary_pickle(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"step": 1, "obj": _Arbitrary()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        load_resume_state(path)


def test_resume_state_loads_weights_only_and_restores_rng(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched.step()

    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    _draws()  # move away from the seeded positions
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": 7,
        "rng": capture_rng_state(),
    }
    expected = _draws()
    path = tmp_path / "resume.pt"
    save_resume_state(path, state)

    raw = torch.load(path, weights_only=True)  # the restricted unpickler accepts it
    assert raw["step"] == 7
    _draws()  # scramble
    restore_rng_state(load_resume_state(path))
    again = _draws()
    assert again[0] == expected[0] and again[1] == expected[1]
    assert torch.equal(again[2], expected[2])

    model2 = nn.Linear(4, 3)
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=10)
    model2.load_state_dict(raw["model"])
    opt2.load_state_dict(raw["optimizer"])
    sched2.load_state_dict(raw["scheduler"])
    assert torch.equal(model2.weight, model.weight)
    assert sched2.get_last_lr() == sched.get_last_lr()
    moments = [o.state_dict()["state"][0]["exp_avg"] for o in (opt, opt2)]
    assert torch.equal(*moments)


def test_resume_state_rejects_values_weights_only_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"state\['metrics'\]\['acc'\].*numpy"):
        save_resume_state(tmp_path / "r.pt", {"metrics": {"acc": np.float64(0.5)}})
    with pytest.raises(TypeError, match="ndarray"):
        check_weights_only_safe({"a": [1, np.zeros(2)]})
    assert not (tmp_path / "r.pt").exists()


# --- data order -------------------------------------------------------------------------------


def test_step_sampler_is_a_pure_function_of_seed_and_step() -> None:
    a = StepSampler(100, 16, seed=5)
    b = StepSampler(100, 16, seed=5)
    for step in (0, 3, 17, 6, 0, 250):  # any order, including going back
        assert np.array_equal(a.indices(step), b.indices(step))
    assert not np.array_equal(StepSampler(100, 16, seed=6).indices(0), a.indices(0))
    assert a.indices(0).dtype == np.int64 and a.indices(0).shape == (16,)


@pytest.mark.parametrize("num_items,batch_size", [(10, 3), (12, 4), (7, 10)])
def test_step_sampler_covers_each_epoch_exactly_once(num_items: int, batch_size: int) -> None:
    sampler = StepSampler(num_items, batch_size, seed=0)
    steps = 3 * num_items  # enough batches for >= 3 complete epochs whatever the sizes
    stream = np.concatenate([sampler.indices(s) for s in range(steps)])
    for epoch in range(len(stream) // num_items):
        chunk = stream[epoch * num_items : (epoch + 1) * num_items]
        assert sorted(chunk.tolist()) == list(range(num_items)), epoch
        expected = np.random.default_rng([0, epoch]).permutation(num_items)
        assert np.array_equal(chunk, expected)


def test_step_sampler_wraps_across_the_epoch_boundary() -> None:
    sampler = StepSampler(10, 3, seed=9)
    perm0 = np.random.default_rng([9, 0]).permutation(10)
    perm1 = np.random.default_rng([9, 1]).permutation(10)
    # batch 3 covers stream positions 9, 10, 11: last of epoch 0, first two of epoch 1
    assert sampler.indices(3).tolist() == [perm0[9], perm1[0], perm1[1]]
    assert sampler.epoch(3) == 0 and sampler.epoch(4) == 1


# --- NaN guard --------------------------------------------------------------------------------


def test_check_finite_names_the_term_and_the_step() -> None:
    check_finite({"l1": torch.tensor(0.3), "gan": 1.5, "map": torch.ones(3)}, step=5)
    with pytest.raises(NonFiniteLossError) as info:
        check_finite({"l1": torch.tensor(float("nan")), "perceptual": torch.tensor(0.2)}, 1234)
    message = str(info.value)
    assert "'l1'" in message and "nan" in message and "1234" in message
    assert "perceptual" not in message and "last good checkpoint" in message
    assert info.value.terms == {"l1": "nan"} and info.value.step == 1234

    with pytest.raises(NonFiniteLossError, match=r"'a' \(inf\).*'b' \(-inf\).*at step 7"):
        check_finite({"a": float("inf"), "b": torch.tensor(float("-inf")), "c": 0.0}, 7)
    with pytest.raises(NonFiniteLossError, match="'m' is non-finite"):
        check_finite({"m": torch.tensor([1.0, float("nan")])}, 0)
    assert issubclass(NonFiniteLossError, RuntimeError)


def test_cosine_schedule_warms_up_and_decays_to_zero() -> None:
    assert cosine_schedule(0, 100, 10) == pytest.approx(0.1)
    assert cosine_schedule(9, 100, 10) == pytest.approx(1.0)
    assert cosine_schedule(10, 100, 10) == pytest.approx(1.0)
    assert cosine_schedule(55, 100, 10) == pytest.approx(0.5)
    assert 0 < cosine_schedule(99, 100, 10) < 0.001
    assert cosine_schedule(0, 100, 0) == 1.0
    values = [cosine_schedule(s, 100, 10) for s in range(10, 100)]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))


# --- the loop ---------------------------------------------------------------------------------


def _train_linear(tmp_path: Path, total: int, crash_after: int | None, fingerprint=None):
    """A miniature trainer in the documented pattern; optionally dies after a checkpoint."""
    runtime.seed_everything(0)
    data_x = torch.randn(37, 5, generator=torch.Generator().manual_seed(1))
    data_y = data_x @ torch.arange(5.0) + 1.0
    model = nn.Linear(5, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loop = TrainLoop(
        total_steps=total,
        checkpoint_every=4,
        resume_path=tmp_path / "resume.pt",
        state_fn=lambda: {"model": model.state_dict(), "optimizer": opt.state_dict()},
        load_fn=lambda s: (model.load_state_dict(s["model"]), opt.load_state_dict(s["optimizer"])),
        fingerprint=fingerprint or {"lr": 0.05},
    )
    start = loop.start_step()
    sampler = StepSampler(len(data_x), 8, seed=3)
    ran = []
    for step in range(start, total):
        idx = torch.from_numpy(sampler.indices(step))
        noise = 0.01 * torch.randn(len(idx))  # uses the global RNG: must be restored on resume
        loss = ((model(data_x[idx]).squeeze(1) - data_y[idx] - noise) ** 2).mean()
        check_finite({"mse": loss}, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ran.append(step)
        saved = loop.maybe_checkpoint(step + 1)
        if crash_after is not None and step + 1 == crash_after:
            assert saved
            raise KeyboardInterrupt
    return model, start, ran


def test_train_loop_resume_is_exact(tmp_path: Path) -> None:
    straight, start, ran = _train_linear(tmp_path / "a", 18, None)
    assert start == 0 and ran == list(range(18))
    with pytest.raises(KeyboardInterrupt):
        _train_linear(tmp_path / "b", 18, crash_after=8)
    resumed, start, ran = _train_linear(tmp_path / "b", 18, None)
    assert start == 8 and ran == list(range(8, 18))
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert load_resume_state(tmp_path / "b" / "resume.pt")["step"] == 18  # saved at the last step


def test_train_loop_checkpoint_schedule_and_fingerprint(tmp_path: Path) -> None:
    loop = TrainLoop(10, 4, tmp_path / "r.pt", dict, lambda s: None, {"a": 1})
    assert loop.start_step() == 0
    assert [s for s in range(0, 11) if loop.should_checkpoint(s)] == [4, 8, 10]
    assert loop.maybe_checkpoint(4) and not (loop.maybe_checkpoint(5))
    assert loop.start_step() == 4
    other = TrainLoop(10, 4, tmp_path / "r.pt", dict, lambda s: None, {"a": 2})
    with pytest.raises(ValueError, match="other settings"):
        other.start_step()


def test_progress_bar_is_silent_when_disabled(capsys) -> None:
    with progress(3, 10, enabled=False) as bar:
        assert bar.bar.disable and bar.n == 3
        bar.update(1)
    assert capsys.readouterr().err == ""


def test_progress_lines_in_a_log_every_five_percent_with_an_eta(monkeypatch) -> None:
    import io

    log = io.StringIO()  # a log file, not a terminal: lines instead of a bar
    monkeypatch.delenv("RANK", raising=False)
    with Progress(100, initial=20, desc="tokenizer phase 1", stream=log, unit="steps") as bar:
        for step in range(20, 100):
            bar.set_postfix(l1=f"{1 / (step + 1):.4f}")
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert len(lines) == 16  # steps 25, 30, ..., 100
    assert lines[0].startswith("[progress] tokenizer phase 1: 25/100 (25%) l1=0.0400 | ")
    assert lines[-1].startswith("[progress] tokenizer phase 1: 100/100 (100%) l1=0.0100 | ")
    assert all(" steps/s, elapsed " in line and ", ETA " in line for line in lines)


def test_progress_lines_only_from_rank_zero(monkeypatch) -> None:
    import io

    log = io.StringIO()
    monkeypatch.setenv("RANK", "1")
    with Progress(10, desc="x", stream=log) as bar:
        bar.update(10)
    assert log.getvalue() == ""


# --- logging ----------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_metric_logger_drops_rows_past_the_resumed_step(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "logs" / "train.csv"
    live = open_live(tmp_path / "logs", resume=False)
    with MetricLogger(path, ["loss", "acc"], start_step=0, live=live) as log:
        for step in range(1, 11):
            log.log(step, {"loss": 1.0 / step} if step % 2 else {"loss": 1.0 / step, "acc": 0.5})
    with open(path, "a") as fh:
        fh.write("11,0.0")  # a line cut short by a kill: dropped on resume
    rows = _rows(path)
    assert [r["step"] for r in rows][:10] == [str(s) for s in range(1, 11)]
    assert rows[0]["acc"] == "" and rows[1]["acc"] == "0.5" and float(rows[2]["loss"]) == 1 / 3

    # The run is killed after step 10 but its last checkpoint was at step 6.
    live = open_live(tmp_path / "logs", resume=True)
    with MetricLogger(path, ["loss", "acc"], start_step=6, live=live) as log:
        for step in range(7, 9):
            log.log(step, {"loss": 0.0})
    steps = [int(r["step"]) for r in _rows(path)]
    assert steps == list(range(1, 9))
    assert float(_rows(path)[6]["loss"]) == 0.0
    tsv = (tmp_path / "logs" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert [int(line.split("\t")[0]) for line in tsv[1:]] == list(range(1, 9))

    with MetricLogger(path, ["loss", "acc"], start_step=0) as log:  # a fresh run starts over
        log.log(1, {"loss": 2.0})
    assert [r["step"] for r in _rows(path)] == ["1"]
    with pytest.raises(ValueError, match="unknown metric"):
        MetricLogger(path, ["loss"], start_step=0).log(1, {"los": 1.0})
    with pytest.raises(ValueError, match="same columns"):
        MetricLogger(path, ["loss", "other"], start_step=1)


def test_truncate_after_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.csv"
    path.write_text("step,x\n1,1\n2,2\n3,3\n")
    truncate_after(path, 2)
    assert path.read_text() == "step,x\n1,1\n2,2\n"
    import seqgan.artefacts.files as sio

    original = sio.os.replace

    def crash(*args, **kwargs):
        raise OSError("killed before the rename")

    monkeypatch.setattr(sio.os, "replace", crash)
    with pytest.raises(OSError):
        truncate_after(path, 1)
    monkeypatch.setattr(sio.os, "replace", original)
    assert path.read_text() == "step,x\n1,1\n2,2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_open_live_never_initialises_a_dvc_project(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    live = open_live(repo / "logs", resume=False)
    live.log_metric("x", 1.0)
    live.make_summary()
    assert not (repo / ".dvc").exists() and not (repo / "dvc.yaml").exists()
    assert json.loads((repo / "logs" / "metrics.json").read_text())["x"] == 1.0


# --- runtime ----------------------------------------------------------------------------------


def test_resolve_device(monkeypatch) -> None:
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        runtime.resolve_device("tpu")


def test_autocast_is_off_on_cpu() -> None:
    with runtime.autocast_context(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_git_revision_never_raises(monkeypatch, tmp_path: Path) -> None:
    rev = provenance.git_revision()
    assert isinstance(rev, str) and rev
    assert rev == "unknown" or all(c in "0123456789abcdef" for c in rev.removesuffix("-dirty"))

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert provenance.git_revision() == "unknown"
    monkeypatch.setattr(ckpt, "git_revision", provenance.git_revision)
    save_weights(tmp_path / "w.safetensors", {"a": torch.zeros(1)}, {})
    assert load_weights(tmp_path / "w.safetensors")[1]["git_revision"] == "unknown"


def test_seed_everything_reproduces_draws() -> None:
    runtime.seed_everything(123)
    first = _draws()
    runtime.seed_everything(123)
    second = _draws()
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_a_cuda_device_turns_tf32_on(monkeypatch) -> None:
    """resolve_device("cuda") enables TF32 for float32 matmuls and convolutions (recorded in the
    sidecars' compute record); the CPU path leaves the flags alone."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        assert runtime.resolve_device("cpu") == torch.device("cpu")
        assert (
            not torch.backends.cuda.matmul.allow_tf32 and runtime.compute_record(torch.device("cpu"))["tf32"] is False
        )
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        assert runtime.resolve_device("auto") == torch.device("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
