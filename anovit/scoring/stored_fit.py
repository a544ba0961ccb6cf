"""What a run stores of its fit on normal validation images: ``calibration.safetensors`` (the per-pixel
anomaly-map statistics of :mod:`anovit.scoring.calibration`) and ``threshold.json`` (the decision threshold
and its provenance). Both are fitted once, written atomically, and used only while the settings they
were fitted at (precision, score function, sigma, calibration, pooling) are those being scored now.

Statistics depend on the precision, the score function and the sigma (:data:`STATISTICS_KEYS`); the
threshold also on the image calibration and the pooling (:data:`THRESHOLD_KEYS`). threshold.json is read back
typed by :func:`anovit.runs.record.read_stored_threshold`.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..runs.record import STATISTICS_KEYS, THRESHOLD_KEYS
from .calibration import MapStatistics
from ..utils.errors import CheckpointError

THRESHOLD_RULE = ("the smallest float32 above every anomaly score of the normal validation images held out during "
                  "training; with a calibration, each image's score uses statistics fitted without it (leave-one-out)")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_statistics(run_dir: Path, statistics: MapStatistics, settings: dict[str, Any]) -> None:
    """``run_dir``/calibration.safetensors: mean and var (H, W) float32, metadata strings (n_images, the
    :data:`STATISTICS_KEYS` of ``settings`` as JSON, created_at)."""
    metadata = {"n_images": str(statistics.n_images), "created_at": _now(),
                **{k: json.dumps(settings[k]) for k in STATISTICS_KEYS}}
    ckpt.save_tensors(Path(run_dir) / ckpt.CALIBRATION, {"mean": statistics.mean, "var": statistics.var}, metadata)


def read_statistics(run_dir: Path) -> tuple[MapStatistics, dict[str, Any]] | None:
    """(statistics, their settings) of ``run_dir``/calibration.safetensors; None when the run has none.
    CheckpointError naming the file when it is unreadable or lacks a tensor or a field."""
    from safetensors import safe_open

    path = Path(run_dir) / ckpt.CALIBRATION
    if not path.is_file():
        return None
    tensors = ckpt.load_tensors(path)
    try:
        with safe_open(str(path), "pt") as f:
            metadata = f.metadata() or {}
        settings = {k: json.loads(metadata[k]) for k in STATISTICS_KEYS}
        statistics = MapStatistics(tensors["mean"].float(), tensors["var"].float(), int(metadata["n_images"]))
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path} lacks a valid {err} (expected tensors mean, var and metadata n_images, "
                              f"{', '.join(STATISTICS_KEYS)}); refit with anovit evaluate --refit-threshold") from None
    if statistics.mean.shape != statistics.var.shape or statistics.mean.dim() != 2:
        raise CheckpointError(f"{path} holds mean {tuple(statistics.mean.shape)} and var {tuple(statistics.var.shape)}; "
                              "expected two (H, W) tensors of one shape")
    return statistics, settings


def write_threshold(run_dir: Path, threshold: float, settings: dict[str, Any], images: list[str],
                    scores: list[float]) -> None:
    """``run_dir``/threshold.json: value, rule, n_images, images (paths relative to the data folder) and
    their (leave-one-out) scores, the :data:`THRESHOLD_KEYS` of ``settings``, pixel_calibration (for the
    record) and created_at."""
    record = {"value": float(threshold), "rule": THRESHOLD_RULE, "n_images": len(images), "images": images,
              "scores": [float(v) for v in scores],
              **{k: settings[k] for k in THRESHOLD_KEYS}, "pixel_calibration": settings.get("pixel_calibration"),
              "created_at": _now()}
    ckpt.write_json(Path(run_dir) / ckpt.THRESHOLD, record)


def differences(stored: dict[str, Any], current: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """``"name stored -> current"`` for each of ``keys`` whose values differ (numbers compared as floats)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def same(a: Any, b: Any) -> bool:
        return float(a) == float(b) if number(a) and number(b) else a == b

    return [f"{k} {stored.get(k)!r} -> {current.get(k)!r}" for k in keys if not same(stored.get(k), current.get(k))]
