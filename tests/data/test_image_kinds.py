"""Every image kind is read as an image viewer shows it, or refused in one sentence naming the file and
its kind: one test per row of the table in docs/datasets.md ("Image kinds"). The files are made here with
PIL, numpy and tifffile (a hand-written PNG for 16-bit colour, which Pillow cannot write)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anovit.app.inspection import UploadError, decode_upload
from anovit.data.check import check_tree
from anovit.data.imageio import IMAGE_EXTENSIONS, image_info, read_mask, read_rgb
from anovit.utils.errors import DatasetError

tifffile = pytest.importorskip("tifffile")  # installed with scikit-image (the test extra)

H, W = 4, 6


def _ramp(high: int, channels: int = 0, dtype: type = np.uint16) -> np.ndarray:
    """(H, W[, channels]) values from 0 to `high`, the last pixel `high` itself."""
    values = np.linspace(0, high, H * W).reshape(H, W).round().astype(dtype)
    return values if not channels else np.dstack([values] * channels)


def _png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit RGB (H, W, 3) or RGBA (H, W, 4) PNG written by hand: one IDAT, filter 'Sub' on every row."""
    h, w, c = values.shape
    rows = values.astype(">u2").view(np.uint8).reshape(h, w * c * 2).astype(np.int16)
    sub = (rows - np.pad(rows, ((0, 0), (c * 2, 0)))[:, : w * c * 2]) % 256  # filter 1 (Sub), bpp = 2c bytes
    raw = b"".join(b"\x01" + r.astype(np.uint8).tobytes() for r in sub)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _pil(image: Image.Image, **kw) -> Callable[[Path], None]:
    return lambda path: image.save(path, **kw)


def _tiff(values: np.ndarray, **kw) -> Callable[[Path], None]:
    return lambda path: tifffile.imwrite(path, values, **kw)


def _as_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    rgb = np.rint(values * (255 / (2**bits - 1))).astype(np.uint8)
    return rgb if rgb.ndim == 3 else np.dstack([rgb] * 3)


