"""metrics.json of a run folder typed: the training log written after each epoch (:class:`TrainingLog`), the
test-split summary (:class:`TestSummary`) and a unified run's summaries per class (:class:`RunMetrics`). Part of
the run record (:mod:`anovit.runs.record`); a class folder of a unified run has a metrics.json of its own."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

from . import checkpoint as ckpt


METRIC_NAMES = ("image_auroc", "pixel_auroc", "aupro", "image_f1_max", "pixel_f1_max")


@dataclass(frozen=True)
class TestSummary:
    """One evaluation on a test split (metrics.json's "test", or one class of a unified run's "per_class"),
    as anovit.evaluation.evaluate.Evaluation.summary writes it; None where not recorded (older runs, a split
    without masks for the pixel metrics)."""

    __test__ = False  # not a pytest class

    image_auroc: float | None = None
    pixel_auroc: float | None = None
    aupro: float | None = None
    image_f1_max: float | None = None
    pixel_f1_max: float | None = None
    n_images: int | None = None
    n_anomalous: int | None = None
    seconds: float | None = None
    images_per_s: float | None = None
    threshold: float | None = None  # the detector's decision threshold (fitted on validation images), if any
    sigma: float | None = None
    score: str | None = None
    bf16: bool | None = None
    image_calibration: str | None = None
    pixel_calibration: str | None = None
    pooling: str | None = None
    pooling_top_percent: float | None = None
    dataset: str | None = None  # the split evaluated (older runs: None, their training's)
    category: str | None = None
    data_root: str | None = None
    max_images: int | None = None
    classes: tuple[str, ...] | None = None  # a unified run's means: the classes averaged

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path) -> TestSummary:
        """The summary of ``data`` (``source`` names the file in errors); unknown fields are left out."""
        kinds: dict[str, Callable[[Any], Any]] = {"n_images": int, "n_anomalous": int, "max_images": int, "bf16": bool,
                                                  "score": str, "image_calibration": str, "pixel_calibration": str,
                                                  "pooling": str, "dataset": str, "category": str, "data_root": str}
        values = {f.name: ckpt.typed_field(data, f.name, kinds.get(f.name, float), source) for f in fields(cls)
                  if f.name != "classes"}
        classes = data.get("classes")
        return cls(**values, classes=tuple(str(c) for c in classes) if isinstance(classes, list) else None)

    def metric(self, name: str) -> float | None:
        """The metric ``name`` (one of :data:`METRIC_NAMES`), None where not measured."""
        if name not in METRIC_NAMES:
            raise ValueError(f"metric must be one of {METRIC_NAMES}; got {name!r}")
        return getattr(self, name)


@dataclass(frozen=True)
class EpochLog:
    """One epoch of training (metrics.json's training "history")."""

    epoch: int
    train_loss: float | None = None
    val_loss: float | None = None
    seconds: float | None = None
    images_per_s: float | None = None


@dataclass(frozen=True)
class TrainingLog:
    """metrics.json's "training", rewritten after each epoch: the epochs run, the best one, precision, device."""

    epoch: int = 0  # the last epoch finished (0 before the first)
    history: tuple[EpochLog, ...] = ()
    best_epoch: int | None = None
    best_val_loss: float | None = None
    bf16: bool | None = None
    device: str | None = None
    stopped: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path) -> TrainingLog:
        history = data.get("history") if isinstance(data.get("history"), list) else []
        epochs = tuple(EpochLog(**{f.name: ckpt.typed_field(ckpt.json_object(h, source), f.name, int if f.name == "epoch" else float,
                                                  source) for f in fields(EpochLog)}) for h in history)
        return cls(epoch=ckpt.typed_field(data, "epoch", int, source) or 0, history=epochs,
                   best_epoch=ckpt.typed_field(data, "best_epoch", int, source),
                   best_val_loss=ckpt.typed_field(data, "best_val_loss", float, source),
                   bf16=data.get("bf16") if isinstance(data.get("bf16"), bool) else None,
                   device=ckpt.typed_field(data, "device", str, source), stopped=bool(data.get("stopped", False)))

    @property
    def seconds(self) -> float | None:
        """Training time over the epochs run; None before the first."""
        return sum(h.seconds or 0.0 for h in self.history) or None


@dataclass(frozen=True)
class RunMetrics:
    """metrics.json: the training log, the test summary (None before evaluation) and, for a unified run,
    each class's summary."""

    training: TrainingLog | None = None
    test: TestSummary | None = None
    per_class: Mapping[str, TestSummary] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path) -> RunMetrics:
        training, test, per_class = (data.get(k) or {} for k in ("training", "test", "per_class"))
        return cls(
            training=TrainingLog.from_json(ckpt.json_object(training, source), source) if training else None,
            test=TestSummary.from_json(ckpt.json_object(test, source), source) if test else None,
            per_class={str(c): TestSummary.from_json(ckpt.json_object(s, source), source)
                       for c, s in ckpt.json_object(per_class, source).items()},
        )


def read_run_metrics(folder: Path) -> RunMetrics:
    """``folder``/metrics.json typed (empty before the first epoch); CheckpointError naming the file when
    it is not valid JSON or not an object."""
    path = Path(folder) / ckpt.METRICS
    return RunMetrics.from_json(ckpt.json_object(ckpt.read_metrics(folder), path), path)
