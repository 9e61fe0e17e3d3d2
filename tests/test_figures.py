"""Main-paper Fig. 4 / supplement Fig. 3 (seqgan.report.fig3) on tiny random-init nets, and main-paper
Fig. 6b (seqgan.report.fig6b) on hand-written metrics files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from tiny_models import tiny_model_raw

from seqgan.artefacts.checkpoints import save_weights
from seqgan.artefacts.files import file_sha256
from seqgan.artefacts.tensors import to_model_input
from seqgan.cli import main
from seqgan.config import validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.evaluate.visualize import tile_origin
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.transformer_factory import build_transformer
from seqgan.report import fig3 as fig3_mod
from seqgan.report.fig3 import (
    Fig3Variant,
    check_pairing,
    compute_fig3,
    fig3_table,
    plot_fig3,
)
from seqgan.report.fig6b import MetricsFile, MetricsFileError, draw_fig6b, fig6b_table
from seqgan.train.tokenizer_model import tokenizer_config

ROOT = Path(__file__).resolve().parents[1]
CLASSES = [f"class{i}" for i in range(10)]


def tiny_raw(conditional: bool = False) -> dict:
    raw = tiny_model_raw(conditional)
    raw["evaluation"].update(visualization_images=3, batch_size=3)
    return raw


def make_variant(params, variant: str, seed: int) -> Fig3Variant:
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(params, 1)
    with torch.no_grad():  # spread the codebook so a random-init encoder uses many codes
        tokenizer.quantizer.embedding.weight.normal_(0.0, 0.5)
    transformer = build_transformer(params, "base", "ar")
    with torch.no_grad():  # a random head predicts almost one code; spread its logits
        transformer.head.weight.mul_(20.0)
    return Fig3Variant(variant, tokenizer.eval(), transformer.eval(), f"tok_{variant}", f"ar_{variant}")


def direct_accuracy(
    variant: Fig3Variant, images: np.ndarray, labels: np.ndarray | None, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image top-1 accuracy written out without the pipeline: encode, run [cond] + s_0..s_{N-2}
    through the model, argmax, compare with s.

    In the pipeline's batches (``batch_size`` consecutive images): code ids and argmax predictions
    are discrete outputs of float kernels chosen by batch size, so a one-pass computation could flip
    a near-tie on another CPU; batch by batch both sides run the same computation, exactly."""
    model = variant.transformer
    hits, flats = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            _, ids, _ = variant.tokenizer.encode(to_model_input(batch, torch.device("cpu")))
            flat = ids.reshape(len(batch), -1)  # (B, N)
            batch_labels = None if labels is None else torch.as_tensor(labels[start : start + batch_size])
            prefix = model.condition_tokens(len(batch), batch_labels)
            logits = model.forward_tokens(torch.cat([prefix, flat[:, :-1]], dim=1))  # (B, N, K)
            hits.append((logits.argmax(-1) == flat).double().numpy())
            flats.append(flat.reshape(-1).numpy())
    counts = np.bincount(np.concatenate(flats), minlength=model.config.vocab_size)
    return np.concatenate(hits).mean(axis=1), counts


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7)
    return images, labels


@pytest.fixture(scope="module")
def params():
    return validate_params(tiny_raw(), "tiny params")


@pytest.fixture(scope="module")
def result(params, split):
    images, labels = split
    with torch.random.fork_rng():
        variants = [make_variant(params, v, s) for v, s in (("control", 3), ("alpha1.0", 2), ("alpha0.0", 1))]
    res = compute_fig3(variants, images, labels, class_names=CLASSES, split="val", num_images=3, batch_size=3)
    return variants, res


# --------------------------------------------------------------------------------------------
# fig3
# --------------------------------------------------------------------------------------------


