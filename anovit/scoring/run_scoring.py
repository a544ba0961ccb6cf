"""Scoring images with a run outside the app, as ``anovit score`` and ``anovit export`` do: resize an
RGB image to the model's size, and build the run's :class:`~anovit.scoring.detector.Detector` with its stored
threshold, or the one it fits on the normal validation images held out during training (see
:meth:`~anovit.scoring.detector.Detector.fit_threshold` for the rule, :func:`~anovit.scoring.detector.is_anomalous`
for the decision)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..runs import checkpoint as ckpt
from ..data import train_val_datasets
from ..data.imageio import resize_image
from ..data.paths import stored_path
from .detector import SCORE_BATCH_SIZE, Detector, Progress
from ..utils.errors import CheckpointError
from ..runs.catalog import class_dir
from ..runs.record import read_training_record
from .stored_fit import differences, write_statistics, write_threshold


def prepare(rgb: np.ndarray, image_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (1, 3, S, S) in [0, 1], resized as the datasets resize."""
    return resize_image(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1), image_size)[None].float() / 255.0


def validation_split(run_dir: Path, image_size: int, category: str | None = None) -> Dataset:
    """The normal validation images held out during the run's training (its training.json: dataset, class,
    folder, seed, fraction) at ``image_size``; ``category``: those of one class of a unified run (None: the
    run's own category; "all" for a unified run: every class's). CheckpointError when the run has no
    training.json (e.g. pulled from the Hub): then its validation images are unknown."""
    run_dir = Path(run_dir)
    if not (run_dir / ckpt.TRAINING).is_file():
        raise CheckpointError(
            f"{run_dir} has no {ckpt.TRAINING} and no matching stored {ckpt.THRESHOLD}, so its validation images "
            "(and threshold) are unknown; pass --threshold"
        )
    training = read_training_record(run_dir)
    return train_val_datasets(
        training.dataset, category=category or training.category, image_size=image_size,
        root=training.data_root, val_fraction=training.val_fraction,
        seed=training.seed if training.seed is not None else 0,
    )[1]


def _is_own(detector: Detector, run_dir: Path) -> bool:
    """Whether ``detector`` scores at the run's own recorded settings (any precision)."""
    training = read_training_record(run_dir)
    own = {"score": training.score, "sigma": training.sigma, **training.scoring.as_dict()}
    return not differences(own, detector.settings(), tuple(own))


def _relative(paths: list[str], run_dir: Path) -> list[str]:
    """Image paths relative to the run's data folder (training.json's data_root) where they lie inside it,
    else as :func:`anovit.data.paths.stored_path` keeps them (relative to the workspace where inside it)."""
    root = read_training_record(run_dir).data_root
    inside = (lambda p: Path(p).resolve().is_relative_to(Path(root).resolve())) if root else (lambda p: False)
    return [os.path.relpath(Path(p).resolve(), Path(root).resolve()) if inside(p) else stored_path(Path(p)) for p in paths]


def run_detector(run_dir: Path, sigma: float | None = None, threshold: float | None = None, *,
                 bf16: bool | None = None, batch_size: int = SCORE_BATCH_SIZE, device: str = "auto",
                 refit: bool = False, record: bool = False, notify: Callable[[str], None] | None = None,
                 progress: Progress | None = None, need_threshold: bool = True, category: str | None = None,
                 **scoring: Any) -> Detector:
    """The run's detector (``bf16``, ``sigma``, ``scoring`` (see :meth:`Detector.from_run`) None: the run's
    own, its recorded precision included), ready to decide: with ``threshold`` when given, else
    the run's stored threshold (threshold.json) and calibration statistics where they were fitted at these
    settings (:mod:`anovit.scoring.stored_fit`).

    Otherwise, or when ``refit``, both are fitted on the normal validation images of the run's training
    (:meth:`Detector.fit_threshold`), and ``notify`` gets one line saying so and why (a stored fit at other
    settings, or none). ``record``: write the fit into the run folder when it had none (or ``refit``) and
    the settings are the run's own; never otherwise. CheckpointError when a fit is needed but the run has
    no training.json.

    ``category``: one class of a unified run (:attr:`anovit.runs.record.RunRecord.classes`): the threshold and
    statistics are that class's, fitted on its own held-out normal images and stored in
    :func:`anovit.runs.catalog.class_dir`. None: the run's own (for a unified run, one class-agnostic fit on
    every class's held-out images, stored in the run folder).
    """
    run_dir = Path(run_dir)
    say = notify or (lambda line: None)
    fit_dir = class_dir(run_dir, category) if category is not None else run_dir
    detector = Detector.from_run(run_dir, sigma=sigma, threshold=threshold, bf16=bf16, device=device, fit_dir=fit_dir,
                                 **scoring)
    unfitted = detector.calibration.needs_statistics and detector.calibration.statistics is None
    if not (refit or unfitted or (need_threshold and detector.threshold is None)):
        return detector
    detector.fit_threshold(validation_split(run_dir, detector.image_size, category), batch_size, progress)
    had_fit = (fit_dir / ckpt.THRESHOLD).is_file() and (
        not detector.calibration.needs_statistics or (fit_dir / ckpt.CALIBRATION).is_file())
    store = record and threshold is None and (refit or not had_fit) and _is_own(detector, run_dir)
    if store:
        settings = detector.settings()
        fit_dir.mkdir(parents=True, exist_ok=True)
        if detector.calibration.statistics is not None:
            write_statistics(fit_dir, detector.calibration.statistics, settings)
        write_threshold(fit_dir, detector.threshold, settings, _relative(detector.validation_paths_ or [], run_dir),
                        detector.validation_scores_.tolist())
    if threshold is not None:  # a given threshold wins; only the statistics were needed
        detector.threshold, detector.threshold_source_ = threshold, "given"
    fitted = "threshold and calibration" if detector.calibration.needs_statistics else "threshold"
    where = f"stored in {fit_dir}" if store else "in memory only, not stored"
    say(f"{fitted}{f' of class {category}' if category else ''} fitted on {len(detector.validation_paths_ or [])} normal validation images "
        f"({_why_fit(detector, refit)}); {where}")
    if detector.calibration_note:
        say(detector.calibration_note)
    return detector


def _why_fit(detector: Detector, refit: bool) -> str:
    """Why :func:`run_detector` fitted: asked, a stored fit made at other settings, or none stored."""
    if refit:
        return "refit asked: --refit-threshold"
    if detector.stored_differs_:
        return f"the stored fit was made at other settings: {'; '.join(detector.stored_differs_)}"
    files = (ckpt.THRESHOLD, ckpt.CALIBRATION) if detector.calibration.needs_statistics else (ckpt.THRESHOLD,)
    return f"the run has no stored fit ({', '.join(files)})"
