"""Embedded default dataset: procedurally drawn shapes on textured backgrounds.

Why this set exists: the paper's claim is that a *semantic* perceptual loss makes a VQ tokenizer
keep what an image is about, while a texture-oriented loss spends its capacity on pixel detail.
To tell the two apart offline we need images where those two things are separate, known factors:

- the **semantic** factor is the class, which is a shape (circle, square, star, ...);
- the **detail** factors are nuisances drawn independently of the class: shape colour, size,
  position, rotation, and a busy background made of random oriented gratings, stripes, checkers
  or concentric rings in random colours, plus per-pixel noise.

A classifier (or a semantic feature extractor) only has to see the outline to get the label,
whereas a pixel/texture loss is dominated by the background. Shapes are kept recognisable at
32 px: the foreground and background live in disjoint luminance bands (one dark, one light,
polarity random) and the smallest shape still spans about 13 px.

Rendering is vectorised numpy over a batch of coordinate grids. Every shape is a signed distance
function (SDF) in a unit frame; the coverage of a pixel is ``clip(0.5 - d_px, 0, 1)``, a one-pixel
box filter, which anti-aliases edges without supersampling. All geometry is in normalised image
coordinates, so the same (seed, split) draws the same scenes at 32, 64 or 128 px.

Determinism: every per-image parameter of a split is drawn up front from one generator seeded by
``SeedSequence([seed, crc32(split)])``; pixel noise comes from a counter-based integer hash of
(image key, pixel index) instead of a stateful generator. Rendering is therefore a pure function
of each image's parameters, and chunking (for bounded memory) cannot change a single byte.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from seqgan.artefacts.images import ImageStoreWriter

GENERATOR_VERSION = "seqgan.data.synthetic v1"

SHAPE_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "heart",
    "crescent",
    "arrow",
    "diamond",
    # The last two are deliberately the look-alikes of earlier classes (hexagon ~ circle,
    # ellipse ~ diamond): selecting 12 classes gives a harder variant of the task.
    "hexagon",
    "ellipse",
)

MIN_RESOLUTION = 16
WRITE_CHUNK_IMAGES = 1024  # images per append when streaming a split to disk
_CHUNK_PIXELS = 1 << 20  # pixels rendered at once: ~1024 images at 32 px, 64 at 128 px

# Pose ranges, in units of the image width. A shape's SDF frame has its outline within radius ~1,
# so `scale` is the half-extent of the shape; the centre keeps at least 90% of it inside.
_SCALE_RANGE = (0.21, 0.36)
_CENTER_MARGIN = 0.9

# Luminance bands (Rec. 601 weights): background within one band, foreground within the other,
# so the outline is always visible whatever the hues.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_BG_DARK_MAX = (0.06, 0.40)  # dark backgrounds: each colour's luminance is at most U(range)
_FG_LIGHT_MIN = (0.72, 0.95)  # ... with a light shape: luminance at least U(range)
_BG_LIGHT_MIN = (0.60, 0.94)
_FG_DARK_MAX = (0.05, 0.28)

_NUM_PATTERN_KINDS = 4  # 0 sine grating, 1 soft stripes, 2 checker, 3 concentric rings
_FREQ_RANGE = (1.5, 7.0)  # cycles per image width; 7 keeps the period >= 4.5 px at 32 px
_NOISE_AMP_RANGE = (0.03, 0.09)  # half-width of the triangular pixel noise, in [0, 1] units


# --------------------------------------------------------------------------------------------
# Shape signed distance functions, unit frame: negative inside, outline within radius ~1.
# Exact or close to exact near the outline, which is all the anti-aliasing needs.
# --------------------------------------------------------------------------------------------

Array = np.ndarray


def _box(x: Array, y: Array, hx: float, hy: float) -> Array:
    dx = np.abs(x) - hx
    dy = np.abs(y) - hy
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0)


def _convex_polygon(x: Array, y: Array, vertices: list[tuple[float, float]]) -> Array:
    """Max of edge half-plane distances; exact inside and along edges (vertices in CCW order)."""
    d: Array | None = None
    n = len(vertices)
    for i in range(n):
        (ax, ay), (bx, by) = vertices[i], vertices[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        length = float(np.hypot(ex, ey))
        nx, ny = ey / length, -ex / length  # outward normal for CCW order (y axis up)
        di = (x - ax) * np.float32(nx) + (y - ay) * np.float32(ny)
        d = di if d is None else np.maximum(d, di)
    assert d is not None
    return d


def _regular_polygon_vertices(sides: int, radius: float, phase: float) -> list[tuple[float, float]]:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return [(float(radius * np.cos(a)), float(radius * np.sin(a))) for a in angles]


def _sdf_circle(x: Array, y: Array) -> Array:
    return np.hypot(x, y) - np.float32(0.86)


def _sdf_square(x: Array, y: Array) -> Array:
    return _box(x, y, 0.7, 0.7)


_TRIANGLE = _regular_polygon_vertices(3, 1.05, np.pi / 2)


def _sdf_triangle(x: Array, y: Array) -> Array:
    # Centroid at the origin; shifted down a little so the bounding box is centred too.
    return _convex_polygon(x, y + np.float32(0.24), _TRIANGLE)


def _sdf_star(x: Array, y: Array) -> Array:
    """Five-pointed star (after I. Quilez's sdStar5): outer radius 1, inner radius ~0.45."""
    r, rf = np.float32(1.0), np.float32(0.47)
    k1x, k1y = np.float32(0.809016994375), np.float32(-0.587785252292)
    k2x, k2y = -k1x, k1y
    px = np.abs(x)
    py = y
    t = 2 * np.maximum(k1x * px + k1y * py, 0)
    px, py = px - t * k1x, py - t * k1y
    t = 2 * np.maximum(k2x * px + k2y * py, 0)
    px, py = px - t * k2x, py - t * k2y
    px = np.abs(px)
    py = py - r
    bax, bay = rf * -k1y, rf * k1x - 1
    h = np.clip((px * bax + py * bay) / (bax * bax + bay * bay), 0, r)
    return np.hypot(px - bax * h, py - bay * h) * np.sign(py * bax - px * bay)


def _sdf_cross(x: Array, y: Array) -> Array:
    return np.minimum(_box(x, y, 0.92, 0.3), _box(x, y, 0.3, 0.92))


def _sdf_ring(x: Array, y: Array) -> Array:
    return np.abs(np.hypot(x, y) - np.float32(0.72)) - np.float32(0.24)


def _sdf_heart(x: Array, y: Array) -> Array:
    """Heart (after I. Quilez's sdHeart), rescaled from its native [-0.6, 0.6] x [0, 1.1] box."""
    k = np.float32(0.62)
    px = np.abs(x) * k
    py = -y * k + np.float32(0.55)  # image y grows downwards: flip so the lobes are on top
    upper = np.hypot(px - 0.25, py - 0.75) - np.float32(np.sqrt(2.0) / 4.0)
    m = 0.5 * np.maximum(px + py, 0)
    lower = np.sqrt(np.minimum(px * px + (py - 1) ** 2, (px - m) ** 2 + (py - m) ** 2))
    lower = lower * np.sign(px - py)
    return np.where(px + py > 1, upper, lower) / k


def _sdf_crescent(x: Array, y: Array) -> Array:
    xs = x - np.float32(0.22)  # centre the bounding box (outer disc minus an offset disc)
    outer = np.hypot(xs, y) - np.float32(0.95)
    bite = np.float32(0.8) - np.hypot(xs - np.float32(0.5), y)
    return np.maximum(outer, bite)


_ARROW_HEAD = [(0.95, 0.0), (0.08, 0.62), (0.08, -0.62)]


def _sdf_arrow(x: Array, y: Array) -> Array:
    shaft = _box(x + np.float32(0.38), y, 0.55, 0.17)
    return np.minimum(shaft, _convex_polygon(x, y, _ARROW_HEAD))


def _sdf_diamond(x: Array, y: Array) -> Array:
    a, b = 1.0, 0.55  # half diagonals: elongated, so it is not a rotated square
    edge = np.abs(x) * np.float32(b) + np.abs(y) * np.float32(a) - np.float32(a * b)
    return edge / np.float32(np.hypot(a, b))


_HEXAGON = _regular_polygon_vertices(6, 0.95, 0.0)


def _sdf_hexagon(x: Array, y: Array) -> Array:
    return _convex_polygon(x, y, _HEXAGON)


def _sdf_ellipse(x: Array, y: Array) -> Array:
    """First-order distance approximation ``k0 (k0 - 1) / k1``, accurate near the outline."""
    a, b = np.float32(1.0), np.float32(0.52)
    k0 = np.hypot(x / a, y / b)
    k1 = np.hypot(x / (a * a), y / (b * b))
    return k0 * (k0 - 1) / np.maximum(k1, np.float32(1e-6))


_SHAPE_SDFS: dict[str, Callable[[Array, Array], Array]] = {
    "circle": _sdf_circle,
    "square": _sdf_square,
    "triangle": _sdf_triangle,
    "star": _sdf_star,
    "cross": _sdf_cross,
    "ring": _sdf_ring,
    "heart": _sdf_heart,
    "crescent": _sdf_crescent,
    "arrow": _sdf_arrow,
    "diamond": _sdf_diamond,
    "hexagon": _sdf_hexagon,
    "ellipse": _sdf_ellipse,
}
assert tuple(_SHAPE_SDFS) == SHAPE_NAMES


# --------------------------------------------------------------------------------------------
# Per-image parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SceneParams:
    """Everything needed to render a run of images; every field has the image axis first."""

    labels: Array  # (N,) int64
    scale: Array  # (N,) shape half-extent, fraction of the image width
    center: Array  # (N, 2) x, y in [0, 1]
    angle: Array  # (N,) radians
    fg_color: Array  # (N, 3) in [0, 1]
    bg_colors: Array  # (N, 3, 3): three background colours
    pattern_kind: Array  # (N, 2) int: kind of each of the two texture layers
    pattern_freq: Array  # (N, 2) cycles per image width
    pattern_angle: Array  # (N, 2) orientation
    pattern_phase: Array  # (N, 2, 2) phases (second one is used by checkers)
    pattern_sharp: Array  # (N, 2) >= 1: 1 is a pure sinusoid, larger is closer to a square wave
    pattern_origin: Array  # (N, 2, 2) centre of concentric rings
    layer_mix: Array  # (N,) weight of the second layer's colour
    noise_key: Array  # (N,) uint32 key of the pixel-noise hash
    noise_amp: Array  # (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, index: slice | Array) -> _SceneParams:
        return _SceneParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _split_rng(seed: int, split: str) -> np.random.Generator:
    """Independent stream per (seed, split); crc32 keeps the mapping stable across runs."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode("utf-8"))]))


def _balanced_labels(rng: np.random.Generator, num_images: int, num_classes: int) -> Array:
    """Exactly ``num_images // num_classes`` per class, remainder to the first classes, shuffled."""
    counts = np.full(num_classes, num_images // num_classes, dtype=np.int64)
    counts[: num_images % num_classes] += 1
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), counts)
    return rng.permutation(labels)


