"""The l2-CAE baseline: the convolutional autoencoder of Bergmann et al. (2019b, SSIM-AE paper,
Table 1) trained with the l2 loss, as used for the l2-AE of the MVTec AD paper.

Layer table for 128 px input (d = latent_dim: 100 for textures, 500 for objects in the original):

    encoder                               decoder (mirror)
    conv 4x4 s2  32   -> 64x64            convT 8x8 (valid) d -> 32   -> 8x8
    conv 4x4 s2  32   -> 32x32            conv 3x3 s1 64
    conv 3x3 s1  32                       conv 3x3 s1 128
    conv 4x4 s2  64   -> 16x16            convT 4x4 s2 64             -> 16x16
    conv 3x3 s1  64                       conv 3x3 s1 64
    conv 4x4 s2  128  -> 8x8              convT 4x4 s2 32             -> 32x32
    conv 3x3 s1  64                       conv 3x3 s1 32
    conv 3x3 s1  32                       convT 4x4 s2 32             -> 64x64
    conv 8x8 valid d  -> 1x1 (latent)     convT 4x4 s2 C (linear)     -> 128x128

LeakyReLU(0.2) after every layer but the latent and the output. The output layer is linear
(unbounded; a faithful TF2 port of the original ends in a sigmoid): inputs are images in [0, 1],
compared with the reconstruction directly, as for AnoViT.

Larger inputs: Bergmann et al. add, for 256 px, one more ``conv 4x4 s2 32`` right after the first
two (and one more ``convT 4x4 s2 32`` before the output layer). Here such a stage is added while the
bottleneck is larger than 8 and even (256 px: one, 8x8 bottleneck as published; 224 px: one, 7x7;
384 px: two, 6x6), and the latent conv spans the remaining map. The encoder's extra stages are
placed first; since the leading convolutions are all ``4x4 s2 32``, the layer sequence is exactly
Bergmann et al.'s. The input size must be a multiple of 16.

The SSIM-AE (:class:`SSIMCAE`, model name "ssim-cae") is the same network trained with the SSIM loss
and scored with 1 - SSIM (Bergmann et al. 2019b); only its name, and so its run's training defaults, differ.

Latent size d: ``latent_dim_for(kind)`` gives Bergmann et al.'s 100 for textures and 500 for
objects; the trainer applies it per category kind (MVTec AD and synthetic know theirs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..utils.errors import ConfigError
from ..utils.validation import check_in, check_number
from .tiling import check_tile_size, forward_tiled


@dataclass
class L2CAEConfig:
    """Configuration of the l2-CAE (serialised to config.json)."""

    image_size: int = 128
    in_channels: int = 3
    latent_dim: int = 100
    tile_size: int | None = None  # the network's input (px) when it reconstructs image_size px by tiles (tiling)

    @property
    def network_size(self) -> int:
        """Side (px) of the images the network itself takes: ``tile_size``, or ``image_size`` untiled."""
        return self.tile_size or self.image_size

    def __post_init__(self) -> None:
        """Check every field where the config is built (ConfigError naming the field)."""
        size = check_number("image_size", self.image_size, integer=True, minimum=16)
        if size % 16:
            raise ConfigError(f"field 'image_size' must be a multiple of 16 (four stride-2 stages); got {size}")
        check_in("in_channels", self.in_channels, (1, 3))
        check_number("latent_dim", self.latent_dim, integer=True, minimum=1)
        check_tile_size(self.tile_size, size, 16)


LATENT_BY_KIND = {"texture": 100, "object": 500}  # Bergmann et al. (2019b)


def latent_dim_for(kind: str | None) -> int:
    """Bergmann et al.'s latent size for a category ``kind`` ("texture" or "object"); 100 otherwise."""
    return LATENT_BY_KIND.get(kind or "", LATENT_BY_KIND["texture"])


def bottleneck_plan(image_size: int) -> tuple[int, int]:
    """(number of extra 4x4 s2 stages, bottleneck side) for an input of ``image_size`` px."""
    if image_size % 16 or image_size < 16:
        raise ValueError(f"l2-CAE image_size must be a multiple of 16, got {image_size}")
    side, extra = image_size // 16, 0
    while side > 8 and side % 2 == 0:
        side, extra = side // 2, extra + 1
    return extra, side


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


class L2CAE(nn.Module):
    """Bergmann et al.'s convolutional autoencoder with a dense latent; ``forward`` reconstructs."""

    model_type = "cae"

    def __init__(self, config: L2CAEConfig) -> None:
        super().__init__()
        self.config = config
        c, d = config.in_channels, config.latent_dim
        extra, side = bottleneck_plan(config.network_size)
        enc: list[nn.Module] = []
        for _ in range(extra):
            enc += [nn.Conv2d(c if not enc else 32, 32, 4, 2, 1), _act()]
        enc += [
            nn.Conv2d(32 if extra else c, 32, 4, 2, 1), _act(),
            nn.Conv2d(32, 32, 4, 2, 1), _act(),
            nn.Conv2d(32, 32, 3, 1, 1), _act(),
            nn.Conv2d(32, 64, 4, 2, 1), _act(),
            nn.Conv2d(64, 64, 3, 1, 1), _act(),
            nn.Conv2d(64, 128, 4, 2, 1), _act(),
            nn.Conv2d(128, 64, 3, 1, 1), _act(),
            nn.Conv2d(64, 32, 3, 1, 1), _act(),
            nn.Conv2d(32, d, side),
        ]
        dec: list[nn.Module] = [
            nn.ConvTranspose2d(d, 32, side), _act(),
            nn.Conv2d(32, 64, 3, 1, 1), _act(),
            nn.Conv2d(64, 128, 3, 1, 1), _act(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), _act(),
            nn.Conv2d(64, 64, 3, 1, 1), _act(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), _act(),
            nn.Conv2d(32, 32, 3, 1, 1), _act(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), _act(),
        ]
        for _ in range(extra):
            dec += [nn.ConvTranspose2d(32, 32, 4, 2, 1), _act()]
        dec += [nn.ConvTranspose2d(32, c, 4, 2, 1)]
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent code (B, latent_dim, 1, 1)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` (B, C, H, W), pixel values in [0, 1]; the output is unbounded (linear layer). A
        tiled model (``tile_size``) takes single tiles or whole images (:mod:`anovit.models.tiling`)."""
        return forward_tiled(self.forward_tile, x, self.config.tile_size)

    def forward_tile(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of images the network's size (``network_size``)."""
        return self.decoder(self.encoder(x))


class SSIMCAE(L2CAE):
    """The SSIM-AE of Bergmann et al. (2019b): :class:`L2CAE`'s network, trained with the SSIM loss
    and scored with 1 - SSIM (its loss and score are training defaults of the "ssim-cae" model)."""

    model_type = "ssim-cae"
