"""Reading images and masks as a person sees them: the one decode path of the datasets, `data check`
and the app's upload, and resizing them as tensors.

Rules, applied to every file (see docs/datasets.md):

- **Orientation**: the EXIF Orientation tag is applied (``PIL.ImageOps.exif_transpose``), so pixels,
  sizes and masks are those of the image as displayed, not as the sensor stored it.
- **Size**: up to LARGE_PIXELS (PIL's own warning threshold) an image is read silently; up to
  MAX_PIXELS it is read, and `data check` and the trainer warn with its name; a larger one is
  refused with its name (a guard against decompression bombs). PIL's anonymous
  DecompressionBombWarning is never shown.
- **Kinds**: every kind of IMAGE_EXTENSIONS is read as an image viewer shows it, or refused in one
  sentence naming the file and its kind (the table in docs/datasets.md). Grey, palette, alpha
  (dropped) and CMYK images become 8-bit RGB; a multi-page TIFF or an animated GIF/WebP is refused.
- **Wide types** (16/32-bit integer, 32-bit float): a float image in 0-1 is scaled to 0-255, one in
  0-255 read as is, any other range refused. An integer image whose values all fit in 0-255 reads as
  those 8-bit values whatever its container; wider values are scaled by the smallest bit depth of
  BIT_DEPTHS that holds the file's largest value (a 12-bit sensor's image reads full scale at 4095
  in a 16-bit file), and `data check` warns when one category mixes bit depths; negative values are
  refused.
- **Masks** ("per-file", the rule of every layout but VisA): decided per file. A mask whose largest
  value is 1 is a 0/1 mask (1 = defect); any other mask marks the pixels above half of full scale (any
  channel), so 0/255 masks, JPEG-compressed ones included, and 0/65535 masks keep working.
  ("nonzero", VisA's rule): every pixel that is not 0 in some channel is a defect, since VisA's PNG masks
  hold class indices (0, 1, 2, 3, ...; anomalib binarises them so too) that the per-file rule would read
  as empty. It is not the general rule: JPEG noise around a 0/255 mask would mark the whole image.
- **Unreadable files** (a dangling symbolic link, no permission, a corrupt file) are errors naming
  the file, never skipped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..utils.errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")  # the one list of suffixes
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "TIFF", "GIF", "WEBP")  # as Pillow names them (MPO: multi-picture JPEG)
SUFFIXES_TEXT = "PNG, JPEG, BMP, TIFF, GIF or WebP"
BIT_DEPTHS = (8, 10, 12, 14, 16, 24, 32)  # an integer image is scaled by the smallest that holds its largest value
LARGE_PIXELS = 89_478_485  # PIL's default Image.MAX_IMAGE_PIXELS: above it PIL warns of a decompression bomb
MAX_PIXELS = 2 * LARGE_PIXELS  # above it PIL refuses the file, and so does anovit
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # grey with more than 8 bits: the wide-type rule
_WIDE_COLOUR = {"RGB;16B": "RGB;16L", "RGB;16L": "RGB;16B", "RGBA;16B": "RGBA;16L", "RGBA;16L": "RGBA;16B"}
_LOW_BYTES = "anovit.low_bytes"  # im.info key: the low bytes of a 16-bit colour image (Pillow keeps the high ones)
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")
MASK_RULES = ("per-file", "nonzero")  # how a mask's values mark defect pixels (module docstring)
_ROTATING = (5, 6, 7, 8)  # EXIF orientations that swap width and height
T = TypeVar("T")


@dataclass(frozen=True)
class ImageInfo:
    """An image file's size as displayed (EXIF orientation applied), PIL mode, orientation and format."""

    width: int
    height: int
    mode: str
    orientation: int = 1  # EXIF Orientation tag (1 = upright, 6 = stored turned 90 degrees, ...)
    format: str | None = None  # as Pillow names it: "PNG", "JPEG", ...
    bits: int | None = None  # the bit depth a wide image's values were scaled by (None: 8-bit, or not decoded)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as displayed."""
        return self.width, self.height

    @property
    def stored_size(self) -> tuple[int, int]:
        """(width, height) in the orientation the file stores, before the EXIF tag is applied."""
        return (self.height, self.width) if self.orientation in _ROTATING else self.size

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def is_image_file(path: Path) -> bool:
    """True for a visible entry with an image extension (any case) that is not a folder.

    Dangling symbolic links and unreadable files count: reading them fails with their name.
    """
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS and not os.path.isdir(path)


