"""AnoViT: a ViT encoder whose patch embeddings, laid back on their grid, feed a conv decoder.

Paper section 3.1: the [cls] token (here: every prefix token, i.e. cls, distillation and register
tokens) is dropped, the N patch embeddings of the last encoder layer are rearranged into a
D x sqrt(N) x sqrt(N) feature map F (no fully connected bottleneck), and six transposed-convolution
+ ReLU blocks followed by an upsampling to the input size reconstruct the image.

Channel plan for a patch size of 16 (``decoder_channels=(256, 128, 64, 32, 16, 16)``), grid g = size/16:

    block  ConvTranspose2d             output
    1      D   -> 256, k3 s1 p1        256 x g   x g
    2      256 -> 128, k4 s2 p1        128 x 2g  x 2g
    3      128 -> 64,  k4 s2 p1        64  x 4g  x 4g
    4      64  -> 32,  k4 s2 p1        32  x 8g  x 8g
    5      32  -> 16,  k4 s2 p1        16  x 16g x 16g
    6      16  -> 16,  k3 s1 p1        16  x 16g x 16g
    each block: ConvTranspose2d -> GroupNorm(8 groups) -> ReLU
    upsample (bilinear) to the input size (a no-op when 16g equals it), then a linear 3x3 conv to C.

Blocks 2.. are stride 2 as many times as log2(patch size) needs; the rest are stride 1. The last
layer is linear, not ReLU/Tanh: inputs are images in [0, 1] and the reconstruction is compared with
them directly, so AnoViT and the l2-CAE produce score maps on the same scale. The output is
unbounded (a linear layer; it is not clipped to [0, 1]). The encoder sees the input normalised with
the mean and std of its own ``pretrained_cfg`` (timm's; ImageNet's for most ViTs, (0.5, 0.5, 0.5)
for some).

That is ``decoder="stable"`` (the default): GroupNorm keeps training and evaluation consistent on
tiny training sets, where batch statistics are noisy. ``decoder="paper"`` is the decoder as the
paper writes it (sec. 4.2: "six blocks composed of transposed convolutional layer and ReLU
activation", then "an upsampling layer ... to the final layer"), with the authors' code's kernel
plan: no normalisation, no head; the sixth block outputs the image channels (so the output, after
its ReLU, lies in [0, inf)); bilinear upsampling to the input size comes last::

    block  ConvTranspose2d + ReLU      output (g = grid side)
    1-3    D -> 256 -> 128 -> 64, k3 s1 p0      g+2, g+4, g+6
    4-6    64 -> 32 -> 16 -> C,  k3 s2 p1       2(g+6)-1, ...  (24 -> 233 at 384 px)
    upsample (bilinear) to the input size

Masked-patch inpainting (``mask_ratio`` > 0; 0, the default, is the paper's model, unchanged): the
patch tokens of hidden patches are replaced by one learned mask token right after the patch
embedding and *before* the position embedding is added (as SimMIM does), so a hidden token still
carries its position and the decoder still sees the full grid. In training (``model.train()``) each
image hides ``round(mask_ratio * N)`` random patches and the trainer's loss covers the whole image,
hidden and visible patches weighted alike (the visible ones are near-identity and cheap; the hidden
ones carry the signal). In evaluation the reconstruction is composed from K = round(1/mask_ratio)
passes with complementary masks, each pixel from the pass that hid its patch (:mod:`anovit.models.masking`):
K forward passes per image.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils.errors import ConfigError
from .masking import complementary_masks, compose, hide_tokens, pixel_mask, random_mask, inference_passes
from .tiling import check_tile_size, forward_tiled
from ..utils.validation import check_bool, check_in, check_int_list, check_number, check_str
from .encoder import create_encoder


@dataclass
class AnoViTConfig:
    """Configuration of an AnoViT model (serialised to config.json)."""

    encoder: str = "vit_tiny_patch16_224"
    image_size: int = 128
    in_channels: int = 3
    pretrained: bool = False
    encoder_weights: str | None = None
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16, 16)
    decoder: str = "stable"  # "stable" (GroupNorm, linear 3x3 head) or "paper" (sec. 4.2 as written)
    mask_ratio: float = 0.0  # share of patches hidden (masked-patch inpainting); 0: the paper's AnoViT
    tile_size: int | None = None  # the network's input (px) when it reconstructs image_size px by tiles (tiling)

    @property
    def network_size(self) -> int:
        """Side (px) of the images the network itself takes: ``tile_size``, or ``image_size`` untiled."""
        return self.tile_size or self.image_size

    def __post_init__(self) -> None:
        """Check every field where the config is built (ConfigError naming the field), before timm sees it."""
        import timm

        check_str("encoder", self.encoder)
        patch = re.search(r"patch(\d+)", self.encoder)
        if not timm.is_model(self.encoder) or patch is None:
            raise ConfigError(f"field 'encoder' must name a timm ViT with a patch size, e.g. vit_tiny_patch16_224 "
                              f"(see timm.list_models('vit_*')); got {self.encoder!r}")
        size = check_number("image_size", self.image_size, integer=True, minimum=int(patch[1]))
        if size % int(patch[1]):
            raise ConfigError(f"field 'image_size' must be a multiple of {self.encoder}'s patch size {patch[1]}; "
                              f"got {size}")
        check_in("in_channels", self.in_channels, (1, 3))
        check_bool("pretrained", self.pretrained)
        check_str("encoder_weights", self.encoder_weights, optional=True)
        check_str("decoder", self.decoder, choices=DECODERS)
        check_number("mask_ratio", self.mask_ratio, minimum=0, maximum=0.9)
        check_tile_size(self.tile_size, size, int(patch[1]))
        self.decoder_channels = check_int_list("decoder_channels", self.decoder_channels, 6)
        odd = [c for c in self.decoder_channels if c > 8 and c % 8]
        if odd and self.decoder == "stable":
            raise ConfigError(f"field 'decoder_channels' widths above 8 must be multiples of 8 (GroupNorm with 8 "
                              f"groups in the stable decoder); got {list(self.decoder_channels)}")


DECODERS = ("stable", "paper")


def decoder_strides(patch_size: int, n_blocks: int = 6) -> list[int]:
    """Strides of the decoder blocks: the first is 1, then 2 until the patch size is undone."""
    n_up = min(n_blocks - 1, max(0, round(math.log2(patch_size))))
    return [1] + [2] * n_up + [1] * (n_blocks - 1 - n_up)


def stable_decoder(width: int, channels: tuple[int, ...], patch_size: int, out_channels: int
                   ) -> tuple[nn.Sequential, nn.Module]:
    """(blocks, head) of the default decoder: ConvT -> GroupNorm -> ReLU blocks, linear 3x3 head."""
    blocks: list[nn.Module] = []
    for out, stride in zip(channels, decoder_strides(patch_size)):
        kernel = 4 if stride == 2 else 3
        blocks += [
            nn.ConvTranspose2d(width, out, kernel, stride=stride, padding=1),
            nn.GroupNorm(min(8, out), out),
            nn.ReLU(inplace=True),
        ]
        width = out
    return nn.Sequential(*blocks), nn.Conv2d(width, out_channels, 3, padding=1)


def paper_decoder(width: int, channels: tuple[int, ...], out_channels: int) -> tuple[nn.Sequential, nn.Module]:
    """(blocks, identity head) of the paper's decoder: six plain ConvT -> ReLU blocks, the last one
    giving ``out_channels``; three k3 s1 p0, then three k3 s2 p1 (the authors' code)."""
    blocks: list[nn.Module] = []
    for i, out in enumerate((*channels[:5], out_channels)):
        stride, padding = (1, 0) if i < 3 else (2, 1)
        blocks += [nn.ConvTranspose2d(width, out, 3, stride=stride, padding=padding), nn.ReLU(inplace=True)]
        width = out
    return nn.Sequential(*blocks), nn.Identity()


class AnoViT(nn.Module):
    """ViT encoder + transposed-convolution decoder; ``forward`` returns the reconstruction."""

    model_type = "anovit"

    def __init__(self, config: AnoViTConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = create_encoder(
            config.encoder, config.network_size, config.pretrained, config.encoder_weights
        )
        mean = self.encoder.pretrained_cfg.get("mean", (0.5, 0.5, 0.5))
        std = self.encoder.pretrained_cfg.get("std", (0.5, 0.5, 0.5))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        width, channels = self.encoder.embed_dim, config.decoder_channels
        if config.decoder == "paper":
            self.decoder, self.head = paper_decoder(width, channels, config.in_channels)
        else:
            self.decoder, self.head = stable_decoder(width, channels, self.encoder.patch_embed.patch_size[0],
                                                     config.in_channels)
        if config.mask_ratio > 0:  # only then: a paper model's parameters, state dict and RNG use stay as they were
            self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
            grid = tuple(self.encoder.patch_embed.grid_size)
            masks = complementary_masks(grid[0] * grid[1], inference_passes(config.mask_ratio))
            self.register_buffer("test_masks", masks, persistent=False)

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens (cls, distillation, registers) that the map drops."""
        return int(getattr(self.encoder, "num_prefix_tokens", 1))

    def masked_features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """timm's ``forward_features`` of normalised ``x`` with the tokens hidden by ``mask`` ((B, N) or
        (N,) bool) replaced by the mask token between the patch embedding and the position embedding."""
        enc = self.encoder
        tokens = hide_tokens(enc.patch_embed(x), mask, self.mask_token)
        tokens = enc.norm_pre(enc.patch_drop(enc._pos_embed(tokens)))
        return enc.norm(enc.blocks(tokens))

    def feature_map(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The feature map F (B, D, sqrt(N), sqrt(N)): patch embeddings back on their grid; ``mask``
        (B, N) or (N,) bool hides patches (needs ``mask_ratio`` > 0)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        tokens = self.encoder.forward_features(x) if mask is None else self.masked_features(x, mask)
        patches = tokens[:, self.num_prefix_tokens :]
        h, w = self.encoder.patch_embed.grid_size
        return patches.transpose(1, 2).reshape(x.shape[0], patches.shape[2], h, w)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """One decoder pass over :meth:`feature_map` (``mask``: the patches hidden, None: none)."""
        out = self.decoder(self.feature_map(x, mask))
        if out.shape[-2:] != x.shape[-2:]:
            out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(out)

    def inpaint(self, x: torch.Tensor) -> torch.Tensor:
        """The test-time reconstruction of a masked model: K passes with the complementary masks
        ``test_masks`` (K, N), each pixel taken from the pass that hid its patch."""
        grid, patch = tuple(self.encoder.patch_embed.grid_size), self.encoder.patch_embed.patch_size[0]
        masks = list(self.test_masks)
        recons = [self.reconstruct(x, m) for m in masks]
        return compose(recons, [pixel_mask(m.unsqueeze(0), grid, patch, tuple(x.shape[-2:])) for m in masks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` (B, C, H, W), pixel values in [0, 1], as (B, C, H, W): unbounded for the
        stable decoder (linear head), in [0, inf) for the paper's (ReLU last). A tiled model
        (``tile_size``) takes single tiles or whole images (:mod:`anovit.models.tiling`)."""
        return forward_tiled(self.forward_tile, x, self.config.tile_size)

    def forward_tile(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of images the network's size (``network_size``). With ``mask_ratio`` > 0:
        random patches hidden per image in training mode, :meth:`inpaint` (K passes) in eval mode."""
        if self.config.mask_ratio == 0:
            return self.reconstruct(x)
        if self.training:
            n = self.test_masks.shape[1]
            return self.reconstruct(x, random_mask(x.shape[0], n, self.config.mask_ratio, device=x.device))
        return self.inpaint(x)
