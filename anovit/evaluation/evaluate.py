"""Evaluation of a detector over a test split: anomaly maps, anomaly scores, per-image rows and the
metrics (image AUROC, pixel AUROC, AUPRO, F1-max), accumulated batch by batch."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch.nn as nn
from torch.utils.data import Dataset

from ..runs import checkpoint as ckpt
from ..runs.catalog import class_dir
from ..runs.record import read_training_record
from ..data import get_dataset
from ..data.splits import subsample
from ..scoring.detector import Detector
from .metrics import BinnedPRO, BinnedROC, f1_max, image_auroc
from ..models import CALIBRATIONS, POOLINGS
from .pixel_histograms import HistogramBuilder, PixelHistograms
from ..utils.runtime import resolve_device
from ..scoring.anomaly_map import DEFAULT_SIGMA
from ..utils.errors import CheckpointError
from ..utils.validation import absolute_path

EVAL_BATCH_SIZE = 32
ROW_FIELDS = ("path", "label", "defect_type", "score")  # one row per test image: the columns of test_scores.csv
PER_CLASS = "per_class"  # metrics.json of a unified run: class -> its test summary (anovit.evaluation.unified)


@dataclass
class Evaluation:
    """Metrics of one model on one test split, and one row per image."""

    image_auroc: float | None
    pixel_auroc: float | None
    pixel_auroc_error_bound: float | None
    image_f1_max: float | None
    image_threshold: float | None
    pixel_f1_max: float | None
    pixel_threshold: float | None
    n_images: int
    n_anomalous: int
    sigma: float
    seconds: float
    images_per_s: float
    aupro: float | None = None  # per-region overlap up to 30% FPR; None without masks
    bf16: bool = False  # the precision the anomaly scores were computed in (Detector.bf16)
    image_calibration: str = CALIBRATIONS[0]  # the map the image scores pooled (anovit.scoring.calibration)
    pixel_calibration: str = CALIBRATIONS[0]  # the map the pixel metrics scored
    pooling: str = POOLINGS[0]  # how the image scores pooled the map (anovit.scoring.anomaly_map.pooled_score)
    pooling_top_percent: float | None = None  # q of "topk" pooling; None for "max"
    threshold: float | None = None  # the detector's decision threshold (fitted on validation images), if any
    rows: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # "image" / "pixel" -> why those metrics are None
    pixel_roc: BinnedROC | None = field(default=None, repr=False)  # the binned pixel counts, for ROC curves
    precision_note: str | None = field(default=None, repr=False)  # Detector.precision_note of a run's evaluation
    pixel_histograms: PixelHistograms | None = field(default=None, repr=False)  # per image, for bootstrap intervals

    def summary(self) -> dict[str, Any]:
        """The metrics, without the per-image rows, the pixel counts and histograms and the precision note."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("rows", "pixel_roc", "pixel_histograms", "precision_note")}


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    sigma: float = DEFAULT_SIGMA,
    device: str = "auto",
    bf16: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """:func:`evaluate_detector` with ``Detector(model on device, sigma=sigma, bf16=bf16)``."""
    detector = Detector(model.to(resolve_device(device)), sigma=sigma, bf16=bf16)
    return evaluate_detector(detector, dataset, batch_size=batch_size, progress=progress)


