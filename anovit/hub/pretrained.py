"""The Hugging Face conventions for a :class:`~anovit.scoring.detector.Detector`: :class:`Detector` adds
``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` (as in transformers, timm, diffusers) to the
scoring layer's detector, here in the Hub layer so that scoring never imports Hub code (see
docs/architecture.md, docs/hub.md). ``anovit.Detector`` is this class.

A saved folder is a run folder: the scoring files of the folder the detector was loaded from
(:data:`SCORING_FILES`, copied as they are) plus ``detector.json``, the detector's own decision
settings (sigma, score function, precision, threshold). A folder without ``detector.json`` (a run
folder written by ``train``, or before this file existed) loads with the run's sigma and score
function and no threshold. Loading goes through :func:`anovit.hub.repo.checkpoint_folder`: safetensors
only, a config checked strictly against its weights, a Hub id fetched (or refused offline in one
sentence) by :func:`anovit.hub.repo.fetch`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Self

from ..runs import checkpoint as ckpt
from . import repo as hub
from ..scoring.detector import Detector as ScoringDetector
from ..utils.errors import CheckpointError
from ..runs.record import read_training_record
from ..utils.runtime import bf16_supported, resolve_device

_LOG = logging.getLogger(__name__)

# The files a detector is scored from, copied from its source folder by save_pretrained; a new scoring
# file (calibration statistics, a stored threshold) joins by being added here and to hub.REPO_FILES.
SCORING_FILES = (ckpt.CONFIG, ckpt.WEIGHTS, ckpt.TRAINING, ckpt.METRICS, ckpt.CALIBRATION, ckpt.THRESHOLD)
SETTINGS = ("sigma", "score_function", "bf16", "threshold")  # the fields of detector.json


def settings_of(folder: Path, device: str) -> dict[str, Any]:
    """The Detector keyword arguments stored in `folder`: detector.json's, else the run's sigma and
    score function; a stored bf16 precision falls back to float32 (with a warning) on a device without it."""
    stored = ckpt.read_json(folder / ckpt.DETECTOR) if (folder / ckpt.DETECTOR).is_file() else {}
    if not isinstance(stored, dict) or not set(stored) <= set(SETTINGS):
        raise CheckpointError(f"{folder / ckpt.DETECTOR} is not valid (expected an object with the fields "
                              f"{', '.join(SETTINGS)})")
    training = read_training_record(folder)
    settings = {"sigma": training.sigma, "score_function": training.score, "threshold": None, "bf16": None, **stored}
    if settings["bf16"] and not bf16_supported(resolve_device(device)):
        _LOG.warning("%s was saved with bf16 scores but %s lacks bf16: scoring in float32, so scores (and the "
                     "stored threshold) may differ slightly", folder, resolve_device(device))
        settings["bf16"] = False
    return settings


def load_folder(path_or_repo_id: str | Path, revision: str | None = None) -> Path:
    """The folder to load: a run folder, a saved folder, or a Hub repo's snapshot
    (:func:`anovit.hub.repo.checkpoint_folder`)."""
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
    """Publish `detector` as the Hub model repo `repo_id` through :func:`anovit.hub.repo.push`; the commit URL."""
    name = Path(detector.source_dir).name if detector.source_dir is not None else type(detector.model).__name__
    if kwargs.get("commit_message") is None:
        kwargs["commit_message"] = f"Upload {name} with anovit"
    with tempfile.TemporaryDirectory() as tmp:
        return hub.push(save_folder(detector, Path(tmp) / "detector"), repo_id, **kwargs)


class Detector(ScoringDetector):
    """:class:`anovit.scoring.detector.Detector` with the Hugging Face conventions: a run folder, a saved folder or a
    Hub repo in (``from_pretrained``), a folder (``save_pretrained``) or a Hub repo (``push_to_hub``) out.

    Example::

        detector = Detector.from_pretrained("checkpoints/synthetic-weave-anovit-cpu-tiny-s0")
        detector.save_pretrained("saved/weave")
        Detector.from_pretrained("saved/weave").score(images)  # equal scores, same threshold
    """

    source_dir: Path | None = None  # the folder from_pretrained loaded; save_pretrained copies its scoring files

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path, *, revision: str | None = None, bf16: bool | None = None,
                        device: str = "auto") -> Self:
        """The detector saved in a run folder (from ``train``), a folder from :meth:`save_pretrained`, or a Hub
        repo ``ORG/NAME[@revision]``, with its sigma, score function, precision and threshold (a run folder
        without detector.json: the run's sigma and score function, no threshold).

        Safetensors only, the config checked strictly against the weights, no encoder weights fetched.
        Raises CheckpointError for a folder without a checkpoint or an invalid repo id, and OfflineError
        (one sentence) for a Hub id that is neither reachable nor cached.
        """
        folder = load_folder(path_or_repo_id, revision)
        settings = settings_of(folder, device)
        if bf16 is not None:
            settings["bf16"] = bf16
        # from_run: the run's calibration and stored fit (threshold.json) where made at these settings
        detector = cls.from_run(folder, sigma=settings["sigma"], threshold=settings["threshold"], bf16=settings["bf16"],
                                device=device, score_function=settings["score_function"])
        detector.source_dir = folder
        return detector

    def save_pretrained(self, folder: str | Path) -> Path:
        """Save into ``folder`` what :meth:`from_pretrained` needs to score exactly as this detector does
        (the source folder's scoring files, and detector.json); return the folder."""
        return save_folder(self, folder)

    def push_to_hub(self, repo_id: str, *, private: bool = False, license: str = "other",
                    commit_message: str | None = None, token: str | None = None) -> str:
        """Publish this detector as the Hub model repo ``repo_id`` (created if needed, with a model card and no
        local paths; see :func:`anovit.hub.repo.push`); the commit's URL. OfflineError without the Hub."""
        return push_detector(self, repo_id, private=private, license=license, commit_message=commit_message,
                             token=token)
