"""The judge: another network than the loss network, trained to read the shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqgan.artefacts.checkpoints import load_weights
from seqgan.data.synthetic import write_synthetic_split
from seqgan.evaluate.fid import judge_feature_network
from seqgan.nets.judge import JUDGE_KIND, JudgeNet, load_judge_net, shape_augment
from seqgan.nets.semantic import SemanticNet, load_semantic_net
from seqgan.train.classifier import train_semantic_classifier
from seqgan.train.gates import QualityGateError


def test_judge_is_another_architecture_than_the_loss_network() -> None:
    judge, semantic = JudgeNet((8, 8, 16), 4), SemanticNet((4, 4, 8, 8, 8), 4)
    kinds = {type(m).__name__ for m in judge.modules()}
    assert "_Block" in kinds and "MaxPool2d" not in kinds  # residual, strided
    assert "MaxPool2d" in {type(m).__name__ for m in semantic.modules()}  # a plain pooled stack
    taps, logits = judge.eval().features(torch.zeros(2, 3, 32, 32))
    assert [t.shape[-1] for t in taps] == [32, 16, 8] and logits.shape == (2, 4)


def test_shape_augment_is_a_pure_function_of_seed_and_step_and_keeps_the_outline() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 3, 16, 16, generator=g) * 2 - 1
    a, b = shape_augment(x, 7, 3), shape_augment(x, 7, 3)
    assert torch.equal(a, b) and not torch.equal(a, shape_augment(x, 7, 4))
    assert a.abs().max() <= 1.0 + 1e-6
    # a two-level image (a square on a background): every augmentation keeps where the edge is
    img = -torch.ones(32, 3, 16, 16)
    img[:, :, 4:12, 4:12] = torch.tensor([0.9, 0.2, -0.5])[:, None, None]
    out = shape_augment(img, 1, 0)
    inside, outside = out[:, :, 6:10, 6:10].mean(dim=(1, 2, 3)), out[:, :, :2, :2].mean(dim=(1, 2, 3))
    assert ((inside - outside).abs() > 0.3).all()
    assert (out.mean(dim=(2, 3)) > 0).any() and (out.mean(dim=(2, 3)) < 0).any()  # polarity varies


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("judge_data")
    write_synthetic_split(root / "train", 256, 16, 3, seed=5, split="train")
    write_synthetic_split(root / "val", 64, 16, 3, seed=5, split="val")
    return root


def _train(root: Path, out: Path, min_val_accuracy: float) -> dict:
    return train_semantic_classifier(
        root / "train",
        root / "val",
        out / "judge.safetensors",
        widths=(8, 8, 16),
        iterations=30,
        batch_size=32,
        lr=4e-3,
        weight_decay=0.05,
        warmup_steps=5,
        hflip=False,
        seed=11,
        device="cpu",
        checkpoint_every=100,
        eval_every=15,
        resume_path=out / "resume.pt",
        log_dir=out / "logs",
        min_val_accuracy=min_val_accuracy,
        progress=False,
        architecture="judge",
    )


def test_a_trained_judge_is_its_own_kind_and_judges(splits: Path, tmp_path: Path) -> None:
    metrics = _train(splits, tmp_path, 0.0)
    _, sidecar = load_weights(tmp_path / "judge.safetensors")
    assert sidecar["kind"] == JUDGE_KIND and sidecar["training"]["augment"].startswith("shape_augment")
    assert sidecar["training"]["seed"] == 11
    judge = load_judge_net(tmp_path / "judge.safetensors")
    assert not any(p.requires_grad for p in judge.parameters())
    with pytest.raises(ValueError, match="expected 'semantic_net'"):
        load_semantic_net(tmp_path / "judge.safetensors")
    network = judge_feature_network(judge, weights_file=tmp_path / "judge.safetensors")
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    assert network.extract(images).shape == (4, 16)
    probs = network.class_probabilities(images)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4))
    assert network.name == "judge_stage3_gap" and 0.0 <= metrics["val_accuracy"] <= 1.0


def test_the_judge_gate_names_its_own_key(splits: Path, tmp_path: Path) -> None:
    with pytest.raises(QualityGateError, match="judge.min_val_accuracy"):
        _train(splits, tmp_path, 1.01)
