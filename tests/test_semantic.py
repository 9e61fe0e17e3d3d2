"""The embedded default's semantic network and its trainer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from seqgan.artefacts.checkpoints import load_weights, save_weights
from seqgan.artefacts.images import ImageStoreWriter, open_image_store
from seqgan.nets.backbone import TAP_NAMES, FeatureBackbone
from seqgan.nets.common import count_parameters
from seqgan.nets.semantic import (
    NORMALIZATION,
    SemanticNet,
    fold_batchnorm,
    load_semantic_net,
)
from seqgan.train import classifier
from seqgan.train.gates import QualityGateError
from seqgan.train.loop import TrainLoop
from seqgan.train.runtime import torch_threads

TINY_WIDTHS = (8, 12, 16, 24, 24)
# Folding BatchNorm computes the same function along another path (one conv instead of conv + BN).
# Float32 rounding per layer is ~6e-8 relative times sqrt(fan-in <= 9 * 24); over 10 layers that is
# ~1e-5, so 1e-4 leaves a factor of ten and still catches a wrong fold (errors of order 1).
FOLD_RTOL, FOLD_ATOL = 1e-4, 1e-5
CLASSES = ["h_stripes", "v_stripes", "disk", "checker"]


def _draw(rng: np.random.Generator, label: int, res: int) -> np.ndarray:
    """One easy stand-in image: a class-specific pattern in two random colours plus noise."""
    y, x = np.mgrid[0:res, 0:res].astype(np.float32)
    period = rng.uniform(5, 9)
    phase = rng.uniform(0, period)
    if label == 0:
        mask = ((y + phase) % period) < period / 2
    elif label == 1:
        mask = ((x + phase) % period) < period / 2
    elif label == 2:
        cy, cx = rng.uniform(0.35, 0.65, 2) * res
        mask = (y - cy) ** 2 + (x - cx) ** 2 < (rng.uniform(0.2, 0.35) * res) ** 2
    else:
        mask = (((y + phase) // (period / 2)) + ((x + phase) // (period / 2))) % 2 == 0
    fg, bg = rng.uniform(0, 255, (2, 3))
    image = np.where(mask[..., None], fg, bg) + rng.normal(0, 8, (res, res, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_split(directory: Path, count: int, seed: int, res: int = 32) -> None:
    rng = np.random.default_rng(seed)
    writer = ImageStoreWriter(directory, res, CLASSES)
    for i in range(count):
        label = i % len(CLASSES)
        writer.append(_draw(rng, label, res), label)
    writer.close()


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("standin")
    _write_split(root / "train", 480, seed=0)
    _write_split(root / "val", 120, seed=1)
    return root / "train", root / "val"


def _train(splits, out: Path, iterations: int, **overrides):
    train_dir, val_dir = splits
    kwargs = dict(
        widths=TINY_WIDTHS,
        iterations=iterations,
        batch_size=32,
        lr=2e-3,
        weight_decay=0.01,
        warmup_steps=30,
        hflip=False,
        seed=0,
        device="cpu",
        checkpoint_every=1000,
        eval_every=50,
        resume_path=out / "resume.pt",
        log_dir=out / "logs",
        min_val_accuracy=0.0,
        progress=False,
    )
    kwargs.update(overrides)
    return classifier.train_semantic_classifier(train_dir, val_dir, out / "net.safetensors", **kwargs)


# --- the network ------------------------------------------------------------------------------


@pytest.mark.parametrize("res", [32, 64])
def test_five_taps_before_pooling_and_logits(res: int) -> None:
    net = SemanticNet(TINY_WIDTHS, num_classes=7)
    taps, logits = net.features(torch.rand(2, 3, res, res) * 2 - 1)
    expected = [(2, w, res >> i, res >> i) for i, w in enumerate(TINY_WIDTHS)]
    assert [tuple(t.shape) for t in taps] == expected
    assert logits.shape == (2, 7)
    assert all(bool((t >= 0).all()) for t in taps)  # each tap is a ReLU output
    zeros = torch.zeros(1, 3, res, res)
    assert torch.equal(net(zeros), net.features(zeros)[1])


def test_implements_the_feature_backbone_protocol() -> None:
    net = SemanticNet(TINY_WIDTHS, num_classes=10)
    assert isinstance(net, FeatureBackbone)
    assert net.tap_names == TAP_NAMES and net.num_classes == 10
    with pytest.raises(ValueError):
        SemanticNet((8, 8, 8, 8), num_classes=10)


def _randomise_batchnorm(net: SemanticNet, seed: int = 0) -> SemanticNet:
    """Non-trivial BatchNorm statistics and affine terms, as after training."""
    gen = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            module.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(c, generator=gen) * 0.2)
    return net


def test_frozen_features_of_one_image_do_not_depend_on_its_batch() -> None:
    """Frozen (eval mode: running statistics), a perceptual loss may compare images across batches."""
    net = _randomise_batchnorm(SemanticNet(TINY_WIDTHS, num_classes=3)).eval()
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    alone, _ = net.features(images[:1])
    together, _ = net.features(images)
    for a, b in zip(alone, together, strict=True):
        torch.testing.assert_close(a, b[:1], rtol=1e-4, atol=1e-5)


def test_folding_batchnorm_keeps_the_function_and_removes_the_layers() -> None:
    torch.manual_seed(0)
    net = _randomise_batchnorm(SemanticNet(TINY_WIDTHS, num_classes=5)).eval()
    net.set_input_statistics([0.1, 0.0, -0.1], [0.4, 0.5, 0.6])
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        taps, logits = net.features(images)
        folded = fold_batchnorm(net)
        folded_taps, folded_logits = folded.features(images)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert all(m.bias is not None for m in folded.modules() if isinstance(m, torch.nn.Conv2d))
    torch.testing.assert_close(folded_logits, logits, rtol=FOLD_RTOL, atol=FOLD_ATOL)
    for a, b in zip(folded_taps, taps, strict=True):
        torch.testing.assert_close(a, b, rtol=FOLD_RTOL, atol=FOLD_ATOL)
    # a wrong fold (here: ignoring the running variance) is far outside that tolerance
    wrong = _randomise_batchnorm(SemanticNet(TINY_WIDTHS, num_classes=5)).eval()
    wrong.load_state_dict(_randomise_batchnorm(SemanticNet(TINY_WIDTHS, num_classes=5)).state_dict())
    for module in wrong.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_var.fill_(1.0)
    with torch.no_grad():
        assert not torch.allclose(fold_batchnorm(wrong)(images), folded_logits, rtol=1e-2, atol=1e-3)


def test_input_statistics_are_applied_and_saved() -> None:
    net = SemanticNet(TINY_WIDTHS, num_classes=3)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    before = net(images)
    net.set_input_statistics([0.1, -0.2, 0.3], [0.5, 0.6, 0.7])
    assert not torch.allclose(before, net(images))
    assert torch.equal(net.state_dict()["input_std"].flatten(), torch.tensor([0.5, 0.6, 0.7]))


# --- training ---------------------------------------------------------------------------------


def test_brief_training_beats_chance_by_a_wide_margin(splits, tmp_path: Path) -> None:
    with torch_threads(2):
        metrics = _train(splits, tmp_path, iterations=200)
    assert metrics["val_accuracy"] > 0.85, metrics  # chance is 0.25; seeds 0-5 give 0.95-0.99
    assert metrics["val_count"] == 120 and metrics["resumed_from_step"] == 0

    _, sidecar = load_weights(tmp_path / "net.safetensors")
    assert sidecar["kind"] == "semantic_net" and sidecar["step"] == 200
    assert sidecar["config"]["widths"] == list(TINY_WIDTHS)
    assert sidecar["config"]["num_classes"] == 4 and sidecar["config"]["resolution"] == 32
    assert sidecar["metrics"]["val_accuracy"] == metrics["val_accuracy"]
    assert "train_accuracy" in sidecar["metrics"] and "git_revision" in sidecar

    with open(tmp_path / "logs" / "val.csv", newline="") as fh:
        val_rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in val_rows] == [50, 100, 150, 200]
    assert float(val_rows[-1]["val_accuracy"]) == metrics["val_accuracy"]
    with open(tmp_path / "logs" / "train.csv", newline="") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == list(range(1, 201))

    net = load_semantic_net(tmp_path / "net.safetensors")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    pixels = open_image_store(splits[0]).images.reshape(-1, 3) / 127.5 - 1.0
    for buffer, expected in ((net.input_mean, pixels.mean(0)), (net.input_std, pixels.std(0))):
        torch.testing.assert_close(buffer.flatten().double(), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)
    trained_state, sidecar = load_weights(tmp_path / "net.safetensors")
    assert sidecar["config"]["normalization"] == NORMALIZATION
    unfolded = SemanticNet(TINY_WIDTHS, num_classes=4).eval()
    unfolded.load_state_dict(trained_state)
    images = torch.from_numpy(np.array(open_image_store(splits[1]).images[:16])).permute(0, 3, 1, 2) / 127.5 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(images), unfolded(images), rtol=FOLD_RTOL, atol=FOLD_ATOL)


def test_a_network_below_its_gate_is_not_written_and_its_run_is_kept(splits, tmp_path: Path) -> None:
    n = 20
    with torch_threads(2), pytest.raises(QualityGateError) as failure:
        _train(splits, tmp_path, n, min_val_accuracy=1.0, eval_every=10, warmup_steps=5)
    message = str(failure.value)
    accuracy = float(message.split("validation accuracy is ")[1].split(",")[0])
    assert accuracy < 1.0
    assert "semantic.min_val_accuracy = 1" in message and "semantic.lr" in message
    assert str(tmp_path / "logs" / "val.csv") in message
    assert not (tmp_path / "net.safetensors").exists()
    assert (tmp_path / "resume.pt").exists() and (tmp_path / "logs" / "val.csv").exists()
    # a lower gate re-checks the finished run without training again: it re-evaluates the same
    # weights, at the same thread count (another count runs other kernels, and a near-tie argmax
    # could flip one of the 120 classes), so the same accuracy up to the message's 4 decimals
    with torch_threads(2):
        metrics = _train(splits, tmp_path, n, min_val_accuracy=0.0, eval_every=10, warmup_steps=5)
    assert metrics["resumed_from_step"] == n and metrics["val_accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert (tmp_path / "net.safetensors").exists()


def test_save_then_load_gives_identical_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _randomise_batchnorm(SemanticNet(TINY_WIDTHS, num_classes=5)).eval()
    net.set_input_statistics([0.1, 0.0, -0.1], [0.4, 0.5, 0.6])
    config = {"widths": list(TINY_WIDTHS), "num_classes": 5, "resolution": 32, "normalization": NORMALIZATION}
    sidecar = {"kind": "semantic_net", "config": config}
    save_weights(tmp_path / "n.safetensors", net.state_dict(), sidecar)
    loaded = load_semantic_net(tmp_path / "n.safetensors")
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        reference = fold_batchnorm(net)  # the same computation path as the loaded net: bitwise
        assert torch.equal(reference(images), loaded(images))
        for a, b in zip(reference.features(images)[0], loaded.features(images)[0], strict=True):
            assert torch.equal(a, b)

    old_layout = {**config, "normalization": "none"}  # weights of the earlier, BatchNorm-free net
    save_weights(
        tmp_path / "old.safetensors",
        load_weights(tmp_path / "n.safetensors")[0],
        {"kind": "semantic_net", "config": old_layout},
    )
    with pytest.raises(ValueError, match="normalization 'none'.*retrain"):
        load_semantic_net(tmp_path / "old.safetensors")

    sidecar = {"kind": "tokenizer", "config": config}
    save_weights(tmp_path / "x.safetensors", net.state_dict(), sidecar)
    with pytest.raises(ValueError, match="semantic_net"):
        load_semantic_net(tmp_path / "x.safetensors")


class _Killed(Exception):
    pass


def test_resume_after_a_kill_is_bit_identical(splits, tmp_path: Path, monkeypatch) -> None:
    n = 24
    common = dict(checkpoint_every=n // 2, eval_every=8, hflip=True, warmup_steps=5)
    with torch_threads(2):
        straight = _train(splits, tmp_path / "straight", n, **common)

        original = TrainLoop.maybe_checkpoint

        def die_after_half(self, completed: int) -> bool:
            saved = original(self, completed)
            if completed == n // 2 + 3:  # killed 3 steps after the checkpoint at n/2
                raise _Killed
            return saved

        monkeypatch.setattr(TrainLoop, "maybe_checkpoint", die_after_half)
        with pytest.raises(_Killed):
            _train(splits, tmp_path / "resumed", n, **common)
        monkeypatch.setattr(TrainLoop, "maybe_checkpoint", original)
        assert not (tmp_path / "resumed" / "net.safetensors").exists()
        resumed = _train(splits, tmp_path / "resumed", n, **common)

    assert straight["resumed_from_step"] == 0 and resumed["resumed_from_step"] == n // 2
    a = load_weights(tmp_path / "straight" / "net.safetensors")[0]
    b = load_weights(tmp_path / "resumed" / "net.safetensors")[0]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the logs of the killed run were cut back to the checkpoint: same rows, no duplicates
    for name in ("train.csv", "val.csv"):
        assert (tmp_path / "straight" / "logs" / name).read_text() == (tmp_path / "resumed" / "logs" / name).read_text()

    with pytest.raises(ValueError, match="other settings"):  # refuses a stale resume file
        _train(splits, tmp_path / "resumed", n, **{**common, "lr": 1e-3})


def test_parameter_count_is_reported() -> None:
    net = SemanticNet((16, 32, 64, 128, 128), num_classes=10)
    convs = [(3, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    convs += [(64, 128), (128, 128), (128, 128), (128, 128)]
    expected = sum(9 * i * o + 2 * o for i, o in convs) + 128 * 10 + 10  # no conv bias; BN scale + shift
    assert count_parameters(net) == expected
