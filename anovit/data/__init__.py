"""Datasets for anovit: one front door over every dataset of the registry (anovit.data.registry).

Every item is a dict: image FloatTensor[3,H,W] in [0,1], mask FloatTensor[1,H,W] in {0,1},
label int (0 normal, 1 anomalous), defect_type str ("good" for normal), path str.

Folder datasets ("synthetic", "mvtec", "folder", "visa") have no validation folder: split "val"
returns the whole train split, exactly like "train"; the trainer holds out part of it with
`split_indices(len(dataset), val_fraction, seed)` and builds the val view without augmentation.
"mvtec3d" validates on its own validation/ folder where a class has one, else as the folder datasets;
"mvtec-loco" always on its own validation/ folder.
One-class datasets ("digits", "mnist", "fashion-mnist", "cifar10") split train/val by their own
protocol and ignore `val_fraction`.

Layer 2 (docs/architecture.md): may import utils and models only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from .check import check_category, check_tree, require_valid
from .check_report import format_report
from .digits import DIGIT_CLASSES, digits_one_class
from .folder import ImageFolderDataset, list_folder_categories
from .imageio import unreadable
from .layouts import layout_mismatch
from .mvtec import MVTecLayoutDataset, list_categories
from .mvtec3d import MVTEC3D_CLASSES, MVTec3DDataset, has_validation, list_mvtec3d_classes
from .mvtec_ad import MVTEC_CATEGORIES, download_mvtec
from .mvtec_loco import LOCO_CLASSES, MVTecLOCODataset, list_loco_classes
from .one_class import OneClassDataset, one_class_split
from .paths import default_data_dir
from .registry import (
    DATASETS, FOLDER, LAYOUT, LOCO, MVTEC3D, REGISTRY, VISA, DatasetSpec, dataset_spec, default_augment, fixed_classes,
    flip_rule,
)
from .splits import DEFAULT_VAL_FRACTION, split_indices
from .synthetic import CATEGORIES, CATEGORY_KIND, DEFECT_TYPES, ensure_synthetic
from .torchvision_sets import LABELLED_SETS, one_class
from .unified import ALL_CLASSES, concat_classes, unified_classes
from .visa import VISA_CLASSES, VisADataset, download_visa, is_visa_root, list_visa_classes
from ..utils.errors import DatasetError

SPLITS = ("train", "val", "test")
_LOG = logging.getLogger(__name__)
_ROOT_LAYOUTS = {LAYOUT: "<category>/train/good", FOLDER: "<category>/good",
                 VISA: "split_csv/1cls.csv and <class>/Data", MVTEC3D: "<class>/train/good/rgb",
                 LOCO: "<class>/train/good and test/logical_anomalies"}
_FOLDER_LAYOUTS = (LAYOUT, FOLDER, VISA, MVTEC3D, LOCO)
_DOWNLOADED = {"mvtec": lambda p: bool(list_categories(p)), "visa": is_visa_root}

__all__ = [
    "ALL_CLASSES", "CATEGORIES", "CATEGORY_KIND", "DATASETS", "DEFECT_TYPES", "DIGIT_CLASSES", "LOCO_CLASSES", "MVTEC3D_CLASSES",
    "MVTEC_CATEGORIES", "REGISTRY", "SPLITS", "VISA_CLASSES", "DatasetSpec", "ImageFolderDataset", "MVTec3DDataset",
    "MVTecLOCODataset", "MVTecLayoutDataset", "OneClassDataset", "VisADataset", "category_kind", "check_category",
    "check_tree", "dataset_spec", "default_augment", "default_data_dir", "digits_one_class", "download_mvtec",
    "download_visa", "ensure_synthetic", "fixed_classes", "flip_rule", "format_report", "get_dataset", "has_masks",
    "list_categories", "list_classes", "one_class_split", "split_indices", "supports_all_classes", "train_val_datasets",
    "unified_class_list",
]


def _folder_root(spec: DatasetSpec, root: str | Path | None) -> Path:
    if root is not None:
        return Path(root)
    if spec.name == "synthetic":
        return ensure_synthetic()
    default = default_data_dir() / spec.name
    if spec.name in _DOWNLOADED and default.is_dir() and _DOWNLOADED[spec.name](default):
        return default
    hint = (f", e.g. after `python -m anovit data download {spec.name} --root {default}`" if spec.downloadable
            else "")
    raise DatasetError(f"dataset '{spec.name}' needs root (--data-root: the folder holding "
                       f"{_ROOT_LAYOUTS[spec.layout]}){hint}")


def get_dataset(name: str, split: str, *, category: str, image_size: int, root: str | Path | None = None,
                transform: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0) -> Dataset:
    """One split of a dataset, each item a dict (image, mask, label, defect_type, path; module docstring).

    Args:
        name: a dataset of the registry (``DATASETS``: synthetic, mvtec, folder, visa, mvtec3d, mvtec_loco,
            mnist, fashion-mnist, cifar10, ...).
        split: "train", "val" or "test". Folder datasets have no validation folder: "val" returns the train
            split (the trainer holds part of it out), except an mvtec3d class with its own validation/ folder.
        category: the normal class (one-class sets) or the category folder.
        image_size: side in px the images are resized to.
        root: synthetic: default ``ensure_synthetic()``; mvtec and visa: default <data dir>/<name> when a
            download put it there; folder and mvtec3d: required; one-class sets: where their files are
            (default: the cache under <data dir>).
        transform: applied to each image tensor.
        seed: one-class sets: moves the train/val split.

    Returns:
        Dataset: items with image FloatTensor[3, H, W] in [0, 1] and mask FloatTensor[1, H, W] in {0, 1}.

    Raises:
        DatasetError: an unknown dataset or split, a missing or unreadable folder, or a root in another
            dataset's layout (the message names that layout).

    Example:
        >>> from anovit import get_dataset
        >>> test = get_dataset("mvtec", "test", category="cookie", image_size=128,
        ...                    root="../shared/data/cookies")  # doctest: +SKIP
    """
    try:
        return _get_dataset(name, split, category=category, image_size=image_size, root=root, transform=transform,
                            seed=seed)
    except OSError as err:  # a folder the system refuses to enter (stat of a path below it)
        raise unreadable(err, Path(root or "."), "folder") from None
    except DatasetError as err:
        mismatch = layout_mismatch(Path(root), name) if root is not None and name not in LABELLED_SETS else None
        if mismatch is None:
            raise
        raise DatasetError(f"{err}; {mismatch}") from None


def _get_dataset(name: str, split: str, *, category: str, image_size: int, root: str | Path | None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None, seed: int) -> Dataset:
    spec = dataset_spec(name)
    if split not in SPLITS:
        raise DatasetError(f"split '{split}' is not valid (expected one of {', '.join(SPLITS)})")
    if name == "digits":
        if str(category) not in DIGIT_CLASSES:
            raise DatasetError(f"digits category '{category}' is unknown (expected one of {', '.join(DIGIT_CLASSES)})")
        return digits_one_class(int(category), split, image_size, transform=transform, seed=seed)
    if name in LABELLED_SETS:
        return one_class(name, category, split, image_size, root=root, transform=transform, seed=seed)
    folder_root = _folder_root(spec, root)
    if spec.layout == LOCO:
        return MVTecLOCODataset(folder_root, category, split, image_size, transform)
    if spec.layout == MVTEC3D:
        own_val = split == "val" and has_validation(folder_root / category)
        return MVTec3DDataset(folder_root, category, split if split == "test" or own_val else "train", image_size,
                              transform)
    dataset_class = {FOLDER: ImageFolderDataset, VISA: VisADataset}.get(spec.layout, MVTecLayoutDataset)
    return dataset_class(folder_root, category, "test" if split == "test" else "train", image_size, transform)


def list_classes(name: str, root: str | Path | None = None) -> list[str]:
    """Categories usable as `category`: the fixed classes, or the category folders under `root`."""
    spec = dataset_spec(name)
    if root is None and spec.classes is not None:
        return list(spec.classes)
    try:
        if spec.layout == FOLDER:
            return list_folder_categories(_folder_root(spec, root))
        if spec.layout == LAYOUT:
            return list_categories(_folder_root(spec, root))
        if spec.layout == VISA:
            return list_visa_classes(_folder_root(spec, root))
        if spec.layout == MVTEC3D:
            return list_mvtec3d_classes(_folder_root(spec, root))
        if spec.layout == LOCO:
            return list_loco_classes(_folder_root(spec, root))
    except OSError as err:
        raise unreadable(err, Path(root or "."), "folder") from None
    return list(spec.classes or ())


def supports_all_classes(name: str) -> bool:
    """Whether ``category="all"`` (one unified model for every class) applies: the folder datasets."""
    return dataset_spec(name).layout in _FOLDER_LAYOUTS


def unified_class_list(name: str, root: str | Path | None) -> list[str]:
    """The classes ``category="all"`` trains on: every class of ``root`` (:func:`list_classes`), sorted.
    DatasetError for a dataset without class folders, a class folder named "all" or fewer than two classes."""
    if not supports_all_classes(name):
        raise DatasetError(f"dataset '{name}' has no class folders; category '{ALL_CLASSES}' (one model for every "
                           "class) needs a folder dataset (mvtec, folder, visa, mvtec3d, mvtec-loco, synthetic)")
    return unified_classes(list_classes(name, root), root)


def has_masks(name: str) -> bool:
    """Whether the dataset has pixel-level ground truth (else masks are all zero)."""
    return dataset_spec(name).has_masks


def category_kind(name: str, category: str) -> str | None:
    """"texture" or "object" for MVTec AD and synthetic categories (the paper's table groups), else None."""
    if name == "mvtec" and category in MVTEC_CATEGORIES:
        return MVTEC_CATEGORIES[category].kind
    if name == "synthetic":
        return CATEGORY_KIND.get(category)
    return None


def train_val_datasets(name: str, *, category: str, image_size: int, root: str | Path | None = None,
                       val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0) -> tuple[Dataset, Dataset]:
    """The training and validation sets of the normal class (augmentation is the trainer's, per batch).

    Folder datasets are checked first (:func:`anovit.data.check.require_valid`: layout, structure,
    headers, masks), so a broken folder fails before any training; then ``val_fraction`` of the
    train split is held out by a seeded index split, except for MVTec LOCO AD and an MVTec 3D-AD
    class with its own validation/ folder, used as it is (an MVTec 3D-AD class without one: the
    hold-out is logged by require_valid). One-class sets use their protocol's validation split and
    ignore ``val_fraction``.

    ``category="all"`` (:data:`ALL_CLASSES`, folder datasets only): every class of the root, each split as
    above, joined into two ``ConcatDataset`` s in sorted class order (:mod:`anovit.data.unified`).

    Args:
        name, category, image_size, root: as for :func:`get_dataset`.
        val_fraction: share of the train split held out (0 < f < 1).
        seed: the hold-out's seed.

    Returns:
        tuple[Dataset, Dataset]: (training images, held-out normal validation images).

    Raises:
        DatasetError: as :func:`get_dataset`, and for a folder that fails its check.
    """
    spec = dataset_spec(name)
    if category == ALL_CLASSES and supports_all_classes(name):
        return concat_classes(unified_class_list(name, root), lambda c: train_val_datasets(
            name, category=c, image_size=image_size, root=root, val_fraction=val_fraction, seed=seed))
    if spec.layout in _FOLDER_LAYOUTS:
        folder = _folder_root(spec, root) / category
        if os.path.isdir(folder):
            require_valid(folder, name)
        common = dict(category=category, image_size=image_size, root=root)
        if spec.layout == LOCO or (spec.layout == MVTEC3D and has_validation(folder)):
            _LOG.info("%s/%s: validating on its own validation/ folder", name, category)
            return get_dataset(name, "train", **common), get_dataset(name, "val", **common)
        normal = get_dataset(name, "train", category=category, image_size=image_size, root=root)
        train_idx, val_idx = split_indices(len(normal), val_fraction, seed)
        if not val_idx:
            raise DatasetError(f"{name}/{category}: val_fraction {val_fraction} leaves no validation image "
                               f"out of {len(normal)} training images")
        return Subset(normal, train_idx), Subset(normal, val_idx)  # one dataset: each image decoded once
    common = dict(category=category, image_size=image_size, root=root, seed=seed)
    return get_dataset(name, "train", **common), get_dataset(name, "val", **common)