def _luma(rgb: Array) -> Array:
    return rgb @ _LUMA


def _cap_luma(rgb: Array, max_luma: Array) -> Array:
    """Scale colours towards black until their luminance is at most ``max_luma`` (hue kept)."""
    lum = _luma(rgb)[..., None]
    factor = np.minimum(1.0, max_luma[..., None] / np.maximum(lum, 1e-6))
    return np.clip(rgb * factor, 0.0, 1.0)


def _floor_luma(rgb: Array, min_luma: Array) -> Array:
    """Mirror of :func:`_cap_luma`: move towards white until luminance is at least ``min_luma``."""
    return 1.0 - _cap_luma(1.0 - rgb, 1.0 - min_luma)


def _hue_to_rgb(hue: Array, saturation: Array) -> Array:
    """HSV with value 1 -> RGB, vectorised."""
    k = (np.array([5.0, 3.0, 1.0]) + hue[:, None] * 6.0) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return 1.0 - saturation[:, None] * ramp


def _draw_params(rng: np.random.Generator, num_images: int, num_classes: int) -> _SceneParams:
    """Draw every nuisance factor of a split at once (the draw order is part of the format)."""
    n = num_images
    labels = _balanced_labels(rng, n, num_classes)

    scale = rng.uniform(*_SCALE_RANGE, size=n)
    margin = _CENTER_MARGIN * scale[:, None]
    center = margin + rng.uniform(size=(n, 2)) * (1.0 - 2.0 * margin)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n)

    dark_background = rng.uniform(size=n) < 0.5
    bg_raw = rng.uniform(size=(n, 3, 3))
    bg_bound = np.where(
        dark_background[:, None],
        rng.uniform(*_BG_DARK_MAX, size=(n, 3)),
        rng.uniform(*_BG_LIGHT_MIN, size=(n, 3)),
    )
    bg_colors = np.where(
        dark_background[:, None, None],
        _cap_luma(bg_raw, bg_bound),
        _floor_luma(bg_raw, bg_bound),
    )
    fg_raw = _hue_to_rgb(rng.uniform(size=n), rng.uniform(0.35, 1.0, size=n))
    fg_bound = np.where(
        dark_background,
        rng.uniform(*_FG_LIGHT_MIN, size=n),
        rng.uniform(*_FG_DARK_MAX, size=n),
    )
    fg_color = np.where(dark_background[:, None], _floor_luma(fg_raw, fg_bound), _cap_luma(fg_raw, fg_bound))

    return _SceneParams(
        labels=labels,
        scale=scale,
        center=center,
        angle=angle,
        fg_color=fg_color,
        bg_colors=bg_colors,
        pattern_kind=rng.integers(0, _NUM_PATTERN_KINDS, size=(n, 2)),
        pattern_freq=rng.uniform(*_FREQ_RANGE, size=(n, 2)),
        pattern_angle=rng.uniform(0.0, np.pi, size=(n, 2)),
        pattern_phase=rng.uniform(0.0, 2.0 * np.pi, size=(n, 2, 2)),
        pattern_sharp=rng.uniform(1.0, 5.0, size=(n, 2)),
        pattern_origin=rng.uniform(-0.25, 1.25, size=(n, 2, 2)),
        layer_mix=rng.uniform(0.3, 0.9, size=n),
        noise_key=rng.integers(0, 2**32, size=n, dtype=np.uint32),
        noise_amp=rng.uniform(*_NOISE_AMP_RANGE, size=n),
    )


