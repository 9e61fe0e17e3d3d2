"""Tests for real-dataset preparation (seqgan.data.prepare); every input is generated here."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from seqgan.artefacts.images import open_image_store
from seqgan.data import prepare as prep
from seqgan.data.prepare import (
    DatasetError,
    in_holdout,
    prepare_image_folder,
    prepare_lsun_lmdb,
    resize_center_crop,
    to_rgb_array,
)

RES = 64
PILLOW_DEFAULT_LIMIT = 89_478_485
COMMON = dict(resolution=RES, max_image_pixels=PILLOW_DEFAULT_LIMIT, progress=False)

# --------------------------------------------------------------------------------------------
# Input builders
# --------------------------------------------------------------------------------------------


def _smooth_rgb(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(width: int = 20000, height: int = 10000) -> bytes:
    """A valid PNG header declaring width x height grey pixels, with almost no data behind it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + _png_chunk(b"IEND", b"")
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _palette_image(size: tuple[int, int], index: int, colours: list[int]) -> Image.Image:
    image = Image.new("P", size, index)
    image.putpalette(colours + [0] * (768 - len(colours)))
    return image


def _rotated_jpeg() -> bytes:
    """96x64 stored pixels, left half red / right half blue, EXIF orientation 6 (rotate 90 CW).

    Displayed upright it is 64 wide x 96 tall with red on top and blue at the bottom.
    """
    pixels = np.zeros((64, 96, 3), np.uint8)
    pixels[:, :48] = (255, 0, 0)
    pixels[:, 48:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


# The bad-input corpus: path -> (bytes, expected outcome).
# Outcome: ("skip", reason_code) or ("ok", expected uniform colour or None, conversion substring)
def _bad_corpus() -> dict[str, tuple[bytes, tuple]]:
    rgb_jpg = _encode(_smooth_rgb(1, 120, 90), "JPEG", quality=90)
    noisy = Image.fromarray(np.random.default_rng(3).integers(0, 256, (150, 200, 3), np.uint8))
    noisy_png = _encode(noisy, "PNG")
    files: dict[str, tuple[bytes, tuple]] = {
        # normal inputs
        "b_dog/dog1.jpg": (_encode(_smooth_rgb(4, 100, 80), "JPEG", quality=90), ("ok", None, None)),
        "b_dog/dog2.webp": (_encode(_smooth_rgb(5, 90, 100), "WEBP", quality=90), ("ok", None, None)),
        "b_dog/dog3.bmp": (_encode(Image.new("RGB", (70, 80), (12, 200, 34)), "BMP"), ("ok", (12, 200, 34), None)),
        "b_dog/dog4.tiff": (_encode(Image.new("RGB", (80, 70), (90, 10, 250)), "TIFF"), ("ok", (90, 10, 250), None)),
        "b_dog/sub/dog5.ppm": (_encode(Image.new("RGB", (66, 66), (1, 2, 3)), "PPM"), ("ok", (1, 2, 3), None)),
        "a_cat/rgb1.jpg": (rgb_jpg, ("ok", None, None)),
        "a_cat/rgb2.PNG": (_encode(Image.new("RGB", (80, 100), (200, 30, 40)), "PNG"), ("ok", (200, 30, 40), None)),
        "a_cat/nested/deep/deep.JPEG": (_encode(_smooth_rgb(6, 64, 64), "JPEG"), ("ok", None, None)),
        # conversions
        "a_cat/gray.png": (_encode(Image.new("L", (100, 100), 77), "PNG"), ("ok", (77, 77, 77), "L->RGB")),
        "a_cat/cmyk.jpg": (
            _encode(Image.new("CMYK", (80, 80), (255, 0, 0, 0)), "JPEG", quality=95),
            ("ok", (0, 255, 255), "CMYK->RGB"),
        ),
        "a_cat/rgba.png": (
            _encode(Image.new("RGBA", (70, 90), (10, 20, 30, 0)), "PNG"),
            ("ok", (255, 255, 255), "RGBA->RGB (alpha composited on white)"),
        ),
        "a_cat/la.png": (
            _encode(Image.new("LA", (80, 80), (0, 128)), "PNG"),
            ("ok", (127, 127, 127), "LA->RGB (alpha composited on white)"),
        ),
        "a_cat/palette_t.gif": (
            _encode(_palette_image((80, 80), 0, [10, 20, 30]), "GIF", transparency=0),
            ("ok", (255, 255, 255), "P->RGB (transparency composited on white)"),
        ),
        "a_cat/palette.png": (
            _encode(_palette_image((80, 80), 1, [0, 0, 0, 255, 0, 0]), "PNG"),
            ("ok", (255, 0, 0), "P->RGB"),
        ),
        "a_cat/i16_max.png": (
            _encode(Image.fromarray(np.full((70, 70), 65535, np.uint16)), "PNG"),
            ("ok", (255, 255, 255), "I;16->RGB"),
        ),
        "a_cat/i16_low.tif": (  # Pillow's convert would clip 1000 to 255; scaling gives 4
            _encode(Image.fromarray(np.full((70, 70), 1000, np.uint16)), "TIFF"),
            ("ok", (4, 4, 4), "I;16->RGB"),
        ),
        "a_cat/int32.tif": (
            _encode(Image.fromarray(np.full((70, 70), 32768, np.int32)), "TIFF"),
            ("ok", (128, 128, 128), "I->RGB"),
        ),
        "a_cat/small.png": (
            _encode(Image.new("RGB", (20, 30), (5, 100, 220)), "PNG"),
            ("ok", (5, 100, 220), "upscaled 20x30"),
        ),
        "a_cat/rotated.jpg": (_rotated_jpeg(), ("ok", None, "exif_orientation 6 applied")),
        # bad inputs
        "a_cat/empty.jpg": (b"", ("skip", "empty_file")),
        "a_cat/truncated.jpg": (rgb_jpg[: len(rgb_jpg) // 2], ("skip", "truncated")),
        "a_cat/truncated.png": (noisy_png[: len(noisy_png) // 2], ("skip", "truncated")),
        "a_cat/fake.jpg": (b"this is not an image, only text\n" * 20, ("skip", "not_an_image")),
        "b_dog/bomb.png": (_bomb_png(), ("skip", "decompression_bomb")),
    }
    return files


IGNORED = {"a_cat/notes.txt": b"hello", "b_dog/.DS_Store": b"\x00\x01junk", "stray.jpg": b"x"}


def _build_bad_corpus(root: Path) -> dict[str, tuple[bytes, tuple]]:
    corpus = _bad_corpus()
    for rel, (data, _) in corpus.items():
        _write(root / rel, data)
    for rel, data in IGNORED.items():
        _write(root / rel, data)
    return corpus


def _read_tsv(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[0] == "path"
    return dict(line.split("\t", 1) for line in lines[1:])


def _written_keys(candidates: list[str], skipped: dict[str, str]) -> list[str]:
    return [rel for rel in sorted(candidates) if rel not in skipped]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The bad corpus prepared once with workers=1, with Pillow's own guard set very low."""
    root = tmp_path_factory.mktemp("bad")
    corpus = _build_bad_corpus(root / "src")
    with pytest.MonkeyPatch.context() as mp:
        # Pillow raises DecompressionBombError above 2x this for *every* image in the corpus;
        # preparation must neither abort nor change its output because of it.
        mp.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        manifest = prepare_image_folder(
            root / "src", root / "out", layout="classes", small_images="upscale", workers=1, **COMMON
        )
        pillow_limit_after = Image.MAX_IMAGE_PIXELS
    return {"root": root, "corpus": corpus, "manifest": manifest, "pillow_limit_after": pillow_limit_after}


# --------------------------------------------------------------------------------------------
# Bad input corpus
# --------------------------------------------------------------------------------------------


def test_bad_inputs_are_reported_exactly(bad_run: dict) -> None:
    out = bad_run["root"] / "out"
    skipped = _read_tsv(out / "skipped.tsv")
    expected = {rel: o[1] for rel, (_, o) in bad_run["corpus"].items() if o[0] == "skip"}
    assert {rel: reason.split(":", 1)[0] for rel, reason in skipped.items()} == expected
    assert skipped["b_dog/bomb.png"] == f"decompression_bomb: 200000000 px > {PILLOW_DEFAULT_LIMIT}"
    assert bad_run["pillow_limit_after"] == 1000  # the caller's Pillow setting was restored


def test_bad_corpus_counts_add_up(bad_run: dict) -> None:
    m = bad_run["manifest"]
    corpus = bad_run["corpus"]
    n_skip = sum(o[0] == "skip" for _, o in corpus.values())
    assert m["candidates"] == len(corpus)
    assert m["written"] == m["count"] == len(corpus) - n_skip
    assert m["skipped"] == n_skip
    assert m["written"] + m["skipped"] == m["candidates"]
    assert sum(m["skipped_by_reason"].values()) == m["skipped"]
    assert m["skipped_by_reason"]["truncated"] == 2
    assert m["ignored"] == len(IGNORED)
    assert m["ignored_by_kind"] == {"other_extension": 2, "outside_class_folder": 1}
    assert m["resampling"] == "LANCZOS" and m["layout"] == "classes"
    assert m["converted"] == len(_read_tsv(bad_run["root"] / "out" / "converted.tsv"))
    assert m["upscaled"] == 1
    on_disk = json.loads((bad_run["root"] / "out" / "manifest.json").read_text())
    assert on_disk == m


def test_conversions_are_listed(bad_run: dict) -> None:
    converted = _read_tsv(bad_run["root"] / "out" / "converted.tsv")
    for rel, (_, outcome) in bad_run["corpus"].items():
        if outcome[0] == "ok" and outcome[2] is not None:
            assert outcome[2] in converted.get(rel, ""), (rel, converted.get(rel))
        elif outcome[0] == "ok":
            assert rel not in converted, (rel, converted[rel])
    assert converted["a_cat/i16_low.tif"] == "I;16->RGB (16-bit scaled by 255/65535)"


def test_converted_pixels_are_correct(bad_run: dict) -> None:
    out = bad_run["root"] / "out"
    store = open_image_store(out)
    corpus = bad_run["corpus"]
    keys = _written_keys(list(corpus), _read_tsv(out / "skipped.tsv"))
    assert len(keys) == len(store)
    assert store.images.shape[1:] == (RES, RES, 3)
    for i, rel in enumerate(keys):
        outcome = corpus[rel][1]
        if outcome[1] is None:
            continue
        image = store.images[i].astype(int)
        tol = 6 if rel.endswith(".jpg") else 1  # the CMYK JPEG is lossy
        assert np.abs(image - np.array(outcome[1])).max() <= tol, (rel, image.reshape(-1, 3)[0])
    rotated = store.images[keys.index("a_cat/rotated.jpg")].astype(int)
    # Upright the image is red on top, blue at the bottom (without EXIF: red left, blue right).
    for row, colour in ((2, (255, 0, 0)), (RES - 3, (0, 0, 255))):
        for col in (2, RES - 3):
            assert np.abs(rotated[row, col] - colour).max() < 60, (row, col, rotated[row, col])


def test_labels_follow_sorted_class_folders(bad_run: dict) -> None:
    out = bad_run["root"] / "out"
    store = open_image_store(out)
    assert store.class_names == ["a_cat", "b_dog"]
    keys = _written_keys(list(bad_run["corpus"]), _read_tsv(out / "skipped.tsv"))
    expected = [0 if k.startswith("a_cat/") else 1 for k in keys]
    assert store.labels.tolist() == expected
    assert store.manifest["class_counts"] == {"a_cat": expected.count(0), "b_dog": expected.count(1)}


def test_workers_do_not_change_output(bad_run: dict, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
        manifest = prepare_image_folder(
            bad_run["root"] / "src",
            tmp_path / "out2",
            layout="classes",
            small_images="upscale",
            workers=2,
            **COMMON,
        )
    one, two = bad_run["root"] / "out", tmp_path / "out2"
    assert manifest == bad_run["manifest"]
    for name in ("images.u8", "labels.npy", "skipped.tsv", "converted.tsv", "manifest.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_many_images_across_pool_batches_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More images than the in-flight bound, so the throttled feeder really blocks and resumes."""
    monkeypatch.setattr(prep, "CHUNKSIZE", 3)
    monkeypatch.setattr(prep, "IN_FLIGHT_BATCHES_PER_WORKER", 1)
    src = tmp_path / "src"
    for i in range(40):
        _write(src / f"{i:03d}.png", _encode(_smooth_rgb(i, 20 + i, 24), "PNG"))
    _write(src / "zz_bad.png", b"junk")
    kwargs = dict(resolution=16, layout="flat", max_image_pixels=10**6, small_images="upscale", progress=False)
    m1 = prepare_image_folder(src, tmp_path / "w1", workers=1, **kwargs)
    m2 = prepare_image_folder(src, tmp_path / "w2", workers=2, **kwargs)
    assert m1["written"] == 40 and m1["skipped"] == 1
    assert m1 == m2
    assert (tmp_path / "w1/images.u8").read_bytes() == (tmp_path / "w2/images.u8").read_bytes()


def test_truncated_stays_rejected_if_caller_allows_truncation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(_smooth_rgb(7, 120, 90), "JPEG")
    _write(tmp_path / "src/ok.jpg", data)
    _write(tmp_path / "src/cut.jpg", data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    m = prepare_image_folder(tmp_path / "src", tmp_path / "out", layout="flat", small_images="upscale", **COMMON)
    assert m["written"] == 1
    assert _read_tsv(tmp_path / "out/skipped.tsv")["cut.jpg"].startswith("truncated: ")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


# --------------------------------------------------------------------------------------------
# Geometry and conversion units
# --------------------------------------------------------------------------------------------


def _thirds(width: int, height: int, horizontal: bool) -> np.ndarray:
    pixels = np.zeros((height, width, 3), np.uint8)
    n = width if horizontal else height
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for k in range(3):
        sl = slice(k * n // 3, (k + 1) * n // 3)
        if horizontal:
            pixels[:, sl] = colours[k]
        else:
            pixels[sl, :] = colours[k]
    return pixels


@pytest.mark.parametrize("horizontal", [True, False])
def test_centre_crop_keeps_the_middle(tmp_path: Path, horizontal: bool) -> None:
    size = (300, 100) if horizontal else (100, 300)
    _write(tmp_path / "src/wide.png", _encode(Image.fromarray(_thirds(*size, horizontal)), "PNG"))
    prepare_image_folder(tmp_path / "src", tmp_path / "out", layout="flat", small_images="skip", **COMMON)
    image = open_image_store(tmp_path / "out").images[0].astype(int)
    assert image.shape == (RES, RES, 3)
    inner = image[4:-4, 4:-4]
    assert np.abs(inner - (0, 255, 0)).max() <= 2  # centre third only, not squashed
    edges = np.concatenate([image[:, 0], image[:, -1], image[0], image[-1]])
    assert edges[:, 1].min() > 200 and edges[:, 0].max() < 60 and edges[:, 2].max() < 60


@pytest.mark.parametrize("shape", [(101, 333), (333, 101), (37, 37), (64, 65), (500, 64)])
@pytest.mark.parametrize("resolution", [37, 64])
def test_resize_center_crop_exact_size(shape: tuple[int, int], resolution: int) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    out = resize_center_crop(pixels, resolution)
    assert out.shape == (resolution, resolution, 3) and out.dtype == np.uint8


def test_resize_of_exact_size_is_identity() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(resize_center_crop(pixels, 64), pixels)


@pytest.mark.parametrize("value, expected", [(0, 0), (1000, 4), (32768, 128), (65535, 255)])
def test_sixteen_bit_is_scaled_not_clipped(value: int, expected: int) -> None:
    pixels, note = to_rgb_array(Image.fromarray(np.full((4, 4), value, np.uint16)))
    assert pixels.shape == (4, 4, 3) and np.all(pixels == expected)
    assert note is not None and note.startswith("I;16->RGB")


def test_int32_out_of_range_is_clipped_and_noted() -> None:
    pixels, note = to_rgb_array(Image.fromarray(np.array([[70000, -5]], np.int32)))
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[0, 1].tolist() == [0, 0, 0]
    assert note is not None and "clipped" in note


def test_rgb_is_not_converted() -> None:
    pixels, note = to_rgb_array(Image.new("RGB", (3, 2), (1, 2, 3)))
    assert note is None and pixels[1, 2].tolist() == [1, 2, 3]


# --------------------------------------------------------------------------------------------
# Layouts, subsets, policies
# --------------------------------------------------------------------------------------------


def test_flat_layout_one_class_recursive(tmp_path: Path) -> None:
    for seed, (rel, fmt) in enumerate((("x/1.jpg", "JPEG"), ("x/y/2.png", "PNG"), ("3.webp", "WEBP"))):
        _write(tmp_path / "src" / rel, _encode(_smooth_rgb(seed, 70, 70), fmt))
    m = prepare_image_folder(tmp_path / "src", tmp_path / "out", layout="flat", small_images="skip", **COMMON)
    store = open_image_store(tmp_path / "out")
    assert store.class_names == ["all"] and m["count"] == 3
    assert store.labels.tolist() == [0, 0, 0]


def test_classes_labels_sorted_not_creation_order(tmp_path: Path) -> None:
    colours = {"zebra": (250, 0, 0), "n01": (0, 250, 0), "apple": (0, 0, 250)}
    for name, colour in colours.items():  # created in non-sorted order
        _write(tmp_path / "src" / name / "img.png", _encode(Image.new("RGB", (64, 64), colour), "PNG"))
    (tmp_path / "src" / "empty_dir").mkdir()
    _write(tmp_path / "src/only_text/readme.txt", b"no images here")
    prepare_image_folder(tmp_path / "src", tmp_path / "out", layout="classes", small_images="skip", **COMMON)
    store = open_image_store(tmp_path / "out")
    assert store.class_names == ["apple", "n01", "zebra"]
    assert store.labels.tolist() == [0, 1, 2]
    for i, name in enumerate(store.class_names):
        assert store.images[i, 0, 0].tolist() == list(colours[name])


def test_output_inside_source_and_directory_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src / "real/a.png", _encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG"))
    (src / "loop").mkdir()
    (src / "loop/back").symlink_to(src, target_is_directory=True)  # a link loop
    first = _prepare(src, src / "prepared", "flat")
    second = _prepare(src, src / "prepared", "flat")  # must not pick up its own outputs
    assert first["count"] == second["count"] == 1
    assert first["ignored"] == second["ignored"] == 0
    assert first["skipped_directories"] == ["loop/back: link to a directory already listed"]


def _colour_corpus(src: Path, n: int) -> dict[tuple[int, int, int], str]:
    colours = {}
    for i in range(n):
        colour = (i * 5 % 256, 255 - i * 3, (i * 37) % 256)
        rel = f"d{i % 3}/img{i:02d}.png"
        _write(src / rel, _encode(Image.new("RGB", (8, 8), colour), "PNG"))
        colours[colour] = rel
    return colours


def test_holdout_partitions_all(tmp_path: Path) -> None:
    colours = _colour_corpus(tmp_path / "src", 40)
    kwargs = dict(
        resolution=8, layout="flat", max_image_pixels=10**6, small_images="skip", holdout_fraction=0.3, progress=False
    )
    seen = {}
    for subset in ("all", "train", "holdout"):
        m = prepare_image_folder(tmp_path / "src", tmp_path / subset, subset=subset, **kwargs)
        seen[subset] = {tuple(px) for px in open_image_store(tmp_path / subset).images[:, 0, 0].tolist()}
        assert len(seen[subset]) == m["count"]
        assert m["candidates"] + m["not_in_subset"] == 40
    assert seen["all"] == set(colours)
    assert seen["train"] and seen["holdout"]
    assert seen["train"].isdisjoint(seen["holdout"])
    assert seen["train"] | seen["holdout"] == seen["all"]
    assert {colours[c] for c in seen["holdout"]} == {r for r in colours.values() if in_holdout(r, 0.3)}


def test_holdout_is_a_function_of_the_path_only() -> None:
    keys = [f"dir/{i}.jpg" for i in range(2000)]
    fraction = sum(in_holdout(k, 0.25) for k in keys) / len(keys)
    assert 0.2 < fraction < 0.3
    assert [in_holdout(k, 0.25) for k in reversed(keys)] == [in_holdout(k, 0.25) for k in keys][::-1]
    assert all(in_holdout(k, 0.25) <= in_holdout(k, 0.5) for k in keys)  # nested holdouts


def test_small_images_skip_vs_upscale(tmp_path: Path) -> None:
    _write(tmp_path / "src/small.png", _encode(Image.new("RGB", (20, 30), (9, 99, 199)), "PNG"))
    _write(tmp_path / "src/big.png", _encode(Image.new("RGB", (80, 64), (1, 1, 1)), "PNG"))
    ms = prepare_image_folder(tmp_path / "src", tmp_path / "skip", layout="flat", small_images="skip", **COMMON)
    assert ms["written"] == 1 and ms["skipped_by_reason"] == {"too_small": 1}
    assert _read_tsv(tmp_path / "skip/skipped.tsv") == {"small.png": "too_small: 20x30 < 64"}
    mu = prepare_image_folder(tmp_path / "src", tmp_path / "up", layout="flat", small_images="upscale", **COMMON)
    assert mu["written"] == 2 and mu["skipped"] == 0 and mu["upscaled"] == 1
    assert _read_tsv(tmp_path / "up/converted.tsv") == {"small.png": "upscaled 20x30"}
    assert np.abs(open_image_store(tmp_path / "up").images[1].astype(int) - (9, 99, 199)).max() <= 1


def test_bomb_threshold_is_ours(tmp_path: Path) -> None:
    _write(tmp_path / "src/a.png", _encode(Image.new("RGB", (100, 100)), "PNG"))
    _write(tmp_path / "src/b.png", _encode(Image.new("RGB", (64, 64)), "PNG"))
    m = prepare_image_folder(
        tmp_path / "src",
        tmp_path / "out",
        layout="flat",
        small_images="skip",
        resolution=RES,
        max_image_pixels=5000,
        progress=False,
    )
    assert m["written"] == 1
    assert _read_tsv(tmp_path / "out/skipped.tsv") == {"a.png": "decompression_bomb: 10000 px > 5000"}


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def _prepare(src: Path, out: Path, layout: str = "classes") -> dict:
    return prepare_image_folder(src, out, layout=layout, small_images="upscale", **COMMON)


def test_missing_source_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist") as info:
        _prepare(tmp_path / "nope", tmp_path / "out")
    assert str(tmp_path / "nope") in str(info.value)


def test_source_is_a_file(tmp_path: Path) -> None:
    _write(tmp_path / "file.jpg", _encode(Image.new("RGB", (64, 64)), "JPEG"))
    with pytest.raises(DatasetError, match="not a directory") as info:
        _prepare(tmp_path / "file.jpg", tmp_path / "out", "flat")
    assert str(tmp_path / "file.jpg") in str(info.value)


def test_folder_without_images(tmp_path: Path) -> None:
    _write(tmp_path / "src/notes.txt", b"nothing")
    with pytest.raises(DatasetError, match="no image files") as info:
        _prepare(tmp_path / "src", tmp_path / "out", "flat")
    assert str(tmp_path / "src") in str(info.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_classes_layout_without_subfolders_suggests_flat(tmp_path: Path) -> None:
    _write(tmp_path / "src/a.jpg", _encode(Image.new("RGB", (64, 64)), "JPEG"))
    with pytest.raises(DatasetError, match="flat") as info:
        _prepare(tmp_path / "src", tmp_path / "out", "classes")
    assert str(tmp_path / "src") in str(info.value)


def test_everything_skipped_is_an_error_with_report(tmp_path: Path) -> None:
    _write(tmp_path / "src/c/a.jpg", b"")
    _write(tmp_path / "src/c/b.png", b"garbage")
    with pytest.raises(DatasetError, match="skipped") as info:
        _prepare(tmp_path / "src", tmp_path / "out")
    report = tmp_path / "out" / "skipped.tsv"
    assert str(report) in str(info.value)
    assert set(_read_tsv(report)) == {"c/a.jpg", "c/b.png"}
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not (tmp_path / "out" / "images.u8.tmp").exists()


def test_bad_arguments(tmp_path: Path) -> None:
    _write(tmp_path / "src/a.png", _encode(Image.new("RGB", (64, 64)), "PNG"))
    with pytest.raises(ValueError, match="holdout_fraction"):
        prepare_image_folder(
            tmp_path / "src", tmp_path / "o", layout="flat", small_images="skip", subset="holdout", **COMMON
        )
    with pytest.raises(ValueError, match="layout"):
        prepare_image_folder(tmp_path / "src", tmp_path / "o", layout="nested", small_images="skip", **COMMON)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# LSUN LMDB export
# --------------------------------------------------------------------------------------------


def _lmdb_entries() -> dict[bytes, bytes]:
    entries = {
        f"{i:040x}".encode(): _encode(_smooth_rgb(10 + i, 80 + 7 * i, 70), "WEBP" if i % 2 else "JPEG", quality=85)
        for i in range(5)
    }
    entries[b"00ff" + b"0" * 36] = b"\x00\x01\x02 corrupt value, not an encoded image"
    entries[b"0a" + b"0" * 38] = b""
    return entries


def test_lsun_lmdb_matches_folder_and_reports_corrupt(tmp_path: Path) -> None:
    lmdb = pytest.importorskip("lmdb")
    entries = _lmdb_entries()
    env = lmdb.open(str(tmp_path / "db"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    env.close()
    for key, value in entries.items():  # the same bytes as files, named by key
        _write(tmp_path / "files" / (key.decode() + ".webp"), value)

    m = prepare_lsun_lmdb(
        tmp_path / "db",
        tmp_path / "out",
        resolution=RES,
        max_image_pixels=PILLOW_DEFAULT_LIMIT,
        small_images="upscale",
        progress=False,
    )
    skipped = _read_tsv(tmp_path / "out/skipped.tsv")
    assert {k: v.split(":")[0] for k, v in skipped.items()} == {
        "00ff" + "0" * 36: "not_an_image",
        "0a" + "0" * 38: "empty_file",
    }
    assert m["written"] == 5 and m["candidates"] == 7 and m["class_names"] == ["all"]
    assert m["lmdb_entries_scanned"] == 7 and m["source_kind"] == "lsun_lmdb"

    prepare_image_folder(tmp_path / "files", tmp_path / "ref", layout="flat", small_images="upscale", **COMMON)
    assert (tmp_path / "out/images.u8").read_bytes() == (tmp_path / "ref/images.u8").read_bytes()

    m2 = prepare_lsun_lmdb(
        tmp_path / "db",
        tmp_path / "out2",
        resolution=RES,
        workers=2,
        max_image_pixels=PILLOW_DEFAULT_LIMIT,
        small_images="upscale",
        progress=False,
    )
    assert m2["sha256"] == m["sha256"]

    limited = prepare_lsun_lmdb(
        tmp_path / "db",
        tmp_path / "lim",
        resolution=RES,
        limit=3,
        max_image_pixels=PILLOW_DEFAULT_LIMIT,
        small_images="upscale",
        progress=False,
    )
    assert limited["lmdb_entries_scanned"] == 3 and limited["candidates"] == 3

    counts = {}
    for subset in ("train", "holdout"):
        counts[subset] = prepare_lsun_lmdb(
            tmp_path / "db",
            tmp_path / subset,
            resolution=RES,
            subset=subset,
            holdout_fraction=0.5,
            max_image_pixels=PILLOW_DEFAULT_LIMIT,
            small_images="upscale",
            progress=False,
        )["candidates"]
    expected_holdout = sum(in_holdout(k.decode(), 0.5) for k in entries)
    assert counts["holdout"] == expected_holdout and counts["train"] == 7 - expected_holdout


def test_lsun_lmdb_without_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "lmdb", None)  # makes `import lmdb` raise ImportError
    with pytest.raises(DatasetError, match="pip install lmdb"):
        prepare_lsun_lmdb(
            tmp_path / "db",
            tmp_path / "out",
            resolution=RES,
            max_image_pixels=PILLOW_DEFAULT_LIMIT,
            small_images="upscale",
        )


def test_lsun_lmdb_missing(tmp_path: Path) -> None:
    pytest.importorskip("lmdb")
    with pytest.raises(DatasetError, match="does not exist") as info:
        prepare_lsun_lmdb(
            tmp_path / "db",
            tmp_path / "out",
            resolution=RES,
            max_image_pixels=PILLOW_DEFAULT_LIMIT,
            small_images="upscale",
        )
    assert str(tmp_path / "db") in str(info.value)


def test_data_preparation_never_imports_torch(tmp_path: Path) -> None:
    """`seqgan prepare-data` runs on CPU nodes, once per worker process: importing torch alone costs
    about 500 MiB there (benchmarks/bench_prepare.py measures the peak). A synthetic split and a
    folder split, each through the CLI in a fresh process, and neither loads torch."""
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[1]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["data"]["synthetic"].update(train_images=40, val_images=20)
    synthetic = tmp_path / "synthetic.yaml"
    synthetic.write_text(yaml.safe_dump(raw, sort_keys=False))
    for c in range(2):
        (tmp_path / "photos" / f"class{c}").mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 36), (60 * c + 10 * i, 80, 120)).save(tmp_path / "photos" / f"class{c}" / f"{i}.png")
    raw["data"].update(name="photos", source="folder")
    raw["data"]["folder"].update(train_dir=str(tmp_path / "photos"), val_dir=str(tmp_path / "photos"))
    folder = tmp_path / "folder.yaml"
    folder.write_text(yaml.safe_dump(raw, sort_keys=False))
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, seqgan.data.prepare; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.stdout.strip() == "False", imported.stdout + imported.stderr  # the module alone
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['seqgan', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('seqgan', run_name='__main__')\n"
        "finally:\n"
        "    print('torch loaded:', 'torch' in sys.modules)\n"
    )
    for params, out in ((synthetic, "synthetic"), (folder, "folder")):
        args = ["prepare-data", "--params", str(params), "--split", "train", "--out", str(tmp_path / out)]
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().endswith("torch loaded: False"), result.stdout[-2000:]
        assert len(open_image_store(tmp_path / out)) == (40 if out == "synthetic" else 6)
