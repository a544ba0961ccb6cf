"""MVTec LOCO AD (Bergmann et al., IJCV 2022): logical and structural anomalies, several masks per image.

    root/<class>/train/good/*.png                                 normal training images
    root/<class>/validation/good/*.png                            normal validation images
    root/<class>/test/{good,logical_anomalies,structural_anomalies}/*.png
    root/<class>/ground_truth/<type>/<image stem>/000.png, 001.png, ...   one mask per defect (0/255)

An image's mask is the union of the masks in its folder. The class's own validation/ split is used
for thresholds and the best epoch (``--val-fraction`` does not apply).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from .imageio import list_images, list_subfolders
from .samples import Sample, SampleListDataset, split_class_folder
from ..utils.errors import DatasetError

HOMEPAGE = "https://www.mvtec.com/company/research/datasets/mvtec-loco"
LICENCE = "CC BY-NC-SA 4.0 (non-commercial use only)"
LOCO_CLASSES = ("breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors")
SPLIT_FOLDERS = {"train": "train", "val": "validation", "test": "test"}


def is_loco_category(folder: Path) -> bool:
    """Whether `folder` is a class folder of MVTec LOCO AD (test/logical_anomalies beside train/good)."""
    return (Path(folder) / "test" / "logical_anomalies").is_dir() and (Path(folder) / "train" / "good").is_dir()


def list_loco_classes(root: str | Path) -> list[str]:
    """Sorted names of the class folders under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset root '{root}' does not exist or is not a folder "
                           f"(expected <root>/<class>/train/good and test/logical_anomalies)")
    return [p.name for p in list_subfolders(root) if is_loco_category(p)]


def masks_of(folder: Path, defect: str, image: Path) -> tuple[Path, ...]:
    """The masks of anomalous `image`: the images in ground_truth/<defect>/<image stem>/ (may be empty)."""
    masks = folder / "ground_truth" / defect / image.stem
    return tuple(list_images(masks)) if masks.is_dir() else ()


def scan_loco(folder: Path, split: str) -> list[Sample]:
    """The samples of one split ("train", "val" or "test") of a class folder."""
    base = folder / SPLIT_FOLDERS[split]
    types = list_subfolders(base) if base.is_dir() else []
    if split != "test":
        types = [t for t in types if t.name == "good"]
    if not types:
        raise DatasetError(f"folder '{base}' has no image folders (expected {SPLIT_FOLDERS[split]}/good"
                           f"{' and the anomaly types' if split == 'test' else ''})")
    samples: list[Sample] = []
    for sub in types:
        images = list_images(sub)
        if not images:
            raise DatasetError(f"folder '{sub}' holds no images (expected PNG files)")
        for image in images:
            masks = () if sub.name == "good" else masks_of(folder, sub.name, image)
            if sub.name != "good" and not masks:
                raise DatasetError(f"mask missing for anomalous test image '{image}': expected masks in "
                                   f"'{folder / 'ground_truth' / sub.name / image.stem}'")
            samples.append((image, sub.name, masks or None))
    return samples


class MVTecLOCODataset(SampleListDataset):
    """One split ("train", "val" or "test") of one MVTec LOCO AD class; anovit item contract."""

    def __init__(self, root: str | Path, category: str, split: str = "train", image_size: int = 128,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        folder = split_class_folder(root, category, split, SPLIT_FOLDERS, "MVTec LOCO AD", list_loco_classes)
        self.root, self.category, self.split = Path(root), category, split
        super().__init__(scan_loco(folder, split), image_size, transform)
