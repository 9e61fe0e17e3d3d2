"""Generation metrics of sample sets (seqgan.evaluate.generation), sample grids
(seqgan.report.sample_grids) and supplement Fig. 1 (seqgan.report.fig1), with their CLI commands.

Tiny random-weight networks, 32 px images, sample directories written by hand in the format of
``seqgan sample``; the file runs in seconds on one thread.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from seqgan.artefacts.checkpoints import save_weights
from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.samples import open_sample_set
from seqgan.artefacts.tokens import write_token_split
from seqgan.cli import main
from seqgan.config import validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.evaluate.fid import (
    class_probabilities_of_images,
    compute_reference,
    inception_score,
    save_reference,
    semantic_feature_network,
)
from seqgan.evaluate.generation import (
    classifier_view,
    evaluate_generation,
    histogram_noise_floor,
    histogram_tv_distance,
    inception_score_skip_reason,
)
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.semantic import (
    CONVS_PER_STAGE,
    NORMALIZATION,
    SemanticNet,
    load_semantic_net,
)
from seqgan.nets.vqgan import load_phase1_state
from seqgan.report.fig1 import check_same_tokens, fig1_panels, plot_fig1, psnr_table
from seqgan.report.sample_grids import image_mosaic, plot_sample_grid, sample_grid_rows
from seqgan.train.tokenizer_model import WEIGHTS_KIND, tokenizer_config

ROOT = Path(__file__).resolve().parents[1]
RES = 32
NUM_CLASSES = 4
NUM_REF = 40
WIDTHS = [4, 8, 8, 16, 16]
VERDICTS = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluation"]["verdicts"]
CONFIDENT_THRESHOLD = VERDICTS["confident_probability"]
DRAWS = 20  # histogram-noise draws in these tests (params.yaml: evaluation.verdicts.histogram_noise_draws)


def tiny_raw() -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["run"]["device"] = "cpu"
    raw["data"]["resolution"] = RES
    raw["data"]["synthetic"]["num_classes"] = NUM_CLASSES
    raw["transformer"]["num_classes"] = NUM_CLASSES
    raw["transformer"]["conditional"] = False
    raw["tokenizer"]["architecture"].update(
        base_channels=8,
        channel_mult=[1, 2, 2],
        num_res_blocks=1,
        extra_res_blocks=0,
        num_groups=4,
        codebook_size=16,
        code_dim=8,
    )
    raw["tokenizer"]["phase2"]["attention"].update(block_size=2, dilation=2, heads=2)
    raw["evaluation"].update(fid_network="semantic", batch_size=16, generation_reference="train")
    raw["evaluation"]["sample_grid"].update(classes=[], columns=3, rows=2)
    return raw


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_raw(), sort_keys=False))
    return path


@pytest.fixture(scope="module")
def params():
    return validate_params(tiny_raw(), "tiny params")


def tiny_semantic(seed: int) -> SemanticNet:
    torch.manual_seed(seed)
    return SemanticNet(WIDTHS, NUM_CLASSES).eval()


def save_semantic(net: SemanticNet, path: Path) -> Path:
    sidecar = {
        "kind": "semantic_net",
        "config": {
            "widths": WIDTHS,
            "num_classes": NUM_CLASSES,
            "convs_per_stage": list(CONVS_PER_STAGE),
            "normalization": NORMALIZATION,
        },
    }
    save_weights(path, net.state_dict(), sidecar)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 40-image reference split, a tiny semantic net (on disk too) and reference statistics."""
    root = tmp_path_factory.mktemp("generation")
    write_synthetic_split(root / "train", NUM_REF, RES, NUM_CLASSES, seed=3, split="train")
    store = open_image_store(root / "train")
    weights = save_semantic(tiny_semantic(1), root / "semantic.safetensors")
    net = load_semantic_net(weights)  # as the commands load it (eval mode, BatchNorm folded)
    network = semantic_feature_network(net, weights_file=weights)
    reference = compute_reference(store, network, name="tiny/train", batch_size=16)
    save_reference(root / "train.npz", reference.mu, reference.sigma, reference.meta)
    return {
        "root": root,
        "store": store,
        "net": net,
        "weights": weights,
        "network": network,
        "reference": reference,
        "reference_file": root / "train.npz",
    }


