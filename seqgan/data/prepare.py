"""Real-dataset preparation: a folder of images (ImageNet / FFHQ / LSUN layouts) or LSUN's LMDB
export -> the prepared-split format of :mod:`seqgan.artefacts.images`.

What one image goes through (:func:`process_image`):

1. **Header checks before any pixel is decoded.** ``Image.open`` only parses the header, so the
   declared ``width * height`` is compared with ``max_image_pixels`` first: a decompression bomb
   (a few kB of PNG that inflates to gigabytes) is skipped without allocating its pixels.
   Pillow's own global guard (``Image.MAX_IMAGE_PIXELS``: a warning above it, an exception above
   twice it) is switched off for the duration of each decode, because it is process-global, its
   limit is not ours, and an exception from it must not abort a run. Images whose shorter side is
   below the target are skipped here as well when ``small_images="skip"``.
2. **Strict decode.** ``ImageFile.LOAD_TRUNCATED_IMAGES`` is held at ``False`` (even if a caller
   set it): with it Pillow pads a truncated file with grey and the damage would end up in the
   training set. ``.load()`` runs inside the ``try`` so a truncated or corrupt file becomes a
   skip reason, never a crash.
3. **EXIF orientation** is applied (``ImageOps.exif_transpose``): phone photos store pixels
   sideways and rely on the tag, and a model should see them the way a person does.
4. **Conversion to 8-bit RGB** (:func:`to_rgb_array`):

   - alpha (RGBA, LA, PA, RGBa, and P / L / RGB with a ``transparency`` entry) is
     *composited onto white*, not dropped: the colour under fully transparent pixels is arbitrary
     (often black or leftover junk), while transparent web images (logos, product shots) were
     designed to be seen on a white page;
   - 16-bit grey (``I;16*``; also ``I``, as which older Pillow versions and some TIFF/PGM files
     load 16-bit data) is *scaled* by 255/65535 with rounding; Pillow's own ``convert`` clips
     instead (1000 -> 255); ``I`` values outside 0..65535 are clipped and the note says so;
   - CMYK uses Pillow's plain (profile-free) conversion, the same as torchvision's default
     loader (``Image.convert("RGB")``), so statistics computed with that loader agree;
   - every other mode goes through ``Image.convert("RGB")``.

5. **Resize + centre crop** (:func:`resize_center_crop`) in one resampling call: the centred
   square whose side is the shorter image side is resampled to ``resolution x resolution``
   (``Image.resize(..., box=...)``). This equals "resize so the shorter side equals resolution,
   then centre-crop" without the half-pixel shift that rounding the intermediate size causes,
   and skips filtering columns that are thrown away. The filter is **LANCZOS** (a=3): Pillow
   scales its support with the reduction factor, so it is a proper anti-aliasing filter for any
   downscale, and it is computed exactly, with no ``reducing_gap`` / JPEG ``draft`` shortcut,
   so the output depends on nothing but the decoded pixels. Cost, measured for 200-500 px JPEGs
   to 64 px: about 2 ms resampling and 1 ms decoding per image on one core;
   ``reducing_gap=3.0`` saves up to ~30 % of the resampling at a difference of at most one grey
   level, too little to justify an approximation in a reproduction's data pipeline (see
   ``benchmarks/bench_prepare.py``). Images smaller than the target are upscaled by the same
   call when ``small_images="upscale"`` and listed as such.

Bad input never aborts a run and never disappears: every candidate file is either written or
listed in ``skipped.tsv`` (``path<TAB>reason``, reason = stable code, optionally ``: detail``),
and every written file that needed more than a decode is listed in ``converted.tsv``. Codes:
``empty_file``, ``unreadable``, ``not_an_image``, ``truncated``, ``corrupt``,
``decompression_bomb``, ``too_small``, ``unsupported_mode``, ``resize_failed``. Files with a
non-image extension are not candidates; they are only counted (``ignored``) in the manifest.

Streaming and parallelism: files are listed (paths only) and sorted by relative POSIX path, then
fed through a ``multiprocessing.Pool.imap`` (ordered, chunked) when ``workers > 1``. The feeder is
throttled by a semaphore, so at most ``workers * IN_FLIGHT_BATCHES_PER_WORKER * CHUNKSIZE``
(2 * 4 * 16 = 128 for two workers) images are between the file system and the writer at any
time, however large the dataset; ``Pool.imap`` alone would read the whole task list ahead and
buffer out-of-order results without limit. Every image is processed by the same pure function,
so the output is byte-identical for any worker count.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps
from tqdm import tqdm

from seqgan.artefacts.files import atomic_write_text
from seqgan.artefacts.images import ImageStoreWriter

PREPARER_VERSION = "seqgan.data.prepare v1"

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)  # compared lower-cased, so .JPEG (ImageNet) and .PNG match too

RESAMPLING = Image.Resampling.LANCZOS
RESAMPLING_NAME = "LANCZOS"
RESAMPLING_DESCRIPTION = (
    "LANCZOS (exact, no reducing_gap/draft); centred square of side min(w, h) "
    "resampled to resolution x resolution in one call"
)
HOLDOUT_RULE = "int(sha1(utf8(relative_path)).hexdigest()[:8], 16) / 16**8 < holdout_fraction"

SKIPPED_REPORT = "skipped.tsv"
CONVERTED_REPORT = "converted.tsv"

CHUNKSIZE = 16  # images per Pool task message: amortises IPC without hurting load balance
IN_FLIGHT_BATCHES_PER_WORKER = 4  # batches submitted but not yet written, per worker
RESULT_TIMEOUT_S = 600.0  # no result for this long => a worker died (segfault / OOM kill)

Layout = Literal["classes", "flat"]
SmallImages = Literal["upscale", "skip"]
Subset = Literal["all", "train", "holdout"]

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_ORIENTATION_TAG = ExifTags.Base.Orientation


class DatasetError(ValueError):
    """The source data cannot be prepared (missing, wrong layout, nothing usable in it)."""


# --------------------------------------------------------------------------------------------
# Single image
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    """Why one candidate was not written: ``"code"`` or ``"code: detail"``."""

    reason: str

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


@dataclass(frozen=True)
class LoadedImage:
    """A decoded candidate: (H, W, 3) uint8 pixels, its header size and what was done to it."""

    pixels: np.ndarray
    source_size: tuple[int, int]  # (width, height) as declared in the file header
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Per-image processing parameters (picklable: sent once to every pool worker)."""

    resolution: int
    max_image_pixels: int
    small_images: SmallImages


