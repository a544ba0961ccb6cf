"""Datasets for anovit: one front door over the synthetic, digits and MVTec-layout datasets.

Every item is a dict: image FloatTensor[3,H,W] in [0,1], mask FloatTensor[1,H,W] in {0,1},
label int (0 normal, 1 anomalous), defect_type str ("good" for normal), path str.

Layout datasets ("synthetic", "mvtec") have no validation folder: split "val" returns the whole
train/good set, exactly like "train"; the trainer holds out part of it with
`split_indices(len(dataset), val_fraction, seed)` and builds the val view without augmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from anovit.data.digits import DIGIT_CLASSES, digits_one_class
from anovit.data.mvtec import MVTecLayoutDataset, list_categories
from anovit.data.one_class import OneClassDataset, one_class_split
from anovit.data.splits import split_indices
from anovit.data.synthetic import CATEGORIES, CATEGORY_KIND, DEFECT_TYPES, ensure_synthetic
from anovit.errors import DatasetError

DATASETS = ("synthetic", "digits", "mvtec")
SPLITS = ("train", "val", "test")

__all__ = [
    "CATEGORIES", "CATEGORY_KIND", "DATASETS", "DEFECT_TYPES", "DIGIT_CLASSES", "SPLITS", "MVTecLayoutDataset",
    "OneClassDataset", "digits_one_class", "ensure_synthetic", "get_dataset", "has_masks", "list_categories",
    "list_classes", "one_class_split", "split_indices", "train_val_datasets",
]


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DatasetError(f"dataset '{name}' is unknown (expected one of {', '.join(DATASETS)})")


def _layout_root(name: str, root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    if name == "synthetic":
        return ensure_synthetic()
    raise DatasetError("dataset 'mvtec' needs root (expected the folder holding <category>/train/good)")


def get_dataset(name: str, split: str, *, category: str, image_size: int, root: str | Path | None = None,
                transform: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0) -> Dataset:
    """One split ("train", "val", "test") of a dataset; `category` is the normal class ("0".."9" for digits).

    synthetic: `root` defaults to `ensure_synthetic()`; mvtec: `root` is required. For both, "val"
    returns the train split (see the module docstring). digits: `seed` moves the train/val split.
    """
    _check_name(name)
    if split not in SPLITS:
        raise DatasetError(f"split '{split}' is not valid (expected one of {', '.join(SPLITS)})")
    if name == "digits":
        if str(category) not in DIGIT_CLASSES:
            raise DatasetError(f"digits category '{category}' is unknown (expected one of {', '.join(DIGIT_CLASSES)})")
        return digits_one_class(int(category), split, image_size, transform=transform, seed=seed)
    return MVTecLayoutDataset(_layout_root(name, root), category, "test" if split == "test" else "train",
                              image_size, transform)


def list_classes(name: str, root: str | Path | None = None) -> list[str]:
    """Categories (layout datasets) or class names (digits) usable as `category`."""
    _check_name(name)
    if name == "digits":
        return list(DIGIT_CLASSES)
    if name == "synthetic" and root is None:
        return list(CATEGORIES)
    return list_categories(_layout_root(name, root))


def has_masks(name: str) -> bool:
    """Whether the dataset has pixel-level ground truth (else masks are all zero)."""
    _check_name(name)
    return name != "digits"


def train_val_datasets(name: str, *, category: str, image_size: int, root: str | Path | None = None,
                       transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """The training set (with ``transform``) and the validation set (without) of the normal class.

    Layout datasets hold out ``val_fraction`` of train/good by a seeded index split; datasets with a
    protocol of their own (digits) use their "val" split and ignore ``val_fraction``.
    """
    if name in ("synthetic", "mvtec"):
        augmented = get_dataset(name, "train", category=category, image_size=image_size, root=root, transform=transform)
        plain = get_dataset(name, "train", category=category, image_size=image_size, root=root)
        train_idx, val_idx = split_indices(len(plain), val_fraction, seed)
        if not val_idx:
            raise DatasetError(f"{name}/{category}: val_fraction {val_fraction} leaves no validation image "
                               f"out of {len(plain)} in train/good")
        return Subset(augmented, train_idx), Subset(plain, val_idx)
    common = dict(category=category, image_size=image_size, root=root, seed=seed)
    return get_dataset(name, "train", transform=transform, **common), get_dataset(name, "val", **common)