def write_sample_dir(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    seed: int = 7,
    objective: str = "ar",
    tokenizer: dict | None = None,
) -> Path:
    """A sample directory in the layout of seqgan.sample.generate (PNGs, tokens, labels, manifest)."""
    n = len(images)
    conditional = labels is not None
    labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    (out / "images").mkdir(parents=True)
    h = hashlib.sha256()
    for i, image in enumerate(images):
        path = out / "images" / f"{i:06d}.png"
        Image.fromarray(image).save(path, format="PNG")
        h.update(path.read_bytes())
    counts = {str(c): int((labels == c).sum()) for c in sorted(set(labels.tolist()))} if conditional else None
    meta = {
        "kind": "generated_samples",
        "objective": objective,
        "sampling": {"temperature": 1.0, "top_k": 0, "top_p": 0.98},
        "seed": seed,
        "batch_size": 4,
        "class_counts": counts,
        "images_dir": "images",
        "image_format": "png",
        "resolution": [int(images.shape[1]), int(images.shape[2])],
        "images_sha256": h.hexdigest(),
        "tokenizer_checkpoint": tokenizer or {"file": "tok.safetensors", "phase": 1},
    }
    tokens = np.random.default_rng(seed).integers(0, 16, (n, 8, 8))
    write_token_split(out, tokens, labels, meta, codebook_size=16)
    return out


def shifted(images: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(images.astype(np.int16) + amount, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Generation metrics
# --------------------------------------------------------------------------------------------


def test_fid_of_the_reference_images_is_zero_shift_grows_it_and_classifier_views_agree(world, tmp_path):
    images = np.array(world["store"].images)
    own = open_sample_set(write_sample_dir(tmp_path / "own", images))
    moved = open_sample_set(write_sample_dir(tmp_path / "moved", shifted(images, 60)))
    kw = dict(
        fid_network="semantic",
        batch_size=16,
        inception_score_splits=10,
        confident_threshold=CONFIDENT_THRESHOLD,
        histogram_noise_draws=DRAWS,
        reference_store=world["store"],
    )
    a = evaluate_generation(own, world["network"], world["reference"], **kw)
    b = evaluate_generation(moved, world["network"], world["reference"], **kw)
    assert abs(a["fid"]) < 1e-6
    assert b["fid"] > 1e-3 and b["fid"] > 1000 * abs(a["fid"])
    assert a["num_samples"] == NUM_REF and a["feature_network"]["name"] == "semantic_relu5_3_gap"
    # unconditional: no IS, and the file says why
    assert a["inception_score"] is None and a["inception_score_std"] is None
    assert "unconditional" in a["inception_score_note"]
    c = a["classifier"]
    assert 1 / NUM_CLASSES <= c["mean_max_prob"] <= 1 and 0 <= c["confident_fraction"] <= 1
    assert len(c["predicted_class_histogram"]) == NUM_CLASSES
    assert sum(c["predicted_class_histogram"]) == NUM_REF
    assert c["confident_threshold"] == CONFIDENT_THRESHOLD and "label_agreement" not in c
    # the samples ARE the reference images (all 40, same order): both views coincide
    ref = c["reference"]
    for key in ("mean_max_prob", "confident_fraction", "predicted_class_histogram", "count"):
        assert ref[key] == c[key]
    assert c["histogram_tv_distance"] == 0.0
    # in the pipeline's batches of 16: an argmax is discrete, and one pass of 40 would run other
    # conv kernels, where a near-tie could flip a class on another CPU
    probs = class_probabilities_of_images(images, world["network"], batch_size=16)
    assert ref["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == world["store"].labels))
    assert c["mean_max_prob"] == pytest.approx(probs.max(1).mean())


def test_classifier_view_by_hand():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.7, 0.1], [0.4, 0.3, 0.3], [0.1, 0.1, 0.8]])
    view = classifier_view(probs, 0.5, labels=np.array([0, 1, 2, 2]))
    assert view["mean_max_prob"] == pytest.approx((0.5 + 0.7 + 0.4 + 0.8) / 4)
    assert view["confident_fraction"] == pytest.approx(3 / 4)  # 0.5 itself counts as confident
    assert view["predicted_class_histogram"] == [2, 1, 1]  # a tie goes to the lower class
    assert view["label_agreement"] == pytest.approx(3 / 4)
    assert "label_agreement" not in classifier_view(probs, 0.5, labels=np.full(4, -1))
    with pytest.raises(ValueError, match="confident_threshold"):
        classifier_view(probs, 0.0)
    assert histogram_tv_distance([2, 1, 1], [1, 0, 1]) == pytest.approx(0.5 * (0 + 0.25 + 0.25))
    assert histogram_tv_distance([3, 0], [0, 5]) == 1.0