def test_fig3_accuracy_equals_a_direct_computation(result, split):
    variants, res = result
    images, _ = split
    assert [v.variant for v in res.variants] == ["alpha0.0", "alpha1.0", "control"]  # alphas, then control
    by_name = {v.variant: v for v in variants}
    for v in res.variants:
        expected, counts = direct_accuracy(by_name[v.variant], images, None, batch_size=3)
        # the whole split in batches of 3 (3 + 3 + 1 images) and the 3 shown images (one batch, the
        # first of the split's): one number each
        np.testing.assert_allclose(v.split_accuracy, expected, atol=1e-6)
        np.testing.assert_allclose(v.shown["token_accuracy"], expected[:3], atol=1e-6)
        np.testing.assert_array_equal(v.code_counts, counts)
        assert v.constant_guess_accuracy == pytest.approx(counts.max() / counts.sum())
    # the check is not vacuous: the spread-out heads hit some tokens and miss others
    accuracies = np.concatenate([v.split_accuracy for v in res.variants])
    assert 0.0 < accuracies.max() and accuracies.min() < 1.0


def test_fig3_conditional_transformer_gets_the_image_labels(split):
    images, labels = split
    params = validate_params(tiny_raw(conditional=True), "tiny conditional params")
    with torch.random.fork_rng():
        variant = make_variant(params, "alpha0.5", 5)
    res = compute_fig3([variant], images, labels, class_names=CLASSES, split="val", num_images=2, batch_size=4)
    expected, _ = direct_accuracy(variant, images, labels, batch_size=4)
    np.testing.assert_allclose(res.variants[0].split_accuracy, expected, atol=1e-6)
    assert res.class_names == [CLASSES[labels[0]], CLASSES[labels[1]]]


def test_fig3_table_has_one_row_per_image_and_variant(result):
    _, res = result
    table = fig3_table(res)
    images = table[table.row == "image"]
    assert len(images) == 3 * 3
    assert sorted(zip(images.variant, images.image_index, strict=True)) == sorted(
        (v, i) for v in ("alpha0.0", "alpha1.0", "control") for i in range(3)
    )
    means = table[table.row == "split_mean"].set_index("variant")
    assert list(means.index) == ["alpha0.0", "alpha1.0", "control"]
    for v in res.variants:
        rows = images[images.variant == v.variant].sort_values("image_index")
        np.testing.assert_allclose(rows.token_accuracy, v.shown["token_accuracy"], atol=1e-7)
        assert means.loc[v.variant, "num_images"] == 7
        assert means.loc[v.variant, "token_accuracy"] == pytest.approx(float(v.split_accuracy.mean()))
        assert means.loc[v.variant, "tokens_per_image"] == 64
    assert pd.isna(means.loc["control", "alpha"]) and means.loc["alpha1.0", "alpha"] == 1.0


def test_fig3_figure_layout(result, tmp_path):
    _, res = result
    canvas = plot_fig3(res, tmp_path / "fig" / "fig3.pdf", title_note="test")
    scale = fig3_mod.display_scale(32)
    assert scale == 3  # 32 px tiles enlarged to 96 px
    tile, pad, rows, cols = 32 * scale, fig3_mod.PAD, 1 + 2 * 3, 3  # input + (recon, pred) per variant
    assert canvas.shape == (pad + rows * (tile + pad), pad + cols * (tile + pad), 3)
    grid_rows = fig3_mod.fig3_rows(res)
    assert [name for name, _ in grid_rows] == [
        "input",
        "alpha0.0 recon",
        "alpha0.0 pred",
        "alpha1.0 recon",
        "alpha1.0 pred",
        "control recon",
        "control pred",
    ]

    def tile_at(r: int, c: int) -> np.ndarray:
        x, y = tile_origin(r, c, grid_rows, scale=scale, pad=pad, label_width=0)
        return canvas[y : y + tile, x : x + tile]

    def up(image):
        return image.repeat(scale, axis=0).repeat(scale, axis=1)

    np.testing.assert_array_equal(tile_at(0, 2), up(res.inputs[2]))
    np.testing.assert_array_equal(tile_at(3, 1), up(res.variants[1].shown["reconstruction"][1]))
    np.testing.assert_array_equal(tile_at(6, 0), up(res.variants[2].shown["prediction"][0]))

    png = tmp_path / "fig" / "fig3.png"
    with Image.open(png) as im:
        m = fig3_mod.MARGINS_PX
        # the grid is drawn one PNG pixel per grid pixel, inside fixed margins
        assert im.size == (canvas.shape[1] + m["left"] + m["right"], canvas.shape[0] + m["top"] + m["bottom"])
    assert (tmp_path / "fig" / "fig3.pdf").read_bytes().startswith(b"%PDF")