def list_dir(folder: Path) -> list[Path]:
    """The entries of `folder`, sorted by name; DatasetError naming the folder when it cannot be listed."""
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as err:
        raise unreadable(err, folder, "folder") from None


def list_subfolders(folder: Path) -> list[Path]:
    """The visible folders directly inside `folder`, sorted by name."""
    return [p for p in list_dir(folder) if not p.name.startswith(".") and os.path.isdir(p)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (see :func:`is_image_file`)."""
    return [p for p in list_dir(folder) if is_image_file(p)]


def unreadable(err: OSError, path: Path, kind: str = "file") -> DatasetError:
    """One sentence for a `kind` ("file" or "folder") the system refuses to open or list.

    When a folder above the path cannot be entered, that folder is named instead.
    """
    path = Path(err.filename) if err.filename else path
    blocked = [p for p in reversed(path.parents) if os.path.isdir(p) and not os.access(p, os.R_OK | os.X_OK)]
    if blocked:
        path, kind = blocked[0], "folder"
    if os.path.islink(path) and not os.path.exists(path):
        reason = f"it is a symbolic link to '{os.readlink(path)}', which does not exist"
    else:
        reason = (err.strerror or type(err).__name__).lower()
    return DatasetError(f"cannot read {kind} '{path}': {reason} (expected a {kind} anovit can read)")


def _reason(err: Exception) -> str:
    if isinstance(err, UnidentifiedImageError):
        return "not an image format Pillow recognises"
    text = " ".join(str(err).split())  # Pillow sometimes names the internal file object: drop it
    return text.split(" <_io.")[0] or type(err).__name__


def _info(im: Image.Image, loaded: bool) -> ImageInfo:
    if im.format == "PNG" and not loaded and "exif" not in im.info:
        orientation = 1  # an eXIf chunk after the pixel data is only seen by decoding them (PNG exports rarely rotate)
    else:
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        orientation = orientation if orientation in range(1, 9) else 1
    width, height = im.size
    if orientation in _ROTATING:
        width, height = height, width
    return ImageInfo(width, height, im.mode, orientation, im.format)


class UnsupportedImage(Exception):
    """A kind of image anovit refuses; the text follows the file's name ("is a ... (expected ...)")."""


def _refuse_kind(im: Image.Image) -> None:
    """UnsupportedImage for a format outside IMAGE_FORMATS or a file of several images (MPO's preview excepted)."""
    if im.format not in IMAGE_FORMATS:
        raise UnsupportedImage(f"is a {im.format} file (expected {SUFFIXES_TEXT})")
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format != "MPO":
        what = "a multi-page TIFF" if im.format == "TIFF" else f"an animated {im.format}"
        raise UnsupportedImage(f"is {what} of {frames} images (expected one image per file: save each "
                               f"page or frame as its own file)")


def _rawmode(im: Image.Image) -> str | None:
    args = im.tile[0].args if len(im.tile) else None
    return args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else None


def _low_bytes(source: Path | BinaryIO) -> Image.Image:
    """The low bytes of a 16-bit colour image, decoded by reading its samples with the other byte order."""
    if hasattr(source, "seek"):
        source.seek(0)
    with Image.open(source) as im:
        args = im.tile[0].args
        swapped = _WIDE_COLOUR[args] if isinstance(args, str) else (_WIDE_COLOUR[args[0]], *args[1:])
        im.tile = [tile._replace(args=swapped) for tile in im.tile]
        im.load()
        return ImageOps.exif_transpose(im)


def _is_wide(im: Image.Image) -> bool:
    return im.mode in _WIDE_MODES or _LOW_BYTES in im.info


def _values(im: Image.Image) -> np.ndarray:
    """The stored values of a wide image: (H, W) grey, or (H, W, 3) uint16 colour (alpha dropped)."""
    if _LOW_BYTES not in im.info:
        return np.asarray(im)
    high, low = np.asarray(im)[..., :3].astype(np.uint16), np.asarray(im.info[_LOW_BYTES])[..., :3]
    return high << 8 | low


def _scale(values: np.ndarray) -> tuple[float, int | None]:
    """(factor to 0-255, bit depth or None for floats) of a wide image's values by the module's wide-type rule.

    Raises UnsupportedImage for non-finite or out-of-range floats and for negative integers.
    """
    low, high = (values.min().item(), values.max().item()) if values.size else (0, 0)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise UnsupportedImage("is a floating-point image with NaN or infinite values (expected finite "
                                   "values in 0-1 or 0-255)")
        if low >= 0 and high <= 1:
            return 255.0, None
        if low >= 0 and high <= 255:
            return 1.0, None
        raise UnsupportedImage(f"is a floating-point image with values from {low:g} to {high:g} (expected values "
                               f"in 0-1 or in 0-255)")
    if low < 0:
        raise UnsupportedImage(f"is a signed integer image with values down to {low} (expected values of 0 "
                               f"and above)")
    bits = next(b for b in BIT_DEPTHS if high < 2**b)
    return 255.0 / (2**bits - 1), bits


def decode(source: Path | BinaryIO, convert: Callable[[Image.Image, ImageInfo], T], *, name: str | None = None,
           load: bool = True, max_pixels: int | None = None) -> T:
    """``convert(image, info)`` of an image file or binary stream, under the rules of the module docstring.

    With `load`, the image is decoded, turned upright and, if wide, its values checked and its bit
    depth set in `info`; without, only its header is parsed and the file's structure verified (for
    PNG: every chunk checksum). `name` (default: the path) names the file in errors; `max_pixels`
    defaults to MAX_PIXELS. Raises DatasetError in one sentence.
    """
    name = name or str(source)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # replaced by the size rule
            if not load:
                with Image.open(source) as im:
                    im.verify()  # must come first; the file is opened again for its header
                if hasattr(source, "seek"):
                    source.seek(0)
            with Image.open(source) as im:
                width, height = im.size
                if width * height > limit:
                    raise DatasetError(f"image file '{name}' is {width}x{height} px ({width * height / 1e6:.3g} "
                                       f"megapixels), more than the {limit / 1e6:.3g} megapixels anovit reads "
                                       f"(expected a smaller image: downscale it)")
                _refuse_kind(im)
                wide_colour = _rawmode(im) in _WIDE_COLOUR
                if load:
                    im.load()
                info = _info(im, load)
                upright = ImageOps.exif_transpose(im) if load and info.orientation != 1 else im
                if load and wide_colour:
                    upright.info[_LOW_BYTES] = _low_bytes(source)
                if load and _is_wide(upright):
                    info = replace(info, bits=_scale(_values(upright))[1])
                return convert(upright, info)
    except DatasetError:
        raise
    except UnsupportedImage as err:
        raise DatasetError(f"image file '{name}' {err}") from None
    except Image.DecompressionBombError:
        raise DatasetError(f"image file '{name}' has more than {limit / 1e6:.3g} megapixels, the most anovit "
                           f"reads (expected a smaller image: downscale it)") from None
    except OSError as err:
        if err.filename is not None and not hasattr(source, "read"):
            raise unreadable(err, Path(source)) from None
        raise DatasetError(f"cannot read image file '{name}': {_reason(err)} (expected a valid image)") from None
    except (ValueError, SyntaxError) as err:
        raise DatasetError(f"cannot read image file '{name}': {_reason(err)} (expected a valid image)") from None


def to_rgb(im: Image.Image) -> np.ndarray:
    """A decoded PIL image as uint8 (H, W, 3) as a viewer shows it: grey, palette, alpha, CMYK and wide kinds
    converted (the wide-type rule of the module docstring; UnsupportedImage when it refuses the values)."""
    if _is_wide(im):
        values = _values(im)
        factor, _ = _scale(values)
        rgb = np.rint(values * factor).clip(0, 255).astype(np.uint8)
        return rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=-1)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    return np.array(im.convert("RGB"), dtype=np.uint8)  # alpha is dropped, colours kept


