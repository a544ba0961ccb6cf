"""What the pages compute per checkpoint, through its :class:`~anovit.scoring.detector.Detector`, cached per
run folder, weights file time, data and sigma: scored items (Gallery, Heatmaps), one test-split
evaluation pass (Heatmaps' ROC curves), test scores, and the validation threshold (Inspect).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
import torch
from torch.utils.data import Dataset, Subset

from ..runs import checkpoint as ckpt
from ..scoring.detector import SCORE_BATCH_SIZE, Detector, Progress
from ..evaluation.evaluate import ROW_FIELDS, evaluate_detector
from ..evaluation.metrics import BinnedROC
from ..scoring.calibration import Calibration, MapStatistics
from ..runs.record import RunRecord
from ..scoring.anomaly_map import DEFAULT_SIGMA
from .pickers import DataRef, describe_items, load_dataset, load_model_cached, scoring_stamp, weights_mtime


class _Bar:
    """A progress bar created inside a cached function (so cache hits replay it) and removed at the end;
    called as ``bar(done, total)`` like the detector's progress callback."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.bar = st.progress(0.0, text=text)

    def __call__(self, done: int, total: int) -> None:
        self.bar.progress(min(done / max(total, 1), 1.0), text=f"{self.text} {done}/{total}")

    def close(self) -> None:
        self.bar.empty()


@st.cache_data(max_entries=32, show_spinner=False)
def _fit(run_dir: str, stamp: tuple[float | None, ...], ref: DataRef, sigma: float | None,
         need_threshold: bool) -> tuple[MapStatistics | None, float | None, np.ndarray | None]:
    detector = Detector.from_run(Path(run_dir), sigma=sigma, model=load_model_cached(Path(run_dir)))
    unfitted = detector.calibration.needs_statistics and detector.calibration.statistics is None
    no_scores = detector.validation_scores_ is None or not len(detector.validation_scores_)
    if unfitted or (need_threshold and (detector.threshold is None or no_scores)):
        bar = _Bar("Scoring the validation images")
        detector.fit_threshold(load_dataset(ref, "val", detector.image_size), progress=bar)
        bar.close()
    return detector.calibration.statistics, detector.threshold, detector.validation_scores_


def detector_for(run_dir: Path, ref: DataRef, sigma: float | None = None, need_threshold: bool = False) -> Detector:
    """The run's :class:`~anovit.scoring.detector.Detector` (cached model; bf16 where the CPU supports it) with its
    stored fit (threshold, calibration statistics; :mod:`anovit.scoring.stored_fit`) where made at these settings,
    else fitted on the validation split of ``ref`` (not stored): the calibration statistics when it needs
    them, the threshold with ``need_threshold``. Cached per weights file and stored fit."""
    run_dir = Path(run_dir)
    statistics, threshold, scores = _fit(str(run_dir), scoring_stamp(run_dir), ref, sigma, need_threshold)
    detector = Detector.from_run(run_dir, sigma=sigma, model=load_model_cached(run_dir))
    calibration = detector.calibration
    if calibration.needs_statistics and statistics is None:  # too few validation images: the raw map
        detector.calibration = Calibration(shrinkage=calibration.shrinkage)
    else:
        detector.calibration = calibration.with_statistics(statistics)
    detector.threshold, detector.validation_scores_ = threshold, scores
    return detector


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).numpy()


def scored_items(detector: Detector, dataset: Dataset, progress: Progress | None = None) -> dict[str, Any]:
    """Every item of ``dataset`` through ``detector``, as arrays for the pages: image and recon (uint8 N,H,W,3),
    anomaly_map (N,H,W), score (anomaly scores, N), mask (N,H,W bool), label, defect_type, path."""
    batches = list(detector.iter_scored(dataset, progress=progress))
    return {
        "image": np.concatenate([_uint8(b.image) for b in batches]),
        "recon": np.concatenate([_uint8(b.reconstruction) for b in batches]),
        "anomaly_map": np.concatenate([b.anomaly_map.numpy() for b in batches]),
        "score": np.concatenate([b.pred_score.numpy() for b in batches]),
        "mask": np.concatenate([b.gt_mask.numpy() for b in batches]),
        "label": np.concatenate([b.gt_label.numpy() for b in batches]),
        "defect_type": [t for b in batches for t in b.defect_type],
        "path": [p for b in batches for p in b.image_path],
    }


@st.cache_data(max_entries=48, show_spinner=False)
def _predict_items(
    run_dir: str, stamp: tuple[float | None, ...], ref: DataRef, split: str, indices: tuple[int, ...], sigma: float
) -> dict[str, Any]:
    detector = detector_for(Path(run_dir), ref, sigma)
    bar = _Bar("Reconstructing")
    items = scored_items(detector, Subset(load_dataset(ref, split, detector.image_size), list(indices)), bar)
    bar.close()
    return {**items, "index": np.asarray(indices)}


