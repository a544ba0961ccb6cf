"""Datasets in the MVTec AD folder layout.

    root/<category>/train/good/*                       normal training images
    root/<category>/test/<defect_type>/*               test images ("good" = normal)
    root/<category>/ground_truth/<defect_type>/<stem>_mask.png   masks of anomalous test images
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from anovit.data.imageio import IMAGE_EXTENSIONS, list_images
from anovit.data.samples import Sample, SampleListDataset
from anovit.errors import DatasetError

_EXPECTED_FILES = "/".join(IMAGE_EXTENSIONS)


def list_categories(root: str | Path) -> list[str]:
    """Sorted names of the subfolders of `root` that contain train/good."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<category>/train/good)")
    return sorted(p.name for p in root.iterdir() if (p / "train" / "good").is_dir())


def _category_dir(root: Path, category: str) -> Path:
    available = list_categories(root)
    folder = root / category
    if not folder.is_dir():
        raise DatasetError(f"category folder '{folder}' not found; available categories in '{root}': "
                           f"{', '.join(available) or 'none'}")
    return folder


def _images_in(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"folder '{folder}' is missing (expected {what})")
    images = list_images(folder)
    if not images:
        raise DatasetError(f"folder '{folder}' holds no images (expected {what} as {_EXPECTED_FILES} files)")
    return images


def mask_index(folder: Path) -> dict[str, Path]:
    """Stem -> mask path in `folder`, preferring extensions in IMAGE_EXTENSIONS order."""
    index: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(list_images(folder), key=lambda p: IMAGE_EXTENSIONS.index(p.suffix.lower()), reverse=True):
            index[path.stem] = path
    return index


def _scan_train(folder: Path) -> list[Sample]:
    return [(p, "good", None) for p in _images_in(folder / "train" / "good", "normal training images")]


def _scan_test(folder: Path) -> list[Sample]:
    test = folder / "test"
    if not test.is_dir():
        raise DatasetError(f"folder '{test}' is missing (expected test/<defect_type>/ image folders)")
    types = sorted(p.name for p in test.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not types:
        raise DatasetError(f"folder '{test}' has no subfolders (expected test/good and test/<defect_type>)")
    samples: list[Sample] = []
    for defect in types:
        images = _images_in(test / defect, f"test images of type '{defect}'")
        if defect == "good":
            samples += [(p, defect, None) for p in images]
            continue
        gt = folder / "ground_truth" / defect
        masks = mask_index(gt)
        for path in images:
            mask = masks.get(f"{path.stem}_mask")
            if mask is None:
                raise DatasetError(f"mask missing for anomalous test image '{path}': expected "
                                   f"'{gt / (path.stem + '_mask.png')}'")
            samples.append((path, defect, mask))
    return samples


class MVTecLayoutDataset(SampleListDataset):
    """One split of one category in the MVTec AD layout; items follow the anovit item contract.

    Structure (folders, listings, mask existence) is checked here; images are decoded on first
    access, resized to `image_size` and cached in memory as uint8.
    """

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"split '{split}' is not valid for a layout dataset (expected 'train' or 'test')")
        self.root = Path(root)
        self.category = category
        self.split = split
        folder = _category_dir(self.root, category)
        super().__init__(_scan_train(folder) if split == "train" else _scan_test(folder), image_size, transform)