def to_mask(im: Image.Image, rule: str = MASK_RULES[0]) -> np.ndarray:
    """A decoded mask as bool (H, W), by ``rule`` ("per-file" or "nonzero", module docstring)."""
    if rule == "nonzero":
        values = _values(im) if _is_wide(im) else np.asarray(im if im.mode in ("1", "L", "RGB") else im.convert("RGB"))
        return values.max(axis=-1) > 0 if values.ndim == 3 else values > 0
    if _is_wide(im):
        values = _values(im)
        values = values.max(axis=-1) if values.ndim == 3 else values
        if values.size and values.max() == 1:
            return values == 1
        return values * _scale(values)[0] > 127.5
    if im.mode in _COLOUR_MODES:
        values = np.asarray(im.convert("RGB")).max(axis=-1)
    else:  # "1", "L", "LA", ...: grey
        values = np.asarray(im.convert("L")) if im.mode != "1" else np.asarray(im, np.uint8)
    if values.size and values.max() == 1:
        return values == 1
    return values > 127


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to uint8 (H, W, 3), upright; grey, palette, alpha and 16-bit modes converted."""
    return decode(path, lambda im, _: to_rgb(im))


def read_mask(path: Path, rule: str = MASK_RULES[0]) -> np.ndarray:
    """Decode a mask file to bool (H, W), upright, by ``rule`` ("per-file" or "nonzero", module docstring)."""
    return decode(path, lambda im, _: to_mask(im, rule))


def read_mask_info(path: Path, rule: str = MASK_RULES[0]) -> tuple[np.ndarray, ImageInfo]:
    """:func:`read_mask` and the file's :class:`ImageInfo` from one decode."""
    return decode(path, lambda im, info: (to_mask(im, rule), info))


