"""The explicit, seeded train/validation rule shared by every dataset."""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Dataset, Subset

from ..utils.errors import DatasetError

DEFAULT_VAL_FRACTION = 0.2  # share of a folder dataset's normal training images held out for validation


def split_indices(n: int, val_fraction: float | int, seed: int) -> tuple[list[int], list[int]]:
    """Split range(n) into sorted (train, val) index lists, deterministically from `seed`.

    A float in [0, 1) is a fraction of n (rounded half up; at least one image when > 0);
    an int >= 0 is an exact validation count. Both parts are non-empty unless val is 0.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
        raise DatasetError(f"val_fraction {val_fraction!r} is not valid (expected a fraction or a count)")
    if isinstance(val_fraction, float):
        if not 0.0 <= val_fraction < 1.0:
            raise DatasetError(f"val_fraction {val_fraction} is not valid (expected a fraction in [0, 1))")
        n_val = max(1, math.floor(n * val_fraction + 0.5)) if val_fraction > 0 else 0
    else:
        n_val = val_fraction
    if n_val < 0 or (n_val > 0 and n_val >= n):
        raise DatasetError(f"cannot hold out {n_val} of {n} images for validation "
                           f"(expected at least one training image left)")
    order = np.random.default_rng(seed).permutation(n)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def subsample(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most ``limit`` items of ``dataset``, a seeded random choice kept in index order (None: all).

    Used to size a CPU run (e.g. the offline MNIST Table 2); the run records the limit it used.
    """
    if limit is None or len(dataset) <= limit:
        return dataset
    if limit < 1:
        raise DatasetError(f"subsample limit {limit} is not valid (expected at least one image)")
    chosen = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    return Subset(dataset, sorted(chosen.tolist()))
