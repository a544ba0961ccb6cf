"""Scoring images with a run outside the app, as ``anovit score`` and ``anovit export`` do: resize an
RGB image to the model's size, and build the run's :class:`~anovit.detector.Detector` with the
threshold it fits on the normal validation images held out during training (see
:meth:`~anovit.detector.Detector.fit_threshold` for the rule, :func:`~anovit.detector.is_anomalous`
for the decision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .data import train_val_datasets
from .data.imageio import resize_image
from .data.splits import DEFAULT_VAL_FRACTION
from .detector import SCORE_BATCH_SIZE, Detector
from .errors import CheckpointError


def prepare(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, S, S) in [0, 1], resized as the datasets resize."""
    return resize_image(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1), image_size)[None].float() / 255.0


def run_detector(run_dir: Path, sigma: float | None = None, threshold: float | None = None, *,
                 bf16: bool | None = None, batch_size: int = SCORE_BATCH_SIZE, device: str = "auto") -> Detector:
    """The run's detector (``bf16`` None: in the run's recorded precision, see
    :meth:`~anovit.detector.Detector.from_run`; ``sigma`` None: the run's own) with ``threshold``, or, when None,
    the threshold fitted on the normal validation images of the run's training (its training.json:
    dataset, class, folder, seed, fraction); their number is ``len(detector.validation_scores_)``.

    Raises CheckpointError when a threshold must be fitted but the run has no training.json (e.g.
    pulled from the Hub): then its validation images are unknown and the caller must give one.
    """
    run_dir = Path(run_dir)
    detector = Detector.from_run(run_dir, sigma=sigma, threshold=threshold, bf16=bf16, device=device)
    if threshold is not None:
        return detector
    if not (run_dir / ckpt.TRAINING).is_file():
        raise CheckpointError(
            f"{run_dir} has no {ckpt.TRAINING}, so its validation images (and threshold) are unknown; "
            "pass --threshold"
        )
    training = ckpt.read_json(run_dir / ckpt.TRAINING)
    _, val_set = train_val_datasets(
        training["dataset"], category=training["category"], image_size=detector.image_size,
        root=training.get("data_root"), val_fraction=float(training.get("val_fraction", DEFAULT_VAL_FRACTION)),
        seed=int(training.get("seed", 0)),
    )
    return detector.fit_threshold(val_set, batch_size)