def test_fig3_pairing_check():
    sidecar = {"objective": "ar", "metrics": {"tokens": {"train": {"tokenizer": {"sha256": "a" * 64}}}}}
    check_pairing("tok.safetensors", "a" * 64, "ar.safetensors", sidecar)
    with pytest.raises(ValueError, match="ar.safetensors was trained on tokens of a tokenizer"):
        check_pairing("tok.safetensors", "b" * 64, "ar.safetensors", sidecar)
    with pytest.raises(ValueError, match="needs an AR"):
        check_pairing("tok.safetensors", "a" * 64, "nar.safetensors", {**sidecar, "objective": "nar"})


def test_fig3_cli_on_saved_checkpoints(tmp_path, params, one_thread):
    """The command the rule runs: checkpoints and sidecars as the trainers write them."""
    raw = tiny_raw()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    write_synthetic_split(tmp_path / "val", num_images=5, resolution=32, num_classes=10, seed=0, split="val")
    args = []
    for variant, seed, alpha, perceptual in (("alpha0.0", 1, 0.0, True), ("control", 2, 0.0, False)):
        with torch.random.fork_rng():
            v = make_variant(params, variant, seed)
        tok = tmp_path / variant / "tokenizer.safetensors"
        save_weights(
            tok,
            v.tokenizer.state_dict(),
            {
                "kind": "tokenizer",
                "phase": 1,
                "alpha": alpha,
                "perceptual": perceptual,
                "config": tokenizer_config(params, 1),
            },
        )
        ar = tmp_path / variant / "model.safetensors"
        save_weights(
            ar,
            v.transformer.state_dict(),
            {
                "kind": "transformer",
                "objective": "ar",
                "size": "base",
                "config": dataclasses.asdict(v.transformer.config),
                "training": {"seed": 0},
                "metrics": {"tokens": {"train": {"tokenizer": {"sha256": file_sha256(tok)}}}},
            },
        )
        args += ["--variant", variant, str(tok), str(ar)]
    out = tmp_path / "results" / "fig3_visualization.pdf"
    common = ["fig3", "--params", str(tmp_path / "params.yaml"), "--split-dir", str(tmp_path / "val"), "--threads", "1"]
    assert main([*common, *args, "--out", str(out)]) == 0
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table[table.row == "image"]) == 2 * 3  # evaluation.visualization_images = 3
    assert list(table[table.row == "split_mean"].num_images) == [5, 5]
    assert out.with_suffix(".png").is_file()

    # a variant name that contradicts the tokenizer's sidecar is refused
    swapped = [*args[:1], "alpha0.0", *args[6:8]]  # control's files under the name alpha0.0
    with pytest.raises(SystemExit, match="is not the phase-1 alpha0.0 tokenizer"):
        main([*common, *swapped, "--out", str(tmp_path / "bad.pdf")])


# --------------------------------------------------------------------------------------------
# fig6b
# --------------------------------------------------------------------------------------------

NETWORK = "semantic_relu5_3_gap"
RFID = {  # variant -> rFID per experiment seed 0, 1, 2
    "alpha0.0": [40.0, 44.0, 39.0],
    "alpha0.5": [35.0, 36.0, 31.0],
    "alpha1.0": [50.0, 52.0, 51.5],
    "control": [60.0, 58.0, 65.0],
}
GFID = {  # (objective, variant) -> generation FID per sampling seed 0, 1
    ("ar", "alpha0.0"): [90.0, 94.0],
    ("ar", "alpha0.5"): [80.0, 81.0],
    ("ar", "alpha1.0"): [70.0, 73.0],
    ("ar", "control"): [99.0, 97.0],
    ("nar", "alpha0.0"): [95.0, 96.0],
    ("nar", "alpha0.5"): [85.0, 88.0],
    ("nar", "alpha1.0"): [75.0, 71.0],
    ("nar", "control"): [100.0, 104.0],
}


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def rfid_json(value: float, variant: str, network: str = NETWORK) -> dict:
    """The keys of results/metrics/tokenizer/phase1/{variant}/seed{S}.json fig6b reads."""
    control = variant == "control"
    return {
        "rfid": value,
        "psnr": 17.0,
        "computed_with": {
            "rfid": {
                "feature_network": {"name": network},
                "count": 1000,
                "reference": {"name": "shapes32/val", "count": 1000},
            }
        },
        "tokenizer": {"alpha": 0.0 if control else float(variant.removeprefix("alpha")), "perceptual": not control},
    }