class _Task(NamedTuple):
    key: str  # relative POSIX path, or the LMDB key
    label: int
    source: str | bytes  # absolute file path, or the encoded image bytes


class _Result(NamedTuple):
    key: str
    label: int
    pixels: np.ndarray | None  # (resolution, resolution, 3) uint8 when written
    skip: str | None  # skip reason when not written
    notes: tuple[str, ...]


@contextmanager
def _strict_pillow() -> Iterator[None]:
    """Pillow globals as preparation needs them, for the duration of one decode.

    - ``Image.MAX_IMAGE_PIXELS = None``: we enforce our own limit from the header (see
      :func:`load_rgb`); Pillow's process-global guard, at its own unrelated threshold, raises
      DecompressionBombError above twice it and must not abort a run.
    - ``ImageFile.LOAD_TRUNCATED_IMAGES = False``: some training code sets it to True, which
      makes Pillow pad truncated files with grey; here they must fail and be reported.
    - warnings ignored: Pillow warns per image (DecompressionBombWarning, "Corrupt EXIF data",
      ...), which would flood a million-image log; pixels are validated by the strict decode.

    Both globals are restored afterwards, so a caller's settings are left as they were.
    """
    previous_pixels = Image.MAX_IMAGE_PIXELS
    previous_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS = None
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = previous_truncated