def expected_tv_between_two_sets(p: np.ndarray, n: int) -> float:
    """E TV of two independent n-sets from class probabilities p (normal approximation):
    each class's difference of proportions has variance 2 p (1 - p) / n, E|d| = sqrt(2 / pi) * sd."""
    return float(np.sum(np.sqrt(p * (1 - p) / (np.pi * n))))


def test_histogram_noise_floor_matches_sampling_theory_and_2x_separates_real_from_skewed_sets():
    rng = np.random.default_rng(0)
    p = np.array([13, 26, 20, 22, 18, 21, 19, 24, 17, 20], float)
    p /= p.sum()  # the real images' class frequencies measured on the embedded default (200 images)
    n = 200
    pool = rng.choice(10, 2 * n, p=p)
    floor = histogram_noise_floor(pool, 10, n, draws=200, rng=np.random.default_rng(1))
    assert floor["mean"] == pytest.approx(expected_tv_between_two_sets(p, n), rel=0.1)  # ~0.12
    assert "disjoint random halves of 200 out of a pool of 400" in floor["method"]
    assert floor["draws"] == 200 and floor["set_size"] == n and floor["q95"] > floor["mean"]
    # real-image sets of n compared with another real set: beyond 2 x the floor in < 1 % of draws
    reference = np.bincount(rng.choice(10, n, p=p), minlength=10)
    null = [histogram_tv_distance(np.bincount(rng.choice(10, n, p=p), minlength=10), reference) for _ in range(500)]
    assert np.mean(np.array(null) > 2 * floor["mean"]) < 0.01
    # a skew like the embedded default's AR samples (TV 0.355 measured; classes with 2-3 of 200 samples)
    skewed = [2, 3, 80, 30, 18, 21, 5, 24, 7, 10]
    assert histogram_tv_distance(skewed, np.round(p * n)) == pytest.approx(0.34)
    assert 0.34 > 2 * floor["mean"] and 0.355 > 2 * floor["mean"]


def test_histogram_noise_floor_bootstraps_when_the_pool_is_small_and_is_seeded():
    pool = np.array([0, 1, 2, 3] * 5)
    a = histogram_noise_floor(pool, 4, 15, draws=50, rng=np.random.default_rng(3))
    b = histogram_noise_floor(pool, 4, 15, draws=50, rng=np.random.default_rng(3))
    assert a == b and "drawn with replacement from 20" in a["method"]
    assert 0 < a["mean"] < 1
    # one class only: any two sets have identical histograms
    assert histogram_noise_floor(np.zeros(40, int), 4, 10, draws=5, rng=np.random.default_rng(0))["mean"] == 0.0
    with pytest.raises(ValueError, match="draws >= 1"):
        histogram_noise_floor(pool, 4, 5, draws=0, rng=np.random.default_rng(0))


