"""Scoring single images with a run, as the app's Inspect page and ``anovit score`` do: resize an RGB
image to the model's size, reconstruct it, anomaly map (eq. 6 + smoothing) and anomaly score (eq. 7),
and the decision at the validation threshold (the largest anomaly score among the normal validation
images held out during training, so an image is anomalous when it scores above every one of them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from . import checkpoint as ckpt
from .data.imageio import resize_image
from .errors import CheckpointError
from .evaluate import predict, reconstruct
from .scoring import DEFAULT_SIGMA, anomaly_maps


def prepare(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, S, S) in [0, 1], resized as the datasets resize."""
    return resize_image(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1), image_size)[None].float() / 255.0


def score_batch(
    model: nn.Module, images: torch.Tensor, sigma: float = DEFAULT_SIGMA
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reconstruction (B, C, S, S), anomaly maps (B, S, S) and anomaly scores (B,) of prepared images, in float32."""
    recon = reconstruct(model, images)
    maps, scores = anomaly_maps(images, recon, sigma)
    return recon, maps, scores


def decision(score: float, threshold: float) -> str:
    """ "anomalous" when the score exceeds the threshold, else "normal"."""
    return "anomalous" if score > threshold else "normal"


def validation_threshold(run_dir: Path, sigma: float = DEFAULT_SIGMA, batch_size: int = 16) -> tuple[float, int]:
    """(threshold, number of validation images): the largest float32 anomaly score among the normal
    validation images of the run's training (its training.json: dataset, class, folder, seed, fraction).

    Raises CheckpointError when the run has no training.json (e.g. pulled from the Hub): then the
    images its threshold should come from are unknown and the caller must be given a threshold.
    """
    from .data import train_val_datasets

    run_dir = Path(run_dir)
    if not (run_dir / "training.json").is_file():
        raise CheckpointError(
            f"{run_dir} has no training.json, so its validation images (and threshold) are unknown; "
            "pass --threshold"
        )
    training = ckpt.read_json(run_dir / "training.json")
    model = ckpt.load_model(run_dir)
    _, val_set = train_val_datasets(
        training["dataset"], category=training["category"], image_size=model.config.image_size,
        root=training.get("data_root"), val_fraction=float(training.get("val_fraction", 0.2)),
        seed=int(training.get("seed", 0)),
    )
    scores = [batch["score"] for batch in predict(model, DataLoader(val_set, batch_size=batch_size), sigma=sigma)]
    return float(torch.cat(scores).max()), len(val_set)
