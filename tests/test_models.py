"""seqgan.load_tokenizer and `seqgan reconstruct`: a trained tokenizer reused from its checkpoint
alone (no params.yaml), giving the workflow's own ids and reconstructions."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_model_raw

import seqgan
from seqgan import cli
from seqgan.artefacts.checkpoints import save_weights
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.config import validate_params
from seqgan.data.prepare import resize_center_crop
from seqgan.losses.psnr import psnr
from seqgan.nets.factory import build_tokenizer
from seqgan.train.runtime import torch_threads
from seqgan.train.tokenizer_model import WEIGHTS_KIND, load_tokenizer_checkpoint, tokenizer_config


@pytest.fixture(scope="module")
def params():
    return validate_params(tiny_model_raw())


def saved_tokenizer(params, phase: int, directory):
    torch.manual_seed(phase)
    net = build_tokenizer(params, phase)
    path = directory / "tokenizer.safetensors"
    sidecar = {"kind": WEIGHTS_KIND, "phase": phase, "alpha": 1.0, "config": tokenizer_config(params, phase)}
    save_weights(path, net.state_dict(), sidecar)
    return path


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("phase", [1, 2])
def test_loaded_from_the_checkpoint_alone_it_gives_the_workflow_s_ids_and_images(params, tmp_path, phase):
    path = saved_tokenizer(params, phase, tmp_path)
    x = images(4)
    with torch_threads(1):
        tokenizer = seqgan.load_tokenizer(tmp_path)  # the directory; no params
        ids = tokenizer.encode(x)
        recon = tokenizer.decode(ids)
        workflow_net, _ = load_tokenizer_checkpoint(path, params)  # the workflow's loader, with params
        with torch.no_grad():
            expected_ids = workflow_net.encode_ids(to_model_input(x, torch.device("cpu"))).numpy()
            expected = to_uint8(workflow_net.decode_ids(torch.as_tensor(expected_ids)))
    assert ids.shape == (4, 8, 8) and ids.dtype == np.int64 and np.array_equal(ids, expected_ids)
    assert recon.shape == x.shape and recon.dtype == np.uint8 and np.array_equal(recon, expected)
    assert (tokenizer.resolution, tokenizer.grid, tokenizer.codebook_size) == (32, 8, 32)
    assert not tokenizer.net.training and not any(p.requires_grad for p in tokenizer.net.parameters())


def test_bad_input_is_refused_with_the_expected_shape(params, tmp_path):
    saved_tokenizer(params, 1, tmp_path)
    tokenizer = seqgan.load_tokenizer(tmp_path / "tokenizer.safetensors")
    with pytest.raises(ValueError, match=r"\(B, 32, 32, 3\) uint8"):
        tokenizer.encode(images(2).astype(np.float32))
    with pytest.raises(ValueError, match=r"in \[0, 32\)"):
        tokenizer.decode(np.full((1, 8, 8), 32))
    with pytest.raises(FileNotFoundError, match="no tokenizer checkpoint"):
        seqgan.load_tokenizer(tmp_path / "elsewhere")


def test_reconstruct_command_writes_images_and_per_image_psnr(params, tmp_path):
    saved_tokenizer(params, 1, tmp_path / "tok")
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    originals = {
        "a.png": rng.integers(0, 256, (40, 50, 3), dtype=np.uint8),
        "sub/b.jpg": rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
    }
    for name, pixels in originals.items():
        Image.fromarray(pixels).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    with torch_threads(1):
        assert (
            cli.main(
                [
                    "reconstruct",
                    "--tokenizer",
                    str(tmp_path / "tok"),
                    "--images",
                    str(folder),
                    "--out",
                    str(out),
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        tokenizer = seqgan.load_tokenizer(tmp_path / "tok")
        rows = list(csv.DictReader(open(out / "psnr.csv")))
        assert [r["image"] for r in rows] == ["a.png", "sub/b.jpg"]
        for row in rows:
            name = row["image"]
            written = np.asarray(Image.open(out / name).convert("RGB")) if name.endswith(".png") else None
            resized = resize_center_crop(np.asarray(Image.open(folder / name).convert("RGB")), 32)[None]
            recon = tokenizer.reconstruct(resized)
            assert float(row["psnr_db"]) == pytest.approx(float(psnr(recon, resized)[0]), abs=1e-4)
            if written is not None:
                assert np.array_equal(written, recon[0])
        assert (out / "sub" / "b.png").is_file()


def saved_transformer(params, objective: str, directory):
    import dataclasses

    from seqgan.nets.transformer_factory import build_transformer

    torch.manual_seed(7)
    net = build_transformer(params, "base", objective)
    path = directory / "model.safetensors"
    sidecar = {"kind": "transformer", "objective": objective, "size": "base", "config": dataclasses.asdict(net.config)}
    save_weights(path, net.state_dict(), sidecar)
    return net, path


@pytest.mark.parametrize("objective", ["ar", "nar"])
def test_generate_command_samples_like_the_workflow(params, tmp_path, objective):
    from seqgan.artefacts.samples import open_sample_set
    from seqgan.sample.generate import generate_samples

    tokenizer_path = saved_tokenizer(params, 1, tmp_path / "tok")
    net, _ = saved_transformer(params, objective, tmp_path / "tr")
    flags = (
        ["--temperature", "1.0", "--top-p", "0.9"] if objective == "ar" else ["--steps", "4", "--temperature", "1.0"]
    )
    with torch_threads(1):
        assert (
            cli.main(
                [
                    "generate",
                    "--transformer",
                    str(tmp_path / "tr"),
                    "--tokenizer",
                    str(tmp_path / "tok"),
                    "--objective",
                    objective,
                    "--num",
                    "5",
                    "--seed",
                    "3",
                    "--out",
                    str(tmp_path / "out"),
                    "--batch-size",
                    "2",
                    "--device",
                    "cpu",
                    *flags,
                ]
            )
            == 0
        )
        samples = open_sample_set(tmp_path / "out")
        sampling = (
            {"temperature": 1.0, "top_k": 0, "top_p": 0.9}
            if objective == "ar"
            else {"steps": 4, "temperature": 1.0, "schedule": "cosine"}
        )
        tokenizer, _ = load_tokenizer_checkpoint(tokenizer_path, params)
        generate_samples(
            net,
            tokenizer,
            objective=objective,
            num_samples=5,
            batch_size=2,
            seed=3,
            out_dir=tmp_path / "workflow",
            sampling=sampling,
            progress=False,
        )
    expected = open_sample_set(tmp_path / "workflow")
    assert len(samples) == 5 and samples.manifest["sampling"] == expected.manifest["sampling"]
    assert np.array_equal(np.load(tmp_path / "out" / "tokens.npy"), np.load(tmp_path / "workflow" / "tokens.npy"))
    assert np.array_equal(samples.read(range(5)), expected.read(range(5)))


def test_generate_refuses_a_mismatched_pair(params, tmp_path):
    from seqgan.models import generate

    saved_tokenizer(params, 1, tmp_path / "tok")
    saved_transformer(params, "ar", tmp_path / "tr")
    with pytest.raises(ValueError, match="a ar transformer, not nar"):
        generate(
            tmp_path / "tr",
            tmp_path / "tok",
            tmp_path / "o",
            objective="nar",
            num_samples=1,
            seed=0,
            sampling={"steps": 2, "temperature": 1.0, "schedule": "cosine"},
        )
    raw = tiny_model_raw()
    raw["tokenizer"]["architecture"]["codebook_size"] = 64
    saved_tokenizer(validate_params(raw), 1, tmp_path / "tok64")
    with pytest.raises(ValueError, match="32 codes x 64 tokens, but the tokenizer"):
        generate(
            tmp_path / "tr",
            tmp_path / "tok64",
            tmp_path / "o",
            objective="ar",
            num_samples=1,
            seed=0,
            sampling={"temperature": 1.0, "top_k": 0, "top_p": 1.0},
        )
    with pytest.raises(SystemExit, match="needs --steps"):
        cli.cmd_generate(
            cli.build_parser().parse_args(
                [
                    "generate",
                    "--transformer",
                    "x",
                    "--tokenizer",
                    "y",
                    "--objective",
                    "nar",
                    "--num",
                    "1",
                    "--seed",
                    "0",
                    "--out",
                    "z",
                ]
            )
        )