def _clean_message(exc: BaseException, source: str | bytes) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(source, str):
        msg = msg.replace(source, os.path.basename(source))
    return msg


def _describe_decode_error(exc: BaseException, source: str | bytes) -> str:
    """Map a Pillow decode exception to a stable reason code plus its message."""
    msg = _clean_message(exc, source)
    if isinstance(exc, EOFError) or "truncated" in msg.lower():
        return f"truncated: {msg}"
    return f"corrupt: {type(exc).__name__}: {msg}"


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 -> 255, 32768 -> 128, 1000 -> 4)."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode in ("P", "L", "RGB") and "transparency" in image.info)


def to_rgb_array(image: Image.Image) -> tuple[np.ndarray, str | None]:
    """Convert a loaded image of any mode to (H, W, 3) uint8; return a note if it was converted.

    Raises ValueError for modes Pillow cannot convert (reported as ``unsupported_mode``).
    """
    mode = image.mode
    if _has_transparency(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
        what = "alpha" if mode in _ALPHA_MODES else "transparency"
        return np.asarray(rgb), f"{mode}->RGB ({what} composited on white)"
    if mode == "RGB":
        return np.asarray(image), None
    if mode in _SIXTEEN_BIT_MODES:
        grey = _scale_16bit(np.asarray(image))
        return _grey_to_rgb(grey), f"{mode}->RGB (16-bit scaled by 255/65535)"
    if mode == "I":
        values = np.asarray(image).astype(np.int64)
        note = f"{mode}->RGB (16-bit scaled by 255/65535)"
        if values.size and (values.min() < 0 or values.max() > 65535):
            note = f"{mode}->RGB (16-bit scaled by 255/65535; values outside 0..65535 clipped)"
        return _grey_to_rgb(_scale_16bit(np.clip(values, 0, 65535))), note
    if mode == "F":
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        unit_range = values.size == 0 or (values.min() >= 0.0 and values.max() <= 1.0)
        scaled = values * 255.0 if unit_range else values
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        how = "0..1 scaled to 0..255" if unit_range else "clipped to 0..255"
        return _grey_to_rgb(grey), f"F->RGB (float {how})"
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"unsupported_mode: {mode} ({exc})") from exc
    return np.asarray(rgb), f"{mode}->RGB"


