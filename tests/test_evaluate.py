"""Evaluation building blocks: FID through clean-fid, reference files, IS, reconstruction metrics,
token arrays and their unigram baselines. Tiny random-weight networks, a 32 px synthetic split."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import yaml
from torch import nn

from seqgan.artefacts.images import open_image_store
from seqgan.artefacts.tensors import to_model_input, to_uint8
from seqgan.artefacts.tokens import (
    open_token_split,
    token_entropy,
    unigram_cross_entropy,
    write_token_split,
)
from seqgan.config import validate_params
from seqgan.data.synthetic import write_synthetic_split
from seqgan.evaluate.fid import (
    ReferenceStatistics,
    class_probabilities_of_images,
    compute_reference,
    features_of_images,
    features_of_store,
    fid_from_features,
    frechet_distance,
    inception_feature_network,
    inception_score,
    load_reference,
    module_sha256,
    reference_statistics,
    save_reference,
    semantic_feature_network,
)
from seqgan.evaluate.reconstruction import (
    embedded_perceptual_distance,
    evaluate_reconstruction,
    lpips_vgg_distance,
    reconstruct_batch,
)
from seqgan.evaluate.tokens import encode_split
from seqgan.losses.psnr import mean_psnr, psnr, psnr_cap_db
from seqgan.nets import pretrained
from seqgan.nets.common import eval_mode
from seqgan.nets.factory import build_tokenizer
from seqgan.nets.pretrained import MissingWeightsError
from seqgan.nets.semantic import SemanticNet
from seqgan.train import tokenizer_eval

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
NUM_CLASSES = 4
NUM_IMAGES = 24


# --------------------------------------------------------------------------------------------
# Fixtures: tiny tokenizer, tiny semantic net, a small 32 px split
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer() -> nn.Module:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["tokenizer"]["architecture"].update(
        base_channels=8,
        channel_mult=[1, 2, 2],
        num_res_blocks=1,
        extra_res_blocks=0,
        num_groups=4,
        codebook_size=16,
        code_dim=8,
    )
    params = validate_params(raw, "tiny params")
    torch.manual_seed(0)
    tok = build_tokenizer(params, 1)
    # Spread the codebook over the encoder's output range so a random-init model uses many codes.
    with torch.no_grad():
        tok.quantizer.embedding.weight.normal_(0.0, 0.5)
    return tok


@pytest.fixture(scope="module")
def semantic_net() -> SemanticNet:
    torch.manual_seed(1)
    return SemanticNet([4, 8, 8, 16, 16], NUM_CLASSES).eval()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("evaluate") / "val"
    write_synthetic_split(directory, NUM_IMAGES, 32, NUM_CLASSES, seed=5, split="val")
    return open_image_store(directory)


def random_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 255, 0)  # both ends of the range present
    return images


# --------------------------------------------------------------------------------------------
# Frechet distance
# --------------------------------------------------------------------------------------------


def direct_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The formula written out with numpy / scipy (independent of clean-fid)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_a_shift():
    feats = np.random.default_rng(0).normal(size=(200, 8))
    reference = ReferenceStatistics(*reference_statistics(feats), meta={})
    assert abs(fid_from_features(feats, reference)) < 1e-8
    values = [fid_from_features(feats + shift, reference) for shift in (0.1, 0.5, 2.0)]
    assert values[0] > 0
    assert values[0] < values[1] < values[2]
    # A pure mean shift by s in every one of D dimensions adds D * s^2.
    assert values[2] == pytest.approx(8 * 2.0**2, rel=1e-6)


def test_frechet_distance_matches_the_formula_on_random_features():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(60, 5))
    b = rng.normal(size=(80, 5)) @ rng.normal(size=(5, 5)) * 0.7 + 0.3
    mu1, s1 = reference_statistics(a)
    mu2, s2 = reference_statistics(b)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct_frechet(a, b), rel=1e-9)
    assert fid_from_features(b, ReferenceStatistics(mu1, s1, {})) == pytest.approx(direct_frechet(b, a), rel=1e-9)
    with pytest.raises(ValueError, match="dimension"):
        frechet_distance(mu1, s1, mu2[:4], s2[:4, :4])


def test_frechet_distance_refuses_statistics_of_another_dimension_and_computes_in_float64():
    """Any one of mu2, sigma1, sigma2 of the wrong size is refused by name (a (1,) mean would otherwise
    broadcast into a silent wrong answer); float32 statistics give the float64 result bit for bit (the
    traces are not summed in float32)."""
    rng = np.random.default_rng(0)
    mu1, s1 = reference_statistics(rng.normal(size=(50, 5)))
    mu2, s2 = reference_statistics(rng.normal(size=(50, 5)) * 1.3 + 0.2)
    for args in ((mu1, s1, mu2[:1], s2), (mu1, s1[:4, :4], mu2, s2), (mu1, s1, mu2, s2[:4, :4])):
        with pytest.raises(ValueError, match="statistics disagree in dimension"):
            frechet_distance(*args)
    single = [np.asarray(a, np.float32) for a in (mu1, s1, mu2, s2)]
    assert frechet_distance(*single) == frechet_distance(*[a.astype(np.float64) for a in single])


def test_frechet_distance_drops_a_slight_imaginary_part_and_refuses_a_large_one():
    """A covariance with a slightly negative eigenvalue (rounding) gives a square root with a small
    imaginary part (1e-4 here, under the 1e-3 tolerance): its real part is used. A clearly negative one
    (an imaginary part of 0.5) is no covariance: refused."""
    zeros = np.zeros(2)
    slight = frechet_distance(zeros, np.eye(2), zeros, np.diag([1.0, -1e-8]))
    assert slight == pytest.approx(2.0 + (1.0 - 1e-8) - 2 * 1.0, rel=1e-12)  # traces 2, 1 - 1e-8; sqrt diag(1, 0)
    with pytest.raises(ValueError, match="imaginary part of 0.5"):
        frechet_distance(zeros, np.eye(2), zeros, np.diag([1.0, -0.25]))


def test_frechet_distance_equals_clean_fids_own_in_any_scipy(monkeypatch):
    """The project's Frechet distance is clean-fid's computation, written out because clean-fid's
    passes ``sqrtm(disp=False)``, which SciPy 1.18 removed. clean-fid's own function runs here on a
    SciPy shim that accepts ``disp`` again, and both must agree bit for bit: on a regular pair, and
    on a product whose square root is not finite, where clean-fid adds its 1e-6 diagonal offset."""
    import cleanfid.fid

    def sqrtm(a, disp=True):
        root = scipy.linalg.sqrtm(a)
        return root if disp else (root, 0.0)

    monkeypatch.setattr(cleanfid.fid, "linalg", types.SimpleNamespace(sqrtm=sqrtm))
    rng = np.random.default_rng(3)
    mu1, s1 = reference_statistics(rng.normal(size=(90, 6)))
    mu2, s2 = reference_statistics(rng.normal(size=(70, 6)) @ rng.normal(size=(6, 6)) + 0.4)
    # a product with no square root ([[0, 1], [0, 0]]): only the offset makes it finite
    nilpotent = (np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 1.0], [0.0, 0.0]]))
    assert not np.isfinite(scipy.linalg.sqrtm(nilpotent[0] @ nilpotent[1])).all()
    for m1, c1, m2, c2 in ((mu1, s1, mu2, s2), (np.zeros(2), nilpotent[0], np.ones(2), nilpotent[1])):
        ours = frechet_distance(m1, c1, m2, c2)
        assert np.isfinite(ours)
        assert ours == float(cleanfid.fid.frechet_distance(m1, c1, m2, c2))


# --------------------------------------------------------------------------------------------
# Feature networks through clean-fid
# --------------------------------------------------------------------------------------------


def test_semantic_features_through_cleanfid_equal_the_net_called_directly(semantic_net, store):
    images = random_images(7)
    network = semantic_feature_network(semantic_net)
    feats = features_of_images(images, network, batch_size=7)
    with torch.no_grad():
        taps, logits = semantic_net.features(to_model_input(images, CPU))
    expected = taps[-1].mean(dim=(2, 3)).numpy()
    assert feats.shape == (7, 16) and feats.dtype == np.float32
    # Two computation paths (clean-fid's batching and input conversion vs a direct call): equal up
    # to float32 rounding accumulated over the net's 11 layers, not bitwise (on an AVX2-only CPU
    # the two differ by 2.4e-7 in most elements; float32 eps is 1.2e-7).
    np.testing.assert_allclose(feats, expected, rtol=64 * np.finfo(np.float32).eps, atol=1e-6)
    # Other batchings (an array in chunks, an iterable of batches, a store) give the same up to
    # the batch-size dependence of the convolution kernels.
    for other in (
        features_of_images(images, network, batch_size=3),
        features_of_images(iter([images[:2], images[2:]]), network),
    ):
        np.testing.assert_allclose(other, expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        taps, _ = semantic_net.features(to_model_input(np.array(store.images), CPU))
    # Batches of 10 through clean-fid vs one direct pass of 24: two paths, the tolerance as above.
    np.testing.assert_allclose(
        features_of_store(store, network, batch_size=10),
        taps[-1].mean(dim=(2, 3)).numpy(),
        rtol=64 * np.finfo(np.float32).eps,
        atol=1e-6,
    )
    probs = class_probabilities_of_images(images, network)
    np.testing.assert_allclose(probs, torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-7)


def test_features_do_not_move_the_global_torch_rng(semantic_net):
    network = semantic_feature_network(semantic_net)
    state = torch.random.get_rng_state()
    features_of_images(random_images(3), network)
    assert torch.equal(state, torch.random.get_rng_state())


def test_feature_network_records_how_it_computes(semantic_net, tmp_path):
    described = semantic_feature_network(semantic_net, weights_file="semantic.safetensors").describe()
    assert described["name"] == "semantic_relu5_3_gap"
    assert described["weights"] == {"sha256": module_sha256(semantic_net), "file": "semantic.safetensors"}
    assert described["resize"] == "none"
    other = copy.deepcopy(semantic_net)
    with torch.no_grad():
        other.head.bias.add_(1.0)
    assert module_sha256(other) != module_sha256(semantic_net)


@pytest.fixture
def inception_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "weights" / pretrained.INCEPTION_FILENAME
    spec = dataclasses.replace(pretrained.WEIGHTS["inception"], path=lambda: path)
    monkeypatch.setitem(pretrained.WEIGHTS, "inception", spec)
    return path


def test_missing_inception_weights_raise_our_error(inception_at: Path):
    with pytest.raises(MissingWeightsError, match="seqgan fetch-weights") as info:
        inception_feature_network()
    assert str(inception_at) in str(info.value)


class _FakeLayers(nn.Module):
    """Stands in for the torchscript Inception trunk: (B, 3, 299, 299) -> (B, 2048, 1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.proj = nn.Linear(48, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(x).flatten(1)).view(-1, 2048, 1, 1)


class _FakeInception(nn.Module):
    """The interface of clean-fid's inception-2015-12-05.pt that this project calls."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = _FakeLayers()
        self.head = nn.Linear(2048, 1008)

    def forward(
        self,
        img: torch.Tensor,
        return_features: bool = False,
        use_fp16: bool = False,
        no_output_bias: bool = False,
    ) -> torch.Tensor:
        feats = self.layers((img - 128) / 128).view(-1, 2048)
        if return_features:
            return feats
        return torch.softmax(feats @ self.head.weight.t(), dim=1)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_inception_network_uses_cleanfid_clean_resize(inception_at: Path, monkeypatch: pytest.MonkeyPatch):
    import cleanfid.inception_torchscript
    from cleanfid.resize import build_resizer

    def no_download(*args, **kwargs):
        raise AssertionError("clean-fid's downloader must not be called")

    monkeypatch.setattr(cleanfid.inception_torchscript, "check_download_inception", no_download)

    torch.manual_seed(0)
    fake = _FakeInception().eval()
    inception_at.parent.mkdir(parents=True)
    torch.jit.save(torch.jit.script(fake), str(inception_at))
    network = inception_feature_network()
    assert network.resize == "clean" and network.weights["file"] == str(inception_at)
    images = random_images(2)
    feats = features_of_images(images, network)
    resize = build_resizer("clean")  # PIL bicubic to 299, float, unquantised
    resized = torch.from_numpy(np.stack([resize(im) for im in images])).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = fake.layers((resized - 128) / 128).view(2, 2048).numpy()
    assert feats.shape == (2, 2048)
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-5)
    probs = class_probabilities_of_images(images, network)
    assert probs.shape == (2, 1008)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Reference statistics files
# --------------------------------------------------------------------------------------------


def test_reference_round_trip_is_exact_and_keeps_metadata(tmp_path: Path):
    feats = np.random.default_rng(2).normal(size=(30, 6)).astype(np.float32)
    mu, sigma = reference_statistics(feats)
    meta = {"name": "val", "count": 30, "feature_network": {"name": "x", "weights": {"sha256": "ab"}}}
    path = save_reference(tmp_path / "ref" / "val_stats.npz", mu, sigma, meta)
    loaded = load_reference(path)
    np.testing.assert_array_equal(loaded.mu, mu)
    np.testing.assert_array_equal(loaded.sigma, sigma)
    assert loaded.mu.dtype == np.float64
    assert {k: loaded.meta[k] for k in meta} == meta and loaded.count == 30
    assert json.loads(Path(f"{path}.json").read_text())["name"] == "val"
    assert sorted(p.name for p in path.parent.iterdir()) == ["val_stats.npz", "val_stats.npz.json"]
    with pytest.raises(FileNotFoundError):
        load_reference(tmp_path / "absent.npz")


def test_compute_reference_records_its_provenance(semantic_net, store):
    network = semantic_feature_network(semantic_net)
    reference = compute_reference(store, network, name="shapes_val", batch_size=10)
    assert reference.count == NUM_IMAGES
    assert reference.meta["feature_network"]["name"] == network.name
    assert reference.meta["source"]["sha256"] == store.manifest["sha256"]
    assert abs(fid_from_features(features_of_store(store, network), reference)) < 1e-3


# --------------------------------------------------------------------------------------------
# Inception Score
# --------------------------------------------------------------------------------------------


def test_inception_score_uniform_is_one_and_confident_even_one_hot_is_num_classes():
    classes, n = 7, 7 * 20
    mean, std = inception_score(np.full((n, classes), 1.0 / classes), splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)
    one_hot = np.eye(classes)[np.arange(n) % classes]  # every split holds each class twice
    mean, std = inception_score(one_hot, splits=10)
    assert mean == pytest.approx(classes) and std == pytest.approx(0.0, abs=1e-9)
    # Confident logits give nearly the same; logits and their softmax agree exactly.
    logits = 30.0 * (one_hot - 0.5)
    assert inception_score(logits=logits, splits=10)[0] == pytest.approx(classes, rel=1e-6)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(50, 5))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert inception_score(logits=z, splits=5) == pytest.approx(inception_score(p, splits=5))
    with pytest.raises(ValueError):
        inception_score(z)  # logits passed as probabilities


# --------------------------------------------------------------------------------------------
# Reconstruction metrics
# --------------------------------------------------------------------------------------------


def test_psnr_identical_is_inf_and_known_noise_matches_the_formula():
    a = np.full((2, 8, 8, 3), 128, np.uint8)
    assert np.isinf(psnr(a, a)).all()
    noise = np.random.default_rng(4).integers(-20, 21, a.shape)
    b = (a.astype(int) + noise).astype(np.uint8)
    mse = (noise.astype(float) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(psnr(a, b), 10 * np.log10(255.0**2 / mse))
    assert psnr_cap_db(32, 32) == pytest.approx(10 * math.log10(255**2 * 32 * 32 * 3))
    # the reported mean counts an identical image as the cap, so it stays finite
    assert mean_psnr(np.array([np.inf, 20.0]), 32, 32) == pytest.approx((psnr_cap_db(32, 32) + 20.0) / 2)


def test_missing_vgg16_weights_raise_our_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(MissingWeightsError, match="seqgan fetch-weights"):
        lpips_vgg_distance()


def test_reconstruction_metrics(tokenizer, semantic_net, store):
    network = semantic_feature_network(semantic_net)
    reference = compute_reference(store, network, name="shapes_val")
    distance = embedded_perceptual_distance(semantic_net)
    tokenizer.train()
    metrics = evaluate_reconstruction(
        tokenizer,
        store,
        batch_size=10,
        device="cpu",
        fid_network=network,
        reference=reference,
        perceptual_distance=distance,
        classifier=semantic_net,
    )
    assert tokenizer.training  # mode restored
    json.dumps(metrics, allow_nan=False)  # a valid JSON record
    for key in (
        "count",
        "resolution",
        "rfid",
        "psnr",
        "psnr_identical_images",
        "codebook_usage",
        "codebook_perplexity",
        "codebook_used_codes",
        "codebook_size",
        "tokenizer_sha256",
        "perceptual_embedded_alpha0",
        "perceptual_metric",
        "classifier_accuracy_reconstructed",
        "classifier_accuracy_original",
        "computed_with",
    ):
        assert key in metrics, key
    how = metrics["computed_with"]
    assert how["rfid"]["feature_network"]["name"] == "semantic_relu5_3_gap"
    assert how["rfid"]["feature_network"]["weights"]["sha256"] == module_sha256(semantic_net)
    assert how["rfid"]["reference"]["name"] == "shapes_val"
    assert how["rfid"]["reference"]["count"] == NUM_IMAGES and how["rfid"]["count"] == NUM_IMAGES
    assert "identity" in how["rfid"]["resize"] or "none" in how["rfid"]["resize"]
    assert how["perceptual"]["name"] == "perceptual_embedded_alpha0"
    assert how["images"]["split_sha256"] == store.manifest["sha256"]

    # Every number against a direct computation.
    originals = np.array(store.images)
    # In the metric's batches of 10 (10 + 10 + 4): oneDNN picks kernels by batch size and thread
    # count, and an FID this close to 0 magnifies a one-level rounding flip of a reconstructed pixel.
    batches = [slice(i, i + 10) for i in range(0, len(originals), 10)]
    recon = np.concatenate([reconstruct_batch(tokenizer, originals[b], "cpu") for b in batches])
    assert recon.dtype == np.uint8 and recon.shape == originals.shape
    assert metrics["psnr"] == pytest.approx(float(psnr(recon, originals).mean()))
    assert metrics["rfid"] == pytest.approx(
        fid_from_features(features_of_images(recon, network, batch_size=10), reference), rel=1e-6
    )
    with torch.no_grad():
        # Code ids and argmax classes are discrete outputs of float convolutions: computed in the
        # metric's own batches (the same path, so exact), not in one pass, where a near-tie could
        # flip an id or a class on another CPU and change a count or an accuracy by 1/24.
        tokenizer.eval()
        ids = torch.cat([tokenizer.encode(to_model_input(originals[b], CPU))[1] for b in batches])
        tokenizer.train()
        counts = np.bincount(ids.reshape(-1).numpy(), minlength=16)
        labels = torch.from_numpy(store.labels)
        hits_recon = torch.cat([semantic_net(to_model_input(recon[b], CPU)).argmax(1) for b in batches])
        hits_orig = torch.cat([semantic_net(to_model_input(originals[b], CPU)).argmax(1) for b in batches])
        acc_recon = (hits_recon == labels).float().mean().item()
        acc_orig = (hits_orig == labels).float().mean().item()
        x, xr = to_model_input(originals, CPU), to_model_input(recon, CPU)
        perceptual = distance.fn(xr, x).mean().item()
    p = counts[counts > 0] / counts.sum()
    assert metrics["codebook_used_codes"] == int((counts > 0).sum()) > 1
    assert metrics["codebook_usage"] == pytest.approx((counts > 0).sum() / 16)
    assert metrics["codebook_perplexity"] == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert metrics["classifier_accuracy_reconstructed"] == pytest.approx(acc_recon)
    assert metrics["classifier_accuracy_original"] == pytest.approx(acc_orig)
    # Batched vs one-pass float32 convolutions: oneDNN picks kernels by batch size and thread count,
    # so the two sums agree to about 1e-6 relative, occasionally 1e-5 (seen under load).
    assert metrics["perceptual_embedded_alpha0"] == pytest.approx(perceptual, rel=1e-4)
    assert metrics["perceptual_embedded_alpha0"] > 0


class DecodeIds(nn.Module):
    """A tokenizer whose forward reconstructs as the trainer's sidecar evaluation does:
    ``decode_ids`` of the ``encode`` ids (not the straight-through ``z_e + sg[z_q - z_e]``)."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    @property
    def quantizer(self) -> nn.Module:
        return self.tokenizer.quantizer

    def forward(self, x: torch.Tensor):
        _, ids, losses = self.tokenizer.encode(x)
        return self.tokenizer.decode_ids(ids), ids, losses


def test_training_time_psnr_is_the_evaluation_psnr(tokenizer, semantic_net, store):
    """The sidecar's ``psnr`` (seqgan.train.tokenizer_eval) and the metrics file's ``psnr``
    (seqgan.evaluate.reconstruction) are one quantity: equal on the same reconstructions."""
    batch = 10
    trained = tokenizer_eval.evaluate_reconstruction(tokenizer, store, NUM_IMAGES, batch, CPU)
    network = semantic_feature_network(semantic_net)
    reference = compute_reference(store, network, name="shapes_val")
    evaluated = evaluate_reconstruction(
        DecodeIds(tokenizer),
        store,
        batch_size=batch,
        device="cpu",
        fid_network=network,
        reference=reference,
    )
    assert trained["psnr"] == evaluated["psnr"]
    # ... and both are the uint8 PSNR of those reconstructions, written out here
    originals = np.array(store.images)
    with eval_mode(tokenizer):
        recon = np.concatenate(
            [
                to_uint8(tokenizer.decode_ids(tokenizer.encode(to_model_input(originals[i : i + batch], CPU))[1]))
                for i in range(0, NUM_IMAGES, batch)
            ]
        )
    diff = recon.astype(np.float64) - originals.astype(np.float64)
    per_image = 10 * np.log10(255.0**2 / (diff**2).mean(axis=(1, 2, 3)))
    assert np.isfinite(per_image).all()
    assert trained["psnr"] == pytest.approx(float(per_image.mean()), rel=1e-12)
    assert trained["psnr"] == mean_psnr(psnr(recon, originals), 32, 32)


def test_reconstruction_refuses_a_reference_of_another_network(tokenizer, semantic_net, store):
    reference = compute_reference(store, semantic_feature_network(semantic_net), name="val")
    other = copy.deepcopy(semantic_net)
    with torch.no_grad():
        other.head.bias.add_(0.1)
    with pytest.raises(ValueError, match="another feature network"):
        evaluate_reconstruction(
            tokenizer,
            store,
            batch_size=8,
            device="cpu",
            fid_network=semantic_feature_network(other),
            reference=reference,
        )


# --------------------------------------------------------------------------------------------
# Token arrays
# --------------------------------------------------------------------------------------------


def test_encode_split_equals_encode_of_its_batches(tokenizer, store):
    ids = encode_split(tokenizer, store, batch_size=7, device="cpu")
    assert ids.dtype == np.uint16 and ids.shape == (NUM_IMAGES, 8, 8)
    tokenizer.eval()
    flips = 0
    with torch.no_grad():
        for i in (0, 6, 7, NUM_IMAGES - 1):
            # Exact against encode() of the batch of 7 that encode_split put image i in: the same
            # convolutions on the same batch, and the same distances up to the argmin.
            start = i // 7 * 7
            batch = np.array(store.images[start : start + 7])
            same_batch = tokenizer.encode(to_model_input(batch, CPU))[1][i - start]
            np.testing.assert_array_equal(ids[i], same_batch.numpy())
            # Alone (batch of 1) the kernels differ, so an id at a near-tie may flip: an image's
            # ids do not depend on its batch-mates up to at most a few such flips.
            alone = tokenizer.encode(to_model_input(batch[i - start : i - start + 1], CPU))[1][0]
            flips += int((ids[i] != alone.numpy()).sum())
    assert flips <= 2  # of 4 x 64 ids
    big = copy.deepcopy(tokenizer)
    big.quantizer.codebook_size = 65537
    with pytest.raises(ValueError, match="uint16"):
        encode_split(big, store, batch_size=8, device="cpu")


def test_token_split_round_trip_and_checks(tmp_path: Path):
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 300, (10, 4, 4)).astype(np.uint16)
    labels = rng.integers(0, 3, 10)
    meta = {"tokenizer": {"file": "tok.safetensors", "sha256": "00ff"}, "source_split": "val"}
    manifest = write_token_split(tmp_path / "tok", ids, labels, meta, codebook_size=300)
    split = open_token_split(tmp_path / "tok", verify=True)
    assert isinstance(split.tokens, np.memmap) and split.tokens.dtype == np.uint16
    np.testing.assert_array_equal(split.tokens, ids)
    np.testing.assert_array_equal(split.labels, labels)
    assert split.grid == (4, 4) and split.codebook_size == 300 and len(split) == 10
    assert split.manifest == manifest and manifest["tokenizer"] == meta["tokenizer"]
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == ["labels.npy", "manifest.json", "tokens.npy"]
    with pytest.raises(ValueError, match=r"outside \[0, 300\)"):
        write_token_split(tmp_path / "bad", ids.astype(np.int64) + 1, labels, {}, codebook_size=300)
    with pytest.raises(ValueError, match="reserved"):
        write_token_split(tmp_path / "bad", ids, labels, {"count": 3}, codebook_size=300)
    # A truncated copy and a modified one are refused.
    np.save(tmp_path / "tok" / "tokens.npy", ids[:9])
    with pytest.raises(ValueError, match="manifest says"):
        open_token_split(tmp_path / "tok")
    changed = ids.copy()
    changed[0, 0, 0] += 1
    np.save(tmp_path / "tok" / "tokens.npy", changed)
    open_token_split(tmp_path / "tok")  # shapes agree: only verify=True reads the content
    with pytest.raises(ValueError, match="content hash"):
        open_token_split(tmp_path / "tok", verify=True)
    with pytest.raises(FileNotFoundError, match="not a complete token split"):
        open_token_split(tmp_path / "nothing")


def test_unigram_cross_entropy_and_entropy_by_hand():
    k = 4
    train = np.array([[0, 0, 1], [2, 0, 1]])  # counts 3, 2, 1, 0 of N = 6
    val = np.array([0, 3, 1, 1])
    q = np.array([4, 3, 2, 1]) / 10.0  # (n_k + 1) / (N + K)
    expected = -(np.log(q[0]) + np.log(q[3]) + 2 * np.log(q[1])) / 4
    assert unigram_cross_entropy(train, val, k) == pytest.approx(expected)
    p_val = np.array([0.25, 0.5, 0.25])
    assert token_entropy(val, k) == pytest.approx(-(p_val * np.log(p_val)).sum())
    assert token_entropy(np.zeros(9, int), k) == 0.0
    rng = np.random.default_rng(6)
    for _ in range(5):
        a = rng.integers(0, 16, 500) % rng.integers(1, 17)
        b = rng.integers(0, 16, 300) % rng.integers(1, 17)
        assert unigram_cross_entropy(a, b, 16) >= token_entropy(b, 16)
    assert unigram_cross_entropy(np.array([], int), val, k) == pytest.approx(math.log(k))
    with pytest.raises(ValueError):
        token_entropy(np.array([0, 4]), k)
