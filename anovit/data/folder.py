"""A plain folder of good and bad images, for users who have image labels but no masks.

    root/<category>/good/*          normal images
    root/<category>/<any other>/*   anomalous images; the subfolder name is the defect type

A fixed share of the good images (TEST_FRACTION, drawn with TEST_SEED so that it never depends on
the training seed) joins every anomalous image in the test split; the rest is the train split, of
which the trainer holds out a validation part. Masks are all zero and the dataset is registered
without masks, so evaluation reports detection metrics only and marks localization unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from anovit.data.imageio import IMAGE_EXTENSIONS, list_images
from anovit.data.samples import Sample, SampleListDataset
from anovit.data.splits import split_indices
from anovit.errors import DatasetError

TEST_FRACTION = 0.2
TEST_SEED = 0
MIN_GOOD = 3  # at least one image each for train, validation and test


def list_folder_categories(root: str | Path) -> list[str]:
    """Sorted names of the subfolders of `root` that contain good/."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<category>/good and <root>/<category>/<defect>)")
    return sorted(p.name for p in root.iterdir() if (p / "good").is_dir() and not p.name.startswith("."))


def scan_folder(folder: Path) -> tuple[list[Path], dict[str, list[Path]]]:
    """(good images, {defect type: images}) of one category folder, each sorted by name."""
    good_dir = folder / "good"
    if not good_dir.is_dir():
        raise DatasetError(f"folder '{good_dir}' is missing (expected the normal images of '{folder.name}')")
    good = list_images(good_dir)
    if len(good) < MIN_GOOD:
        raise DatasetError(f"folder '{good_dir}' holds {len(good)} images (expected at least {MIN_GOOD} "
                           f"{'/'.join(IMAGE_EXTENSIONS)} files: for training, validation and test)")
    bad = {d.name: list_images(d) for d in sorted(folder.iterdir())
           if d.is_dir() and d.name != "good" and not d.name.startswith(".")}
    return good, {k: v for k, v in bad.items() if v}


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
        good, bad = scan_folder(folder)
        train_idx, test_idx = split_indices(len(good), TEST_FRACTION, TEST_SEED)
        samples: list[Sample]
        if split == "train":
            samples = [(good[i], "good", None) for i in train_idx]
        else:
            samples = [(good[i], "good", None) for i in test_idx]
            samples += [(path, defect, None) for defect, paths in bad.items() for path in paths]
        super().__init__(samples, image_size, transform)
