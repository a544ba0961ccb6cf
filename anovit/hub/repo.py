"""Hugging Face Hub: publish a run folder, pull a published one into checkpoints/, load models.

A repo mirrors a run folder: ``config.json`` + ``model.safetensors`` (+ ``metrics.json``,
``training.json``) and a generated ``README.md`` model card. Only those files are ever downloaded;
a repo with nothing but pickled weights (.bin, .pt, ...) is refused and nothing is unpickled; no
remote code runs. Repo ids are validated before any request. Without network, repos already in the
local Hub cache work as they are (``local_files_only``); others fail with one sentence.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..runs import checkpoint as ckpt
from ..utils.errors import AnovitError, CheckpointError, OfflineError
from .model_card import model_card_for
from ..utils.network import hub_offline_forced, hub_reachable
from ..runs.catalog import default_checkpoint_dir
from ..runs.record import read_training_record, verbatim_json
from ..scoring.anomaly_map import check_score, check_sigma

CARD = "README.md"
REPO_FILES = (ckpt.CONFIG, ckpt.WEIGHTS, ckpt.METRICS, ckpt.TRAINING, ckpt.CALIBRATION, ckpt.THRESHOLD,
              ckpt.DETECTOR, CARD)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SOURCE = "hub.json"  # written next to a pulled run: repo id, revision and commit it came from
PARTIAL = ".hub-partial"  # pulls are assembled here (below the runs, so never listed) then renamed
Progress = Callable[[float, str], None]


def validate_repo_id(repo_id: str) -> str:
    """``repo_id`` stripped, if it is a valid ``ORG/NAME``; CheckpointError saying why not otherwise."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    repo_id = str(repo_id).strip()
    if repo_id.count("/") != 1:
        raise CheckpointError(f"repo id {repo_id!r} must have the form ORG/NAME")
    try:
        hf_validate(repo_id)
    except HFValidationError as err:
        raise CheckpointError(f"repo id {repo_id!r} is not valid: {err}") from err
    return repo_id


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """``"ORG/NAME[@revision]"`` → (validated repo id, revision or None)."""
    repo_id, at, revision = str(spec).strip().partition("@")
    if at and (not revision or re.search(r"\s|\.\.", revision) or revision.startswith("/")):
        raise CheckpointError(f"revision {revision!r} in {spec!r} must be a branch, tag or commit hash")
    return validate_repo_id(repo_id), revision or None


def local_folder_name(repo_id: str, revision: str | None = None) -> str:
    """Folder of a pulled repo under checkpoints/: ``org--name`` (``org--name@revision`` for a revision)."""
    name = repo_id.replace("/", "--")
    return f"{name}@{re.sub(r'[^A-Za-z0-9._-]', '_', revision)}" if revision else name


def check_repo_files(files: Iterable[str], source: str) -> None:
    """Refuse a repo or folder without config.json + model.safetensors, naming pickles if that is all it has."""
    files = list(files)
    top = {f for f in files if "/" not in f}
    if ckpt.WEIGHTS not in top:
        pickles = sorted(f for f in files if f.lower().endswith(PICKLE_SUFFIXES))
        if pickles:
            raise CheckpointError(
                f"{source} only has pickled weights ({', '.join(pickles[:3])}); anovit loads {ckpt.WEIGHTS} "
                "only and never unpickles downloaded files")
        raise CheckpointError(f"{source} has no {ckpt.WEIGHTS}; an anovit checkpoint holds {ckpt.CONFIG} + {ckpt.WEIGHTS}")
    if ckpt.CONFIG not in top:
        raise CheckpointError(f"{source} has no {ckpt.CONFIG} describing the model of its {ckpt.WEIGHTS}")


def offline_reason() -> str:
    """Why the Hub is not used: "HF_HUB_OFFLINE is set" or "the Hugging Face Hub cannot be reached"."""
    return "HF_HUB_OFFLINE is set" if hub_offline_forced() else "the Hugging Face Hub cannot be reached"


