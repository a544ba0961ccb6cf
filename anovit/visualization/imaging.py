"""Array image operations for the app and the figures: images to uint8 RGB, named colour scales as
lookup tables and plotly stops, colourised maps, overlays and side-by-side tiles.

Conventions: RGB images are numpy uint8 (H, W, 3) or float (H, W, 3) / torch (3, H, W) in [0, 1];
anomaly and attention maps are float (H, W).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import plotly.colors as pcolors

ERROR_COLORSCALE = "Inferno"
ATTENTION_COLORSCALE = "Viridis"


def to_rgb_uint8(image: Any) -> np.ndarray:
    """An image as uint8 (H, W, 3): accepts torch/numpy (3, H, W) or (H, W, 3) floats in [0, 1], or uint8."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"expected an image (H, W, 3) or (3, H, W), got shape {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype == np.uint8:
        return arr
    return (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def colour_lut(colorscale: str = ERROR_COLORSCALE, n: int = 256) -> np.ndarray:
    """``n`` RGB colours (uint8, n x 3) sampled evenly from a named plotly colour scale."""
    scale = pcolors.get_colorscale(colorscale)
    colours = pcolors.sample_colorscale(scale, np.linspace(0.0, 1.0, n).tolist(), colortype="tuple")
    return (np.array(colours) * 255.0).round().astype(np.uint8)


@functools.lru_cache(maxsize=8)
def plotly_colorscale(colorscale: str = ERROR_COLORSCALE) -> tuple[tuple[float, str], ...]:
    """A named plotly colour scale as explicit ``(position, "rgb(r, g, b)")`` stops.

    Never hex: Streamlit's chart element rewrites the hex strings ``#000000``-``#000040`` of a figure
    (its theme's colour placeholders) whatever its ``theme``, and Inferno's low end is ``#000004``,
    which it turned lavender (pink under the Streamlit theme): near-zero error looked bright.
    """
    stops = pcolors.get_colorscale(colorscale)
    rgb = pcolors.convert_colors_to_same_type([c for _, c in stops], colortype="rgb")[0]
    return tuple((float(pos), colour) for (pos, _), colour in zip(stops, rgb))


def colorize(values: np.ndarray, vmin: float, vmax: float, colorscale: str = ERROR_COLORSCALE) -> np.ndarray:
    """Map a (H, W) float array to uint8 RGB with a colour scale, linearly from ``vmin`` to ``vmax`` (clipped)."""
    if not vmax > vmin:
        raise ValueError(f"colour range needs vmax > vmin, got vmin={vmin}, vmax={vmax}")
    lut = colour_lut(colorscale)
    index = np.clip((np.asarray(values, np.float64) - vmin) / (vmax - vmin), 0.0, 1.0) * (len(lut) - 1)
    return lut[np.round(index).astype(np.intp)]


def overlay(
    image: Any, values: np.ndarray, vmin: float, vmax: float, alpha: float = 0.5, colorscale: str = ERROR_COLORSCALE
) -> np.ndarray:
    """Blend a colourised map over an RGB image: ``(1 - alpha) * image + alpha * colours`` (uint8)."""
    base = to_rgb_uint8(image).astype(np.float32)
    colours = colorize(values, vmin, vmax, colorscale).astype(np.float32)
    return ((1.0 - alpha) * base + alpha * colours + 0.5).astype(np.uint8)


def tile(*images: np.ndarray, gap: int = 2) -> np.ndarray:
    """Put uint8 RGB images of one height side by side, separated by ``gap`` white columns."""
    if not images:
        raise ValueError("tile needs at least one image")
    height = images[0].shape[0]
    if any(im.shape[0] != height for im in images):
        raise ValueError(f"images to tile must share one height, got {[im.shape[0] for im in images]}")
    spacer = np.full((height, gap, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for im in images:
        parts += [im, spacer]
    return np.concatenate(parts[:-1], axis=1)


def header_strip(labels: list[str], width: int, gap: int = 2) -> np.ndarray:
    """White uint8 (H, W, 3) strip naming the parts of a :func:`tile` of ``len(labels)`` images of ``width`` px
    each (W as the tile's): each label centred above its part, in the largest font (up to width / 4 px) with
    which the longest label fits its part, so it stays readable where the tile is shown small."""
    from PIL import Image, ImageDraw, ImageFont

    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    size = max(6, width // 4)
    while size > 6 and max(draw.textlength(label, font=ImageFont.load_default(size)) for label in labels) > 0.92 * width:
        size -= 1
    font = ImageFont.load_default(size)
    total = len(labels) * width + (len(labels) - 1) * gap
    strip = Image.new("RGB", (total, int(size * 1.5)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for k, label in enumerate(labels):
        draw.text((k * (width + gap) + width / 2, size * 0.75), label, fill=(0, 0, 0), font=font, anchor="mm")
    return np.asarray(strip)
