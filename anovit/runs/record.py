"""The typed record of a run folder, read once: :class:`RunRecord` (config.json, training.json, metrics.json), and
the stored decision threshold with its provenance (:class:`StoredThreshold`, threshold.json).

Every reader above the runs layer takes the record's attributes instead of indexing the JSON by string key
(``tests/runs/test_run_record.py`` checks it). The files keep their names and fields; folders written before a
field existed read as None or the default those runs were made with (noted per field). Code that needs a file
whole (rebuilding a TrainConfig, the Hub copying files verbatim) calls :func:`verbatim_json`.

Example:
    >>> from anovit.runs.record import read_run
    >>> run = read_run("checkpoints/synthetic-weave-anovit-cpu-default-s0")  # doctest: +SKIP
    >>> run.training.seed, run.sigma, run.test.image_auroc if run.test else None  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from . import checkpoint as ckpt
from .metrics_record import RunMetrics, TestSummary, read_run_metrics
from ..data.splits import DEFAULT_VAL_FRACTION
from ..models import CALIBRATIONS, DEFAULT_SCORE, DEFAULT_SHRINKAGE, DEFAULT_SIGMA, DEFAULT_TOP_PERCENT, POOLINGS
from ..utils.errors import CheckpointError
from ..utils.runtime import PRECISIONS, precision_name


@dataclass(frozen=True)
class ScoringRecipe:
    """The calibration and pooling a run scores with (training.json; runs recorded before them: the raw map
    and eq. 7's max, the first of anovit.models.CALIBRATIONS and POOLINGS)."""

    image_calibration: str = CALIBRATIONS[0]
    pixel_calibration: str = CALIBRATIONS[0]
    calibration_shrinkage: float = DEFAULT_SHRINKAGE
    pooling: str = POOLINGS[0]
    pooling_top_percent: float = DEFAULT_TOP_PERCENT

    def as_dict(self) -> dict[str, Any]:
        """The fields by name (the keyword arguments of :meth:`anovit.scoring.detector.Detector.from_run`)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class TrainingRecord:
    """training.json: what the run was trained on and how. ``recorded`` False (every field None) for a folder
    without one (a bare or pulled model); None where an older run lacks a field."""

    recorded: bool = False
    dataset: str | None = None
    category: str | None = None  # "all" for a unified run (one model for every class)
    data_root: str | None = None  # absolute, as stored
    preset: str | None = None
    seed: int | None = None
    epochs: int | None = None  # the budget asked for (the epochs run: RunRecord.metrics.training.history)
    lr: float | None = None
    batch_size: int | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    max_train_images: int | None = None
    loss: str | None = None
    classes: tuple[str, ...] | None = None  # a unified run's classes; None for a per-class run
    sigma: float = DEFAULT_SIGMA  # px; runs before it was recorded (and pulled models): DEFAULT_SIGMA
    score: str = DEFAULT_SCORE  # eq. 6's "l2" for runs before it was recorded
    precision: str | None = None  # "bf16" / "fp32" (older runs: metrics.json's training bf16); None: unknown
    scoring: ScoringRecipe = field(default_factory=ScoringRecipe)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: Path, trained_bf16: bool | None = None) -> TrainingRecord:
        """The record of training.json's content ``data`` ({} without the file; ``source`` names it in errors);
        ``trained_bf16``: metrics.json's training "bf16", the precision of runs before "precision" was recorded."""
        precision = data.get("precision")
        if precision is not None and precision not in PRECISIONS:
            raise CheckpointError(f"{source}: field 'precision' must be one of {PRECISIONS}; got {precision!r}")
        if precision is None and isinstance(trained_bf16, bool):
            precision = precision_name(trained_bf16)
        classes = data.get("classes")
        scoring = ScoringRecipe(**{f.name: data[f.name] for f in fields(ScoringRecipe) if data.get(f.name) is not None})
        get = lambda name, kind: ckpt.typed_field(data, name, kind, source)  # noqa: E731
        return cls(
            recorded=bool(data), dataset=get("dataset", str), category=get("category", str),
            data_root=get("data_root", str), preset=get("preset", str), seed=get("seed", int),
            epochs=get("epochs", int), lr=get("lr", float), batch_size=get("batch_size", int),
            val_fraction=DEFAULT_VAL_FRACTION if data.get("val_fraction") is None else get("val_fraction", float),
            max_train_images=get("max_train_images", int), loss=get("loss", str),
            classes=tuple(str(c) for c in classes) if isinstance(classes, list) else None,
            sigma=DEFAULT_SIGMA if data.get("sigma") is None else get("sigma", float),
            score=DEFAULT_SCORE if data.get("score") is None else get("score", str), precision=precision, scoring=scoring,
        )


SCORING_FIELDS = tuple(f.name for f in fields(ScoringRecipe))


def read_training_record(folder: Path) -> TrainingRecord:
    """``folder``/training.json typed (``recorded`` False without one); CheckpointError naming the file when
    it is not valid JSON, not an object, or holds a field of the wrong type."""
    path = Path(folder) / ckpt.TRAINING
    data = ckpt.json_object(ckpt.read_json(path), path) if path.is_file() else {}
    trained_bf16 = None
    if data.get("precision") is None:  # older runs: the precision their training used, where readable
        try:
            log = read_run_metrics(folder).training
        except CheckpointError:
            log = None
        trained_bf16 = log.bf16 if log else None
    return TrainingRecord.from_json(data, path, trained_bf16)


@dataclass(frozen=True)
class RunRecord:
    """A run folder read once: its model (config.json), training (training.json), metrics (metrics.json)
    and its training job's state."""

    path: Path
    model_type: str = "?"
    image_size: int | None = None
    training: TrainingRecord = field(default_factory=TrainingRecord)
    metrics: RunMetrics = field(default_factory=RunMetrics)
    status: str = "done"  # its training job's state (done, cancelled, failed); "done" without a job (CLI, Hub)
    model_config: Mapping[str, Any] = field(default_factory=dict)  # config.json verbatim (a copy)

    @classmethod
    def from_json(cls, path: Path, config: Mapping[str, Any], training: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None, status: str = "done") -> RunRecord:
        """The record of a folder whose files hold ``config``, ``training`` and ``metrics`` (None: no file)."""
        path = Path(path)
        runs = RunMetrics.from_json(metrics or {}, path / ckpt.METRICS)
        trained_bf16 = runs.training.bf16 if runs.training else None
        return cls(path=path, model_type=str(config.get("model_type", "?")),
                   image_size=ckpt.typed_field(config, "image_size", int, path / ckpt.CONFIG),
                   training=TrainingRecord.from_json(training or {}, path / ckpt.TRAINING, trained_bf16),
                   metrics=runs, status=status, model_config=dict(config))

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def dataset(self) -> str | None:
        return self.training.dataset

    @property
    def category(self) -> str | None:
        return self.training.category

    @property
    def test(self) -> TestSummary | None:
        """The test-split summary, None before evaluation."""
        return self.metrics.test

    @property
    def sigma(self) -> float:
        """The smoothing sigma (px) the run is scored with (see :attr:`TrainingRecord.sigma`)."""
        return self.training.sigma

    @property
    def score(self) -> str:
        """The score function of its anomaly maps (anovit.scoring.anomaly_map.error_map)."""
        return self.training.score

    @property
    def precision(self) -> str | None:
        """The precision it is scored in by default; None: the device decides (anovit.utils.runtime.scoring_bf16)."""
        return self.training.precision

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The classes of a unified run (category "all"); None for a per-class run."""
        return self.training.classes

    def metric(self, name: str) -> float | None:
        """The test metric ``name`` (:data:`METRIC_NAMES`); None before evaluation or where not measured."""
        return self.test.metric(name) if self.test else None


def read_run(path: Path | str) -> RunRecord:
    """Read one run folder into its record; raises CheckpointError if it has no config.json or weights, if
    config.json, training.json or metrics.json does not hold a JSON object, or if a field has the wrong type."""
    path = Path(path)
    if not (path / ckpt.WEIGHTS).is_file():
        raise CheckpointError(f"{path} has no {ckpt.WEIGHTS}")
    config = ckpt.read_json(path / ckpt.CONFIG)  # required: CheckpointError "... is missing" without it
    training = ckpt.read_json(path / ckpt.TRAINING) if (path / ckpt.TRAINING).is_file() else {}
    metrics = ckpt.read_metrics(path)
    for name, data in ((ckpt.CONFIG, config), (ckpt.TRAINING, training), (ckpt.METRICS, metrics)):
        ckpt.json_object(data, path / name)
    return RunRecord.from_json(path, config, training, metrics)


STATISTICS_KEYS = ("bf16", "score", "sigma")  # the settings calibration statistics depend on
THRESHOLD_KEYS = STATISTICS_KEYS + ("image_calibration", "calibration_shrinkage", "pooling", "pooling_top_percent")


@dataclass(frozen=True)
class StoredThreshold:
    """threshold.json (written by anovit.scoring.stored_fit): the decision threshold fitted on held-out normal
    images and its provenance: the rule, the images and their (leave-one-out) scores, when, and the
    :data:`THRESHOLD_KEYS` settings it was fitted at (with pixel_calibration, for the record)."""

    value: float
    settings: dict[str, Any]  # compared whole with a detector's (anovit.scoring.stored_fit.differences)
    rule: str | None = None
    n_images: int | None = None
    images: tuple[str, ...] = ()  # relative to the run's data folder where inside it
    scores: tuple[float, ...] = ()
    created_at: str | None = None


def read_stored_threshold(folder: Path) -> StoredThreshold | None:
    """``folder``/threshold.json (a run folder, or a unified run's class folder); None when it has none.
    CheckpointError naming the file when it has no finite numeric "value" or lacks a setting."""
    path = Path(folder) / ckpt.THRESHOLD
    if not path.is_file():
        return None
    data = ckpt.read_json(path)
    missing = [k for k in ("value",) + THRESHOLD_KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}; refit with anovit evaluate --refit-threshold")
    value = data["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CheckpointError(f"{path}: field 'value' must be a finite number; got {value!r}")
    return StoredThreshold(
        value=float(value), settings={k: data.get(k) for k in THRESHOLD_KEYS + ("pixel_calibration",)},
        rule=ckpt.typed_field(data, "rule", str, path), n_images=ckpt.typed_field(data, "n_images", int, path),
        images=tuple(str(p) for p in data.get("images") or ()), scores=tuple(float(s) for s in data.get("scores") or ()),
        created_at=ckpt.typed_field(data, "created_at", str, path))


def verbatim_json(folder: Path, name: str, *, optional: bool = False) -> Any:
    """The JSON of the run file ``name`` in ``folder`` as written, for code that needs it whole: rebuilding a
    TrainConfig from training.json, comparing it on resume, the Hub publishing the files and their model card.
    Everything else reads the record. ``optional``: {} when the file is missing. CheckpointError naming the file
    when it is missing (unless ``optional``) or not valid JSON."""
    path = Path(folder) / name
    return {} if optional and not path.is_file() else ckpt.read_json(path)
