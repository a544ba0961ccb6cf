"""MVTec 3D-AD (Bergmann et al., VISAPP 2022), its RGB images only.

    root/<class>/train/good/rgb/*.png                  normal training images
    root/<class>/validation/good/rgb/*.png             normal validation images (absent from some copies)
    root/<class>/test/<type>/rgb/*.png                 test images ("good" = normal)
    root/<class>/test/<type>/gt/*.png                  masks, named as their image (0/255)

The ``xyz/`` point clouds beside ``rgb/`` are ignored. Where ``validation/good/rgb`` exists it is the
validation split (thresholds, best epoch); without it, part of train/good is held out as for MVTec AD
and the trainer says so in a log line (``data check`` notes it too).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .imageio import list_images, list_subfolders
from .samples import Sample, SampleListDataset, split_class_folder
from ..utils.errors import DatasetError

HOMEPAGE = "https://www.mvtec.com/company/research/datasets/mvtec-3d-ad"
LICENCE = "CC BY-NC-SA 4.0 (non-commercial use only)"
MVTEC3D_CLASSES = ("bagel", "cable_gland", "carrot", "cookie", "dowel", "foam", "peach", "potato", "rope", "tire")
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}


def is_mvtec3d_category(folder: Path) -> bool:
    """Whether `folder` is a class folder of MVTec 3D-AD (train/good/rgb or test/good/rgb)."""
    return any((Path(folder) / split / "good" / "rgb").is_dir() for split in ("train", "test"))


def list_mvtec3d_classes(root: str | Path) -> list[str]:
    """Sorted names of the class folders under `root` (those holding train/good/rgb)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<class>/train/good/rgb)")
    return [p.name for p in list_subfolders(root) if (p / "train" / "good" / "rgb").is_dir()]


def has_validation(folder: Path) -> bool:
    """Whether a class folder has its own validation split (validation/good/rgb)."""
    return (Path(folder) / "validation" / "good" / "rgb").is_dir()


def _rgb_images(folder: Path, what: str) -> list[Path]:
    rgb = folder / "rgb"
    images = list_images(rgb) if rgb.is_dir() else []
    if not images:
        raise DatasetError(f"folder '{rgb}' holds no images (expected {what} as PNG files)")
    return images


def scan_mvtec3d(folder: Path, split: str) -> list[Sample]:
    """The samples of one split ("train", "val" or "test") of a class folder; masks from gt/ beside rgb/."""
    base = folder / SPLIT_FOLDERS[split]
    if split != "test":
        return [(p, "good", None) for p in _rgb_images(base / "good", f"the normal {split} images")]
    types = list_subfolders(base) if base.is_dir() else []
    if not types:
        raise DatasetError(f"folder '{base}' has no subfolders (expected test/good and test/<defect_type>, each "
                           f"with rgb/ and gt/)")
    samples: list[Sample] = []
    for sub in types:
        for image in _rgb_images(sub, f"test images of type '{sub.name}'"):
            mask = sub / "gt" / image.name
            if sub.name != "good" and not mask.is_file():
                raise DatasetError(f"mask missing for anomalous test image '{image}': expected '{mask}'")
            samples.append((image, sub.name, None if sub.name == "good" else mask))
    return samples


class MVTec3DDataset(SampleListDataset):
    """One split ("train", "val" or "test") of one MVTec 3D-AD class (RGB); anovit item contract.

    "val" needs the class's own validation/ folder (see :func:`has_validation`).
    """

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        folder = split_class_folder(root, category, split, SPLIT_FOLDERS, "MVTec 3D-AD", list_mvtec3d_classes)
        self.root, self.category, self.split = Path(root), category, split
        super().__init__(scan_mvtec3d(folder, split), image_size, transform)
