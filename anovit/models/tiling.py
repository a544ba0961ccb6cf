"""Tiled reconstruction: a network of ``tile_size`` px reconstructs larger images tile by tile.

A model whose config sets ``tile_size`` below its ``image_size`` (cpu-default: 128 px tiles of 384 px
images) trains on one random ``tile_size`` crop per augmented image (:func:`random_tiles`) and
reconstructs a whole image from overlapping tiles (:func:`tiled_reconstruction`): the tiles start every
half tile (the last flush with the far edge), and each pixel is the average of the tiles covering it,
weighted by a Hann window, so that no tile's border, where it reconstructs worst, makes a seam. Training
cost per image is the tile's; the anomaly map has the resolution of the whole image, so that defects of a
few pixels at the image size are not averaged away. Not in the paper (AnoViT reconstructs the whole image
at once); chosen on the real validation sets (README, "Validation on real photographs").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..utils.errors import ConfigError
from ..utils.validation import check_number

TILE_STRIDE = 0.5  # tiles start every half tile


def tile_starts(size: int, tile: int) -> list[int]:
    """Offsets (px) of the tiles along a side of ``size`` px: every ``tile * TILE_STRIDE`` px, the last
    at ``size - tile``; ``[0]`` when the tile covers the side. ValueError when the tile is larger."""
    if tile > size:
        raise ValueError(f"a tile of {tile} px does not fit an image side of {size} px")
    n = math.ceil((size - tile) / (tile * TILE_STRIDE)) + 1
    return [round(i * (size - tile) / (n - 1)) for i in range(n)] if n > 1 else [0]


def tile_around(size: int, tile: int, y: int, x: int) -> tuple[int, int]:
    """(top, left) of the tile of :func:`tile_starts` whose centre is nearest to pixel (``y``, ``x``) of a
    ``size`` x ``size`` image."""
    starts = tile_starts(size, tile)
    return tuple(min(starts, key=lambda s: abs(s + tile / 2 - p)) for p in (y, x))  # type: ignore[return-value]


def tile_weights(tile: int) -> torch.Tensor:
    """The (tile, tile) blending weights: the outer product of a Hann window without its zero ends."""
    hann = torch.hann_window(tile + 2, periodic=False, dtype=torch.float32)[1:-1]
    return hann[:, None] * hann[None, :]


def tiled_reconstruction(reconstruct: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                         tile: int) -> torch.Tensor:
    """Reconstruct ``images`` (B, C, H, W) from overlapping ``tile`` x ``tile`` tiles, one batched call
    of ``reconstruct`` (B * tiles, C, tile, tile) -> same shape; Hann-weighted average where tiles
    overlap. Returns (B, C, H, W) in the dtype ``reconstruct`` returns (float32 weights applied)."""
    b, _, h, w = images.shape
    starts = [(y, x) for y in tile_starts(h, tile) for x in tile_starts(w, tile)]
    tiles = torch.cat([images[..., y:y + tile, x:x + tile] for y, x in starts])
    recon = reconstruct(tiles).float().unflatten(0, (len(starts), b))
    weights = tile_weights(tile).to(recon.device)
    total = torch.zeros(b, recon.shape[2], h, w, device=recon.device)
    norm = torch.zeros(h, w, device=recon.device)
    for (y, x), part in zip(starts, recon):  # pads rather than in-place adds: the ONNX export traces it
        pad = (x, w - x - tile, y, h - y - tile)
        total = total + F.pad(part * weights, pad)
        norm = norm + F.pad(weights, pad)
    return total / norm


def check_tile_size(tile_size: int | None, image_size: int, multiple: int) -> None:
    """ConfigError naming field 'tile_size' unless it is None or a multiple of ``multiple`` px no larger
    than ``image_size``."""
    if tile_size is None:
        return
    check_number("tile_size", tile_size, integer=True, minimum=multiple, maximum=image_size)
    if tile_size % multiple:
        raise ConfigError(f"field 'tile_size' must be a multiple of {multiple} px; got {tile_size}")


def forward_tiled(forward_tile: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                  tile_size: int | None) -> torch.Tensor:
    """``forward_tile(images)`` when ``tile_size`` is None or the images are one tile (training crops),
    else :func:`tiled_reconstruction`."""
    if tile_size is None or tuple(images.shape[-2:]) == (tile_size, tile_size):
        return forward_tile(images)
    return tiled_reconstruction(forward_tile, images, tile_size)


def random_tiles(images: torch.Tensor, tile: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """One random ``tile`` x ``tile`` crop of each image (B, C, H, W) -> (B, C, tile, tile), offsets drawn
    from ``generator`` (None: torch's global one, which the trainer's checkpoints save)."""
    b, _, h, w = images.shape
    ys = torch.randint(0, h - tile + 1, (b,), generator=generator).tolist()
    xs = torch.randint(0, w - tile + 1, (b,), generator=generator).tolist()
    return torch.stack([image[:, y:y + tile, x:x + tile] for image, y, x in zip(images, ys, xs)])