# --------------------------------------------------------------------------------------------
# Rendering (pure functions of the parameters: no random state)
# --------------------------------------------------------------------------------------------


def _f32(a: Array) -> Array:
    return np.asarray(a, dtype=np.float32)


def _pixel_centers(resolution: int) -> Array:
    return (np.arange(resolution, dtype=np.float32) + np.float32(0.5)) / np.float32(resolution)


def _shape_coverage(labels: Array, scale: Array, center: Array, angle: Array, resolution: int) -> Array:
    """(B, R, R) float32 fraction of each pixel covered by each image's shape.

    Takes the pose alone (no colours or texture) so tests can render clean class masks.
    """
    u = _pixel_centers(resolution)
    cos = _f32(np.cos(angle))[:, None, None]
    sin = _f32(np.sin(angle))[:, None, None]
    inv_scale = _f32(1.0 / scale)[:, None, None]
    dx = u[None, None, :] - _f32(center[:, 0])[:, None, None]
    dy = u[None, :, None] - _f32(center[:, 1])[:, None, None]
    qx = (cos * dx + sin * dy) * inv_scale  # rotate the pixel into the shape's frame
    qy = (cos * dy - sin * dx) * inv_scale
    sdf = np.empty(qx.shape, dtype=np.float32)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        sdf[idx] = _SHAPE_SDFS[SHAPE_NAMES[int(label)]](qx[idx], qy[idx])
    pixels_per_unit = _f32(scale * resolution)[:, None, None]
    return np.clip(np.float32(0.5) - sdf * pixels_per_unit, 0.0, 1.0)


