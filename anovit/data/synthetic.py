"""Deterministic procedural anomaly-detection dataset written in the MVTec AD layout.

Every image is drawn from its own numpy Generator seeded by (seed, category, split, defect type,
index), so files are byte-identical across runs and independent of generation order. A defect is
painted through a boolean region and that region is the ground-truth mask: the mask is exactly
the set of pixels whose colour differs from the defect-free base image.
"""

from __future__ import annotations

import fcntl
import logging
import math
import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .paths import default_data_dir
from ..utils.errors import DatasetError

VERSION = 1
SIZE = 256
N_TRAIN = 240
N_TEST_GOOD = 30
N_PER_DEFECT = 16
MARKER = ".complete"
CATEGORY_KIND = {"weave": "texture", "tiles": "texture", "washer": "object"}
CATEGORIES = tuple(CATEGORY_KIND)
DEFECT_TYPES = {
    "weave": ("hole", "scratch", "stain"),
    "tiles": ("hole", "scratch", "stain"),
    "washer": ("extra", "missing", "scratch", "stain"),
}
_MIN_CHANGE = 24  # every defect pixel differs from the base by at least this much in some channel
_LOG = logging.getLogger(__name__)

_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
# (image uint8 HxWx3, foreground bool HxW, background uint8 HxWx3; textures: all foreground, background = image)
Layers = tuple[np.ndarray, np.ndarray, np.ndarray]


def _noise(rng: np.random.Generator, sigma: float, shape: tuple[int, ...] = (SIZE, SIZE, 3)) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)


