"""``Detector``: the one path from a trained model to a decision, shaped like scikit-learn's outlier
detectors (``fit_threshold`` then ``score`` / ``predict``).

A detector holds a model, the smoothing sigma of its anomaly maps, one precision and a threshold:

- anomaly map (eq. 6, or the run's score function "ssim" / "msgms", + the Gaussian smoothing of
  sec. 4.3) and anomaly score (eq. 7), see :mod:`anovit.scoring`;
- precision: the model runs under bf16 autocast or not, decided once when the detector is built;
  maps and scores are float32 either way, and the threshold fitted by the same detector comes from
  scores of that same precision;
- decision: an image (or pixel) is anomalous when its score is ``>=`` the threshold
  (:func:`is_anomalous`), the comparison the metrics' ROC curves use;
- threshold rule (:meth:`Detector.fit_threshold`): the smallest float32 above every anomaly score of
  the normal validation images, so no normal validation image is called anomalous and any image
  scoring above all of them is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from . import checkpoint as ckpt
from .errors import AnovitError
from .items import ImageBatch
from .runtime import autocast, resolve_device, use_bf16
from .scoring import DEFAULT_SCORE, DEFAULT_SIGMA, anomaly_maps, check_score, check_sigma

Progress = Callable[[int, int], None]  # (images done, images in all)
SCORE_BATCH_SIZE = 16  # images per forward pass when scoring a dataset or a list of files


def is_anomalous(scores: Any, threshold: float) -> Any:
    """The decision rule, for anomaly scores or anomaly-map pixels alike: ``scores >= threshold``
    (tensor, array or number in, booleans of the same shape out)."""
    return scores >= threshold


def decision(score: float, threshold: float | None) -> str:
    """ "anomalous" when :func:`is_anomalous` (score >= threshold), else "normal"; AnovitError without a threshold."""
    if threshold is None:
        raise AnovitError("no threshold to decide at: fit the detector on validation images or set one")
    return "anomalous" if is_anomalous(score, threshold) else "normal"


def threshold_above(scores: Any) -> float:
    """The smallest float32 above every one of ``scores``: under :func:`is_anomalous` it flags none of them."""
    values = np.asarray(scores, dtype=np.float32)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"a threshold needs at least one finite score; got {values.size} score(s)")
    return float(np.nextafter(values.max(), np.float32(np.inf)))


class Detector:
    """A model, its sigma, its score function, its precision and a threshold; ``score_maps`` / ``score`` /
    ``predict`` images. ``score_function``: "l2" (eq. 6), "ssim" or "msgms" (:func:`anovit.scoring.error_map`).

    ``images`` are float tensors (B, C, H, W) in [0, 1] at the model's ``image_size``; results are
    CPU tensors. ``bf16=None`` means bf16 autocast where the model's device supports it (see
    :func:`anovit.runtime.use_bf16`; True on a device without it is a ValueError).
    """

    def __init__(self, model: nn.Module, *, sigma: float = DEFAULT_SIGMA, threshold: float | None = None,
                 bf16: bool | None = None, score_function: str = DEFAULT_SCORE) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.sigma = check_sigma(sigma)
        self.score_function = check_score(score_function)
        self.bf16 = use_bf16(self.device, bf16)
        self.threshold = threshold
        self.validation_scores_: np.ndarray | None = None  # set by fit_threshold

    @classmethod
    def from_run(cls, run_dir: Path | str, *, sigma: float | None = None, threshold: float | None = None,
                 bf16: bool | None = None, device: str = "auto", score_function: str | None = None) -> Self:
        """The detector of a run folder's model (see :func:`anovit.checkpoint.load_model`); ``sigma``
        None: the run's own, stored in its training.json (:func:`anovit.runs.run_sigma`); ``score_function``
        None: the run's (:func:`anovit.runs.run_score`), another one re-scores the run without retraining."""
        from .runs import run_score, run_sigma

        sigma = run_sigma(Path(run_dir)) if sigma is None else sigma
        score_function = run_score(Path(run_dir)) if score_function is None else score_function
        return cls(ckpt.load_model(Path(run_dir), resolve_device(device)), sigma=sigma, threshold=threshold, bf16=bf16,
                   score_function=score_function)

    @property
    def image_size(self) -> int:
        """Side in pixels of the images the model takes."""
        return int(self.model.config.image_size)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """The model's reconstruction (B, C, H, W), float32, on the model's device."""
        images = images.to(self.device)
        with autocast(self.device, self.bf16):
            return self.model(images).float()

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, C, H, W), anomaly maps (B, H, W), anomaly scores (B,)) from one forward pass."""
        images = images.to(self.device)
        recon = self.reconstruct(images)
        maps, scores = anomaly_maps(images, recon, self.sigma, self.score_function)
        return recon.cpu(), maps.cpu(), scores.cpu()

    def score_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Anomaly maps (B, H, W): the score function's error map (l2: squared error averaged over
        channels), Gaussian-smoothed."""
        return self.outputs(images)[1]

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Anomaly scores (B,): the maximum of each anomaly map."""
        return self.outputs(images)[2]

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Decisions (B,) bool: True where the image is anomalous (:func:`is_anomalous` at the threshold);
        AnovitError before a threshold is fitted or set."""
        if self.threshold is None:
            raise AnovitError("this Detector has no threshold yet: call fit_threshold(validation images) or set one")
        return is_anomalous(self.score(images), self.threshold)

    def score_batch(self, batch: ImageBatch) -> ImageBatch:
        """``batch`` with its reconstruction, anomaly maps and anomaly scores filled in."""
        return batch.scored(*self.outputs(batch.image))

    def iter_scored(self, dataset: Dataset, batch_size: int = SCORE_BATCH_SIZE, progress: Progress | None = None) -> Iterator[ImageBatch]:
        """Score a dataset in order, batch by batch; ``progress(done, total)`` after each batch."""
        done = 0
        for collated in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            batch = self.score_batch(ImageBatch.from_collated(collated))
            done += len(batch)
            if progress is not None:
                progress(done, len(dataset))
            yield batch

    def fit_threshold(self, validation: Dataset | torch.Tensor, batch_size: int = SCORE_BATCH_SIZE,
                      progress: Progress | None = None) -> Self:
        """Set ``threshold`` from normal validation images (a dataset, or a tensor (B, C, H, W)): the
        smallest float32 above all their anomaly scores (:func:`threshold_above`); keeps the scores
        in ``validation_scores_``. Returns self."""
        if isinstance(validation, torch.Tensor):
            scores = self.score(validation)
        else:
            batches = [b.pred_score for b in self.iter_scored(validation, batch_size, progress)]
            scores = torch.cat(batches) if batches else torch.empty(0)
        self.validation_scores_ = scores.numpy()
        self.threshold = threshold_above(self.validation_scores_)
        return self

    # Hugging Face conventions (as in transformers, timm, diffusers); the files are anovit.pretrained's.
    source_dir: Path | None = None  # the folder from_pretrained loaded; save_pretrained copies its scoring files

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path, *, revision: str | None = None, bf16: bool | None = None,
                        device: str = "auto") -> Self:
        """The detector saved in a run folder (from ``train``), a folder from :meth:`save_pretrained`, or a Hub
        repo ``ORG/NAME[@revision]``, with its sigma, score function, precision and threshold (a run folder
        without detector.json: the run's sigma and score function, no threshold).

        Safetensors only, the config checked strictly against the weights, no encoder weights fetched.
        Raises CheckpointError for a folder without a checkpoint or an invalid repo id, and OfflineError
        (one sentence) for a Hub id that is neither reachable nor cached.
        """
        from .pretrained import load_folder, settings_of

        folder = load_folder(path_or_repo_id, revision)
        settings = settings_of(folder, device)
        if bf16 is not None:
            settings["bf16"] = bf16
        detector = cls(ckpt.load_model(folder, resolve_device(device)), **settings)
        detector.source_dir = folder
        return detector

    def save_pretrained(self, folder: str | Path) -> Path:
        """Save into ``folder`` what :meth:`from_pretrained` needs to score exactly as this detector does
        (the source folder's scoring files, and detector.json); return the folder."""
        from .pretrained import save_folder

        return save_folder(self, folder)

    def push_to_hub(self, repo_id: str, *, private: bool = False, license: str = "other",
                    commit_message: str | None = None, token: str | None = None) -> str:
        """Publish this detector as the Hub model repo ``repo_id`` (created if needed, with a model card and no
        local paths; see :func:`anovit.hub.push`); the commit's URL. OfflineError without the Hub."""
        from .pretrained import push_detector

        return push_detector(self, repo_id, private=private, license=license, commit_message=commit_message,
                             token=token)
