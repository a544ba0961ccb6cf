"""Datasets in the MVTec AD folder layout.

    root/<category>/train/good/*                       normal training images
    root/<category>/test/<defect_type>/*               test images ("good" = normal)
    root/<category>/ground_truth/<defect_type>/<stem>_mask.png   masks of anomalous test images

Without any ground_truth/ folder a category has image labels only: it trains and evaluates with
detection metrics, and localization (pixel AUROC, AUPRO) is marked unavailable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .imageio import IMAGE_EXTENSIONS, list_dir, list_images, list_subfolders
from .samples import Sample, SampleListDataset
from ..utils.errors import DatasetError

_EXPECTED_FILES = "/".join(IMAGE_EXTENSIONS)


def list_categories(root: str | Path) -> list[str]:
    """Sorted names of the subfolders of `root` that contain train/good."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<category>/train/good)")
    return [p.name for p in list_dir(root) if os.path.isdir(p / "train" / "good")]


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


def mask_name_hint(gt: Path, image: Path) -> str:
    """Where the mask of anomalous `image` is expected, and a mask there under the wrong name."""
    hint = f"expected '{gt / (image.stem + '_mask.png')}'"
    misnamed = [p.name for p in (list_images(gt) if gt.is_dir() else []) if p.stem == image.stem]
    return hint + (f"; '{misnamed[0]}' there lacks the '_mask' suffix" if misnamed else "")


def _scan_test(folder: Path, with_masks: bool = True) -> list[Sample]:
    test = folder / "test"
    if not test.is_dir():
        raise DatasetError(f"folder '{test}' is missing (expected test/<defect_type>/ image folders)")
    types = [p.name for p in list_subfolders(test)]
    if not types:
        raise DatasetError(f"folder '{test}' has no subfolders (expected test/good and test/<defect_type>)")
    with_masks = with_masks and has_ground_truth(folder)
    samples: list[Sample] = []
    for defect in types:
        images = _images_in(test / defect, f"test images of type '{defect}'")
        if defect == "good" or not with_masks:
            samples += [(p, defect, None) for p in images]
            continue
        gt = folder / "ground_truth" / defect
        masks = mask_index(gt)
        for path in images:
            mask = masks.get(f"{path.stem}_mask")
            if mask is None:
                raise DatasetError(f"mask missing for anomalous test image '{path}': {mask_name_hint(gt, path)}")
            samples.append((path, defect, mask))
    return samples


def has_ground_truth(folder: Path) -> bool:
    """Whether a category folder has masks at all (ground_truth/); without, it has image labels only."""
    return (folder / "ground_truth").is_dir()


def scan_layout(folder: Path, split: str, with_masks: bool = True) -> list[Sample]:
    """The samples of one split ("train" or "test") of a category folder in the MVTec AD layout."""
    return _scan_train(folder) if split == "train" else _scan_test(folder, with_masks)


class MVTecLayoutDataset(SampleListDataset):
    """One split of one category in the MVTec AD layout; items follow the anovit item contract.

    Structure (folders, listings, mask existence) is checked here; images are decoded on first
    access, resized to `image_size` and cached in memory as uint8. `has_masks` is False for a
    category without ground_truth/ (image labels only).
    """

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"split '{split}' is not valid for a layout dataset (expected 'train' or 'test')")
        self.root = Path(root)
        self.category = category
        self.split = split
        folder = _category_dir(self.root, category)
        super().__init__(scan_layout(folder, split), image_size, transform,
                         has_masks=has_ground_truth(folder))