def test_evaluate_generation_records_the_noise_floor_of_the_reference_split(world, tmp_path):
    images = np.array(world["store"].images[:8])
    samples = open_sample_set(write_sample_dir(tmp_path / "s", images, seed=11))
    kw = dict(
        fid_network="semantic",
        batch_size=16,
        inception_score_splits=10,
        confident_threshold=0.5,
        histogram_noise_draws=DRAWS,
        reference_store=world["store"],
    )
    record = evaluate_generation(samples, world["network"], world["reference"], **kw)
    floor = record["classifier"]["histogram_noise_floor"]
    assert floor["seed"] == 11 and floor["set_size"] == 8 and floor["draws"] == DRAWS
    assert "disjoint random halves of 8 out of a pool of 16" in floor["method"]
    # recomputed by hand: a seeded pool of 16 of the 40 reference images, classified, re-split
    rng = np.random.default_rng(11)
    index = np.sort(rng.choice(NUM_REF, size=16, replace=False))
    # batch_size as the pipeline's (one batch of 16): the same computation, so the same argmax classes
    predicted = class_probabilities_of_images(
        np.array(world["store"].images)[index], world["network"], batch_size=16
    ).argmax(1)
    assert floor == {**histogram_noise_floor(predicted, NUM_CLASSES, 8, draws=DRAWS, rng=rng), "seed": 11}
    again = evaluate_generation(samples, world["network"], world["reference"], **kw)
    assert again["classifier"]["histogram_noise_floor"] == floor
    # a sample set as large as the split: bootstrap from the whole split
    full = open_sample_set(write_sample_dir(tmp_path / "f", np.array(world["store"].images)))
    big = evaluate_generation(full, world["network"], world["reference"], **kw)["classifier"]["histogram_noise_floor"]
    assert "with replacement from 40" in big["method"] and big["set_size"] == NUM_REF


def test_a_reference_of_another_network_or_resolution_is_refused(world, tmp_path):
    samples = open_sample_set(write_sample_dir(tmp_path / "s", np.array(world["store"].images[:8])))
    other = semantic_feature_network(tiny_semantic(2))
    kw = dict(
        fid_network="semantic",
        batch_size=16,
        inception_score_splits=10,
        confident_threshold=0.5,
        histogram_noise_draws=DRAWS,
        reference_store=world["store"],
    )
    with pytest.raises(ValueError, match="another feature network.*weights sha256"):
        evaluate_generation(samples, other, world["reference"], **kw)
    small = open_sample_set(write_sample_dir(tmp_path / "small", np.array(world["store"].images[:8, :16, :16])))
    with pytest.raises(ValueError, match="16x16 px.*32 px"):
        evaluate_generation(small, world["network"], world["reference"], **kw)