def _pattern(params: _SceneParams, layer: int, resolution: int) -> Array:
    """(B, R, R) float32 in [0, 1]: one texture layer of the background."""
    u = _pixel_centers(resolution)
    x = u[None, None, :]
    y = u[None, :, None]

    def col(a: Array) -> Array:
        return _f32(a)[:, None, None]

    two_pi_f = col(2.0 * np.pi * params.pattern_freq[:, layer])
    cos = col(np.cos(params.pattern_angle[:, layer]))
    sin = col(np.sin(params.pattern_angle[:, layer]))
    phase0 = col(params.pattern_phase[:, layer, 0])
    phase1 = col(params.pattern_phase[:, layer, 1])
    sharp = col(params.pattern_sharp[:, layer])
    kind = col(params.pattern_kind[:, layer])

    wave = np.sin(two_pi_f * (cos * x + sin * y) + phase0)
    cross_wave = np.sin(two_pi_f * (cos * y - sin * x) + phase1)
    origin_x = col(params.pattern_origin[:, layer, 0])
    origin_y = col(params.pattern_origin[:, layer, 1])
    radial = np.sin(two_pi_f * np.hypot(x - origin_x, y - origin_y) + phase0)
    signal = np.select(
        [kind == 0, kind == 1, kind == 2],
        [wave, sharp * wave, sharp * 2 * wave * cross_wave],
        default=sharp * radial,
    )
    signal = np.clip(signal, np.float32(-1.0), np.float32(1.0))
    return np.float32(0.5) + np.float32(0.5) * signal


