"""What the Hub page offers and lists: the curated repos (anovit/hub/hub_models.json), the anovit repos in
the local Hub cache (loadable offline), the run folders pulled from the Hub and their model cards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runs import checkpoint as ckpt
from ..utils.errors import CheckpointError
from .repo import CARD, SOURCE, parse_repo_spec
from ..models import MODELS
from ..runs.catalog import list_runs
from ..runs.record import RunRecord, read_run

CURATED_FILE = Path(__file__).with_name("hub_models.json")


@dataclass(frozen=True)
class CuratedModel:
    """An entry of the curated list (anovit/hub/hub_models.json)."""

    repo_id: str
    title: str


def curated_models(path: Path = CURATED_FILE) -> list[CuratedModel]:
    """The curated repos offered on the Hub page; CheckpointError naming the file and entry if malformed."""
    try:
        entries = json.loads(Path(path).read_text())["models"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path} must be JSON with a list under \"models\": {err}") from err
    models = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("title"), str):
            raise CheckpointError(f"{path}: models[{i}] must be an object with \"repo_id\" and \"title\" strings")
        try:
            parse_repo_spec(str(entry.get("repo_id", "")))
        except CheckpointError as err:
            raise CheckpointError(f"{path}: models[{i}]: {err}") from err
        models.append(CuratedModel(entry["repo_id"], entry["title"]))
    return models


def cached_repos() -> list[str]:
    """Repo ids of anovit checkpoints in the local Hub cache (loadable offline), sorted."""
    from huggingface_hub import constants

    found = set()
    for config in Path(constants.HF_HUB_CACHE).glob("models--*--*/snapshots/*/config.json"):
        try:
            model_type = read_run(config.parent).model_type
        except (OSError, CheckpointError):
            continue
        if model_type in MODELS:
            found.add(config.parents[2].name.removeprefix("models--").replace("--", "/", 1))
    return sorted(found)


def card_text(run_dir: Path) -> str | None:
    """The model card of a run folder without its YAML metadata, None when it has no README.md."""
    from huggingface_hub import ModelCard

    path = Path(run_dir) / CARD
    return ModelCard.load(path).text if path.is_file() else None


def pulled_runs(root: Path | None = None) -> list[tuple[RunRecord, dict[str, Any]]]:
    """Run folders that came from the Hub, with their origin (repo id, revision, commit)."""
    return [(run, ckpt.read_json(run.path / SOURCE)) for run in list_runs(root) if (run.path / SOURCE).is_file()]