def _apply_exif_orientation(image: Image.Image) -> str | None:
    """Rotate/flip a loaded image in place as its EXIF tag says; return a note if it did."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        if orientation in range(2, 9):
            ImageOps.exif_transpose(image, in_place=True)
            return f"exif_orientation {orientation} applied"
    except Exception as exc:  # malformed EXIF must not cost us an otherwise good image
        return f"exif ignored ({type(exc).__name__})"
    return None


def _open(source: str | bytes) -> Image.Image:
    return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _decode(image: Image.Image, source: str | bytes, max_image_pixels: int, min_side: int | None) -> LoadedImage | Skip:
    width, height = image.size
    if width * height > max_image_pixels:
        return Skip(f"decompression_bomb: {width * height} px > {max_image_pixels}")
    if width <= 0 or height <= 0:
        return Skip(f"corrupt: header declares {width}x{height}")
    if min_side is not None and min(width, height) < min_side:
        return Skip(f"too_small: {width}x{height} < {min_side}")
    try:
        image.load()
    except Exception as exc:
        return Skip(_describe_decode_error(exc, source))
    notes = []
    orientation_note = _apply_exif_orientation(image)
    if orientation_note:
        notes.append(orientation_note)
    try:
        pixels, mode_note = to_rgb_array(image)
    except ValueError as exc:
        message = str(exc)
        if not message.startswith("unsupported_mode"):
            message = f"unsupported_mode: {image.mode} ({message})"
        return Skip(message)
    if mode_note:
        notes.append(mode_note)
    return LoadedImage(pixels, (width, height), tuple(notes))


def load_rgb(
    source: str | os.PathLike[str] | bytes, *, max_image_pixels: int, min_side: int | None = None
) -> LoadedImage | Skip:
    """Decode one file (path) or encoded image (bytes) to 8-bit RGB, or say why not.

    Never raises for bad input: every failure is returned as a :class:`Skip`. ``min_side``, when
    given, skips images whose shorter side is below it before their pixels are decoded.
    """
    if not isinstance(source, bytes):
        source = os.fspath(source)
        try:
            size = os.stat(source).st_size
        except OSError as exc:
            return Skip(f"unreadable: {exc.strerror or type(exc).__name__}")
    else:
        size = len(source)
    if size == 0:
        return Skip("empty_file")
    with _strict_pillow():
        try:
            with _open(source) as image:
                return _decode(image, source, max_image_pixels, min_side)
        except Image.UnidentifiedImageError:
            return Skip("not_an_image: Pillow cannot identify the format")
        except Image.DecompressionBombError as exc:  # the guard is off; kept as a safety net
            return Skip(f"decompression_bomb: {_clean_message(exc, source)}")
        except PermissionError as exc:
            return Skip(f"unreadable: {exc.strerror or type(exc).__name__}")
        except Exception as exc:
            return Skip(_describe_decode_error(exc, source))


def resize_center_crop(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """Resize so the shorter side equals ``resolution`` and keep the centre square (LANCZOS).

    Done as one resampling of the centred ``min(w, h)`` square (``box=``), which is the exact,
    sub-pixel-centred version of resize-then-crop; see the module docstring for the filter.
    """
    height, width = pixels.shape[:2]
    side = min(width, height)
    left = (width - side) / 2.0
    top = (height - side) / 2.0
    image = Image.fromarray(np.ascontiguousarray(pixels))
    out = image.resize((resolution, resolution), RESAMPLING, box=(left, top, left + side, top + side))
    return np.asarray(out, dtype=np.uint8)


def process_image(source: str | os.PathLike[str] | bytes, settings: Settings) -> LoadedImage | Skip:
    """Full per-image pipeline: load/convert, small-image policy, resize + centre crop.

    Returns a :class:`LoadedImage` whose pixels are exactly (resolution, resolution, 3) uint8.
    """
    resolution = settings.resolution
    min_side = resolution if settings.small_images == "skip" else None
    loaded = load_rgb(source, max_image_pixels=settings.max_image_pixels, min_side=min_side)
    if isinstance(loaded, Skip):
        return loaded
    notes = list(loaded.notes)
    width, height = loaded.source_size
    if min(width, height) < resolution:
        notes.append(f"upscaled {width}x{height}")
    try:
        out = resize_center_crop(loaded.pixels, resolution)
    except Exception as exc:
        return Skip(f"resize_failed: {type(exc).__name__}: {exc}")
    return LoadedImage(out, loaded.source_size, tuple(notes))


def _process_task(task: _Task, settings: Settings) -> _Result:
    outcome = process_image(task.source, settings)
    if isinstance(outcome, Skip):
        return _Result(task.key, task.label, None, outcome.reason, ())
    return _Result(task.key, task.label, outcome.pixels, None, outcome.notes)


# --------------------------------------------------------------------------------------------
# Bounded, ordered parallel map
# --------------------------------------------------------------------------------------------

_WORKER_SETTINGS: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = settings


def _worker_process_batch(batch: list[_Task]) -> list[_Result]:
    assert _WORKER_SETTINGS is not None, "pool worker not initialised"
    return [_process_task(task, _WORKER_SETTINGS) for task in batch]


def _batched(tasks: Iterator[_Task], size: int) -> Iterator[list[_Task]]:
    batch: list[_Task] = []
    for task in tasks:
        batch.append(task)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _iter_results(tasks: Iterator[_Task], settings: Settings, workers: int) -> Iterator[_Result]:
    """Process tasks in order, in-process (workers == 1) or in a Pool, with bounded memory.

    Pool path: ``Pool.imap`` over batches of CHUNKSIZE tasks. This is what ``imap(...,
    chunksize=CHUNKSIZE)`` does internally, done by hand for two reasons: the batched iterator
    supports ``next(timeout=...)`` (a worker killed by a decoder crash or the OOM killer would
    otherwise hang the run forever; with the timeout it becomes an error), and the throttle
    below counts whole batches. The batch iterator runs in the Pool's feeder thread; a semaphore
    makes it wait while ``workers * IN_FLIGHT_BATCHES_PER_WORKER`` batches are submitted but not
    yet consumed, so at most that many images are in memory whatever the dataset size.
    """
    if workers <= 1:
        for task in tasks:
            yield _process_task(task, settings)
        return
    slots = threading.Semaphore(workers * IN_FLIGHT_BATCHES_PER_WORKER)
    stop = threading.Event()

    def throttled() -> Iterator[list[_Task]]:
        try:
            for batch in _batched(tasks, CHUNKSIZE):
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                yield batch
        finally:
            close = getattr(tasks, "close", None)
            if close is not None:
                close()

    ctx = multiprocessing.get_context()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
        try:
            batches = pool.imap(_worker_process_batch, throttled(), 1)
            while True:
                try:
                    results = batches.next(timeout=RESULT_TIMEOUT_S)
                except StopIteration:
                    break
                except multiprocessing.TimeoutError:
                    raise DatasetError(
                        f"no result from the worker pool for {RESULT_TIMEOUT_S:.0f} s: a worker "
                        "probably died (crash or out-of-memory kill) while decoding an image; "
                        "rerun with workers=1 to find the file"
                    ) from None
                slots.release()
                yield from results
        finally:
            stop.set()  # lets a waiting feeder return, so Pool.terminate() can join it


# --------------------------------------------------------------------------------------------
# Listing, subsets, reports
# --------------------------------------------------------------------------------------------


def holdout_score(key: str) -> float:
    """A stable pseudo-uniform number in [0, 1) derived only from the file's relative path."""
    digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()
    return int(digest[:8], 16) / 16**8