def not_cached_message(repo_id: str, revision: str | None = None) -> str:
    """The one sentence shown when a repo is neither reachable nor in the local cache."""
    why = offline_reason()
    spec = f"{repo_id}@{revision}" if revision else repo_id
    return f"{spec} is not in the local Hugging Face cache and {why}; connect once to download it, after which it works offline."


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _remote_files(repo_id: str, revision: str | None) -> list[str] | None:
    """The repo's file list, or None when the Hub cannot be asked (then the local cache is used)."""
    if not hub_reachable():
        return None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        return HfApi(library_name="anovit").list_repo_files(repo_id, revision=revision)
    except GatedRepoError as err:
        raise CheckpointError(f"{repo_id} is gated: accept its conditions on the Hub and log in (hf auth login)") from err
    except RepositoryNotFoundError as err:
        raise CheckpointError(f"{repo_id} does not exist on the Hub, or it is private and no token with access is "
                              "set (hf auth login or HF_TOKEN)") from err
    except RevisionNotFoundError as err:
        raise CheckpointError(f"revision {revision!r} does not exist in {repo_id}") from err
    except Exception:  # a dropped connection or a Hub outage: fall back to the local cache
        return None


def fetch(repo_id: str, revision: str | None = None) -> Path:
    """The repo's snapshot folder in the local Hub cache, downloading only :data:`REPO_FILES` when online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id = validate_repo_id(repo_id)
    files = _remote_files(repo_id, revision)
    if files is not None:
        check_repo_files(files, repo_id)
    try:
        path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(REPO_FILES),
                                      local_files_only=files is None, library_name="anovit"))
    except LocalEntryNotFoundError as err:
        raise OfflineError(not_cached_message(repo_id, revision)) from err
    except HfHubHTTPError as err:
        raise AnovitError(f"downloading {repo_id} failed: {_first_line(err)}") from err
    check_repo_files(os.listdir(path), f"{repo_id} (cached at {path})")
    return path


def _check_model_type(folder: Path, model_type: str | None) -> None:
    if model_type is None:
        return
    found, _ = ckpt.read_config(folder)
    if found != model_type:
        raise CheckpointError(f"{folder / ckpt.CONFIG} describes a {found!r} model, not {model_type!r}")


def load_pretrained(repo_id_or_dir: str | Path, revision: str | None = None, *, model_type: str | None = None,
                    device: str = "cpu") -> nn.Module:
    """A model (eval mode) from a run folder or a Hub repo ``ORG/NAME[@revision]``.

    ``model_type`` ("anovit" or "cae") refuses a checkpoint of the other model; a config that does
    not match its weights is refused naming the mismatch.
    """
    path = checkpoint_folder(repo_id_or_dir, revision)
    _check_model_type(path, model_type)
    return ckpt.load_model(path, device)


def checkpoint_folder(repo_id_or_dir: str | Path, revision: str | None = None) -> Path:
    """The folder of a run folder, a saved folder or a Hub repo ``ORG/NAME[@revision]`` (its snapshot in
    the local Hub cache, see :func:`fetch`); CheckpointError when it holds no safetensors checkpoint."""
    path = Path(repo_id_or_dir).expanduser()
    if path.is_dir():
        check_repo_files(os.listdir(path), str(path))
    elif isinstance(repo_id_or_dir, Path):
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    else:
        try:
            repo_id, spec_revision = parse_repo_spec(str(repo_id_or_dir))
        except CheckpointError as err:
            raise CheckpointError(f"{repo_id_or_dir!r} is neither a folder nor a Hub repo id: {err}") from err
        path = fetch(repo_id, revision or spec_revision)
    return path


def _check_training(folder: Path) -> None:
    """Check ``folder``'s training.json if it has one: CheckpointError naming the file and the field."""
    from ..training.config import load_training

    if (folder / ckpt.TRAINING).is_file():
        load_training(folder)


