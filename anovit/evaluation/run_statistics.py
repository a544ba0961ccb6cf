"""A run folder's evaluation read back for statistics: its AUROCs with bootstrap intervals, paired
differences with another run on the same test images, and AUROC per defect type.

Reads test_scores.csv and pixel_histograms.npz (written by :func:`anovit.evaluation.evaluate.evaluate_run`) and the
"test" section of metrics.json. Runs evaluated before the histograms were stored get no pixel interval
("interval n/a"); the statistics themselves are :mod:`anovit.evaluation.uncertainty`'s and :mod:`anovit.evaluation.defect_types`'.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..runs import checkpoint as ckpt
from ..runs.metrics_record import read_run_metrics
from .defect_types import per_defect_type
from .pixel_histograms import PixelHistograms
from .uncertainty import Interval, chance_note, image_auroc_interval, mean_paired_difference, pixel_auroc_interval

METRIC_LEVELS = {"image_auroc": "image", "pixel_auroc": "pixel"}


@dataclass(frozen=True)
class TestEvaluation:
    """One run's recorded test evaluation: rows of test_scores.csv, per-image pixel histograms (None for
    older runs or splits without masks) and the recorded pixel AUROC."""

    rows: pd.DataFrame
    histograms: PixelHistograms | None
    pixel_auroc: float | None


@functools.lru_cache(maxsize=64)
def _read(run_dir: Path, stamp: tuple[float, ...]) -> TestEvaluation | None:
    scores = run_dir / ckpt.TEST_SCORES
    try:
        rows = pd.read_csv(scores, dtype={"path": str, "defect_type": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    if not {"path", "label", "defect_type", "score"} <= set(rows.columns):
        return None
    histograms = None
    if (run_dir / ckpt.PIXEL_HISTOGRAMS).is_file():
        try:
            histograms = PixelHistograms.load(run_dir / ckpt.PIXEL_HISTOGRAMS).select(rows["path"].tolist())
        except (ValueError, KeyError):
            histograms = None  # unreadable, or from another evaluation: no pixel interval
    test = read_run_metrics(run_dir).test
    return TestEvaluation(rows, histograms, test.pixel_auroc if test else None)


def _stamp(run_dir: Path) -> tuple[float, ...]:
    """The modification times of the files read (the cache key: a re-evaluation changes them)."""
    files = (run_dir / ckpt.TEST_SCORES, run_dir / ckpt.PIXEL_HISTOGRAMS, run_dir / ckpt.METRICS)
    return tuple(f.stat().st_mtime if f.is_file() else 0.0 for f in files)


def read_test(run_dir: Any) -> TestEvaluation | None:
    """The run's recorded test evaluation, or None when it has no readable test_scores.csv (cached until its files change)."""
    return _read(Path(run_dir), _stamp(Path(run_dir)))


def _labels(test: TestEvaluation) -> Any:
    return test.rows["label"].to_numpy(int)


def _both_classes(test: TestEvaluation) -> bool:
    labels = _labels(test)
    return 0 < labels.sum() < labels.size


def test_intervals(test: TestEvaluation) -> dict[str, Interval | None]:
    """"image_auroc" and "pixel_auroc" of ``test`` with their 95 % bootstrap intervals (1000 resamples, seed 0);
    None ("interval n/a") with one class of images only or, for pixels, without histograms or a pixel AUROC."""
    if not _both_classes(test):
        return dict.fromkeys(METRIC_LEVELS)
    pixel = None
    if test.histograms is not None and test.pixel_auroc is not None:
        pixel = pixel_auroc_interval(test.histograms, _labels(test), test.pixel_auroc)
    return {"image_auroc": image_auroc_interval(test.rows["score"].to_numpy(float), _labels(test)),
            "pixel_auroc": pixel}


@functools.lru_cache(maxsize=128)
def _intervals(run_dir: Path, stamp: tuple[float, ...]) -> dict[str, Interval | None]:
    test = _read(run_dir, stamp)
    return dict.fromkeys(METRIC_LEVELS) if test is None else test_intervals(test)