def in_holdout(key: str, holdout_fraction: float) -> bool:
    """True iff the file belongs to the validation holdout (independent of all other files)."""
    return holdout_score(key) < holdout_fraction


def _in_subset(key: str, subset: Subset, holdout_fraction: float) -> bool:
    if subset == "all":
        return True
    return in_holdout(key, holdout_fraction) == (subset == "holdout")


def is_image_name(name: str) -> bool:
    """Candidate test by extension (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclass
class _Listing:
    class_names: list[str]
    files: list[tuple[str, int]]  # (relative POSIX path, label), sorted by path
    ignored: Counter[str]
    skipped_dirs: list[str]


def _walk_relative(root: Path, exclude: str | None, skipped_dirs: list[str]) -> Iterator[str]:
    """All files under root as relative POSIX paths.

    Directory links are followed (ImageNet class folders are often symlinked), each real
    directory once, so a link loop cannot hang the walk. Directories that cannot be read, or are
    reached a second time through a link, are recorded in ``skipped_dirs`` (-> the manifest),
    never dropped silently. ``exclude`` (the output folder, if it lies inside ``root``) is
    not walked.
    """
    seen: set[str] = set()

    def relative(path: str) -> str:
        return Path(os.path.relpath(path, root)).as_posix()

    def onerror(exc: OSError) -> None:
        skipped_dirs.append(f"{relative(exc.filename or str(root))}: unreadable ({exc.strerror})")

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen or real == exclude:
            if real in seen:
                skipped_dirs.append(f"{relative(dirpath)}: link to a directory already listed")
            dirnames[:] = []
            continue
        seen.add(real)
        rel_dir = relative(dirpath)
        for name in filenames:
            yield name if rel_dir == "." else f"{rel_dir}/{name}"


def _list_folder(src: Path, layout: Layout, exclude: str | None) -> _Listing:
    ignored: Counter[str] = Counter()
    skipped_dirs: list[str] = []
    images: list[str] = []
    for rel in _walk_relative(src, exclude, skipped_dirs):
        if is_image_name(rel):
            images.append(rel)
        else:
            ignored["other_extension"] += 1
    images.sort()
    if layout == "flat":
        return _Listing(["all"], [(rel, 0) for rel in images], ignored, skipped_dirs)
    class_names = sorted({rel.split("/", 1)[0] for rel in images if "/" in rel})
    index = {name: i for i, name in enumerate(class_names)}
    files = []
    for rel in images:
        if "/" in rel:
            files.append((rel, index[rel.split("/", 1)[0]]))
        else:
            ignored["outside_class_folder"] += 1
    return _Listing(class_names, files, ignored, skipped_dirs)


def _tsv_field(text: str) -> str:
    """One TSV cell: undecodable bytes as \\x escapes; tabs/newlines escaped."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _write_report(path: Path, second_column: str, rows: list[tuple[str, str]]) -> None:
    lines = [f"path\t{second_column}\n"]
    lines.extend(f"{_tsv_field(key)}\t{_tsv_field(value)}\n" for key, value in rows)
    atomic_write_text(path, "".join(lines))


