"""Finding run folders (trained or pulled checkpoints) for the CLI and the app, and describing them for tables:
the training protocol beside their numbers and the settings an ablation compares. Each folder is read into its
:class:`~anovit.runs.record.RunRecord`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from .record import RunRecord, read_run
from ..data.paths import workspace_dir
from ..utils.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_checkpoint_dir() -> Path:
    """``$ANOVIT_CHECKPOINTS`` if set, else checkpoints/ in the workspace (the checkout, or the current directory)."""
    return Path(os.environ.get("ANOVIT_CHECKPOINTS", workspace_dir() / "checkpoints"))


def class_dir(path: Path, category: str) -> Path:
    """Where a unified run keeps what belongs to one of its classes: the calibration statistics and threshold
    fitted on that class's held-out normal images (calibration.safetensors, threshold.json) and the class's
    test files (test_scores.csv, pixel_histograms.npz): ``<run>/classes/<category>/``."""
    return Path(path) / ckpt.CLASSES / category


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


def run_switches(run: RunRecord) -> dict[str, Any]:
    """The settings an ablation compares, of one run, with the defaults of runs recorded before a setting
    existed: model and preset; AnoViT's encoder, pretrained, decoder ("stable") and mask_ratio (0; None for the
    autoencoders); the loss ("l2"; None without training.json) and score function, the sigma (training.json's,
    else DEFAULT_SIGMA), epochs, lr, image size and seed (None where training.json is missing)."""
    from ..models import DEFAULT_SCORE

    config, training = run.model_config, run.training
    anovit = run.model_type == "anovit"
    return {
        "model": config.get("model_type"), "preset": training.preset,
        "encoder": config.get("encoder") if anovit else None,
        "pretrained": bool(config.get("pretrained") or config.get("encoder_weights")) if anovit else None,
        "decoder": config.get("decoder", "stable") if anovit else None,
        "mask_ratio": float(config.get("mask_ratio", 0.0)) if anovit else None,
        "loss": training.loss or DEFAULT_SCORE if training.recorded else None,
        "score": run.score, "sigma": run.sigma, "epochs": training.epochs, "lr": training.lr,
        "image_size": config.get("image_size"), "seed": training.seed,
    }


def list_runs(root: Path | None = None) -> list[RunRecord]:
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