GREY = _ramp(255, dtype=np.uint8)
RGB = np.dstack([GREY, 255 - GREY, GREY // 2])
PALETTE = Image.fromarray((GREY % 3).astype(np.uint8), "P")
PALETTE.putpalette([0, 0, 0, 90, 20, 240, 10, 200, 30])
PALETTE.info["transparency"] = 0
ANIMATED = [Image.fromarray(RGB), Image.fromarray(255 - RGB)]

# file name, how it is written, the RGB it reads as (or the refusal it gets)
READ = {
    "grey8.png": (_pil(Image.fromarray(GREY)), np.dstack([GREY] * 3)),
    "rgb8.png": (_pil(Image.fromarray(RGB)), RGB),
    "grey16_fits_8bit.png": (_pil(Image.fromarray(_ramp(255))), np.dstack([GREY] * 3)),
    "grey16_12bit_sensor.png": (_pil(Image.fromarray(_ramp(4095))), _as_8bit(_ramp(4095), 12)),
    "grey16_full.png": (_pil(Image.fromarray(_ramp(65535))), _as_8bit(_ramp(65535), 16)),
    "rgb16_fits_8bit.png": (lambda p: _png16(p, _ramp(255, 3)), np.dstack([GREY] * 3)),
    "rgb16_full.png": (lambda p: _png16(p, _ramp(65535, 3)), _as_8bit(_ramp(65535, 3), 16)),
    "rgba16_10bit.png": (lambda p: _png16(p, _ramp(1023, 4)), _as_8bit(_ramp(1023, 3), 10)),
    "grey16.tif": (_tiff(_ramp(16383)), _as_8bit(_ramp(16383), 14)),
    "rgb16.tif": (_tiff(_ramp(4095, 3), photometric="rgb"), _as_8bit(_ramp(4095, 3), 12)),
    "int32_fits_8bit.tif": (_tiff(_ramp(255, dtype=np.int32)), np.dstack([GREY] * 3)),
    "uint32_24bit.tif": (_tiff(_ramp(10**6, dtype=np.uint32)), _as_8bit(_ramp(10**6, dtype=np.uint32), 24)),
    "float32_0_1.tif": (_tiff(_ramp(255, dtype=np.float32) / 255), np.dstack([GREY] * 3)),
    "float32_0_255.tif": (_tiff(_ramp(255, dtype=np.float32)), np.dstack([GREY] * 3)),
    "palette.png": (_pil(PALETTE), np.array([[0, 0, 0], [90, 20, 240], [10, 200, 30]], np.uint8)[GREY % 3]),
    "la.png": (_pil(Image.fromarray(np.dstack([GREY, 255 - GREY]), "LA")), np.dstack([GREY] * 3)),
    "rgba.png": (_pil(Image.fromarray(np.dstack([RGB, GREY]), "RGBA")), RGB),
    "cmyk.jpg": (_pil(Image.new("CMYK", (W, H), (0, 0, 0, 0)), quality=100), np.full((H, W, 3), 255, np.uint8)),
    "single.gif": (_pil(PALETTE.convert("RGB")), np.array(PALETTE.convert("RGB"))),
    "lossless.webp": (_pil(Image.fromarray(RGB), lossless=True), RGB),
}
REFUSED = {
    "float32_out_of_range.tif": (_tiff(_ramp(255, dtype=np.float32) - 100),
                                 r"is a floating-point image with values from -100 to 155 \(expected values in 0-1 or in 0-255\)"),
    "float32_nan.tif": (_tiff(np.full((H, W), np.nan, np.float32)), "floating-point image with NaN or infinite values"),
    "int16_negative.tif": (_tiff(_ramp(255, dtype=np.int16) - 5), "signed integer image with values down to -5"),
    "float64.tif": (_tiff(_ramp(1, dtype=np.float64)), "not an image format Pillow recognises"),
    "multipage.tif": (_tiff(np.zeros((3, H, W), np.uint8), photometric="minisblack"),
                      r"is a multi-page TIFF of 3 images \(expected one image per file"),
    "animated.gif": (_pil(ANIMATED[0], save_all=True, append_images=ANIMATED[1:]), "is an animated GIF of 2 images"),
    "animated.webp": (_pil(ANIMATED[0], save_all=True, append_images=ANIMATED[1:]), "is an animated WEBP of 2 images"),
}


@pytest.mark.parametrize("name", list(READ))
def test_each_kind_reads_as_a_viewer_shows_it_everywhere(tmp_path: Path, name: str) -> None:
    write, expected = READ[name]
    path = tmp_path / name
    write(path)
    assert path.suffix.lower() in IMAGE_EXTENSIONS
    rgb = read_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (H, W, 3)
    tolerance = 2 if path.suffix == ".jpg" else 0
    assert np.abs(rgb.astype(int) - expected).max() <= tolerance, rgb[..., 0]
    assert (decode_upload(path.read_bytes(), name) == rgb).all()  # the app's upload: the same decision
    image_info(path, decode_pixels=True)  # data check's full read accepts it


@pytest.mark.parametrize("name", list(REFUSED))
def test_each_refused_kind_is_one_sentence_naming_the_file(tmp_path: Path, name: str) -> None:
    write, reason = REFUSED[name]
    path = tmp_path / name
    write(path)
    with pytest.raises(DatasetError, match=f"image file '{path}'.*{reason}") as err:
        read_rgb(path)
    assert "\n" not in str(err.value)
    with pytest.raises(DatasetError, match=reason):
        image_info(path, decode_pixels=True)
    with pytest.raises(UploadError, match=f"'{name}'.*{reason}"):
        decode_upload(path.read_bytes(), name)


def test_wide_masks_mark_above_half_of_their_bit_depth(tmp_path: Path) -> None:
    square = np.zeros((H, W), np.uint16)
    square[1:3, 2:5] = 1
    for name, values in {"m01.tif": square, "m4095.png": square * 4095, "m65535.png": square * 65535,
                         "m_float.tif": square.astype(np.float32), "m_float255.tif": square.astype(np.float32) * 255}.items():
        path = tmp_path / name
        (tifffile.imwrite(path, values) if name.endswith(".tif") else Image.fromarray(values).save(path))
        assert (read_mask(path) == square.astype(bool)).all(), name


def test_data_check_names_the_bit_depths_and_warns_when_a_category_mixes_them(tmp_path: Path) -> None:
    good = tmp_path / "part" / "train" / "good"
    test_good = tmp_path / "part" / "test" / "good"
    for folder in (good, test_good):
        folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(_ramp(4095)).save(good / f"{i}.png")  # a 12-bit sensor's images
    Image.fromarray(_ramp(200)).save(good / "dark.png")  # all values under 256: read as 8-bit values
    Image.fromarray(_ramp(4095)).save(test_good / "0.png")
    (part,) = check_tree(tmp_path / "part", decode=True).categories
    assert part.modes == {"I;16 (12-bit)": 4, "I;16 (8-bit)": 1}
    (mixed,) = [p for p in part.problems if "bit depths" in p.message]
    assert "12-bit" in mixed.message and "8-bit" in mixed.message and str(good / "dark.png") in mixed.message