def _hash_u32(x: Array) -> Array:
    """The "lowbias32" integer hash (C. Wellons): a well-mixed, stateless uint32 -> uint32 map."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def _pixel_noise(params: _SceneParams, resolution: int) -> Array:
    """(B, R, R, 3) triangular noise in [-amp, amp], keyed by (image key, pixel index)."""
    index = np.arange(resolution * resolution * 3, dtype=np.uint32)
    index = index.reshape(resolution, resolution, 3)
    h1 = _hash_u32(index[None] ^ _hash_u32(params.noise_key)[:, None, None, None])
    h2 = _hash_u32(h1 ^ np.uint32(0x9E3779B9))
    to_unit = np.float32(1.0 / (1 << 24))
    u1 = (h1 >> np.uint32(8)).astype(np.float32) * to_unit
    u2 = (h2 >> np.uint32(8)).astype(np.float32) * to_unit
    return (u1 + u2 - np.float32(1.0)) * _f32(params.noise_amp)[:, None, None, None]


def _background(params: _SceneParams, resolution: int) -> Array:
    """(B, R, R, 3) float32 in [0, 1]: the two texture layers in their colours, no shape, no noise."""
    t1 = _pattern(params, 0, resolution)[..., None]
    t2 = _pattern(params, 1, resolution)[..., None] * _f32(params.layer_mix)[:, None, None, None]
    c = _f32(params.bg_colors)[:, None, None]  # (B, 1, 1, 3, 3)
    background = c[..., 0, :] + (c[..., 1, :] - c[..., 0, :]) * t1
    return background + (c[..., 2, :] - background) * t2


def _render(params: _SceneParams, resolution: int) -> Array:
    """(B, R, R, 3) uint8 images for ``params``; a pure per-image function of the parameters."""
    background = _background(params, resolution)
    alpha = _shape_coverage(params.labels, params.scale, params.center, params.angle, resolution)[..., None]
    fg = _f32(params.fg_color)[:, None, None, :]
    image = background + (fg - background) * alpha + _pixel_noise(params, resolution)
    return np.clip(np.rint(image * np.float32(255.0)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _validate(num_images: int, resolution: int, num_classes: int, seed: int, split: str) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(num_images) or num_images < 0:
        raise ValueError(f"num_images must be a non-negative integer, got {num_images!r}")
    if not is_int(resolution) or resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution must be an integer >= {MIN_RESOLUTION}, got {resolution!r}")
    if not is_int(num_classes) or not 2 <= num_classes <= len(SHAPE_NAMES):
        raise ValueError(
            f"num_classes must be an integer in [2, {len(SHAPE_NAMES)}] "
            f"(the synthetic set has {len(SHAPE_NAMES)} shapes), got {num_classes!r}"
        )
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")


def _iter_chunks(
    num_images: int,
    resolution: int,
    num_classes: int,
    seed: int,
    split: str,
    chunk_size: int | None = None,
) -> Iterator[tuple[Array, Array]]:
    """Yield (images, labels) in order, ``chunk_size`` images at a time (memory-bounded)."""
    _validate(num_images, resolution, num_classes, seed, split)
    params = _draw_params(_split_rng(int(seed), split), int(num_images), int(num_classes))
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_PIXELS // (resolution * resolution))
    for start in range(0, num_images, chunk_size):
        chunk = params.select(slice(start, start + chunk_size))
        yield _render(chunk, int(resolution)), chunk.labels


def generate_images(
    num_images: int, resolution: int, num_classes: int, seed: int, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """(N, R, R, 3) uint8 images and (N,) int64 labels.

    Labels index ``SHAPE_NAMES[:num_classes]``; each class gets ``num_images // num_classes``
    images and the first ``num_images % num_classes`` classes one more, in a seeded order.
    The output depends only on the arguments (not on the machine's chunking or batch size).
    """
    _validate(num_images, resolution, num_classes, seed, split)
    images = np.empty((num_images, resolution, resolution, 3), dtype=np.uint8)
    labels = np.empty(num_images, dtype=np.int64)
    start = 0
    chunks = _iter_chunks(num_images, resolution, num_classes, seed, split)
    for chunk_images, chunk_labels in chunks:
        stop = start + len(chunk_labels)
        images[start:stop] = chunk_images
        labels[start:stop] = chunk_labels
        start = stop
    return images, labels


@dataclass(frozen=True)
class SceneTruth:
    """What the generator knows about each image of a split (the instrument's ground truth).

    ``coverage`` (N, R, R): fraction of each pixel inside the shape; ``shape_rgb`` (N, 3) and
    ``background`` (N, R, R, 3): the shape's colour and the background without shape or pixel
    noise, in [0, 1]; ``labels`` (N,).
    """

    labels: Array
    coverage: Array
    shape_rgb: Array
    background: Array


def scene_truth(
    num_images: int, resolution: int, num_classes: int, seed: int, split: str, count: int | None = None
) -> SceneTruth:
    """Ground truth of the first ``count`` (default all) images of the split that
    :func:`generate_images` with the same arguments draws (same parameters, same order)."""
    _validate(num_images, resolution, num_classes, seed, split)
    params = _draw_params(_split_rng(int(seed), split), int(num_images), int(num_classes))
    params = params.select(slice(0, num_images if count is None else int(count)))
    return SceneTruth(
        labels=params.labels.copy(),
        coverage=_shape_coverage(params.labels, params.scale, params.center, params.angle, int(resolution)),
        shape_rgb=_f32(params.fg_color),
        background=_background(params, int(resolution)),
    )


def write_synthetic_split(
    out_dir: str | os.PathLike[str],
    num_images: int,
    resolution: int,
    num_classes: int,
    seed: int,
    split: str,
) -> dict:
    """Generate and write with seqgan.artefacts.images.ImageStoreWriter; returns the manifest.

    Streams ``WRITE_CHUNK_IMAGES`` images at a time so memory stays flat in ``num_images``; the
    bytes (and so the manifest's sha256) equal those of :func:`generate_images`.
    """
    _validate(num_images, resolution, num_classes, seed, split)
    writer = ImageStoreWriter(out_dir, resolution, class_names=list(SHAPE_NAMES[:num_classes]))
    try:
        chunk_size = min(WRITE_CHUNK_IMAGES, max(1, _CHUNK_PIXELS // (resolution * resolution)))
        for images, labels in _iter_chunks(num_images, resolution, num_classes, seed, split, chunk_size=chunk_size):
            writer.append_batch(images, labels)
    except BaseException:
        writer.abort()
        raise
    extra = {
        "source": "synthetic",
        "split": split,
        "seed": int(seed),
        "generator": GENERATOR_VERSION,
    }
    return writer.close(extra=extra)
