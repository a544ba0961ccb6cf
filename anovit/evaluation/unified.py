"""Evaluating a unified run (one model for every class, :mod:`anovit.data.unified`) class by class, as UniAD
(NeurIPS 2022) and its successors report: each class's test split scored with that class's own threshold and
calibration statistics (fitted on its held-out normal images), then the mean over the classes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..runs import checkpoint as ckpt
from ..runs.metrics_record import read_run_metrics
from ..runs.record import read_training_record
from ..utils.errors import CheckpointError
from .evaluate import Evaluation, evaluate_run

MEAN_FIELDS = ("image_auroc", "pixel_auroc", "aupro")  # averaged over the classes into metrics.json's "test"


@dataclass
class UnifiedEvaluation:
    """The evaluations of one unified run, one per class (sorted class order)."""

    per_class: dict[str, Evaluation]

    def mean(self, name: str) -> float | None:
        """The unweighted mean of metric ``name`` over the classes that have it (None if none has it)."""
        values = [getattr(e, name) for e in self.per_class.values() if getattr(e, name) is not None]
        return statistics.fmean(values) if values else None

    def summary(self) -> dict[str, Any]:
        """The means of :data:`MEAN_FIELDS`, the classes and, per class, its evaluation's summary."""
        return {**{name: self.mean(name) for name in MEAN_FIELDS}, "classes": list(self.per_class),
                "per_class": {c: e.summary() for c, e in self.per_class.items()}}


def evaluate_unified_run(run_dir: Path | str, *, on_class: Callable[[str], None] | None = None,
                         record: bool = True, **kwargs: Any) -> UnifiedEvaluation:
    """Evaluate every class of a unified run (:attr:`anovit.runs.record.RunRecord.classes`) with
    :func:`anovit.evaluation.evaluate.evaluate_run` (``category`` = the class), then record the means.

    Args:
        run_dir: a run folder trained with category "all".
        on_class: called with each class's name before it is evaluated (e.g. to label a progress bar).
        record: as for ``evaluate_run``; also writes the means and the classes under "test" in metrics.json
            (the class summaries go under "per_class").
        **kwargs: the other arguments of ``evaluate_run`` (sigma, scoring, device, ...; not dataset, category or
            data_root: a unified run is evaluated on its own classes).

    Returns:
        UnifiedEvaluation: one :class:`~anovit.evaluation.evaluate.Evaluation` per class.

    Raises:
        CheckpointError: ``run_dir`` is not a unified run (its training.json records no classes).
    """
    run_dir = Path(run_dir)
    classes = read_training_record(run_dir).classes
    if classes is None:
        raise CheckpointError(f"{run_dir / ckpt.TRAINING} records no 'classes': it is a per-class run, not one "
                              "model for every class (train with --category all)")
    per_class: dict[str, Evaluation] = {}
    for category in classes:
        if on_class is not None:
            on_class(category)
        per_class[category] = evaluate_run(run_dir, category=category, record=record, **kwargs)
    result = UnifiedEvaluation(per_class)
    if record:
        first = read_run_metrics(run_dir).per_class.get(classes[0])
        summary = {k: v for k, v in result.summary().items() if k != "per_class"}
        ckpt.update_metrics(run_dir, test={**summary, "unified": True, "sigma": first.sigma if first else None,
                                           "score": first.score if first else None})
    return result


def is_unified(run_dir: Path | str) -> bool:
    """Whether ``run_dir`` holds one model for every class (its training.json records the classes); False when
    its training.json is unreadable (evaluating it then says what is wrong with it)."""
    try:
        return read_training_record(Path(run_dir)).classes is not None
    except CheckpointError:
        return False
