"""``Detector``: the one path from a trained model to a decision, shaped like scikit-learn's outlier
detectors (``fit_threshold`` then ``score`` / ``predict``).

A detector holds a model, the smoothing sigma of its anomaly maps, one precision and a threshold:

- anomaly map (eq. 6, or the run's score function "ssim" / "msgms" / "l2-ssim", + the Gaussian smoothing of
  sec. 4.3) and anomaly score (eq. 7), see :mod:`anovit.scoring.anomaly_map`;
- calibration (:class:`anovit.scoring.calibration.Calibration`; beyond the paper): the pixel map and the map the
  image score pools may each be calibrated by per-pixel statistics of normal maps; pooling "max" (eq. 7)
  or "topk" (:func:`anovit.scoring.anomaly_map.pooled_score`). Without a calibration: the raw map and its max;
- precision: the model runs under bf16 autocast or not, decided once when the detector is built
  (a run's detector: the run's recorded precision, :func:`anovit.utils.runtime.scoring_bf16`); maps and
  scores are float32 either way, and the threshold fitted by the same detector comes from scores of
  that same precision;
- decision: an image (or pixel) is anomalous when its score is ``>=`` the threshold
  (:func:`is_anomalous`), the comparison the metrics' ROC curves use;
- threshold rule (:meth:`Detector.fit_threshold`): the smallest float32 above every anomaly score of
  the normal validation images, so no normal validation image is called anomalous and any image
  scoring above all of them is; with a calibration, each validation image's score uses statistics
  fitted without it (:func:`anovit.scoring.calibration.leave_one_out`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from ..runs import checkpoint as ckpt
from .calibration import MIN_IMAGES, Calibration, fit_statistics, fitting_variant, leave_one_out
from ..utils.errors import AnovitError
from ..utils.prefetch import prefetch
from ..data.items import ImageBatch
from ..utils.runtime import autocast, resolve_device, scoring_bf16, use_bf16
from .anomaly_map import (DEFAULT_SCORE, DEFAULT_SIGMA, DEFAULT_TOP_PERCENT, POOLINGS, check_pooling, check_score,
                      check_sigma, error_map, gaussian_smooth, pooled_score)

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
    """A model, its sigma, its score function, its precision, its calibration and pooling, and a threshold:
    ``score_maps`` / ``score`` / ``predict`` images, scikit-learn style (``fit_threshold`` on normal images).

    Args:
        model: a trained AnoViT, l2-CAE or SSIM-AE (its ``config.image_size`` is the input size).
        sigma: Gaussian smoothing of the anomaly maps in px (0: none).
        threshold: decision threshold on anomaly scores (None until fitted or set).
        bf16: bf16 autocast (None: where the model's device supports it, :func:`anovit.utils.runtime.use_bf16`;
            True on a device without it is a ConfigError).
        score_function: "l2" (eq. 6), "ssim", "msgms" or "l2-ssim" (:func:`anovit.scoring.anomaly_map.error_map`).
        calibration: per-pixel statistics of normal maps for the image and pixel maps
            (:class:`anovit.scoring.calibration.Calibration`); None: the raw map for both purposes.
        pooling, top_percent: the image score from the map: "max" (eq. 7) or "topk" (mean of the top q %).

    ``images`` are float tensors (B, C, H, W) in [0, 1] at the model's ``image_size``; results are CPU
    tensors: anomaly maps (B, H, W), anomaly scores (B,), decisions (B,) bool. ``precision_note``: a
    one-line note when the precision differs from the run's recorded one (see :meth:`from_run`), else None.

    Example:
        >>> from anovit import Detector
        >>> detector = Detector.from_run("checkpoints/synthetic-weave-anovit-cpu-default-s0")  # doctest: +SKIP
        >>> detector.fit_threshold(validation_images).predict(images)  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, *, sigma: float = DEFAULT_SIGMA, threshold: float | None = None,
                 bf16: bool | None = None, score_function: str = DEFAULT_SCORE, calibration: Calibration | None = None,
                 pooling: str = POOLINGS[0], top_percent: float = DEFAULT_TOP_PERCENT) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.sigma = check_sigma(sigma)
        self.score_function = check_score(score_function)
        self.bf16 = use_bf16(self.device, bf16)
        self.calibration = calibration if calibration is not None else Calibration()
        self.pooling, self.top_percent = check_pooling(pooling, top_percent)
        self.threshold = threshold
        self.precision_note: str | None = None  # set by from_run where the run's precision cannot be used
        self.calibration_note: str | None = None  # set by fit_threshold where too few images fall back (fitting_variant)
        self.validation_scores_: np.ndarray | None = None  # set by fit_threshold (leave-one-out where calibrated)
        self.validation_paths_: list[str] | None = None  # the images they came from
        self.stored_differs_: list[str] = []  # set by load_stored_fit
        self.threshold_source_ = "given" if threshold is not None else None  # "given", "fitted" or "stored"

    def settings(self) -> dict[str, Any]:
        """What its anomaly maps and scores depend on besides the model: precision, score function, sigma,
        calibration and pooling (compared with a stored fit's, :mod:`anovit.scoring.stored_fit`)."""
        return {"bf16": self.bf16, "score": self.score_function, "sigma": self.sigma,
                "image_calibration": self.calibration.image, "pixel_calibration": self.calibration.pixel,
                "calibration_shrinkage": self.calibration.shrinkage, "pooling": self.pooling,
                "pooling_top_percent": self.top_percent}

    @classmethod
    def from_run(cls, run_dir: Path | str, *, sigma: float | None = None, threshold: float | None = None,
                 bf16: bool | None = None, device: str = "auto", score_function: str | None = None,
                 model: nn.Module | None = None, fit_dir: Path | None = None, **scoring: Any) -> Self:
        """The detector of a run folder's model (see :func:`anovit.runs.checkpoint.load_model`); ``sigma``
        None: the run's own, stored in its training.json (:attr:`anovit.runs.record.RunRecord.sigma`); ``score_function``
        None: the run's (:attr:`~anovit.runs.record.RunRecord.score`), another one re-scores the run without retraining;
        ``bf16`` None: the run's recorded precision (:attr:`~anovit.runs.record.RunRecord.precision`), float32 with a
        ``precision_note`` where it is bf16 and the device has none (:func:`anovit.utils.runtime.scoring_bf16`).
        ``scoring``: image_calibration, pixel_calibration, calibration_shrinkage, pooling, pooling_top_percent,
        None or left out: the run's (:class:`anovit.runs.record.ScoringRecipe`). ``model``: the run's model already
        loaded (e.g. cached by the app), else loaded onto ``device``. ``fit_dir``: the folder of the stored fit
        (None: ``run_dir``; a unified run's class: :func:`anovit.runs.catalog.class_dir`).

        The run's stored fit (:mod:`anovit.scoring.stored_fit`) is loaded where it was made at these settings:
        the calibration statistics, and the threshold unless ``threshold`` is given. ``stored_differs_``
        names what differs where a stored part was made at other settings (empty when all match or none
        is stored), so a caller that refits can say why.
        """
        from ..runs.record import read_training_record

        run_dir = Path(run_dir)
        training = read_training_record(run_dir)
        sigma = training.sigma if sigma is None else sigma
        score_function = training.score if score_function is None else score_function
        recipe = {**training.scoring.as_dict(), **{k: v for k, v in scoring.items() if v is not None}}
        calibration = Calibration(recipe["image_calibration"], recipe["pixel_calibration"],
                                  recipe["calibration_shrinkage"])
        model = model if model is not None else ckpt.load_model(run_dir, resolve_device(device))
        bf16, note = scoring_bf16(next(model.parameters()).device, training.precision, bf16)
        detector = cls(model, sigma=sigma, threshold=threshold, bf16=bf16,
                       score_function=score_function, calibration=calibration, pooling=recipe["pooling"],
                       top_percent=recipe["pooling_top_percent"])
        detector.precision_note = note
        detector.load_stored_fit(fit_dir or run_dir, keep_threshold=threshold is not None)
        return detector

    def load_stored_fit(self, run_dir: Path, keep_threshold: bool = False) -> None:
        """Take the run's stored statistics and threshold where they were fitted at :meth:`settings`; set
        ``stored_differs_`` to the differences of those that were not (see :func:`anovit.scoring.stored_fit.differences`)."""
        from ..runs.record import read_stored_threshold
        from .stored_fit import STATISTICS_KEYS, THRESHOLD_KEYS, differences, read_statistics

        mine, self.stored_differs_ = self.settings(), []
        stored = read_statistics(run_dir) if self.calibration.needs_statistics else None
        if stored is not None:
            self.stored_differs_ += differences(stored[1], mine, STATISTICS_KEYS)
            if not self.stored_differs_:
                self.calibration = self.calibration.with_statistics(stored[0])
        stored_threshold = None if keep_threshold else read_stored_threshold(run_dir)
        if stored_threshold is not None:
            differs = differences(stored_threshold.settings, mine, THRESHOLD_KEYS)
            self.stored_differs_ += [d for d in differs if d not in self.stored_differs_]
            if not differs and (self.calibration.image == "none" or self.calibration.statistics is not None):
                self.threshold, self.threshold_source_ = stored_threshold.value, "stored"
                self.validation_paths_ = list(stored_threshold.images)
                self.validation_scores_ = np.asarray(stored_threshold.scores, dtype=np.float32)

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
    def raw_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (B, C, H, W), uncalibrated anomaly maps (B, H, W)) on the model's device: the
        score function's error map, Gaussian-smoothed (what the calibration statistics describe)."""
        images = images.to(self.device)
        recon = self.reconstruct(images)
        return recon, gaussian_smooth(error_map(images, recon, self.score_function), self.sigma)

    def image_scores(self, raw: torch.Tensor) -> torch.Tensor:
        """Anomaly scores (B,) of raw maps (B, H, W): the image-calibrated map, pooled."""
        return pooled_score(self.calibration.image_map(raw), self.pooling, self.top_percent)

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, C, H, W), anomaly maps (B, H, W), anomaly scores (B,)) from one forward pass:
        the map is the pixel-calibrated one, the score pools the image-calibrated one (both raw without
        a calibration: eqs. 6 and 7)."""
        recon, raw = self.raw_maps(images)
        return recon.cpu(), self.calibration.pixel_map(raw).cpu(), self.image_scores(raw).cpu()

    def score_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Anomaly maps (B, H, W): the score function's error map (l2: squared error averaged over
        channels), Gaussian-smoothed, then pixel-calibrated."""
        return self.outputs(images)[1]

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Anomaly scores (B,): the pooling (max: eq. 7) of each image-calibrated anomaly map."""
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
        """Score a dataset in order, batch by batch, the next batch loading while this one is scored
        (:func:`anovit.utils.prefetch.prefetch`); ``progress(done, total)`` after each batch."""
        done = 0
        for collated in prefetch(DataLoader(dataset, batch_size=batch_size, shuffle=False)):
            batch = self.score_batch(ImageBatch.from_collated(collated))
            done += len(batch)
            if progress is not None:
                progress(done, len(dataset))
            yield batch

    def fit_threshold(self, validation: Dataset | torch.Tensor, batch_size: int = SCORE_BATCH_SIZE,
                      progress: Progress | None = None) -> Self:
        """Fit on normal validation images (a dataset, or a tensor (B, C, H, W)): the calibration statistics
        of their raw maps (when the calibration needs any), then ``threshold``, the smallest float32 above
        all their anomaly scores (:func:`threshold_above`), each image's score calibrated without its own
        map (:func:`anovit.scoring.calibration.leave_one_out`). Keeps the scores in ``validation_scores_`` and the
        image paths in ``validation_paths_``. Returns self. Too few images for the calibration (fewer than
        :data:`~anovit.scoring.calibration.MIN_IMAGES`): each purpose falls back to what they can fit
        (:func:`~anovit.scoring.calibration.fitting_variant`: minus the mean, else the raw map), said in
        ``calibration_note``."""
        if isinstance(validation, torch.Tensor):
            raw, paths = self.raw_maps(validation)[1].cpu(), [f"image {i}" for i in range(len(validation))]
        else:
            raw_batches, paths, done = [], [], 0
            for collated in DataLoader(validation, batch_size=batch_size, shuffle=False):
                batch = ImageBatch.from_collated(collated)
                raw_batches.append(self.raw_maps(batch.image)[1].cpu())
                paths += batch.image_path
                done += len(batch)
                if progress is not None:
                    progress(done, len(validation))
            raw = torch.cat(raw_batches) if raw_batches else torch.empty(0, self.image_size, self.image_size)
        calibration = self.calibration
        if calibration.needs_statistics:  # a small class still scores: with what its images can fit
            fits = tuple(fitting_variant(v, len(raw)) for v in (calibration.image, calibration.pixel))
            if fits != (calibration.image, calibration.pixel):
                self.calibration_note = (
                    f"{len(raw)} normal validation image(s) are too few for the {calibration.image!r} / "
                    f"{calibration.pixel!r} calibration (at least "
                    f"{max(MIN_IMAGES[calibration.image], MIN_IMAGES[calibration.pixel])}): scored with "
                    f"{fits[0]!r} / {fits[1]!r} (a larger --val-fraction calibrates)")
            calibration = self.calibration = (calibration.with_statistics(fit_statistics(raw)) if fits != ("none", "none")
                                              else Calibration(shrinkage=calibration.shrinkage))
        loo = leave_one_out(raw, calibration.fitted(calibration.image), calibration.shrinkage)
        scores = pooled_score(loo, self.pooling, self.top_percent)
        self.validation_scores_, self.validation_paths_ = scores.numpy(), paths
        self.threshold, self.threshold_source_ = threshold_above(self.validation_scores_), "fitted"
        return self
