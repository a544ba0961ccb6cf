"""A dataset over a list of image files with optional masks: the loading shared by the folder datasets."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .image_cache import Entry, cache_dir, cache_key, load_entry, save_entry
from .imageio import MASK_RULES, read_mask, read_rgb, resize_image, resize_mask, to_unit
from ..utils.errors import DatasetError

# (image path, defect type, mask path, or several whose union is the mask (MVTec LOCO AD), or None: no defect pixels)
Sample = tuple[Path, str, Path | tuple[Path, ...] | None]
DECODE_THREADS = min(4, os.cpu_count() or 1)  # a batch's uncached images are decoded this many at a time


class SampleListDataset(Dataset):
    """Items (anovit item contract) for `samples`; defect type "good" means normal (label 0).

    Images are decoded on first access (upright, see anovit.data.imageio), resized to `image_size`
    and cached as uint8, in memory and on disk (anovit.data.image_cache: a new dataset over the same
    files, in this process or another, reads them from there); a batch's images not cached yet are
    decoded in DECODE_THREADS threads (Pillow and zlib release the GIL). A sample without mask gets an
    all-zero mask, one with several the union of their defect pixels, read by the class's
    ``mask_rule`` (anovit.data.imageio.MASK_RULES). `has_masks` says whether the split has pixel ground
    truth at all (False: localization is unavailable).
    """

    mask_rule: str = MASK_RULES[0]

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
        self._cache: dict[int, Entry] = {}
        self._disk = cache_dir()

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> Entry:
        """The image and mask of sample ``index``: from the disk cache, else decoded (and stored there)."""
        path, _, mask_path = self.samples[index]
        masks = () if mask_path is None else mask_path if isinstance(mask_path, tuple) else (mask_path,)
        key = cache_key((path, *masks), self.image_size, self.mask_rule) if self._disk is not None else None
        entry = load_entry(self._disk, key) if key is not None else None
        if entry is None:
            entry = self._decode(path, masks)
            if key is not None:
                save_entry(self._disk, key, entry)
        return entry

    def _decode(self, path: Path, masks: tuple[Path, ...]) -> Entry:
        rgb = read_rgb(path)
        image = resize_image(torch.from_numpy(rgb).permute(2, 0, 1), self.image_size)
        if not masks:
            return image, None
        mask = np.zeros(rgb.shape[:2], bool)
        for one in masks:
            marked = read_mask(one, self.mask_rule)
            if marked.shape != rgb.shape[:2]:
                (mh, mw), (ih, iw) = marked.shape, rgb.shape[:2]
                raise DatasetError(f"mask '{one}' is {mw}x{mh} px but its image '{path}' is {iw}x{ih} px "
                                   f"(expected equal sizes)")
            mask |= marked
        return image, resize_mask(torch.from_numpy(mask), self.image_size)

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """The items of a batch (the DataLoader's batched fetch), their uncached images decoded in parallel."""
        missing = [i for i in dict.fromkeys(range(len(self))[i] for i in indices) if i not in self._cache]
        if len(missing) > 1 and DECODE_THREADS > 1:
            with ThreadPoolExecutor(min(DECODE_THREADS, len(missing))) as pool:
                self._cache.update(zip(missing, pool.map(self._load, missing)))
        return [self[i] for i in indices]

    def __getitem__(self, index: int) -> dict:
        index = range(len(self))[index]
        if index not in self._cache:
            self._cache[index] = self._load(index)
        image_u8, mask = self._cache[index]
        image = to_unit(image_u8)
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
