"""Training-time augmentations of the paper (section 4.3): random affine, horizontal and vertical flips."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torchvision.transforms import v2


@dataclass
class AugmentConfig:
    """Which augmentations to apply; switch off flips where they make a normal image look defective."""

    affine: bool = True
    hflip: bool = True
    vflip: bool = True
    degrees: float = 5.0
    translate: float = 0.03
    scale: tuple[float, float] = (0.95, 1.05)


def build_augmentation(config: AugmentConfig) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A callable on a (C, H, W) float image, or None when every augmentation is off."""
    steps: list[Callable] = []
    if config.affine:
        steps.append(v2.RandomAffine(config.degrees, translate=(config.translate,) * 2, scale=tuple(config.scale)))
    if config.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if config.vflip:
        steps.append(v2.RandomVerticalFlip())
    return v2.Compose(steps) if steps else None
