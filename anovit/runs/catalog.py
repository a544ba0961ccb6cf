"""Finding and describing run folders (trained or pulled checkpoints) for the CLI and the app."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from ..data.paths import workspace_dir
from ..utils.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_checkpoint_dir() -> Path:
    """``$ANOVIT_CHECKPOINTS`` if set, else checkpoints/ in the workspace (the checkout, or the current directory)."""
    return Path(os.environ.get("ANOVIT_CHECKPOINTS", workspace_dir() / "checkpoints"))


@dataclass
class RunInfo:
    """What a run folder holds: model config, training config (absent for pulled models), metrics."""

    path: Path
    config: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "done"  # its training job's state (done, cancelled, failed); "done" without a job (CLI, Hub)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", "?"))

    @property
    def dataset(self) -> str | None:
        return self.training.get("dataset")

    @property
    def category(self) -> str | None:
        return self.training.get("category")

    @property
    def test(self) -> dict[str, Any]:
        """The test-split summary, {} before evaluation."""
        return self.metrics.get("test", {})


def read_run(path: Path) -> RunInfo:
    """Describe one run folder; raises CheckpointError if it has no config.json or weights, or if
    config.json, training.json or metrics.json does not hold a JSON object."""
    path = Path(path)
    if not (path / ckpt.WEIGHTS).is_file():
        raise CheckpointError(f"{path} has no {ckpt.WEIGHTS}")
    training_file = path / ckpt.TRAINING
    info = RunInfo(
        path=path,
        config=ckpt.read_json(path / ckpt.CONFIG),
        training=ckpt.read_json(training_file) if training_file.is_file() else {},
        metrics=ckpt.read_metrics(path),
    )
    for name, data in ((ckpt.CONFIG, info.config), (ckpt.TRAINING, info.training), (ckpt.METRICS, info.metrics)):
        if not isinstance(data, dict):
            raise CheckpointError(f"{path / name} must hold a JSON object; got {type(data).__name__}")
    return info


def run_sigma(path: Path) -> float:
    """The smoothing sigma (px) a run is scored with: its training.json's "sigma", else the
    DEFAULT_SIGMA of runs trained before sigma was recorded (and of pulled models)."""
    from ..models import DEFAULT_SIGMA

    training = Path(path) / ckpt.TRAINING
    sigma = ckpt.read_json(training).get("sigma") if training.is_file() else None
    return float(sigma) if sigma is not None else DEFAULT_SIGMA


def run_score(path: Path) -> str:
    """The score function a run's anomaly maps use (anovit.scoring.anomaly_map.error_map): its training.json's
    "score", else "l2" (eq. 6), that of runs trained before the score was recorded (and of pulled models)."""
    from ..models import DEFAULT_SCORE

    training = Path(path) / ckpt.TRAINING
    score = ckpt.read_json(training).get("score") if training.is_file() else None
    return str(score) if score is not None else DEFAULT_SCORE


def run_precision(path: Path) -> str | None:
    """The precision ("bf16" or "fp32") a run is scored in by default (see :mod:`anovit.utils.runtime`): its
    training.json's "precision", resolved once when training started; runs trained before it was recorded:
    the precision their training used (metrics.json's training "bf16"); None when neither is recorded
    (e.g. a pulled model without them), which :func:`anovit.utils.runtime.scoring_bf16` resolves by the device.
    CheckpointError for a recorded value other than "bf16" or "fp32"."""
    from ..utils.runtime import PRECISIONS, precision_name

    training_file = Path(path) / ckpt.TRAINING
    precision = ckpt.read_json(training_file).get("precision") if training_file.is_file() else None
    if precision is None:
        training = _read_object(Path(path) / ckpt.METRICS).get("training")
        trained_bf16 = training.get("bf16") if isinstance(training, dict) else None
        return precision_name(trained_bf16) if isinstance(trained_bf16, bool) else None
    if precision not in PRECISIONS:
        raise CheckpointError(f"{training_file}: field 'precision' must be one of {PRECISIONS}; got {precision!r}")
    return str(precision)


def run_classes(path: Path) -> list[str] | None:
    """The classes a unified run (one model for every class, category "all") trained on: its training.json's
    "classes"; None for a per-class run (and for runs and pulled models without the field)."""
    classes = _read_object(Path(path) / ckpt.TRAINING).get("classes")
    return [str(c) for c in classes] if isinstance(classes, list) else None


def class_dir(path: Path, category: str) -> Path:
    """Where a unified run keeps what belongs to one of its classes: the calibration statistics and threshold
    fitted on that class's held-out normal images (calibration.safetensors, threshold.json) and the class's
    test files (test_scores.csv, pixel_histograms.npz): ``<run>/classes/<category>/``."""
    return Path(path) / ckpt.CLASSES / category


SCORING_FIELDS = ("image_calibration", "pixel_calibration", "calibration_shrinkage", "pooling", "pooling_top_percent")


def run_scoring(path: Path) -> dict[str, Any]:
    """The calibration and pooling a run scores with (:data:`SCORING_FIELDS`): its training.json's, else
    those of runs trained before they were recorded (and of pulled models without one): the raw map and
    eq. 7's max (the first of anovit.models.CALIBRATIONS and POOLINGS)."""
    from ..models import CALIBRATIONS, DEFAULT_SHRINKAGE, DEFAULT_TOP_PERCENT, POOLINGS

    defaults = dict(zip(SCORING_FIELDS, (CALIBRATIONS[0], CALIBRATIONS[0], DEFAULT_SHRINKAGE, POOLINGS[0],
                                         DEFAULT_TOP_PERCENT)))
    training = _read_object(Path(path) / ckpt.TRAINING)
    return {k: training[k] if training.get(k) is not None else v for k, v in defaults.items()}


PROTOCOL_FIELDS = ("epochs_run", "lr", "batch_size", "max_train_images", "decoder", "mask_ratio", "image_size",
                   "score", "sigma", "image_calibration", "pixel_calibration", "pooling", "pooling_top_percent")


def run_protocol(path: Path) -> dict[str, Any]:
    """The training budget and scoring protocol of a run folder, for tables beside its numbers:
    epochs run, learning rate, batch size, training images cap, decoder and mask ratio (AnoViT), image
    size, and the score function, sigma, calibrations and pooling its test metrics used (None where the folder
    or the value is missing; runs from before these were recorded: mask ratio 0, score "l2", the raw map
    ("none") and eq. 7's "max")."""
    from ..models import CALIBRATIONS, POOLINGS

    training, config, metrics = (_read_object(Path(path) / name) for name in (ckpt.TRAINING, ckpt.CONFIG, ckpt.METRICS))
    history = metrics.get("training", {}).get("history", [])
    test = metrics.get("test", {})
    anovit = config.get("model_type") == "anovit"
    return {
        "epochs_run": len(history) or None, "lr": training.get("lr"), "batch_size": training.get("batch_size"),
        "max_train_images": training.get("max_train_images"),
        "decoder": config.get("decoder", "stable") if anovit else None,
        "mask_ratio": config.get("mask_ratio", 0.0) if anovit else None, "image_size": config.get("image_size"),
        "score": test.get("score", "l2") if test else None, "sigma": test.get("sigma"),
        "image_calibration": test.get("image_calibration", CALIBRATIONS[0]) if test else None,
        "pixel_calibration": test.get("pixel_calibration", CALIBRATIONS[0]) if test else None,
        "pooling": test.get("pooling", POOLINGS[0]) if test else None,
        "pooling_top_percent": test.get("pooling_top_percent") if test else None,
    }


def _read_object(path: Path) -> dict[str, Any]:
    """A JSON object file's content; {} when it is missing, unreadable or not an object."""
    try:
        data = ckpt.read_json(path) if path.is_file() else {}
    except CheckpointError:
        return {}
    return data if isinstance(data, dict) else {}


SWITCH_FIELDS = ("model", "preset", "encoder", "pretrained", "decoder", "mask_ratio", "loss", "score", "sigma",
                 "epochs", "lr", "image_size", "seed")


def run_switches(path: Path) -> dict[str, Any]:
    """The settings an ablation compares, of one run folder, with the defaults of runs recorded before a
    setting existed: model and preset; AnoViT's encoder, pretrained, decoder ("stable") and mask_ratio (0;
    None for the autoencoders); the loss and score function ("l2"), the sigma (training.json's, else
    DEFAULT_SIGMA), epochs, lr, image size and seed (None where training.json is missing)."""
    from ..models import DEFAULT_SCORE

    path = Path(path)
    training, config = _read_object(path / ckpt.TRAINING), _read_object(path / ckpt.CONFIG)
    anovit = config.get("model_type") == "anovit"
    return {
        "model": config.get("model_type"), "preset": training.get("preset"),
        "encoder": config.get("encoder") if anovit else None,
        "pretrained": bool(config.get("pretrained") or config.get("encoder_weights")) if anovit else None,
        "decoder": config.get("decoder", "stable") if anovit else None,
        "mask_ratio": float(config.get("mask_ratio", 0.0)) if anovit else None,
        "loss": training.get("loss", DEFAULT_SCORE) if training else None,
        "score": run_score(path), "sigma": run_sigma(path),
        "epochs": training.get("epochs"), "lr": training.get("lr"),
        "image_size": config.get("image_size"), "seed": training.get("seed"),
    }


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every readable run folder directly under ``root`` (default: the checkpoints folder), newest first.

    Folders that are not runs (no weights) or are being written are left out; a folder whose
    JSON is corrupt is left out too, and its problem is visible through :func:`read_run`.
    """
    root = Path(root) if root is not None else default_checkpoint_dir()
    if not root.is_dir():
        return []
    runs = []
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            runs.append(read_run(path))
        except CheckpointError:
            continue
    return sorted(runs, key=lambda r: (r.path / ckpt.WEIGHTS).stat().st_mtime, reverse=True)