def test_inception_score_only_for_conditional_models_with_inception(world, tmp_path):
    network = world["network"]
    assert "unconditional" in inception_score_skip_reason(False, network, "inception")
    assert "fid_network = 'semantic'" in inception_score_skip_reason(True, network, "semantic")
    assert inception_score_skip_reason(True, network, "inception") is None

    images = np.array(world["store"].images[:20])
    labels = np.array(world["store"].labels[:20])
    samples = open_sample_set(write_sample_dir(tmp_path / "cond", images, labels))
    kw = dict(
        batch_size=16,
        inception_score_splits=5,
        confident_threshold=0.5,
        histogram_noise_draws=DRAWS,
        reference_store=world["store"],
    )
    semantic = evaluate_generation(samples, network, world["reference"], fid_network="semantic", **kw)
    assert semantic["inception_score"] is None
    # in the pipeline's batches of 16 (16 + 4), the same computation: an argmax is discrete, and one
    # pass of 20 would run other conv kernels, where a near-tie could flip a class on another CPU
    probs = class_probabilities_of_images(images, network, batch_size=16)
    assert semantic["classifier"]["label_agreement"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    # the IS path (exercised with this network's head standing in for Inception's)
    scored = evaluate_generation(samples, network, world["reference"], fid_network="inception", **kw)
    expected = inception_score(probs, splits=5)
    assert (scored["inception_score"], scored["inception_score_std"]) == pytest.approx(expected)
    assert scored["inception_score_splits"] == 5
    assert scored["classifier"] is None and "Inception" in scored["classifier_note"]


def test_edited_pngs_are_refused(world, tmp_path):
    out = write_sample_dir(tmp_path / "s", np.array(world["store"].images[:4]))
    Image.fromarray(np.zeros((RES, RES, 3), np.uint8)).save(out / "images" / "000001.png")
    with pytest.raises(ValueError, match="images_sha256"):
        open_sample_set(out)


def test_eval_samples_cli_writes_the_contract_keys(world, params_file, tmp_path):
    images = np.array(world["store"].images)
    samples = write_sample_dir(tmp_path / "samples", shifted(images, 30), seed=7)
    common = [
        "eval-samples",
        "--params",
        str(params_file),
        "--samples",
        str(samples),
        "--objective",
        "ar",
        "--size",
        "base",
        "--variant",
        "alpha1.0",
        "--decoder",
        "phase1",
        "--seed",
        "7",
        "--reference-split-dir",
        str(world["root"] / "train"),
        "--threads",
        "1",
    ]
    out = tmp_path / "seed7.json"
    assert (
        main(
            [
                *common,
                "--reference",
                str(world["reference_file"]),
                "--semantic",
                str(world["weights"]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads(out.read_text())
    for key in (
        "fid",
        "inception_score",
        "inception_score_std",
        "classifier",
        "num_samples",
        "seed",
        "objective",
        "size",
        "variant",
        "decoder",
        "sampling",
        "feature_network",
        "reference",
    ):
        assert key in record, key
    assert record["fid"] > 0 and record["num_samples"] == NUM_REF and record["seed"] == 7
    assert record["reference"] == {
        "file": str(world["reference_file"]),
        "split": "train",
        "name": "tiny/train",
        "count": NUM_REF,
        "selection": "all images",
        "source_sha256": world["store"].manifest["sha256"],
    }
    assert record["sampling"] == {"temperature": 1.0, "top_k": 0, "top_p": 0.98}
    assert record["feature_network"]["weights"]["file"] == str(world["weights"])
    assert set(record["classifier"]) >= {
        "name",
        "mean_max_prob",
        "confident_fraction",
        "predicted_class_histogram",
        "reference",
        "histogram_tv_distance",
        "histogram_noise_floor",
    }
    # the metric definitions come from params.yaml (evaluation.verdicts)
    assert record["classifier"]["confident_threshold"] == VERDICTS["confident_probability"]
    assert record["classifier"]["histogram_noise_floor"]["draws"] == VERDICTS["histogram_noise_draws"]

    other = save_semantic(tiny_semantic(2), tmp_path / "other.safetensors")
    with pytest.raises(SystemExit, match="train.npz.*another feature network"):
        main(
            [
                *common,
                "--reference",
                str(world["reference_file"]),
                "--semantic",
                str(other),
                "--out",
                str(tmp_path / "x.json"),
            ]
        )
    with pytest.raises(SystemExit, match="seed 7 != --seed 8"):
        main(
            [
                *[a if a != "7" else "8" for a in common],
                "--reference",
                str(world["reference_file"]),
                "--semantic",
                str(world["weights"]),
                "--out",
                str(tmp_path / "y.json"),
            ]
        )
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()


# --------------------------------------------------------------------------------------------
# Sample grids
# --------------------------------------------------------------------------------------------


def png_tiles(path: Path, layout) -> list[list[np.ndarray]]:
    """The tiles of a grid PNG, downsampled back to image pixels."""
    png = np.asarray(Image.open(path).convert("RGB"))
    assert png.shape[:2] == (layout.height, layout.width)
    tiles = []
    for r in range(layout.rows):
        row = []
        for c in range(layout.columns):
            x0, y0, x1, y1 = layout.tile_box(r, c)
            row.append(png[y0 : y1 : layout.scale, x0 : x1 : layout.scale])
        tiles.append(row)
    return tiles


def random_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, RES, RES, 3), dtype=np.uint8)


def test_mosaic_places_tiles_with_padding():
    rows = [random_images(3, 1)[:, :4, :5], random_images(2, 2)[:, :4, :5]]
    mosaic = image_mosaic(rows, pad=1)
    assert mosaic.shape == (1 + 2 * 5, 1 + 3 * 6, 3)
    np.testing.assert_array_equal(mosaic[6:10, 7:12], rows[1][1])
    assert (mosaic[6:10, 13:18] == 255).all()  # the short row leaves background


def test_unconditional_grid_shows_the_first_samples_row_major_and_refuses_too_few(tmp_path):
    images = random_images(8)
    samples = open_sample_set(write_sample_dir(tmp_path / "s", images, seed=5))
    layout = plot_sample_grid(
        samples, tmp_path / "grid.pdf", classes=[3], columns=3, rows=2, title="t", description="AR base"
    )
    assert (layout.rows, layout.columns) == (2, 3)
    assert (tmp_path / "grid.pdf").read_bytes().startswith(b"%PDF")
    tiles = png_tiles(tmp_path / "grid.png", layout)
    for r in range(2):
        for c in range(3):
            np.testing.assert_array_equal(tiles[r][c], images[3 * r + c])
    _, caption = sample_grid_rows(samples, classes=[], columns=3, rows=2)
    assert caption == "uncurated, first 6 samples of seed 5"
    with pytest.raises(ValueError, match=r"holds 8 samples.*3 x 3 = 9"):
        sample_grid_rows(samples, classes=[], columns=3, rows=3)


def test_conditional_grid_has_one_row_per_listed_class(tmp_path):
    images = random_images(12)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3])
    samples = open_sample_set(write_sample_dir(tmp_path / "s", images, labels))
    rows, caption = sample_grid_rows(
        samples, classes=[2, 0], columns=3, rows=99, class_names=["circle", "square", "star", "ring"]
    )
    assert [name for name, _ in rows] == ["class 2 (star)", "class 0 (circle)"]
    np.testing.assert_array_equal(rows[0][1], images[7:10])
    np.testing.assert_array_equal(rows[1][1], images[0:3])
    assert "first 3 samples generated for each class" in caption
    with pytest.raises(ValueError, match="class 3 has 2 samples"):
        sample_grid_rows(samples, classes=[0, 3], columns=3, rows=1)
    with pytest.raises(ValueError, match="sample_grid.classes is empty"):
        sample_grid_rows(samples, classes=[], columns=3, rows=1)


def test_sample_grid_cli(params_file, tmp_path):
    samples = write_sample_dir(tmp_path / "s", random_images(6), seed=2)
    args = [
        "sample-grid",
        "--params",
        str(params_file),
        "--samples",
        str(samples),
        "--objective",
        "ar",
        "--size",
        "base",
        "--variant",
        "alpha1.0",
        "--decoder",
        "phase1",
    ]
    assert main([*args, "--out", str(tmp_path / "g.pdf")]) == 0  # params: 2 rows x 3 columns
    assert (tmp_path / "g.png").is_file()
    few = write_sample_dir(tmp_path / "few", random_images(5))
    with pytest.raises(SystemExit, match="holds 5 samples"):
        main([*[str(few) if a == str(samples) else a for a in args], "--out", str(tmp_path / "h.pdf")])
    with pytest.raises(SystemExit, match="phase-1 tokenizer, not the phase2 decoder"):
        main([*args[:-1], "phase2", "--out", str(tmp_path / "i.pdf")])


# --------------------------------------------------------------------------------------------
# Supplement Fig. 1
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizers(params):
    """A random phase-1 tokenizer and the phase-2 one prepared from it (zero-initialised attention)."""
    torch.manual_seed(0)
    tok1 = build_tokenizer(params, 1).eval()
    with torch.no_grad():  # spread the codebook so many codes are in use
        tok1.quantizer.embedding.weight.normal_(0.0, 0.5)
    tok2 = build_tokenizer(params, 2).eval()
    load_phase1_state(tok2, tok1.state_dict())
    return tok1, tok2


def test_fig1_zero_init_phase2_decodes_identically_and_changed_codebook_is_refused(tokenizers, world, tmp_path):
    tok1, tok2 = tokenizers
    ids = np.random.default_rng(0).integers(0, 16, (3, 8, 8)).astype(np.uint16)
    val = np.array(world["store"].images[:4])
    panels = fig1_panels(tok1, tok2, ids, val)
    np.testing.assert_array_equal(panels.sample_phase1, panels.sample_phase2)
    np.testing.assert_array_equal(panels.val_phase1, panels.val_phase2)
    assert panels.sample_decoder_difference == 0.0
    assert panels.sample_phase1.shape == (3, RES, RES, 3) and panels.val_ids.shape == (4, 8, 8)
    assert (panels.psnr_phase1 == panels.psnr_phase2).all() and np.isfinite(panels.psnr_phase1).all()

    layout = plot_fig1(panels, tmp_path / "fig1.pdf", title="t", caption="c")
    tiles = png_tiles(tmp_path / "fig1.png", layout)
    assert (layout.rows, layout.columns) == (5, 4)
    np.testing.assert_array_equal(tiles[2][1], val[1])  # row 3: the originals
    np.testing.assert_array_equal(tiles[4][3], panels.val_phase2[3])
    table = psnr_table(panels, range(4), world["store"].labels[:4], world["store"].class_names)
    assert list(table.columns) == [
        "val_index",
        "label",
        "class_name",
        "psnr_phase1_db",
        "psnr_phase2_db",
        "psnr_gain_db",
    ]
    assert (table.psnr_gain_db == 0).all()

    # a trained attention changes the output but not the tokens: accepted, decodings differ
    changed = {k: v.clone() for k, v in tok2.state_dict().items()}
    out_keys = [k for k in changed if ".attn." in k and k.endswith("proj_out.weight")]
    assert out_keys
    for k in out_keys:
        changed[k].normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    tok2_trained = build_tokenizer_like(tok2, changed)
    trained = fig1_panels(tok1, tok2_trained, ids, val)
    np.testing.assert_array_equal(trained.sample_phase1, panels.sample_phase1)
    assert trained.sample_decoder_difference > 0

    changed["quantizer.embedding.weight"] += 1.0
    with pytest.raises(ValueError, match="same ids name different codes"):
        check_same_tokens(tok1, build_tokenizer_like(tok2, changed))


def build_tokenizer_like(model: torch.nn.Module, state: dict) -> torch.nn.Module:
    """A copy of ``model`` carrying ``state``."""
    clone = copy.deepcopy(model)
    clone.load_state_dict(state)
    return clone.eval()


def save_tokenizer(model, params, phase: int, path: Path) -> Path:
    save_weights(
        path,
        model.state_dict(),
        {"kind": WEIGHTS_KIND, "phase": phase, "alpha": float(phase == 1), "config": tokenizer_config(params, phase)},
    )
    return path


def test_fig1_cli_writes_figure_and_psnr_csv(tokenizers, params, params_file, world, tmp_path):
    from seqgan.artefacts.files import file_sha256

    tok1, tok2 = tokenizers
    p1 = save_tokenizer(tok1, params, 1, tmp_path / "p1.safetensors")
    p2 = save_tokenizer(tok2, params, 2, tmp_path / "p2.safetensors")
    write_synthetic_split(tmp_path / "val", 5, RES, NUM_CLASSES, seed=9, split="val")
    samples = write_sample_dir(
        tmp_path / "s", random_images(4), tokenizer={"file": str(p1), "phase": 1, "sha256": file_sha256(p1)}
    )
    args = [
        "fig1",
        "--params",
        str(params_file),
        "--samples",
        str(samples),
        "--phase1",
        str(p1),
        "--phase2",
        str(p2),
        "--val-dir",
        str(tmp_path / "val"),
        "--threads",
        "1",
    ]
    assert main([*args, "--out", str(tmp_path / "fig1.pdf")]) == 0
    table = pd.read_csv(tmp_path / "fig1.csv")
    assert len(table) == 3  # evaluation.sample_grid.columns = 3 of the 5 validation images
    assert (table.psnr_phase1_db == table.psnr_phase2_db).all()  # zero-initialised attention
    assert (tmp_path / "fig1.png").is_file() and (tmp_path / "fig1.pdf").is_file()
    with pytest.raises(SystemExit, match="phase 2, --phase2 .* is phase 1"):
        swapped = {str(p1): str(p2), str(p2): str(p1)}
        main([swapped.get(a, a) for a in args] + ["--out", str(tmp_path / "x.pdf")])
    other = write_sample_dir(tmp_path / "o", random_images(4), tokenizer={"phase": 1, "sha256": "0" * 64})
    with pytest.raises(SystemExit, match="decoded with another tokenizer"):
        main([*[str(other) if a == str(samples) else a for a in args], "--out", str(tmp_path / "y.pdf")])
