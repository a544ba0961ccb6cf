"""Typed batches of images and what a detector adds to them (after anomalib's ``ImageBatch``).

A dataset item is a dict (``image``, ``mask``, ``label``, ``defect_type``, ``path``; see
:mod:`anovit.data`); a DataLoader collates those into a dict of batched values, and
:meth:`ImageBatch.from_collated` gives that dict its names and shapes. A
:class:`~anovit.scoring.detector.Detector` fills in ``reconstruction``, ``anomaly_map`` and ``pred_score``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch


@dataclass(frozen=True)
class ImageBatch:
    """B images, their ground truth and, once scored, the detector's outputs.

    image: float (B, C, H, W) in [0, 1]; gt_mask: bool (B, H, W), True on anomalous pixels;
    gt_label: long (B,), 1 anomalous, 0 normal; image_path, defect_type: B strings ("good" = normal);
    reconstruction: float32 (B, C, H, W); anomaly_map: float32 (B, H, W), the smoothed squared error
    (eq. 6); pred_score: float32 (B,), the anomaly score (eq. 7, the map's maximum).
    """

    image: torch.Tensor
    gt_mask: torch.Tensor
    gt_label: torch.Tensor
    image_path: list[str]
    defect_type: list[str]
    reconstruction: torch.Tensor | None = None
    anomaly_map: torch.Tensor | None = None
    pred_score: torch.Tensor | None = None

    def __post_init__(self) -> None:
        b = self.image.shape[0]
        if self.image.dim() != 4:
            raise ValueError(f"ImageBatch.image must be (B, C, H, W); got {tuple(self.image.shape)}")
        if tuple(self.gt_mask.shape) != (b, *self.image.shape[-2:]) or len(self.gt_label) != b:
            raise ValueError(f"ImageBatch of {b} images has gt_mask {tuple(self.gt_mask.shape)} and "
                             f"{len(self.gt_label)} gt_label(s); expected ({b}, H, W) and {b}")
        if len(self.image_path) != b or len(self.defect_type) != b:
            raise ValueError(f"ImageBatch of {b} images has {len(self.image_path)} image_path(s) and "
                             f"{len(self.defect_type)} defect_type(s)")

    @classmethod
    def from_collated(cls, batch: dict[str, Any]) -> ImageBatch:
        """From a DataLoader's batch of dataset items (mask (B, 1, H, W) in {0, 1} -> gt_mask (B, H, W) bool)."""
        return cls(image=batch["image"], gt_mask=batch["mask"][:, 0] > 0.5, gt_label=torch.as_tensor(batch["label"]),
                   image_path=[str(p) for p in batch["path"]], defect_type=list(batch["defect_type"]))

    def __len__(self) -> int:
        return self.image.shape[0]

    def scored(self, reconstruction: torch.Tensor, anomaly_map: torch.Tensor, pred_score: torch.Tensor) -> ImageBatch:
        """A copy with the detector's outputs filled in."""
        return replace(self, reconstruction=reconstruction, anomaly_map=anomaly_map, pred_score=pred_score)