def _place(snapshot: Path, dest: Path, source: dict[str, Any]) -> None:
    """Copy the repo files of ``snapshot`` into ``dest`` (replacing it) without a half-written run ever listed."""
    staging = dest.parent / PARTIAL
    tmp = ckpt.fresh_dir(staging, dest.name)  # the usual umask, not mkdtemp's 0700: the app may run as another user
    try:
        for name in REPO_FILES:
            if (snapshot / name).is_file():
                shutil.copyfile(snapshot / name, tmp / name)  # follows the cache's blob links; mtime = now
        ckpt.write_json(tmp / SOURCE, source)
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(dir=staging, prefix=f"{dest.name}.old"))
            dest.rename(old / dest.name)
        tmp.rename(dest)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def pull(spec: str, output: Path | None = None, progress: Progress | None = None) -> Path:
    """Download ``ORG/NAME[@revision]`` (or take it from the cache) into a run folder and return it.

    The folder (default ``checkpoints/org--name``) appears in :func:`anovit.runs.catalog.list_runs`, hence in
    the app's Gallery, Heatmaps and Inspect. Its model is loaded and its sigma and score function checked
    (what a :class:`~anovit.scoring.detector.Detector` is built from) before it is placed, so a config that does not
    match its weights never lands there.
    """
    notify = progress or (lambda fraction, message: None)
    repo_id, revision = parse_repo_spec(spec)
    dest = Path(output) if output is not None else default_checkpoint_dir() / local_folder_name(repo_id, revision)
    if dest.exists() and not (dest / SOURCE).is_file() and any(dest.iterdir()):
        raise CheckpointError(f"{dest} exists and was not pulled from the Hub; choose another output folder")
    notify(0.0, f"Looking up {repo_id}…")
    snapshot = fetch(repo_id, revision)
    notify(0.6, "Checking that the config matches the weights…")
    ckpt.load_model(snapshot)  # what Gallery, Heatmaps and Inspect will build a Detector from
    training = read_training_record(snapshot)
    check_sigma(training.sigma)
    check_score(training.score)
    _check_training(snapshot)
    notify(0.85, f"Copying into {dest}…")
    _place(snapshot, dest, {"repo_id": repo_id, "revision": revision, "commit": snapshot.name})
    notify(1.0, f"Ready: {dest.name}")
    return dest


def public_json(data: Any) -> Any:
    """``data`` without this machine's paths: ``data_root`` becomes null (a puller gives their own
    copy of the data) and any other absolute path its file name (e.g. ``encoder_weights``)."""
    if isinstance(data, dict):
        return {k: None if k == "data_root" else public_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [public_json(v) for v in data]
    if isinstance(data, str) and os.path.isabs(data):
        return Path(data).name
    return data


def stage_repo(run_dir: Path, folder: Path, *, repo_id: str | None = None, license: str = "other") -> list[str]:
    """Copy what a repo publishes of ``run_dir`` into ``folder`` and write its model card; the file names.

    The run is loaded first, so an inconsistent run (config vs weights) is never published; the JSON
    files go through :func:`public_json`, so no local path is published.
    """
    run_dir, folder = Path(run_dir), Path(folder)
    if not run_dir.is_dir():
        raise CheckpointError(f"checkpoint folder {run_dir} does not exist")
    check_repo_files(os.listdir(run_dir), str(run_dir))
    ckpt.load_model(run_dir)
    _check_training(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        if name.endswith(".json") and (run_dir / name).is_file():
            ckpt.write_json(folder / name, public_json(verbatim_json(run_dir, name)))
        elif name != CARD and (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, folder / name)
    (folder / CARD).write_text(model_card_for(run_dir, repo_id=repo_id, license=license), encoding="utf-8")
    return sorted(os.listdir(folder))


def push(run_dir: Path, repo_id: str, *, private: bool = False, license: str = "other",
         commit_message: str | None = None, token: str | None = None) -> str:
    """Publish ``run_dir`` as the model repo ``repo_id`` (created if needed); the commit's URL.

    Uploads config.json, model.safetensors, metrics.json, training.json, the fitted calibration.safetensors
    and threshold.json where the run has them, and a generated README.md.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id, run_dir = validate_repo_id(repo_id), Path(run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        stage_repo(run_dir, Path(tmp), repo_id=repo_id, license=license)
        if not hub_reachable():
            raise OfflineError(f"cannot publish {repo_id}: {offline_reason()}")
        api = HfApi(token=token, library_name="anovit")
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, folder_path=tmp,
                                       commit_message=commit_message or f"Upload {run_dir.name} with anovit")
        except HfHubHTTPError as err:
            raise AnovitError(f"the Hub refused to publish {repo_id}: {_first_line(err)} "
                              "(log in with `hf auth login` or set HF_TOKEN)") from err
    return str(commit.commit_url)


def push_model(model: nn.Module, repo_id: str, *, private: bool = False, license: str = "other",
               commit_message: str | None = None) -> str:
    """Publish a bare model (config, weights and a generated model card, no metrics) as ``repo_id``; the commit URL."""
    with tempfile.TemporaryDirectory() as tmp:
        return push(ckpt.save_model(Path(tmp), model), repo_id, private=private, license=license,
                    commit_message=commit_message or f"Upload {type(model).__name__} with anovit")