def predict_items(
    run: RunRecord, ref: DataRef, indices: list[int], split: str = "test", sigma: float | None = None
) -> dict[str, Any]:
    """Inputs, reconstructions (uint8 N,H,W,3), anomaly maps (N,H,W), anomaly scores, masks, labels of
    ``indices`` of a split, through the run's :func:`detector_for`.

    Cached per checkpoint (path, :func:`~anovit.app.pickers.scoring_stamp`), data, split, indices and sigma: a gallery page
    is computed once.
    """
    return _predict_items(str(run.path), scoring_stamp(run.path), ref, split, tuple(int(i) for i in indices), sigma)


@st.cache_data(max_entries=16, show_spinner=False)
def _test_pass(run_dir: str, stamp: tuple[float | None, ...], ref: DataRef, sigma: float, roc_points: int) -> dict[str, Any]:
    detector = detector_for(Path(run_dir), ref, sigma)
    bar = _Bar("Scoring the test split")
    result = evaluate_detector(detector, load_dataset(ref, "test", detector.image_size), batch_size=SCORE_BATCH_SIZE,
                               progress=bar)
    bar.close()
    scores = pd.DataFrame(result.rows, columns=list(ROW_FIELDS))
    scores.insert(0, "index", range(len(scores)))
    images = BinnedROC().update(scores["score"].to_numpy(), scores["label"].to_numpy())
    pixels = result.pixel_roc
    has_pixels = pixels is not None and pixels.n_pos and pixels.n_neg
    return {
        "scores": scores,
        "pixel_roc": pixels.roc_curve(roc_points) if has_pixels else None,
        "image_roc": images.roc_curve(roc_points) if result.image_auroc is not None else None,
        "pixel_auroc": result.pixel_auroc,
        "image_auroc": result.image_auroc,
    }


def test_pass(run: RunRecord, ref: DataRef, sigma: float | None = None, roc_points: int = 2048) -> dict[str, Any]:
    """One :func:`anovit.evaluation.evaluate.evaluate_detector` pass over the test split: per-image anomaly scores (DataFrame),
    image and pixel ROC (fpr, tpr, thresholds) from :class:`~anovit.evaluation.metrics.BinnedROC`, and both AUROCs
    (None when the split lacks a class)."""
    return _test_pass(str(run.path), scoring_stamp(run.path), ref, sigma, roc_points)


def _scores_file_matches(scores: pd.DataFrame, items: pd.DataFrame) -> bool:
    return len(scores) == len(items) and scores["path"].astype(str).tolist() == items["path"].tolist()


@st.cache_data(max_entries=16, show_spinner="Reading the test split…")
def _test_scores(
    run_dir: str, mtime: float, csv_mtime: float | None, ref: DataRef, image_size: int
) -> pd.DataFrame | None:
    if csv_mtime is None:
        return None
    items = describe_items(load_dataset(ref, "test", image_size))
    scores = pd.read_csv(Path(run_dir) / ckpt.TEST_SCORES)
    if not {"path", "score"} <= set(scores.columns) or not _scores_file_matches(scores, items):
        return None
    return items.assign(score=scores["score"].astype(float).to_numpy())


def test_scores(run: RunRecord, ref: DataRef, image_size: int, sigma: float | None = None) -> pd.DataFrame:
    """index, path, label, defect_type, score of every test image: from the run's test_scores.csv when it
    covers exactly this split and was written at this sigma (the evaluation's), else computed."""
    csv = run.path / ckpt.TEST_SCORES
    sigma = run.sigma if sigma is None else sigma
    evaluated_at = run.test.sigma if run.test is not None and run.test.sigma is not None else DEFAULT_SIGMA
    csv_mtime = csv.stat().st_mtime if csv.is_file() and sigma == evaluated_at else None
    scores = _test_scores(str(run.path), weights_mtime(run.path), csv_mtime, ref, image_size)
    return scores if scores is not None else test_pass(run, ref, sigma)["scores"]


def fitted_detector(run: RunRecord, ref: DataRef, sigma: float | None = None) -> Detector:
    """The run's detector with its stored threshold (threshold.json) where it was fitted at these settings,
    else one fitted (:meth:`~anovit.scoring.detector.Detector.fit_threshold`) on the normal validation images held
    out during training (same seed and fraction), not stored; cached per weights and stored fit."""
    return detector_for(run.path, ref, sigma, need_threshold=True)