def generation_json(value: float, objective: str, variant: str, seed: int) -> dict:
    """The keys of helper A's results/metrics/generation/{obj}/{size}/{variant}/phase1/seed{N}.json."""
    return {
        "fid": value,
        "inception_score": None,
        "num_samples": 1000,
        "seed": seed,
        "objective": objective,
        "size": "base",
        "variant": variant,
        "decoder": "phase1",
        "feature_network": {"name": NETWORK},
        "reference": {"file": "results/fid_refs/train.npz", "split": "train", "count": 10000},
    }


def fake_metrics(root: Path) -> tuple[list[MetricsFile], list[MetricsFile]]:
    rfid = [
        MetricsFile(v, s, write_json(root / f"tok/{v}/seed{s}.json", rfid_json(x, v)))
        for v, values in RFID.items()
        for s, x in enumerate(values)
    ]
    generation = [
        MetricsFile(v, n, write_json(root / f"gen/{o}/base/{v}/phase1/seed{n}.json", generation_json(x, o, v, n)), o)
        for (o, v), values in GFID.items()
        for n, x in enumerate(values)
    ]
    return rfid, generation


def test_fig6b_table_holds_the_inputs_and_their_spread(tmp_path):
    rfid, generation = fake_metrics(tmp_path)
    table = fig6b_table(rfid, generation, transformer_seed=0)
    seeds = table[table.row == "seed"]
    assert len(seeds) == len(rfid) + len(generation)
    for entry in rfid:
        row = seeds[(seeds.panel == "rfid") & (seeds.variant == entry.variant) & (seeds.seed == entry.seed)]
        assert row.value.item() == RFID[entry.variant][entry.seed] and row.source.item() == str(entry.path)
        assert row.seed_kind.item() == "experiment" and pd.isna(row.transformer_seed.item())
    for entry in generation:
        row = seeds[
            (seeds.panel == "generation_fid")
            & (seeds.objective == entry.objective)
            & (seeds.variant == entry.variant)
            & (seeds.seed == entry.seed)
        ]
        assert row.value.item() == GFID[(entry.objective, entry.variant)][entry.seed]
        assert row.seed_kind.item() == "sampling" and row.transformer_seed.item() == 0

    means = table[table.row == "mean_over_seeds"]
    assert len(means) == len(RFID) + len(GFID)
    for variant, values in RFID.items():
        row = means[(means.panel == "rfid") & (means.variant == variant)].iloc[0]
        assert row["mean"] == pytest.approx(np.mean(values))
        assert (row["min"], row["max"], row["n"]) == (min(values), max(values), 3)
        assert row["std"] == pytest.approx(np.std(values, ddof=1))
        assert row["source"].split() == [str(tmp_path / f"tok/{variant}/seed{s}.json") for s in range(3)]
    row = means[(means.objective == "nar") & (means.variant == "alpha1.0")].iloc[0]
    assert (row["mean"], row["min"], row["max"], row["n"]) == (73.0, 71.0, 75.0, 2)
    # the control has no alpha; every other row has its own
    assert means[means.variant == "control"].alpha.isna().all()
    assert sorted(means[means.variant != "control"].alpha.unique()) == [0.0, 0.5, 1.0]
    assert set(means.feature_network) == {NETWORK}


