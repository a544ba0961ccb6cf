"""Reading images and masks from disk into normalised arrays, and resizing them as tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from anovit.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # read as 16-bit full scale
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def is_image_file(path: Path) -> bool:
    """True for a visible regular file whose extension is one of IMAGE_EXTENSIONS (any case)."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    return sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)


def _decode(path: Path, convert, load: bool = True):
    try:
        with Image.open(path) as im:
            if load:
                im.load()
            return convert(im)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatasetError(f"cannot read image file '{path}': {reason} (expected a valid image)") from None


def to_rgb(im: Image.Image) -> np.ndarray:
    """A decoded PIL image as uint8 (H, W, 3): grey, palette, alpha and 16-bit modes converted."""
    if im.mode in _HIGH_BIT_MODES:
        grey = np.asarray(im).astype(np.float64).clip(0, 65535) / 257.0
        return np.repeat(grey.round().astype(np.uint8)[..., None], 3, axis=-1)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.array(im.convert("RGB"), dtype=np.uint8)  # alpha is dropped, colours kept


def _to_mask(im: Image.Image) -> np.ndarray:
    if im.mode in _HIGH_BIT_MODES:
        return np.asarray(im) > 32767
    if im.mode == "1":
        return np.asarray(im, dtype=bool)
    if im.mode in _COLOUR_MODES:
        return np.asarray(im.convert("RGB")).max(axis=-1) > 127
    return np.asarray(im.convert("L")) > 127


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3); grey, palette, alpha and 16-bit modes converted."""
    return _decode(path, to_rgb)


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask file to bool (H, W): pixels above half of full scale (any channel) are True."""
    return _decode(path, _to_mask)


def image_info(path: Path, decode: bool = False) -> tuple[int, int, str]:
    """(width, height, mode) of an image file, raising DatasetError when it cannot be read.

    `decode` reads every pixel; otherwise only the header is parsed and the file's structure
    verified (for PNG: every chunk checksum), which is much faster but misses some damaged JPEGs.
    """
    def info(im: Image.Image) -> tuple[int, int, str]:
        width, height = im.size
        mode = im.mode
        if not decode:
            im.verify()
        return width, height, mode

    return _decode(path, info, load=decode)


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 [C, H, W] to uint8 [C, size, size] (bilinear, antialiased, rounded)."""
    if image.shape[-2:] == (size, size):
        return image.contiguous()
    out = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Resize bool [H, W] to bool [1, size, size] by nearest neighbour."""
    out = F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest-exact")
    return out[0] > 0.5
