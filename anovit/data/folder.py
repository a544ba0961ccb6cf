"""A plain folder of good and bad images, for users who have image labels but no masks.

    root/<category>/good/*          normal images
    root/<category>/<any other>/*   anomalous images; the subfolder name is the defect type

A fixed share of the good images (TEST_FRACTION, drawn with TEST_SEED so that it never depends on
the training seed) joins every anomalous image in the test split; the rest is the train split, of
which the trainer holds out a validation part. A category in the MVTec AD layout (train/good,
test/<type>) is read with its own train/test split and its masks, if any, ignored. Masks are all
zero and the dataset is registered without masks, so evaluation reports detection metrics only
and marks localization unavailable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .imageio import IMAGE_EXTENSIONS, list_images, list_subfolders
from .mvtec import scan_layout
from .samples import Sample, SampleListDataset
from .splits import split_indices
from ..utils.errors import DatasetError

TEST_FRACTION = 0.2
TEST_SEED = 0
MIN_GOOD = 3  # at least one image each for train, validation and test


def list_folder_categories(root: str | Path) -> list[str]:
    """Sorted names of the subfolders of `root` that contain good/ (or train/good: the MVTec AD layout)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<category>/good and <root>/<category>/<defect>)")
    return [p.name for p in list_subfolders(root) if os.path.isdir(p / "good") or os.path.isdir(p / "train" / "good")]


def scan_folder(folder: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """(good images, {defect type: images}) of one category folder, each sorted by name."""
    good_dir = folder / "good"
    if not good_dir.is_dir():
        raise DatasetError(f"folder '{good_dir}' is missing (expected the normal images of '{folder.name}')")
    good = list_images(good_dir)
    if len(good) < MIN_GOOD:
        raise DatasetError(f"folder '{good_dir}' holds {len(good)} images (expected at least {MIN_GOOD} "
                           f"{'/'.join(IMAGE_EXTENSIONS)} files: for training, validation and test)")
    bad = {d.name: list_images(d) for d in list_subfolders(folder) if d.name != "good"}
    return good, {k: v for k, v in bad.items() if v}


def _good_bad_split(folder: Path, split: str) -> list[Sample]:
    good, bad = scan_folder(folder)
    train_idx, test_idx = split_indices(len(good), TEST_FRACTION, TEST_SEED)
    if split == "train":
        return [(good[i], "good", None) for i in train_idx]
    return [(good[i], "good", None) for i in test_idx] + [(p, defect, None) for defect, ps in bad.items() for p in ps]


class ImageFolderDataset(SampleListDataset):
    """One split ("train" or "test") of one category of a good/bad image folder; masks all zero."""

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"split '{split}' is not valid for an image folder (expected 'train' or 'test')")
        self.root, self.category, self.split = Path(root), category, split
        folder = self.root / category
        if not folder.is_dir():
            raise DatasetError(f"category folder '{folder}' not found; available categories in '{self.root}': "
                               f"{', '.join(list_folder_categories(self.root)) or 'none'}")
        layout = (folder / "train" / "good").is_dir()
        samples = scan_layout(folder, split, with_masks=False) if layout else _good_bad_split(folder, split)
        super().__init__(samples, image_size, transform, has_masks=False)