def image_info(path: Path, decode_pixels: bool = False) -> ImageInfo:
    """Size as displayed, mode and orientation of an image file; DatasetError when it cannot be read.

    `decode_pixels` reads every pixel; otherwise only the header is parsed and the file's structure
    verified (for PNG: every chunk checksum), which is much faster but misses some damaged JPEGs.
    """
    return decode(path, lambda _, info: info, load=decode_pixels)


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 [C, H, W] to uint8 [C, size, size] (bilinear, antialiased).

    torch's uint8 kernel (fixed-point, within one grey level of the float path): several times faster,
    and it stays one kernel call where the float path split a small image across busy threads
    (benchmarks/speed_felt.py measured it at 11 ms per 256 px image on 2 loaded cores, against 0.7 ms).
    """
    if image.shape[-2:] == (size, size):
        return image.contiguous()
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 [C, H, W] (any strides) to float32 in [0, 1] (value / 255, equal to torch's ``.float().div_(255)``).

    numpy does it in the calling thread: torch split an image this size across its threads, which cost
    more than the division on a busy machine (0.8 s of a 2 s evaluation, benchmarks/speed_felt.py).
    """
    return torch.from_numpy(np.divide(image.numpy(), np.float32(255), dtype=np.float32))


def resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Resize bool [H, W] to bool [1, size, size] by nearest neighbour."""
    out = F.interpolate(mask[None, None].view(torch.uint8), size=(size, size), mode="nearest-exact")
    return out[0].bool()
