"""A dataset over a list of image files with optional masks: the loading shared by the folder datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .imageio import read_mask, read_rgb, resize_image, resize_mask
from ..utils.errors import DatasetError

# (image path, defect type, mask path, or several whose union is the mask (MVTec LOCO AD), or None: no defect pixels)
Sample = tuple[Path, str, Path | tuple[Path, ...] | None]


class SampleListDataset(Dataset):
    """Items (anovit item contract) for `samples`; defect type "good" means normal (label 0).

    Images are decoded on first access (upright, see anovit.data.imageio), resized to `image_size`
    and cached in memory as uint8; a sample without mask gets an all-zero mask, one with several the
    union of their defect pixels. `has_masks` says whether the split has pixel ground truth at all
    (False: localization is unavailable).
    """

    def __init__(self, samples: list[Sample], image_size: int,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None, *, has_masks: bool = True) -> None:
        if image_size < 1:
            raise DatasetError(f"image_size {image_size} is not valid (expected a positive number of pixels)")
        self.samples = samples
        self.image_size = image_size
        self.transform = transform
        self.has_masks = has_masks
        self.labels: list[int] = [int(defect != "good") for _, defect, _ in samples]
        self.defect_types: list[str] = sorted({defect for _, defect, _ in samples})
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        path, _, mask_path = self.samples[index]
        rgb = read_rgb(path)
        image = resize_image(torch.from_numpy(rgb).permute(2, 0, 1), self.image_size)
        if mask_path is None:
            return image, None
        mask = np.zeros(rgb.shape[:2], bool)
        for one in (mask_path if isinstance(mask_path, tuple) else (mask_path,)):
            marked = read_mask(one)
            if marked.shape != rgb.shape[:2]:
                (mh, mw), (ih, iw) = marked.shape, rgb.shape[:2]
                raise DatasetError(f"mask '{one}' is {mw}x{mh} px but its image '{path}' is {iw}x{ih} px "
                                   f"(expected equal sizes)")
            mask |= marked
        return image, resize_mask(torch.from_numpy(mask), self.image_size)

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]
        if index not in self._cache:
            self._cache[index] = self._load(index)
        image_u8, mask = self._cache[index]
        image = image_u8.float().div_(255)
        if self.transform is not None:
            image = self.transform(image)
        size = self.image_size
        path, defect, _ = self.samples[index]
        return {
            "image": image,
            "mask": torch.zeros(1, size, size) if mask is None else mask.float(),
            "label": self.labels[index],
            "defect_type": defect,
            "path": str(path),
        }


def split_class_folder(root: str | Path, category: str, split: str, splits: dict[str, str], layout: str,
                       list_classes: Callable[[Path], list[str]]) -> Path:
    """``root/category`` of a layout whose classes hold train/validation/test folders (MVTec 3D-AD, MVTec
    LOCO AD), after checking ``split`` against ``splits``; DatasetError naming the split or the missing
    class folder (with the classes ``list_classes(root)`` finds)."""
    if split not in splits:
        raise DatasetError(f"split '{split}' is not valid for {layout} (expected one of {', '.join(splits)})")
    folder = Path(root) / category
    if not folder.is_dir():
        raise DatasetError(f"class folder '{folder}' not found; available classes in '{Path(root)}': "
                           f"{', '.join(list_classes(Path(root))) or 'none'}")
    return folder