def _check_arguments(
    resolution: int,
    max_image_pixels: int,
    small_images: str,
    workers: int,
    subset: str,
    holdout_fraction: float,
) -> None:
    if int(resolution) < 1:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if int(max_image_pixels) < 1:
        raise ValueError(f"max_image_pixels must be positive, got {max_image_pixels}")
    if small_images not in ("upscale", "skip"):
        raise ValueError(f"small_images must be 'upscale' or 'skip', got {small_images!r}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if subset not in ("all", "train", "holdout"):
        raise ValueError(f"subset must be 'all', 'train' or 'holdout', got {subset!r}")
    if not 0.0 <= float(holdout_fraction) <= 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1], got {holdout_fraction}")
    if subset == "holdout" and float(holdout_fraction) == 0.0:
        raise ValueError("subset='holdout' needs holdout_fraction > 0 (the holdout would be empty)")


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _run(
    tasks: Iterator[_Task],
    *,
    total: int | None,
    out_dir: Path,
    settings: Settings,
    class_names: list[str],
    workers: int,
    progress: bool,
    source_label: str,
    extra: Callable[[], dict[str, Any]],
    empty_hint: str,
) -> dict[str, Any]:
    """Stream tasks into a split, write both reports, close the split with the counts.

    ``extra`` is called after the task stream is exhausted (some counts are only known then).
    """
    writer = ImageStoreWriter(out_dir, settings.resolution, class_names)
    skipped: list[tuple[str, str]] = []
    converted: list[tuple[str, str]] = []
    upscaled = 0
    try:
        bar = tqdm(total=total, unit="img", desc=f"prepare {source_label}", disable=not progress)
        with bar:
            for result in _iter_results(tasks, settings, workers):
                bar.update(1)
                if result.skip is not None:
                    skipped.append((result.key, result.skip))
                    bar.set_postfix(skipped=len(skipped), refresh=False)
                    continue
                assert result.pixels is not None
                writer.append(result.pixels, result.label)
                if result.notes:
                    converted.append((result.key, "; ".join(result.notes)))
                    upscaled += any(n.startswith("upscaled ") for n in result.notes)
        written = len(writer)
        candidates = written + len(skipped)
        if candidates == 0:
            raise DatasetError(f"{source_label}: no candidate images. {empty_hint}")
        skipped_path = out_dir / SKIPPED_REPORT
        _write_report(skipped_path, "reason", skipped)
        _write_report(out_dir / CONVERTED_REPORT, "conversion", converted)
        by_reason = Counter(Skip(reason).code for _, reason in skipped)
        if written == 0:
            raise DatasetError(
                f"{source_label}: all {candidates} candidate images were skipped "
                f"({dict(sorted(by_reason.items()))}); see {skipped_path}"
            )
        counts = {
            "candidates": candidates,
            "written": written,
            "skipped": len(skipped),
            "skipped_by_reason": dict(sorted(by_reason.items())),
            "converted": len(converted),
            "upscaled": upscaled,
            "skipped_report": SKIPPED_REPORT,
            "converted_report": CONVERTED_REPORT,
        }
        return writer.close({**extra(), **counts})
    except BaseException:
        writer.abort()
        raise