def test_fig6b_plot_keeps_the_control_off_the_alpha_axis(tmp_path):
    import matplotlib.pyplot as plt

    rfid, generation = fake_metrics(tmp_path)
    fig = draw_fig6b(fig6b_table(rfid, generation, transformer_seed=0))
    left, right = fig.axes
    try:
        assert NETWORK in left.get_ylabel() and "1000 reconstructions vs 1000 shapes32/val" in left.get_ylabel()
        assert NETWORK in right.get_ylabel() and "1000 samples vs 10000 train" in right.get_ylabel()
        # the sweep line: x = the alphas only, y = the seed means
        alphas = ("alpha0.0", "alpha0.5", "alpha1.0")
        on_axis = [line for line in left.get_lines() if list(line.get_xdata()) == [0.0, 0.5, 1.0]]
        sweep = [line for line in on_axis if line.get_marker() == "o"]
        assert len(sweep) == 1
        np.testing.assert_allclose(sweep[0].get_ydata(), [np.mean(RFID[v]) for v in alphas])
        # the error-bar caps sit at the min and max over the three experiment seeds
        caps = sorted(tuple(line.get_ydata()) for line in on_axis if line is not sweep[0])
        assert caps == sorted([tuple(min(RFID[v]) for v in alphas), tuple(max(RFID[v]) for v in alphas)])
        # the control: one labelled horizontal line at its mean
        control = [line for line in left.get_lines() if "control" in str(line.get_label())]
        assert len(control) == 1 and list(control[0].get_ydata()) == [np.mean(RFID["control"])] * 2
        assert [
            str(line.get_label()).split(",")[0] for line in right.get_lines() if "control" in str(line.get_label())
        ] == ["AR", "NAR"]
    finally:
        plt.close(fig)


def test_fig6b_cli_writes_figure_and_csv(tmp_path, capsys):
    rfid, generation = fake_metrics(tmp_path)
    args = ["fig6b", "--params", str(ROOT / "params.yaml"), "--out", str(tmp_path / "out" / "fig6b.pdf")]
    for e in rfid:
        args += ["--rfid", e.variant, str(e.seed), str(e.path)]
    for e in generation:
        args += ["--generation", e.objective, e.variant, str(e.seed), str(e.path)]
    assert main(args) == 0
    table = pd.read_csv(tmp_path / "out" / "fig6b.csv")
    row = table[(table.row == "mean_over_seeds") & (table.panel == "rfid") & (table.variant == "alpha0.5")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(RFID["alpha0.5"]))
    assert (tmp_path / "out" / "fig6b.png").is_file() and (tmp_path / "out" / "fig6b.pdf").is_file()

    missing = tmp_path / "gen/ar/base/alpha0.5/phase1/seed1.json"
    missing.unlink()
    with pytest.raises(SystemExit, match=f"{missing}: not found.*rule eval_samples"):
        main(args)


def test_fig6b_refuses_inconsistent_files(tmp_path):
    rfid, generation = fake_metrics(tmp_path)
    with pytest.raises(MetricsFileError, match=f"{tmp_path / 'nope.json'}: not found"):
        fig6b_table([*rfid, MetricsFile("alpha0.0", 9, tmp_path / "nope.json")], generation, transformer_seed=0)
    # a file holding another variant's metrics
    wrong = write_json(tmp_path / "wrong.json", generation_json(1.0, "ar", "alpha1.0", 0))
    with pytest.raises(MetricsFileError, match="records variant = 'alpha1.0', expected 'alpha0.0'"):
        fig6b_table(rfid, [MetricsFile("alpha0.0", 0, wrong, "ar")], transformer_seed=0)
    # rFID of two feature networks cannot share an axis
    other = write_json(tmp_path / "inception.json", rfid_json(3.0, "alpha0.5", network="inception_v3_clean_fid"))
    with pytest.raises(MetricsFileError, match="disagree on feature_network"):
        fig6b_table([*rfid, MetricsFile("alpha0.5", 7, other)], [], transformer_seed=0)
    # a control file passed as an alpha
    with pytest.raises(MetricsFileError, match="perceptual = False does not match variant alpha0.0"):
        fig6b_table([MetricsFile("alpha0.0", 0, rfid[-1].path)], [], transformer_seed=0)