def _colour(rgb: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """`rgb` with small brightness and hue jitter."""
    return np.asarray(rgb, np.float32) * rng.uniform(0.94, 1.06) + _noise(rng, 0.008, (3,))


def _to_u8(colour: np.ndarray, noise: np.ndarray) -> np.ndarray:
    return (colour * np.float32(255.0) + noise).round().clip(0, 255).astype(np.uint8)


def _weave(rng: np.random.Generator) -> Layers:
    """Over-under woven threads with pose, period and colour jitter."""
    theta, period = rng.uniform(-0.05, 0.05), rng.uniform(15.0, 17.0)
    pu, pv = rng.uniform(0.0, 2 * period), rng.uniform(0.0, 2 * period)
    cos, sin = math.cos(theta), math.sin(theta)
    u, v = (_XX * cos + _YY * sin + pu) / period, (_YY * cos - _XX * sin + pv) / period
    over = (np.floor(u) + np.floor(v)) % 2 == 0
    su, sv = np.sin(math.pi * (u - np.floor(u))), np.sin(math.pi * (v - np.floor(v)))
    across, along = np.where(over, sv, su), np.where(over, su, sv)
    fibre = 1.0 + 0.05 * np.sin(8 * math.pi * np.where(over, u, v) + rng.uniform(0, 2 * math.pi))
    shade = (0.3 + 0.7 * np.sqrt(across) * (0.8 + 0.2 * along)) * fibre
    warp = _colour((0.80, 0.71, 0.55), rng)
    weft = warp * np.asarray((0.93, 0.95, 1.02), np.float32)
    image = _to_u8(np.where(over[..., None], warp, weft) * shade[..., None], _noise(rng, 5.0))
    return image, np.ones((SIZE, SIZE), bool), image


def _tiles(rng: np.random.Generator) -> Layers:
    """Square tiles with grout lines, per-tile colour variation and speckle."""
    tile, grout = rng.uniform(30.0, 34.0), rng.uniform(3.0, 4.0)
    u, v = (_XX + rng.uniform(0.0, tile)) / tile, (_YY + rng.uniform(0.0, tile)) / tile
    iu, iv = np.floor(u).astype(np.intp), np.floor(v).astype(np.intp)
    eu, ev = (u - iu) * tile, (v - iv) * tile
    edge = np.minimum(np.minimum(eu, tile - eu), np.minimum(ev, tile - ev))
    per_tile = _colour((0.60, 0.63, 0.68), rng) + _noise(rng, 0.025, (iu.max() + 1, iv.max() + 1, 1))
    face = per_tile[iu, iv] * np.clip(0.85 + 0.05 * (edge - grout), 0.85, 1.0)[..., None]
    in_grout = (eu < grout) | (ev < grout)
    colour = np.where(in_grout[..., None], np.asarray((0.30, 0.29, 0.28), np.float32), face)
    image = _to_u8(colour, _noise(rng, 4.0))
    return image, np.ones((SIZE, SIZE), bool), image


def _washer(rng: np.random.Generator) -> Layers:
    """A centred metal washer on a dark background, with small pose, size, light and colour jitter."""
    cx, cy = SIZE / 2 + rng.uniform(-4.0, 4.0), SIZE / 2 + rng.uniform(-4.0, 4.0)
    r_out, r_in = rng.uniform(78.0, 84.0), rng.uniform(34.0, 38.0)
    light = rng.uniform(-math.pi, math.pi)
    d = np.hypot(_XX - cx, _YY - cy)
    fg = (d <= r_out) & (d >= r_in)
    bevel = 0.8 + 0.2 * np.clip(np.minimum(d - r_in, r_out - d) / 5.0, 0.0, 1.0)
    shade = (0.82 + 0.15 * np.cos(np.arctan2(_YY - cy, _XX - cx) - light) + 0.03 * np.sin(d * 1.7)) * bevel
    metal = _colour((0.70, 0.71, 0.74), rng) * shade[..., None]
    background = np.asarray((0.16, 0.18, 0.22), np.float32) * (0.9 + 0.2 * _YY / SIZE)[..., None]
    noise = _noise(rng, 3.0)
    return _to_u8(np.where(fg[..., None], metal, background), noise), fg, _to_u8(background, noise)


RENDERERS: dict[str, Callable[[np.random.Generator], Layers]] = {
    "weave": _weave, "tiles": _tiles, "washer": _washer,
}


def _centre(fg: np.ndarray, rng: np.random.Generator, margin: int = 24) -> np.ndarray:
    """A random (x, y) foreground pixel at least `margin` pixels from the border."""
    ys, xs = np.nonzero(fg[margin:-margin, margin:-margin])
    k = rng.integers(len(xs))
    return np.array([xs[k] + margin, ys[k] + margin], dtype=np.float32)


def _blob(centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Irregular star-convex blob: radius modulated by a few random angular harmonics."""
    dx, dy = _XX - centre[0], _YY - centre[1]
    angle = np.arctan2(dy, dx)
    wobble = sum(rng.uniform(0.05, 0.15) * np.cos(k * angle + rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5))
    return np.hypot(dx, dy) <= radius * (1.0 + wobble)


# A defect takes (base uint8 HxWx3, foreground, background uint8, rng) and returns
# (region bool HxW, paint float HxWx3): the colours to paint inside the region.
Defect = Callable[[np.ndarray, np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _scratch(base, fg, bg, rng):
    c = _centre(fg, rng)
    length, angle, bend = rng.uniform(45.0, 90.0), rng.uniform(0.0, math.pi), rng.uniform(-12.0, 12.0)
    direction = np.array([math.cos(angle), math.sin(angle)], dtype=np.float32)
    normal = np.array([-direction[1], direction[0]])
    t = np.linspace(0.0, 1.0, 161, dtype=np.float32)[:, None]
    p0, p2 = c - direction * length / 2, c + direction * length / 2
    points = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * (c + normal * bend) + t**2 * p2
    points += c - points[len(points) // 2]  # the scratch passes through the (foreground) centre
    radius = rng.uniform(1.3, 2.0)
    lo = np.floor(points.min(0) - radius - 1).clip(0, SIZE).astype(int)
    hi = np.ceil(points.max(0) + radius + 2).clip(0, SIZE).astype(int)
    xs, ys = _XX[lo[1]:hi[1], lo[0]:hi[0]], _YY[lo[1]:hi[1], lo[0]:hi[0]]
    dist2 = (xs[..., None] - points[:, 0]) ** 2 + (ys[..., None] - points[:, 1]) ** 2
    region = np.zeros((SIZE, SIZE), bool)
    region[lo[1]:hi[1], lo[0]:hi[0]] = dist2.min(-1) <= radius**2
    base_f = base.astype(np.float32)
    paint = base_f * 0.35 if rng.random() < 0.5 else base_f * 0.25 + 180.0
    return region & fg, paint


def _hole(base, fg, bg, rng):
    c = _centre(fg, rng)
    a = rng.uniform(6.0, 12.0)
    b, phi = a * rng.uniform(0.6, 1.0), rng.uniform(0.0, math.pi)
    dx, dy = _XX - c[0], _YY - c[1]
    cos, sin = math.cos(phi), math.sin(phi)
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    region = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return region & fg, np.asarray((22.0, 19.0, 17.0), np.float32) + _noise(rng, 3.0)


_STAIN_COLOURS = np.array([[140, 64, 26], [38, 64, 153], [51, 128, 51], [128, 20, 38]], dtype=np.float32)


def _stain(base, fg, bg, rng):
    region = _blob(_centre(fg, rng), rng.uniform(9.0, 18.0), rng)
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))]
    alpha = rng.uniform(0.6, 0.8)
    return region & fg, base.astype(np.float32) * (1 - alpha) + colour * alpha


def _rim_point(fg: np.ndarray, rng: np.random.Generator, offset: tuple[float, float]) -> np.ndarray:
    """A point at a random angle, just outside the object's outer rim (offset range in pixels)."""
    ys, xs = np.nonzero(fg)
    cx, cy = xs.mean(), ys.mean()
    r = np.hypot(xs - cx, ys - cy).max() + rng.uniform(*offset)
    angle = rng.uniform(-math.pi, math.pi)
    return np.array([cx + r * math.cos(angle), cy + r * math.sin(angle)], dtype=np.float32)


def _missing(base, fg, bg, rng):
    centre, radius = _rim_point(fg, rng, (-2.0, 6.0)), rng.uniform(14.0, 22.0)
    return (np.hypot(_XX - centre[0], _YY - centre[1]) <= radius) & fg, bg


def _extra(base, fg, bg, rng):
    centre, radius = _rim_point(fg, rng, (2.0, 8.0)), rng.uniform(7.0, 12.0)
    region = _blob(centre, radius, rng) & ~fg
    metal = base[fg].astype(np.float32).mean(0)
    shade = 0.9 + 0.1 * np.cos((_XX - centre[0] + _YY - centre[1]) / radius)
    return region, metal * shade[..., None] + _noise(rng, 3.0)


DEFECTS: dict[str, Defect] = {"scratch": _scratch, "hole": _hole, "stain": _stain, "missing": _missing, "extra": _extra}


def _apply(base: np.ndarray, region: np.ndarray, paint: np.ndarray) -> np.ndarray:
    """Paint `paint` into `base` inside `region`, pushing too-faint pixels so every region pixel changes."""
    image = base.copy()
    old = base[region].astype(np.float32)
    new = np.asarray(paint, np.float32)[region].round().clip(0, 255)
    faint = np.abs(new - old).max(-1) < _MIN_CHANGE
    pushed = np.where(old.mean(-1, keepdims=True) < 128, old + 64, old - 64).clip(0, 255)
    image[region] = np.where(faint[:, None], pushed, new).astype(np.uint8)
    return image


def _rng(seed: int, category: str, split: str, defect_type: str, index: int) -> np.random.Generator:
    key = [seed, index] + [zlib.crc32(s.encode()) for s in (category, split, defect_type)]
    return np.random.default_rng(key)


def make_sample(category: str, split: str, defect_type: str, index: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample: (defect-free base uint8 HxWx3, image uint8 HxWx3, mask bool HxW)."""
    if category not in RENDERERS:
        raise DatasetError(f"synthetic category '{category}' is unknown (expected one of {', '.join(CATEGORIES)})")
    if defect_type != "good" and defect_type not in DEFECT_TYPES[category]:
        raise DatasetError(f"defect type '{defect_type}' is unknown for synthetic category '{category}' "
                           f"(expected good, {', '.join(DEFECT_TYPES[category])})")
    rng = _rng(seed, category, split, defect_type, index)
    base, fg, bg = RENDERERS[category](rng)
    if defect_type == "good":
        return base, base.copy(), np.zeros((SIZE, SIZE), bool)
    region, paint = DEFECTS[defect_type](base, fg, bg, rng)
    return base, _apply(base, region, paint), region


def _jobs(categories: tuple[str, ...], n_train: int) -> list[tuple[str, str, str, int]]:
    jobs = []
    for category in categories:
        jobs += [(category, "train", "good", i) for i in range(n_train)]
        jobs += [(category, "test", "good", i) for i in range(N_TEST_GOOD)]
        jobs += [(category, "test", d, i) for d in DEFECT_TYPES[category] for i in range(N_PER_DEFECT)]
    return jobs


def _write(root: Path, category: str, split: str, defect_type: str, index: int, seed: int) -> None:
    _, image, mask = make_sample(category, split, defect_type, index, seed)
    folder = root / category / split / defect_type
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / f"{index:03d}.png", compress_level=1)
    if defect_type != "good":
        gt = root / category / "ground_truth" / defect_type
        gt.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(gt / f"{index:03d}_mask.png", compress_level=1)


def _marker_text(categories: tuple[str, ...], n_train: int, seed: int) -> str:
    return f"anovit-synthetic v{VERSION} categories={','.join(categories)} n_train={n_train} seed={seed}\n"


def generate(root: str | Path, categories: tuple[str, ...] | list[str] | None = None, n_train: int = N_TRAIN,
             seed: int = 0, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the synthetic dataset into `root` (MVTec layout) and return `root`.

    Each category is rendered into a temporary folder, then replaces `root/<category>`; the marker
    file is written last. `progress(done, total)` is called after each image.
    """
    categories = tuple(CATEGORIES if categories is None else categories)
    for category in categories:
        if category not in RENDERERS:
            raise DatasetError(f"synthetic category '{category}' is unknown (expected one of {', '.join(CATEGORIES)})")
    if n_train < 1 or seed < 0:
        raise DatasetError(f"n_train={n_train}, seed={seed} are not valid (expected n_train >= 1, seed >= 0)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    jobs = _jobs(categories, n_train)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
    try:
        for done, job in enumerate(jobs, 1):
            _write(tmp, *job, seed)
            if progress is not None:
                progress(done, len(jobs))
        for category in categories:
            if (root / category).exists():
                shutil.rmtree(root / category)
            (tmp / category).rename(root / category)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (root / MARKER).write_text(_marker_text(categories, n_train, seed))
    return root


def lock_path(root: Path) -> Path:
    """The lock file that serialises generation into ``root`` (beside it: ``.<name>.lock``)."""
    return root.parent / f".{root.name}.lock"


def ensure_synthetic(root: str | Path | None = None) -> Path:
    """Return the synthetic dataset root (default <data dir>/synthetic), generating it if incomplete.

    Safe across processes (app jobs, tests, CLI started together): generation holds an exclusive
    lock on :func:`lock_path`, and whoever waited finds the marker written and generates nothing.
    """
    root = Path(root) if root is not None else default_data_dir() / "synthetic"
    marker = root / MARKER

    def complete() -> bool:
        return marker.is_file() and marker.read_text() == _marker_text(CATEGORIES, N_TRAIN, 0)

    if complete():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(root), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        if complete():
            return root
        _LOG.info("generating the synthetic dataset into %s (one-off)", root)
        return generate(root, CATEGORIES, N_TRAIN, seed=0)
