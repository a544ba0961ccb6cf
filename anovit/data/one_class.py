"""One-class protocol over any labelled image set (digits, MNIST, CIFAR-10, ...).

train / val: the normal class's images of the train pool, split by `split_indices`;
test: every image of the test pool, label 1 for every class but the normal one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .imageio import resize_image, to_unit
from .splits import DEFAULT_VAL_FRACTION, split_indices
from ..utils.errors import DatasetError

Array = np.ndarray | torch.Tensor


def _as_images(images: Array, what: str) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) with C in {1, 3} -> uint8 tensor (N, C, H, W) (a view when possible)."""
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8 or t.ndim not in (3, 4) or (t.ndim == 4 and t.shape[-1] not in (1, 3)):
        raise DatasetError(f"{what} have dtype {t.dtype} and shape {tuple(t.shape)} "
                           f"(expected uint8 (N, H, W) or (N, H, W, C) with C = 1 or 3)")
    return t[:, None] if t.ndim == 3 else t.permute(0, 3, 1, 2)


def _as_labels(labels: Array, n: int, n_classes: int, what: str) -> np.ndarray:
    out = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(out) != n or (n and (out.min() < 0 or out.max() >= n_classes)):
        raise DatasetError(f"{what} have {len(out)} values in [{out.min(initial=0)}, {out.max(initial=0)}] "
                           f"(expected {n} labels in [0, {n_classes - 1}])")
    return out


class OneClassDataset(Dataset):
    """A view of some images of one pool; items follow the anovit item contract (masks all zero)."""

    has_masks = False  # image labels only: localization is unavailable

    def __init__(self, images: torch.Tensor, labels: np.ndarray, indices: Sequence[int], *, normal_class: int,
                 class_names: Sequence[str], image_size: int, path_prefix: str,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.images, self.pool_labels = images, labels
        self.indices = list(indices)
        self.normal_class, self.class_names = normal_class, list(class_names)
        self.image_size, self.path_prefix, self.transform = image_size, path_prefix, transform
        self.labels: list[int] = [int(labels[j] != normal_class) for j in self.indices]
        self.defect_types: list[str] = sorted({self._type(labels[j]) for j in self.indices})

    def _type(self, label: int) -> str:
        return "good" if label == self.normal_class else self.class_names[label]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        j = self.indices[index]
        image = to_unit(resize_image(self.images[j], self.image_size).expand(3, -1, -1))
        if self.transform is not None:
            image = self.transform(image)
        return {
            "image": image,
            "mask": torch.zeros(1, self.image_size, self.image_size),
            "label": self.labels[index],
            "defect_type": self._type(int(self.pool_labels[j])),
            "path": f"{self.path_prefix}/{j}",
        }


def one_class_split(train_images: Array, train_labels: Array, test_images: Array, test_labels: Array, *,
                    normal_class: int, class_names: Sequence[str], split: str, image_size: int,
                    val_fraction: float | int = DEFAULT_VAL_FRACTION, seed: int = 0, name: str = "data",
                    transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> OneClassDataset:
    """One split ("train", "val" or "test") of the one-class protocol; paths are "<name>/<pool>/<index>"."""
    if split not in ("train", "val", "test"):
        raise DatasetError(f"split '{split}' is not valid (expected 'train', 'val' or 'test')")
    if not 0 <= normal_class < len(class_names):
        raise DatasetError(f"normal class {normal_class} is not valid (expected 0..{len(class_names) - 1})")
    if image_size < 1:
        raise DatasetError(f"image_size {image_size} is not valid (expected a positive number of pixels)")
    pool = "test" if split == "test" else "train"
    images = _as_images(test_images if split == "test" else train_images, f"{name} {pool} images")
    labels = _as_labels(test_labels if split == "test" else train_labels, len(images), len(class_names),
                        f"{name} {pool} labels")
    if split == "test":
        indices = range(len(images))
    else:
        normal = np.flatnonzero(labels == normal_class)
        if len(normal) == 0:
            raise DatasetError(f"{name} train pool has no images of the normal class "
                               f"'{class_names[normal_class]}' (expected at least two)")
        train_idx, val_idx = split_indices(len(normal), val_fraction, seed)
        indices = normal[train_idx if split == "train" else val_idx].tolist()
    return OneClassDataset(images, labels, indices, normal_class=normal_class, class_names=class_names,
                           image_size=image_size, path_prefix=f"{name}/{pool}", transform=transform)