def evaluate_detector(
    detector: Detector,
    dataset: Dataset,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Score every image of ``dataset`` with ``detector`` and compute the metrics.

    Pixel metrics are None when the split has no anomalous pixel (e.g. one-class digits), image
    metrics None when it holds only one class; ``unavailable`` says why in one phrase each. A
    dataset whose ``has_masks`` attribute is False has no pixel ground truth at all.
    ``progress(done, total)`` is called per batch. A calibrated pixel map (which may be negative) is
    binned minus its floor (:meth:`anovit.scoring.calibration.Calibration.pixel_floor`), a shift that leaves
    pixel AUROC and AUPRO unchanged; ``pixel_threshold`` is given back on the map's own scale and
    ``pixel_roc`` counts the shifted map.
    """
    regions = BinnedPRO()  # AUPRO, and pixel AUROC / F1-max from its .roc: the maps are binned once
    pixels = regions.roc
    per_image = HistogramBuilder()  # the same pixels per image, for intervals and per-defect-type pixel AUROC
    scores: list[float] = []
    labels: list[int] = []
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    floor = detector.calibration.pixel_floor()
    for batch in detector.iter_scored(dataset, batch_size, progress):
        pixel_map = (batch.anomaly_map - floor).clamp_min(0) if floor else batch.anomaly_map  # binned from 0 up
        regions.update(pixel_map, batch.gt_mask)
        per_image.update(pixel_map, batch.gt_mask, batch.image_path)
        for path, label, defect, score in zip(batch.image_path, batch.gt_label.tolist(), batch.defect_type,
                                              batch.pred_score.tolist()):
            rows.append(dict(zip(ROW_FIELDS, (path, int(label), defect, float(score)))))
            scores.append(float(score))
            labels.append(int(label))
    seconds = time.perf_counter() - start
    both_classes = 0 < sum(labels) < len(labels)
    has_pixels = pixels.n_pos > 0 and pixels.n_neg > 0
    img_f1, img_thr = f1_max(scores, labels) if both_classes else (None, None)
    pix_f1, pix_thr = pixels.f1_max() if has_pixels else (None, None)
    pix_thr = pix_thr + floor if pix_thr is not None else None
    return Evaluation(
        image_auroc=image_auroc(scores, labels) if both_classes else None,
        pixel_auroc=pixels.auroc() if has_pixels else None,
        pixel_auroc_error_bound=pixels.error_bound() if has_pixels else None,
        aupro=regions.aupro() if has_pixels else None,
        image_f1_max=img_f1, image_threshold=img_thr,
        pixel_f1_max=pix_f1, pixel_threshold=pix_thr,
        n_images=len(labels), n_anomalous=int(sum(labels)), sigma=detector.sigma, bf16=detector.bf16,
        image_calibration=detector.calibration.image, pixel_calibration=detector.calibration.pixel,
        pooling=detector.pooling, pooling_top_percent=detector.top_percent if detector.pooling != "max" else None,
        threshold=detector.threshold,
        seconds=seconds, images_per_s=len(labels) / max(seconds, 1e-9), rows=rows, pixel_roc=pixels,
        pixel_histograms=per_image.result() if has_pixels else None,
        unavailable=_unavailable(labels, getattr(dataset, "has_masks", True), pixels.n_pos, pixels.n_neg),
    )


def _unavailable(labels: list[int], has_masks: bool, n_pos: int, n_neg: int) -> dict[str, str]:
    """Why the image metrics ("image") and the pixel metrics ("pixel") cannot be computed, where they cannot."""
    n_anomalous, reasons = sum(labels), {}
    if n_anomalous == 0:
        reasons["image"] = "the test split holds no anomalous images"
    elif n_anomalous == len(labels):
        reasons["image"] = "the test split holds no normal images"
    if not has_masks:
        reasons["pixel"] = "the test split has no masks (image labels only: localization unavailable)"
    elif n_anomalous == 0:
        reasons["pixel"] = "the test split holds no anomalous images"
    elif n_pos == 0:
        reasons["pixel"] = "no mask of an anomalous test image marks a defect pixel"
    elif n_neg == 0:
        reasons["pixel"] = "the masks mark every pixel as defective"
    return reasons


def evaluate_run(
    run_dir: Any,
    *,
    dataset: str | None = None,
    category: str | None = None,
    data_root: str | None = None,
    sigma: float | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    device: str = "auto",
    max_images: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    score: str | None = None,
    image_calibration: str | None = None,
    pixel_calibration: str | None = None,
    pooling: str | None = None,
    pooling_top_percent: float | None = None,
    calibration_shrinkage: float | None = None,
    refit_threshold: bool = False,
    record: bool = True,
    bf16: bool | None = None,
    notify: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate a run folder's best model on the test split it was trained for (or another one).

    Args:
        run_dir: a run folder written by :func:`anovit.train` (or pulled from the Hub with its training.json).
        dataset, category, data_root: another test split (None: the run's own, from its training.json). A
            unified run (one model for every class, :attr:`anovit.runs.record.RunRecord.classes`) needs ``category``:
            one of its classes is scored with that class's own threshold and calibration statistics (fitted on
            its held-out normal images, stored in :func:`anovit.runs.catalog.class_dir`) and recorded under
            metrics.json's "per_class" and in the class folder (with a metrics.json of its own, so the class folder
            reads back as a run's evaluation: :mod:`anovit.evaluation.run_statistics`).
        sigma: Gaussian smoothing in px (None: the run's own, :attr:`anovit.runs.record.RunRecord.sigma`).
        batch_size: images per forward pass.
        device: "auto", "cpu", "cuda", "cuda:N".
        max_images: a seeded subsample of the test split (recorded as "max_images"); None: all of it.
        progress: ``progress(done, total)`` after each batch.
        score: score function "l2" (eq. 6), "ssim", "msgms" or "l2-ssim" (None: the run's,
            :attr:`anovit.runs.record.RunRecord.score`).
        image_calibration, pixel_calibration, pooling, pooling_top_percent, calibration_shrinkage: the scoring
            (None: the run's, :class:`anovit.runs.record.ScoringRecipe`); another value re-scores the run
            without retraining, with statistics fitted on its validation split. Pixel metrics score the
            pixel-calibrated map, image metrics the pooled image-calibrated one.
        refit_threshold: fit the threshold and statistics again even where the run stores them.
        record: write the summary under "test" in metrics.json, the rows in test_scores.csv and the per-image
            pixel histograms (and a first fit, at the run's own settings); False writes nothing.
        bf16: bf16 autocast (None: the run's recorded precision, :meth:`anovit.scoring.detector.Detector.from_run`;
            the result's ``precision_note`` says when it could not be used).
        notify: receives one line whenever a threshold or statistics are fitted, and why.

    Returns:
        Evaluation: image AUROC, pixel AUROC, AUPRO, F1-max and thresholds, per-image rows; a metric is None
        with the reason in ``unavailable`` where the split lacks a class (or masks).

    Raises:
        CheckpointError: a missing or bad run file (named with its field), or a fit that needs the run's
            validation images when its training.json is absent.
        DatasetError: the test split cannot be read.

    Example:
        >>> from anovit import evaluate_run
        >>> evaluate_run("checkpoints/synthetic-weave-anovit-cpu-default-s0").image_auroc  # doctest: +SKIP
    """
    from ..scoring.run_scoring import run_detector
    from ..training.config import load_training  # train does not import evaluate

    run_dir = Path(run_dir)
    training = load_training(run_dir)
    classes = read_training_record(run_dir).classes
    if classes is not None and category is None:
        raise CheckpointError(f"{run_dir} holds one model for the classes {', '.join(classes)}: evaluate one of them "
                              "(category=...) or every one (anovit.evaluation.unified.evaluate_unified_run, as "
                              "`anovit evaluate RUN` does)")
    own_class = category if classes is not None and category in classes and dataset is None and data_root is None else None
    detector = run_detector(run_dir, sigma, bf16=bf16, device=device, score_function=score, refit=refit_threshold,
                            record=record, notify=notify, need_threshold=record, image_calibration=image_calibration,
                            pixel_calibration=pixel_calibration, pooling=pooling, pooling_top_percent=pooling_top_percent,
                            calibration_shrinkage=calibration_shrinkage, category=own_class)
    name, category = dataset or training.dataset, category or training.category
    root = absolute_path(data_root) if data_root is not None else training.data_root
    test_set = get_dataset(name, "test", category=category, image_size=detector.image_size, root=root,
                           seed=training.seed)
    test_set = subsample(test_set, max_images, training.seed)
    result = evaluate_detector(detector, test_set, batch_size=batch_size, progress=progress)
    result.precision_note = detector.precision_note
    if not record:
        return result
    summary = {**result.summary(), "score": detector.score_function, "max_images": max_images, "dataset": name,
               "category": category, "data_root": root}
    if own_class is None:
        ckpt.update_metrics(run_dir, test=summary)
    else:  # one class of a unified run: metrics.json's per_class, its test files in its class folder
        ckpt.update_metrics_entry(run_dir, PER_CLASS, own_class, summary)
        class_dir(run_dir, own_class).mkdir(parents=True, exist_ok=True)
        ckpt.update_metrics(class_dir(run_dir, own_class), test=summary)  # read back as a run's (run_statistics)
    write_test_files(class_dir(run_dir, own_class) if own_class else run_dir, result)
    return result


def write_test_files(folder: Path, result: Evaluation) -> None:
    """``folder``/test_scores.csv (one row per test image) and pixel_histograms.npz (removed when the split
    has no pixel ground truth, so an older one never sits beside other rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ckpt.TEST_SCORES, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_FIELDS)
        writer.writeheader()
        writer.writerows(result.rows)
    histograms = folder / ckpt.PIXEL_HISTOGRAMS
    if result.pixel_histograms is not None:
        result.pixel_histograms.save(histograms)
    else:
        histograms.unlink(missing_ok=True)  # an older evaluation's would not match these rows
