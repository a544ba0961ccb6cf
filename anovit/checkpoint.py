"""Run folders on disk: model.safetensors + config.json + metrics.json (the Hub's layout), plus
training.json, test_scores.csv and resume.safetensors with the optimiser state. Every file is written atomically (temp + rename)
and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import CheckpointError
from .models import build_model, config_from_dict, config_to_dict

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
RESUME = "resume.safetensors"
TRAINING = "training.json"  # the TrainConfig of the run (absent for a bare or pulled model)
TEST_SCORES = "test_scores.csv"  # one row per test image, written by anovit.evaluate.evaluate_run


def _atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` and rename the temp file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, default=str)))


def read_json(path: Path) -> Any:
    """Read JSON, naming the file in the error when it is missing or invalid."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from err


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically (tensors made contiguous and detached)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    _atomic(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or corrupt file is a CheckpointError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err


def save_model(run_dir: Path, model: nn.Module) -> Path:
    """Write the model's weights and config.json into ``run_dir`` (created if needed); ``run_dir``.

    That is a run folder without training record, and the layout of a Hub repo: :func:`anovit.hub.load_pretrained`
    reads it back, :func:`anovit.hub.push_model` publishes it.
    """
    run_dir = Path(run_dir)
    write_json(run_dir / CONFIG, config_to_dict(model))
    save_tensors(run_dir / WEIGHTS, model.state_dict())
    return run_dir


def load_state_checked(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``model``, refusing missing/unexpected keys or shape mismatches by name."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s) e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s) e.g. {unexpected[:3]}")
        if wrong:
            parts.append(f"shape mismatch {wrong[:3]}")
        raise CheckpointError(f"weights in {source} do not match its config: " + "; ".join(parts))
    model.load_state_dict(state)


def load_model(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from ``run_dir``/config.json and load ``model.safetensors`` (eval mode).

    ImageNet weights are never fetched here: the checkpoint holds every encoder weight.
    """
    run_dir = Path(run_dir)
    try:
        model_type, config = config_from_dict(read_json(run_dir / CONFIG))
    except (TypeError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{run_dir / CONFIG}: {err}") from err
    if hasattr(config, "pretrained"):
        config.pretrained, config.encoder_weights = False, None
    model = build_model(model_type, config)
    load_state_checked(model, load_tensors(run_dir / WEIGHTS), run_dir / WEIGHTS)
    return model.to(device).eval()


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json of a run, or {} when it has none yet."""
    path = Path(run_dir) / METRICS
    return read_json(path) if path.is_file() else {}


def update_metrics(run_dir: Path, **sections: Any) -> dict[str, Any]:
    """Merge ``sections`` into metrics.json atomically and return the result."""
    metrics = read_metrics(run_dir)
    metrics.update(sections)
    write_json(Path(run_dir) / METRICS, metrics)
    return metrics
