"""The Hugging Face conventions for a :class:`~anovit.detector.Detector`: the folder behind
``Detector.from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` (see docs/hub.md).

A saved folder is a run folder: the scoring files of the folder the detector was loaded from
(:data:`SCORING_FILES`, copied as they are) plus ``detector.json``, the detector's own decision
settings (sigma, score function, precision, threshold). A folder without ``detector.json`` (a run
folder written by ``train``, or before this file existed) loads with the run's sigma and score
function and no threshold. Loading goes through :func:`anovit.hub.checkpoint_folder`: safetensors
only, a config checked strictly against its weights, a Hub id fetched (or refused offline in one
sentence) by :func:`anovit.hub.fetch`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt
from . import hub
from .errors import CheckpointError
from .runs import run_score, run_sigma
from .runtime import bf16_supported, resolve_device

_LOG = logging.getLogger(__name__)

# The files a detector is scored from, copied from its source folder by save_pretrained; a new scoring
# file (calibration statistics, a stored threshold) joins by being added here and to hub.REPO_FILES.
SCORING_FILES = (ckpt.CONFIG, ckpt.WEIGHTS, ckpt.TRAINING, ckpt.METRICS)
SETTINGS = ("sigma", "score_function", "bf16", "threshold")  # the fields of detector.json


def settings_of(folder: Path, device: str) -> dict[str, Any]:
    """The Detector keyword arguments stored in `folder`: detector.json's, else the run's sigma and
    score function; a stored bf16 precision falls back to float32 (with a warning) on a device without it."""
    stored = ckpt.read_json(folder / ckpt.DETECTOR) if (folder / ckpt.DETECTOR).is_file() else {}
    if not isinstance(stored, dict) or not set(stored) <= set(SETTINGS):
        raise CheckpointError(f"{folder / ckpt.DETECTOR} is not valid (expected an object with the fields "
                              f"{', '.join(SETTINGS)})")
    settings = {"sigma": run_sigma(folder), "score_function": run_score(folder), "threshold": None, "bf16": None,
                **stored}
    if settings["bf16"] and not bf16_supported(resolve_device(device)):
        _LOG.warning("%s was saved with bf16 scores but %s lacks bf16: scoring in float32, so scores (and the "
                     "stored threshold) may differ slightly", folder, resolve_device(device))
        settings["bf16"] = False
    return settings


def load_folder(path_or_repo_id: str | Path, revision: str | None = None) -> Path:
    """The folder to load: a run folder, a saved folder, or a Hub repo's snapshot
    (:func:`anovit.hub.checkpoint_folder`)."""
    return hub.checkpoint_folder(path_or_repo_id, revision)


def save_folder(detector: Any, folder: str | Path) -> Path:
    """Write `detector` into `folder` (created; its earlier files replaced) and return it.

    The scoring files come from ``detector.source_dir`` (the folder it was loaded from); a detector built
    from a bare model writes its config.json + model.safetensors instead. detector.json always holds its
    sigma, score function, precision and threshold.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = detector.source_dir
    if source is not None and Path(source).resolve() != folder.resolve():
        for name in SCORING_FILES:
            if (Path(source) / name).is_file():
                shutil.copyfile(Path(source) / name, folder / name)
    elif source is None:
        ckpt.save_model(folder, detector.model)
    ckpt.write_json(folder / ckpt.DETECTOR, {name: getattr(detector, name) for name in SETTINGS})
    return folder


def push_detector(detector: Any, repo_id: str, **kwargs: Any) -> str:
    """Publish `detector` as the Hub model repo `repo_id` through :func:`anovit.hub.push`; the commit URL."""
    name = Path(detector.source_dir).name if detector.source_dir is not None else type(detector.model).__name__
    if kwargs.get("commit_message") is None:
        kwargs["commit_message"] = f"Upload {name} with anovit"
    with tempfile.TemporaryDirectory() as tmp:
        return hub.push(save_folder(detector, Path(tmp) / "detector"), repo_id, **kwargs)