def _common_extra(settings: Settings, subset: Subset, holdout_fraction: float) -> dict[str, Any]:
    """Manifest fields shared by both sources; no worker count, so manifests match across it."""
    return {
        "preparer": PREPARER_VERSION,
        "resampling": RESAMPLING_NAME,
        "resampling_detail": RESAMPLING_DESCRIPTION,
        "alpha": "composited on white",
        "small_images": settings.small_images,
        "max_image_pixels": settings.max_image_pixels,
        "subset": subset,
        "holdout_fraction": float(holdout_fraction),
        "holdout_rule": HOLDOUT_RULE,
    }


def prepare_image_folder(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resolution: int,
    layout: Layout,
    max_image_pixels: int,
    small_images: SmallImages,
    workers: int = 1,
    subset: Subset = "all",
    holdout_fraction: float = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare a folder of images as one split in ``out_dir``; return its manifest.

    ``layout="classes"``: the class names are the sorted names of the immediate sub-folders of
    ``src`` that hold at least one image file (at any depth), e.g. ImageNet synset ids, and the
    label is the index in that list. Class names are computed from *all* files before the
    holdout split, so train and holdout share label ids. Image files lying directly in ``src``
    have no class: they are counted as ``ignored.outside_class_folder``.
    ``layout="flat"``: every image under ``src`` (recursively), one class ``"all"`` (FFHQ, LSUN).

    ``subset`` / ``holdout_fraction`` carve a validation holdout out of sets that have none: a
    file is in the holdout iff :func:`in_holdout` of its relative path, so the split never
    depends on which other files exist or on their order.
    """
    _check_arguments(resolution, max_image_pixels, small_images, workers, subset, holdout_fraction)
    if layout not in ("classes", "flat"):
        raise ValueError(f"layout must be 'classes' or 'flat', got {layout!r}")
    src_path = Path(src).expanduser()
    if not src_path.exists():
        raise DatasetError(
            f"{src_path}: source folder does not exist (expected a folder of images"
            + (", one sub-folder per class)" if layout == "classes" else ")")
        )
    if not src_path.is_dir():
        raise DatasetError(f"{src_path}: not a directory (expected a folder of images)")
    out_path = Path(out_dir)
    exclude = os.path.realpath(out_path) if out_path.exists() else None
    listing = _list_folder(src_path, layout, exclude)
    ignored_total = sum(listing.ignored.values())
    if not listing.files:
        extensions = " ".join(sorted(IMAGE_EXTENSIONS))
        if layout == "classes" and listing.ignored["outside_class_folder"]:
            raise DatasetError(
                f"{src_path}: layout 'classes' expects one sub-folder per class (e.g. ImageNet "
                f"synset folders like n01440764/), but no sub-folder holds an image; "
                f"{listing.ignored['outside_class_folder']} image files lie directly in the "
                "folder. Use layout 'flat' for unlabelled data (FFHQ, LSUN)."
            )
        raise DatasetError(
            f"{src_path}: no image files found (looked recursively for {extensions}, any case; "
            f"{ignored_total} other files ignored)"
            + ("; layout 'classes' expects one sub-folder of images per class" if layout == "classes" else "")
        )
    settings = Settings(int(resolution), int(max_image_pixels), small_images)
    selected = [(rel, label) for rel, label in listing.files if _in_subset(rel, subset, holdout_fraction)]
    if not selected:
        raise DatasetError(
            f"{src_path}: none of the {len(listing.files)} images falls in subset {subset!r} "
            f"with holdout_fraction={holdout_fraction}"
        )
    root = os.path.abspath(src_path)
    tasks = (_Task(rel, label, os.path.join(root, *rel.split("/"))) for rel, label in selected)
    extra = {
        "source": root,
        "source_kind": "image_folder",
        "layout": layout,
        **_common_extra(settings, subset, holdout_fraction),
        "not_in_subset": len(listing.files) - len(selected),
        "ignored": ignored_total,
        "ignored_by_kind": dict(sorted(listing.ignored.items())),
        "skipped_directories": listing.skipped_dirs,
    }
    return _run(
        tasks,
        total=len(selected),
        out_dir=out_path,
        settings=settings,
        class_names=listing.class_names,
        workers=int(workers),
        progress=progress,
        source_label=str(src_path),
        extra=lambda: extra,
        empty_hint="",
    )


def _open_lmdb(lmdb_dir: Path) -> Any:
    try:
        import lmdb  # optional dependency, only for the LSUN export
    except ImportError as exc:
        raise DatasetError(
            f"{lmdb_dir}: reading LSUN's LMDB export needs the 'lmdb' package: pip install lmdb"
        ) from exc
    if not lmdb_dir.exists():
        raise DatasetError(f"{lmdb_dir}: LMDB export does not exist (expected a folder with data.mdb)")
    try:
        return lmdb.open(
            str(lmdb_dir),
            readonly=True,
            lock=False,
            readahead=False,
            meminit=False,
            subdir=lmdb_dir.is_dir(),
            max_readers=1,
        )
    except lmdb.Error as exc:
        raise DatasetError(f"{lmdb_dir}: cannot open as an LMDB database ({exc})") from exc


def prepare_lsun_lmdb(
    lmdb_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resolution: int,
    max_image_pixels: int,
    small_images: SmallImages,
    subset: Subset = "all",
    holdout_fraction: float = 0.0,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare LSUN's distributed LMDB export (key = image id, value = encoded webp/jpeg).

    Keys are read in database (byte) order from a read-only, lock-free environment, in the
    feeding thread, and their encoded bytes go through the same pipeline as files; the key is
    the report path and the holdout key. ``limit`` caps the number of database entries scanned
    *before* the subset filter, so ``train`` and ``holdout`` with the same limit still partition
    ``all``. One class, ``"all"``.
    """
    _check_arguments(resolution, max_image_pixels, small_images, workers, subset, holdout_fraction)
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be positive or None, got {limit}")
    lmdb_path = Path(lmdb_dir).expanduser()
    env = _open_lmdb(lmdb_path)
    settings = Settings(int(resolution), int(max_image_pixels), small_images)
    scanned = Counter[str]()
    try:
        entries = int(env.stat()["entries"])
        scan_total = entries if limit is None else min(entries, int(limit))

        def tasks() -> Iterator[_Task]:
            with env.begin(buffers=False) as txn:
                for key_bytes, value in txn.cursor():
                    if scanned["entries"] >= scan_total:
                        return
                    scanned["entries"] += 1
                    key = key_bytes.decode("utf-8", "backslashreplace")
                    if not _in_subset(key, subset, holdout_fraction):
                        scanned["not_in_subset"] += 1
                        continue
                    yield _Task(key, 0, bytes(value))

        extra = {
            "source": os.path.abspath(lmdb_path),
            "source_kind": "lsun_lmdb",
            "layout": "flat",
            **_common_extra(settings, subset, holdout_fraction),
            "limit": limit,
            "ignored": 0,
        }

        def finish_extra() -> dict[str, Any]:
            return {**extra, "lmdb_entries_scanned": scanned["entries"], "not_in_subset": scanned["not_in_subset"]}

        manifest = _run(
            tasks(),
            total=scan_total if subset == "all" else None,
            out_dir=Path(out_dir),
            settings=settings,
            class_names=["all"],
            workers=int(workers),
            progress=progress,
            source_label=str(lmdb_path),
            extra=finish_extra,
            empty_hint=f"the database has {entries} entries"
            + (f"; none fell in subset {subset!r}" if subset != "all" else ""),
        )
    finally:
        env.close()
    return manifest
