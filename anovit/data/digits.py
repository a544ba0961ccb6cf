"""scikit-learn's bundled 8x8 digits (1797 images, no network) under the one-class protocol."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from .one_class import OneClassDataset, one_class_split

DIGIT_CLASSES = tuple(str(d) for d in range(10))
POOL_SEED = 0  # the train/test pool split is fixed; `seed` only moves the train/val split
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2


@functools.lru_cache(maxsize=1)
def digit_pools() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels): a stratified 80/20 split, uint8 0..255."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)
    labels = data.target.astype(np.int64)
    rng = np.random.default_rng(POOL_SEED)
    test = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        test += rng.permutation(members)[: int(np.floor(len(members) * TEST_FRACTION + 0.5))].tolist()
    is_test = np.zeros(len(labels), bool)
    is_test[test] = True
    return images[~is_test], labels[~is_test], images[is_test], labels[is_test]


def digits_one_class(normal_class: int, split: str, image_size: int = 128,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     seed: int = 0) -> OneClassDataset:
    """Digits one-class split: train/val = 80/20 of the normal digit's train pool, test = whole test pool."""
    train_x, train_y, test_x, test_y = digit_pools()
    return one_class_split(train_x, train_y, test_x, test_y, normal_class=normal_class, class_names=DIGIT_CLASSES,
                           split=split, image_size=image_size, val_fraction=VAL_FRACTION, seed=seed,
                           name="digits", transform=transform)
