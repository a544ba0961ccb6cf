"""Run folders on disk: model.safetensors + config.json + metrics.json (the Hub's layout), plus
training.json, test_scores.csv, calibration.safetensors + threshold.json (anovit.scoring.stored_fit) and
resume.safetensors with the optimiser state. Every file is written atomically (temp + rename)
and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..utils.errors import CheckpointError
from ..models import build_model, config_from_dict, config_to_dict

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
RESUME = "resume.safetensors"
TRAINING = "training.json"  # the TrainConfig of the run (absent for a bare or pulled model)
TEST_SCORES = "test_scores.csv"  # one row per test image, written by anovit.evaluation.evaluate.evaluate_run
CALIBRATION = "calibration.safetensors"  # per-pixel anomaly-map statistics (anovit.scoring.stored_fit)
THRESHOLD = "threshold.json"  # the decision threshold and its provenance (anovit.scoring.stored_fit)
DETECTOR = "detector.json"  # a saved Detector's sigma, score function, precision and threshold (anovit.hub.pretrained)
PIXEL_HISTOGRAMS = "pixel_histograms.npz"  # per-image pixel histograms of the test split (anovit.evaluation.pixel_histograms)
CLASSES = "classes"  # a unified run's folder of per-class fits and test files: classes/<class>/ (anovit.runs.catalog)


def _fresh_path(parent: Path, prefix: str, suffix: str, directory: bool = False) -> Path:
    """Create a new empty file (or folder) with a random name in ``parent`` and return its path.

    Unlike ``tempfile.mkstemp``/``mkdtemp`` (modes 0600/0700) it is created with mode 0666/0777
    less the process umask, as any other file: a Streamlit server running as another user can
    read the run files once they are renamed into place.
    """
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            if directory:
                os.mkdir(path, 0o777)
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {parent}")


def fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent`` (mode 0777 less the umask), for assembling files before a rename."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    return _fresh_path(Path(parent), prefix, "", directory=True)


def _atomic(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` and rename the temp file onto ``path``.

    A failed write (disk full, no permission) leaves ``path`` as it was and raises CheckpointError
    naming the file and saying that its previous version is intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(_fresh_path(path.parent, f".{path.name}.", ".tmp"))
    mode = stat.S_IMODE(os.stat(tmp).st_mode)  # 0666 less the umask
    try:
        write(tmp)
        os.chmod(tmp, mode)  # a writer that recreates the file (safetensors does, as 0600) gets it back
        os.replace(tmp, path)
    except (OSError, SafetensorError) as err:  # safetensors reports its own write errors as SafetensorError
        kept = f"the previous {path.name} is intact" if path.exists() else f"no earlier {path.name} existed"
        raise CheckpointError(f"could not write {path} ({getattr(err, 'strerror', None) or err}); {kept}") from err
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


def typed_field(data: Mapping[str, Any], name: str, kind: Callable[[Any], Any], source: Path) -> Any:
    """``data[name]`` converted by ``kind``; None when missing or null; CheckpointError naming the file and field."""
    value = data.get(name)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise CheckpointError(f"{source}: field '{name}' must be {getattr(kind, '__name__', kind)}; "
                              f"got {value!r}") from None


def json_object(data: Any, source: Path) -> dict[str, Any]:
    """``data`` when it is a JSON object; CheckpointError naming ``source`` otherwise."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{source} must hold a JSON object; got {type(data).__name__}")
    return data


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

    That is a run folder without training record, and the layout of a Hub repo: :func:`anovit.hub.repo.load_pretrained`
    reads it back, :func:`anovit.hub.repo.push_model` publishes it.
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


def read_config(run_dir: Path) -> tuple[str, Any]:
    """(model type, checked config dataclass) of ``run_dir``/config.json; CheckpointError naming the file and field."""
    path = Path(run_dir) / CONFIG
    data = read_json(path)
    try:
        return config_from_dict(data)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from err


def load_model(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model from ``run_dir``/config.json and load ``model.safetensors`` (eval mode).

    ImageNet weights are never fetched here: the checkpoint holds every encoder weight.
    """
    run_dir = Path(run_dir)
    model_type, config = read_config(run_dir)
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


def update_metrics_entry(run_dir: Path, section: str, key: str, value: Any) -> None:
    """Set ``key`` of the object ``section`` of metrics.json (e.g. one class of a unified run's "per_class"),
    keeping its other keys."""
    update_metrics(run_dir, **{section: {**(read_metrics(run_dir).get(section) or {}), key: value}})
