"""The unified (multi-class) protocol of UniAD (You et al., "A Unified Model for Multi-class Anomaly Detection",
NeurIPS 2022): one model trained on the normal images of every class of a data root at once, then evaluated
class by class.

``category="all"`` (:data:`ALL_CLASSES`) names that union for the folder datasets (MVTec AD layout, plain
folders, VisA, MVTec 3D-AD, MVTec LOCO AD and the synthetic set). Each class keeps its own seeded hold-out
(:func:`anovit.data.train_val_datasets` per class), so its validation images are exactly those of a
per-class run at the same seed; the union is a ``ConcatDataset`` of the classes in sorted order, and
:func:`class_weights` gives every class an equal share of a weighted sampler however many images it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from ..utils.errors import DatasetError

ALL_CLASSES = "all"  # the category that names every class of a data root (one unified model)


def unified_classes(classes: Sequence[str], root: str | Path | None) -> list[str]:
    """The classes a unified run holds: ``classes`` (those of the data root), checked.

    Raises:
        DatasetError: a class folder is itself named "all" (the name would be ambiguous), or the root holds
            fewer than two classes.
    """
    if ALL_CLASSES in classes:
        raise DatasetError(f"data root '{root}' holds a class folder named '{ALL_CLASSES}', which collides with "
                           f"--category {ALL_CLASSES} (every class, one model): rename that folder")
    if len(classes) < 2:
        raise DatasetError(f"data root '{root}' holds {len(classes)} class(es) ({', '.join(classes) or 'none'}); "
                           f"--category {ALL_CLASSES} expects at least two class folders")
    return sorted(classes)


def concat_classes(classes: Sequence[str],
                   split: Callable[[str], tuple[Dataset, Dataset]]) -> tuple[ConcatDataset, ConcatDataset]:
    """(training union, validation union) of ``split(c)`` = (train, val) of each class, in ``classes`` order."""
    parts = [split(c) for c in classes]
    return ConcatDataset([p[0] for p in parts]), ConcatDataset([p[1] for p in parts])


def class_of_items(dataset: Dataset) -> list[int]:
    """The class index (position in the ``ConcatDataset``) of every item of ``dataset``: a ``ConcatDataset`` of
    the classes, or a ``Subset`` of one (e.g. after ``max_train_images``).

    Raises:
        DatasetError: ``dataset`` is neither.
    """
    if isinstance(dataset, Subset):
        inner = class_of_items(dataset.dataset)
        return [inner[i] for i in dataset.indices]
    if not isinstance(dataset, ConcatDataset):
        raise DatasetError(f"a unified training set must be a ConcatDataset of its classes; got {type(dataset).__name__}")
    return [k for k, part in enumerate(dataset.datasets) for _ in range(len(part))]  # type: ignore[arg-type]


def class_weights(dataset: Dataset) -> torch.Tensor:
    """Sampling weight of each item, 1 / (images of its class), float64 [len(dataset)]: with a
    ``WeightedRandomSampler`` every class is drawn equally often in expectation (a class of 60 images is not
    drowned by one of 700)."""
    classes = torch.tensor(class_of_items(dataset))
    counts = torch.bincount(classes).double()
    return 1.0 / counts[classes]


def link_classes(folders: dict[str, str | Path], root: str | Path) -> Path:
    """Gather class folders that sit in separate data roots into one multi-class root of symbolic links,
    ``root/<name>`` -> ``folders[name]`` (each an MVTec-layout class folder), and return ``root``. A link that
    is already there and points to the same folder is kept.

    Raises:
        DatasetError: a class folder is missing, or ``root/<name>`` exists and is something else.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, folder in folders.items():
        folder, link = Path(folder).resolve(), root / name
        if not folder.is_dir():
            raise DatasetError(f"class folder '{folder}' does not exist (expected <class>/train/good)")
        if link.is_symlink() and link.resolve() == folder:
            continue
        if link.exists() or link.is_symlink():
            raise DatasetError(f"'{link}' already exists and is not a link to '{folder}': choose another root")
        link.symlink_to(folder, target_is_directory=True)
    return root
