"""Sample-set generation (seqgan.sample.generate) and the AR-prediction visualization
(seqgan.evaluate.visualize), on a tiny random-init tokenizer and transformer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model_raw

import seqgan.evaluate.visualize as visualize_mod
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.artefacts.tokens import open_token_split
from seqgan.config import validate_params
from seqgan.evaluate.visualize import (
    grid_size,
    save_visualization_grid,
    visualize_ar_prediction,
)
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.transformer_factory import build_transformer
from seqgan.sample.ar import teacher_forced_argmax
from seqgan.sample.generate import (
    even_class_counts,
    generate_samples,
    image_name,
    sampling_from_params,
)

AR_SAMPLING = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
NAR_SAMPLING = {"steps": 3, "temperature": 0.65, "schedule": "cosine"}


def tiny_params(conditional: bool = False):
    return validate_params(tiny_model_raw(conditional), "tiny params")


@pytest.fixture(scope="module")
def params():
    return tiny_params()


@pytest.fixture(scope="module")
def tokenizer(params):
    torch.manual_seed(0)
    tok = build_tokenizer(params, 1)
    with torch.no_grad():  # spread the codebook so a random-init encoder uses many codes
        tok.quantizer.embedding.weight.normal_(0.0, 0.5)
    return tok


def make_transformer(params, objective: str):
    torch.manual_seed(1)
    return build_transformer(params, "base", objective)


def read_pngs(directory: Path, n: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(directory / "images" / image_name(i))) for i in range(n)])


def run(tokenizer, transformer, out: Path, objective: str, seed: int = 0, num: int = 5, **kw):
    sampling = AR_SAMPLING if objective == "ar" else NAR_SAMPLING
    return generate_samples(
        transformer,
        tokenizer,
        objective=objective,
        num_samples=num,
        batch_size=2,
        seed=seed,
        out_dir=out,
        sampling=sampling,
        progress=False,
        **kw,
    )


# --------------------------------------------------------------------------------------------
# generate_samples
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["ar", "nar"])
def test_generate_writes_consistent_sample_set(tmp_path, params, tokenizer, objective):
    transformer = make_transformer(params, objective)
    n = 5
    manifest = run(
        tokenizer,
        transformer,
        tmp_path / "s0",
        objective,
        seed=0,
        num=n,
        meta={"transformer": {"sha256": "abc"}, "tokenizer": {"file": "tok.pt"}},
    )
    out = tmp_path / "s0"
    res = params.data.resolution
    side = res // params.tokenizer.architecture.compression

    pngs = sorted((out / "images").iterdir())
    assert [p.name for p in pngs] == [image_name(i) for i in range(n)]
    images = read_pngs(out, n)
    assert images.shape == (n, res, res, 3) and images.dtype == np.uint8

    tokens = np.load(out / "tokens.npy")
    assert tokens.shape == (n, side, side) and tokens.dtype == np.uint16
    assert tokens.max() < params.tokenizer.architecture.codebook_size
    # the PNGs are the decoding of exactly these tokens: decoded in generate_samples' batches of 2
    # (2 + 2 + 1), the same computation, so bit for bit (one pass over all 5 would run other conv
    # kernels, and a pixel near a rounding boundary of to_uint8 could move by one level)
    with torch.no_grad():
        grids = torch.from_numpy(tokens.astype(np.int64)).split(2)
        redecoded = np.concatenate([to_uint8(tokenizer.eval().decode_ids(g)) for g in grids])
    np.testing.assert_array_equal(redecoded, images)

    labels = np.load(out / "labels.npy")
    assert labels.dtype == np.int64 and (labels == -1).all() and labels.shape == (n,)

    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["count"] == n and manifest["objective"] == objective
    assert manifest["seed"] == 0 and manifest["class_counts"] is None
    assert manifest["sampling"] == (AR_SAMPLING if objective == "ar" else NAR_SAMPLING)
    assert manifest["transformer"] == {"sha256": "abc"} and manifest["tokenizer"] == {"file": "tok.pt"}
    assert manifest["resolution"] == [res, res]
    assert open_token_split(out, verify=True).tokens.shape == (n, side, side)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folder gone


@pytest.mark.parametrize("objective", ["ar", "nar"])
def test_generate_is_deterministic_in_the_seed(tmp_path, params, tokenizer, objective):
    transformer = make_transformer(params, objective)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        run(tokenizer, transformer, tmp_path / name, objective, seed=seed)
    tok = {k: (tmp_path / k / "tokens.npy").read_bytes() for k in "abc"}
    assert tok["a"] == tok["b"]
    assert tok["a"] != tok["c"]
    for i in range(5):
        a = (tmp_path / "a" / "images" / image_name(i)).read_bytes()
        assert a == (tmp_path / "b" / "images" / image_name(i)).read_bytes()
    man_a = json.loads((tmp_path / "a" / "manifest.json").read_text())
    man_b = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man_a["images_sha256"] == man_b["images_sha256"]


@pytest.mark.parametrize("objective", ["ar", "nar"])
def test_generate_conditional_labels_follow_class_counts(tmp_path, tokenizer, objective):
    params = tiny_params(conditional=True)
    transformer = make_transformer(params, objective)
    num_classes = params.data.synthetic.num_classes
    assert transformer.config.num_classes == num_classes
    counts = {0: 2, 3: 3, num_classes - 1: 1}
    manifest = run(tokenizer, transformer, tmp_path / "cond", objective, num=6, class_counts=counts)
    labels = np.load(tmp_path / "cond" / "labels.npy")
    assert labels.tolist() == [0, 0, 3, 3, 3, num_classes - 1]
    assert manifest["class_counts"] == {str(c): n for c, n in sorted(counts.items())}
    assert len(list((tmp_path / "cond" / "images").iterdir())) == 6

    with pytest.raises(ValueError, match="class_counts"):  # conditional model needs counts
        run(tokenizer, transformer, tmp_path / "x", objective, num=6)
    with pytest.raises(ValueError, match="sum"):
        run(tokenizer, transformer, tmp_path / "x", objective, num=6, class_counts={0: 1})


def test_generate_conditional_labels_reach_the_sampler(tmp_path, tokenizer, monkeypatch):
    import seqgan.sample.generate as gen

    params = tiny_params(conditional=True)
    transformer = make_transformer(params, "ar")
    seen: list[list[int]] = []

    def fake_sample_ar(model, batch_size, labels, **kw):
        seen.append(labels.tolist())
        return labels[:, None].repeat(1, model.config.seq_len)  # token = class id

    monkeypatch.setattr(gen, "sample_ar", fake_sample_ar)
    run(tokenizer, transformer, tmp_path / "s", "ar", num=5, class_counts={1: 2, 2: 3})
    assert seen == [[1, 1], [2, 2], [2]]
    tokens = np.load(tmp_path / "s" / "tokens.npy")
    assert (tokens[:2] == 1).all() and (tokens[2:] == 2).all()


def test_generate_unconditional_rejects_counts_and_bad_sampling(tmp_path, params, tokenizer):
    transformer = make_transformer(params, "ar")
    with pytest.raises(ValueError, match="unconditional"):
        run(tokenizer, transformer, tmp_path / "x", "ar", class_counts={0: 5})
    with pytest.raises(ValueError, match="missing"):
        generate_samples(
            transformer,
            tokenizer,
            objective="ar",
            num_samples=2,
            batch_size=2,
            seed=0,
            out_dir=tmp_path / "x",
            sampling={"temperature": 1.0},
            progress=False,
        )
    with pytest.raises(ValueError, match="does not match"):
        run(tokenizer, transformer, tmp_path / "x", "nar")
    assert not (tmp_path / "x").exists()


def test_generate_killed_run_never_looks_complete(tmp_path, params, tokenizer, monkeypatch):
    import seqgan.sample.generate as gen

    transformer = make_transformer(params, "ar")
    out = tmp_path / "s"
    run(tokenizer, transformer, out, "ar", seed=0)  # a complete earlier set
    calls = {"n": 0}
    real = gen.sample_ar

    def dying(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(gen, "sample_ar", dying)
    with pytest.raises(KeyboardInterrupt):
        run(tokenizer, transformer, out, "ar", seed=1)
    # the old complete set is untouched, no partial folder left behind
    assert json.loads((out / "manifest.json").read_text())["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_even_class_counts_and_sampling_from_params(params):
    assert even_class_counts(10, 4) == {0: 3, 1: 3, 2: 2, 3: 2}
    assert sum(even_class_counts(1000, 10).values()) == 1000
    assert sampling_from_params(params, "ar") == {
        "temperature": params.transformer.ar.temperature,
        "top_k": params.transformer.ar.top_k,
        "top_p": params.transformer.ar.top_p,
    }
    assert sampling_from_params(params, "nar") == {
        "steps": params.transformer.nar.steps,
        "temperature": params.transformer.nar.temperature,
        "schedule": params.transformer.nar.mask_schedule,
    }


# --------------------------------------------------------------------------------------------
# visualize
# --------------------------------------------------------------------------------------------


def random_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_visualize_perfect_prediction_equals_reconstruction(params, tokenizer, monkeypatch):
    transformer = make_transformer(params, "ar")
    images = random_images(3, params.data.resolution)
    # a transformer whose argmax is the ground truth
    monkeypatch.setattr(visualize_mod, "teacher_forced_argmax", lambda model, ids, labels=None: ids.clone())
    out = visualize_ar_prediction(tokenizer, transformer, images)
    with torch.no_grad():
        _, ids, _ = tokenizer.eval().encode(to_model_input(images, torch.device("cpu")))
    np.testing.assert_array_equal(out["ids"], ids.numpy())
    np.testing.assert_array_equal(out["pred_ids"], out["ids"])
    np.testing.assert_array_equal(out["prediction"], out["reconstruction"])
    np.testing.assert_array_equal(out["token_accuracy"], np.ones(3, np.float32))
    assert out["reconstruction"].shape == images.shape and out["reconstruction"].dtype == np.uint8


def test_visualize_real_argmax(params, tokenizer):
    transformer = make_transformer(params, "ar")
    images = random_images(2, params.data.resolution, seed=1)
    out = visualize_ar_prediction(tokenizer, transformer, images)
    b, h, w = out["ids"].shape
    expected = teacher_forced_argmax(transformer, torch.from_numpy(out["ids"]).reshape(b, h * w))
    np.testing.assert_array_equal(out["pred_ids"].reshape(b, -1), expected.numpy())
    np.testing.assert_allclose(
        out["token_accuracy"], (out["pred_ids"] == out["ids"]).reshape(b, -1).mean(axis=1), rtol=1e-6
    )
    with torch.no_grad():
        pred_img = to_uint8(tokenizer.eval().decode_ids(torch.from_numpy(out["pred_ids"])))
    np.testing.assert_array_equal(out["prediction"], pred_img)
    # a random-init model does not reproduce the ground truth
    assert out["token_accuracy"].mean() < 1.0
    assert not np.array_equal(out["prediction"], out["reconstruction"])


def test_visualization_grid_png(tmp_path):
    a = random_images(4, 8, seed=2)
    b = random_images(3, 8, seed=3)
    rows = [("input", a), ("alpha=0 recon", b), ("alpha=0 pred", a[:2])]
    path = save_visualization_grid(rows, tmp_path / "fig" / "grid.png", scale=2, pad=3, label_width=50)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        assert im.size == grid_size(rows, scale=2, pad=3, label_width=50)
        assert im.size == (50 + 3 + 4 * (16 + 3), 3 + 3 * (16 + 3))
        pixels = np.asarray(im)
    # first tile of the first row, nearest-upscaled x2, sits right of the label column
    tile = pixels[3 : 3 + 16, 53 : 53 + 16]
    np.testing.assert_array_equal(tile, a[0].repeat(2, axis=0).repeat(2, axis=1))
    assert (pixels[3:19, :50] != 255).any()  # the label was drawn
    with pytest.raises(ValueError, match="one size"):
        save_visualization_grid([("x", a), ("y", random_images(1, 4))], tmp_path / "bad.png")