def run_interval(run_dir: Any, metric: str) -> Interval | None:
    """The run's ``metric`` ("image_auroc" or "pixel_auroc") with its 95 % bootstrap interval (1000 resamples,
    seed 0), or None ("interval n/a"): not evaluated, one class only, or (pixel) no stored histograms."""
    if metric not in METRIC_LEVELS:
        raise ValueError(f"metric must be one of {sorted(METRIC_LEVELS)}; got {metric!r}")
    return _intervals(Path(run_dir), _stamp(Path(run_dir)))[metric]


def intervals_line(intervals: dict[str, Interval | None]) -> str:
    """One line for the CLI: each AUROC with its interval, "interval n/a" where there is none, and a chance note."""
    parts = [f"{name} {iv.text(4) if iv is not None else 'interval n/a'}" for name, iv in
             (("image AUROC", intervals.get("image_auroc")), ("pixel AUROC", intervals.get("pixel_auroc")))]
    notes = [f"{name}: {chance_note(iv.estimate, iv)}" for name, iv in intervals.items()
             if iv is not None and chance_note(iv.estimate, iv)]
    return (f"95% bootstrap intervals over the test images (chance 0.5): {'  '.join(parts)}"
            + "".join(f"  ({n})" for n in notes))


def run_difference(runs_a: Any, runs_b: Any, metric: str) -> Interval | None:
    """``metric`` of run A minus run B with the paired bootstrap interval; given lists of runs paired by position
    (e.g. by seed), the mean difference over the pairs (:func:`anovit.evaluation.uncertainty.mean_paired_difference`).
    A run folder may also be a unified run's class folder (:func:`anovit.runs.catalog.class_dir`). None when a
    run lacks the needed files or the runs were not all evaluated on the same test images."""
    runs_a = [runs_a] if isinstance(runs_a, (str, Path)) else list(runs_a)
    runs_b = [runs_b] if isinstance(runs_b, (str, Path)) else list(runs_b)
    tests = [read_test(r) for r in (*runs_a, *runs_b)]
    if any(t is None for t in tests):
        return None
    return evaluations_difference(tests[:len(runs_a)], tests[len(runs_a):], metric)


def evaluations_difference(tests_a: list[TestEvaluation], tests_b: list[TestEvaluation],
                           metric: str) -> Interval | None:
    """:func:`run_difference` of evaluations in memory. The test images are matched by their real path (links
    resolved: a class reached through a folder of links is the same test split), so the rows may differ in order.
    None when the lists are empty or of unequal length, a class of images is missing, or (pixel) histograms are
    missing, or the evaluations were not all of the same test images."""
    tests = [*tests_a, *tests_b]
    if not tests_a or len(tests_a) != len(tests_b) or not _both_classes(tests[0]):
        return None
    order = tests[0].rows[["path", "label"]].assign(real=[os.path.realpath(p) for p in tests[0].rows["path"]])
    aligned = []
    for test in tests:
        rows = test.rows.assign(real=[os.path.realpath(p) for p in test.rows["path"]])
        merged = order[["real", "label"]].merge(rows, on=["real", "label"], how="left", sort=False)
        if len(test.rows) != len(order) or merged["score"].isna().any():
            return None  # not the same test images
        if metric == "pixel_auroc":
            if test.histograms is None:
                return None
            aligned.append(test.histograms.select(merged["path"].tolist()))
        else:
            aligned.append(merged["score"].to_numpy(float))
    n = len(tests_a)
    return mean_paired_difference(order["label"].to_numpy(int), list(zip(aligned[:n], aligned[n:])))


def run_defect_types(run_dir: Any) -> pd.DataFrame | None:
    """:func:`anovit.evaluation.defect_types.per_defect_type` of the run's test evaluation (None when it has none)."""
    test = read_test(run_dir)
    return None if test is None else per_defect_type(test.rows, test.histograms)
