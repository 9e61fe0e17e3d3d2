"""Offline-aware pretrained weights: paths, clear errors, idempotent fetch, cached VGG16 load."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
import torchvision

from seqgan.nets import pretrained
from seqgan.nets.pretrained import (
    MissingWeightsError,
    WeightsDownloadError,
    fetch_weights,
    inception_weights_path,
    load_vgg16_imagenet,
    lpips_linear_weights_path,
    require_weights,
    vgg16_weights_path,
)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; torch.hub reads the variable on every get_dir() call."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case anything called set_dir
    return home


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every download path fail loudly and record that it was called."""
    calls: list[str] = []

    def fail(*args: object, **kwargs: object) -> None:
        calls.append(str(args[0]) if args else "?")
        raise AssertionError("network access attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    monkeypatch.setattr("urllib.request.urlopen", fail)
    return calls


@pytest.fixture
def fake_inception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Redirect the (clean-fid hard-coded) Inception path into tmp, so tests never touch /tmp."""
    path = tmp_path / "cleanfid" / pretrained.INCEPTION_FILENAME
    spec = dataclasses.replace(pretrained.WEIGHTS["inception"], path=lambda: path)
    monkeypatch.setitem(pretrained.WEIGHTS, "inception", spec)
    return path


def test_vgg16_path_honours_torch_home(torch_home: Path) -> None:
    assert vgg16_weights_path() == torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth"


def test_vgg16_path_is_the_one_torchvision_downloads_to(torch_home: Path) -> None:
    url = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    assert pretrained.VGG16_URL == url
    assert vgg16_weights_path().name == os.path.basename(url)
    assert vgg16_weights_path().parent == Path(torch.hub.get_dir()) / "checkpoints"


def test_inception_path_matches_cleanfid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask clean-fid itself which directory it would use, with its loader replaced by a recorder."""
    import cleanfid.downloads_helper
    import cleanfid.features

    seen: list[str] = []

    class Recorder(torch.nn.Module):
        def __init__(self, path: str, download: bool = True, resize_inside: bool = False) -> None:
            super().__init__()
            seen.append(path)

    monkeypatch.setattr(cleanfid.features, "InceptionV3W", Recorder)
    monkeypatch.setenv("TMPDIR", "/somewhere/else")  # clean-fid ignores it; so must we
    cleanfid.features.feature_extractor(device=torch.device("cpu"), use_dataparallel=False)
    assert inception_weights_path() == Path(seen[0]) / "inception-2015-12-05.pt"
    assert pretrained.INCEPTION_URL == cleanfid.downloads_helper.inception_url


def test_lpips_linear_weights_ship_with_the_package() -> None:
    path = lpips_linear_weights_path()
    assert path.is_file() and path.name == "vgg.pth" and path.parent.name == "v0.1"
    assert require_weights("lpips_vgg") == path
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert sorted(state) == [f"lin{i}.model.1.weight" for i in range(5)]


def test_missing_vgg16_error_names_path_and_command(torch_home: Path) -> None:
    with pytest.raises(MissingWeightsError) as info:
        require_weights("vgg16")
    message = str(info.value)
    assert str(vgg16_weights_path()) in message
    assert "seqgan fetch-weights --only vgg16" in message
    assert "VGG16" in message and "scp" in message
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.path == vgg16_weights_path()


def test_missing_inception_error(fake_inception: Path) -> None:
    with pytest.raises(MissingWeightsError, match="seqgan fetch-weights --only inception") as info:
        require_weights("inception")
    assert str(fake_inception) in str(info.value)
    assert "FID" in str(info.value)


def test_unknown_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="vgg19"):
        require_weights("vgg19")
    with pytest.raises(ValueError, match="vgg19"):
        fetch_weights(only=["vgg19"])


def test_load_missing_raises(torch_home: Path) -> None:
    with pytest.raises(MissingWeightsError, match="seqgan fetch-weights"):
        load_vgg16_imagenet()


def test_load_corrupt_file_says_what_to_do(torch_home: Path) -> None:
    path = vgg16_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeightsError, match="delete it") as info:
        load_vgg16_imagenet()
    assert str(path) in str(info.value)


def test_load_cached_state_dict(torch_home: Path, no_network: list[str]) -> None:
    """A real VGG16 state dict in the cache loads, bit-exactly, without the network."""
    torch.manual_seed(0)
    reference = torchvision.models.vgg16(weights=None).eval()
    path = vgg16_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = load_vgg16_imagenet()
    assert not model.training
    for (name, a), (_, b) in zip(reference.state_dict().items(), model.state_dict().items(), strict=True):
        assert a.device == b.device and torch.equal(a, b), name
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    assert no_network == []


def test_fetch_skips_present_files(torch_home: Path, fake_inception: Path, no_network: list[str]) -> None:
    vgg = vgg16_weights_path()
    vgg.parent.mkdir(parents=True)
    vgg.write_bytes(b"present")
    fake_inception.parent.mkdir(parents=True)
    fake_inception.write_bytes(b"present")
    paths = fetch_weights(progress=False)
    lpips_path = lpips_linear_weights_path()
    assert paths == {"vgg16": vgg, "inception": fake_inception, "lpips_vgg": lpips_path}
    assert no_network == []
    assert vgg.read_bytes() == b"present"


def test_fetch_downloads_only_missing(torch_home: Path, fake_inception: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_inception.parent.mkdir(parents=True)
    fake_inception.write_bytes(b"present")
    calls: list[tuple[str, dict]] = []

    def fake_hub_download(url: str, **kwargs: object) -> dict:
        calls.append((url, kwargs))
        target = Path(str(kwargs["model_dir"])) / str(kwargs["file_name"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"downloaded")
        return {}

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_hub_download)

    def must_not_run(*args: object, **kwargs: object) -> None:
        pytest.fail("inception is present; it must not be downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", must_not_run)
    paths = fetch_weights(only=["vgg16", "inception"], progress=False)
    assert set(paths) == {"vgg16", "inception"}
    assert len(calls) == 1 and calls[0][0] == pretrained.VGG16_URL
    assert calls[0][1]["check_hash"] is True
    assert vgg16_weights_path().read_bytes() == b"downloaded"


def test_fetch_offline_gives_clear_error(
    torch_home: Path, fake_inception: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsDownloadError) as info:
        fetch_weights(progress=False)
    message = str(info.value)
    assert "network unreachable" in message
    assert "vgg16" in message and "inception" in message  # both attempted, both reported
    assert str(vgg16_weights_path()) in message and str(fake_inception) in message
    assert "seqgan fetch-weights" in message
    assert not vgg16_weights_path().exists() and not fake_inception.exists()
