"""Training-time augmentations of the paper (section 4.3): random affine, horizontal and vertical flips.

They run on whole batches on the model's device (:class:`BatchAugment`): one random affine map and
flip per image, applied by a single ``grid_sample``, instead of one transform call per image in the
data loader (which cost the l2-CAE about 15% of its training throughput on a CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    """Which augmentations to apply; switch off flips where they make a normal image look defective.

    The affine map rotates by up to ``degrees`` (either way), shifts by up to ``translate`` of the
    image size (whole pixels) and scales by a factor in ``scale``, about the image centre.
    """

    affine: bool = True
    hflip: bool = True
    vflip: bool = True
    degrees: float = 5.0
    translate: float = 0.03
    scale: tuple[float, float] = (0.95, 1.05)


def affine_theta(angle: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, flip: torch.Tensor,
                 height: int, width: int) -> torch.Tensor:
    """The (B, 2, 3) sampling matrices of ``F.affine_grid`` for per-image transforms.

    The image is rotated by ``angle`` (radians, counter-clockwise as seen on screen), scaled by
    ``scale`` and shifted by ``shift`` (B, 2: x right, y down, in pixels), all about its centre, then
    mirrored where ``flip`` (B, 2 bool: horizontal, vertical) is set. ``affine_grid`` maps each output
    position to the input position it samples, so the matrices hold the inverse map, in the
    normalised coordinates of a ``height`` x ``width`` image.
    """
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map in centred pixel coordinates (y down): p' = scale * R p + shift, with R rotating
    # counter-clockwise on screen; its inverse is p = R^T (p' - shift) / scale.
    inv_rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) / scale[:, None, None]
    half = torch.tensor([width / 2.0, height / 2.0], dtype=angle.dtype, device=angle.device)
    linear = inv_rot * half[None, None, :] / half[None, :, None]  # D^-1 R^T D / scale, D = diag(half)
    offset = -(inv_rot @ shift.unsqueeze(-1)).squeeze(-1) / half
    mirror = 1.0 - 2.0 * flip.to(angle.dtype)  # -1 flips the output axis before the inverse map
    return torch.cat([linear * mirror[:, None, :], offset.unsqueeze(-1)], dim=-1)


class BatchAugment:
    """The paper's augmentations of a batch (B, C, H, W) in one ``grid_sample`` on its device.

    Each image gets its own random rotation, scale, whole-pixel shift (as torchvision's
    ``RandomAffine``) and flips (probability 1/2 each); sampling is nearest-neighbour with zero fill,
    so a pure flip or shift reproduces the pixels exactly. Random numbers come from torch's global
    CPU generator, whose state the trainer's checkpoints save, so a resumed run repeats them.
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"expected a batch of images (B, C, H, W); got shape {tuple(images.shape)}")
        c = self.config
        b, _, h, w = images.shape
        angle, scale, shift = torch.zeros(b), torch.ones(b), torch.zeros(b, 2)
        if c.affine:
            angle = (torch.rand(b) * 2 - 1) * math.radians(c.degrees)
            low, high = c.scale
            scale = low + torch.rand(b) * (high - low)
            max_shift = torch.tensor([c.translate * w, c.translate * h])
            shift = ((torch.rand(b, 2) * 2 - 1) * max_shift).round()
        flip = torch.rand(b, 2) < 0.5
        flip &= torch.tensor([c.hflip, c.vflip])
        theta = affine_theta(angle, scale, shift, flip, h, w).to(images.device, images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def build_augmentation(config: AugmentConfig) -> BatchAugment | None:
    """The batch augmentation of ``config``, or None when every augmentation is off."""
    return BatchAugment(config) if (config.affine or config.hflip or config.vflip) else None
