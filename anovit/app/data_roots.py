"""The data folders the Train page offers: the real sets beside the workspace (``../shared/data``: the
cookies and each validation set), the folders named in ``ANOVIT_DATA_ROOTS`` and those the checkpoints'
runs were trained on. Only folders in the MVTec AD layout (``<class>/train/good``) that exist are offered,
so a workspace without ``../shared`` simply offers fewer."""

from __future__ import annotations

import os
from pathlib import Path

from ..runs.catalog import REPO_ROOT
from ..runs.record import RunRecord

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DATA_ROOTS_ENV = "ANOVIT_DATA_ROOTS"  # more data folders, separated by os.pathsep


def is_mvtec_root(folder: Path) -> bool:
    """Whether ``folder`` holds at least one class folder with normal training images' folder (train/good)."""
    try:
        return folder.is_dir() and any((child / "train" / "good").is_dir() for child in folder.iterdir())
    except OSError:
        return False


def suggested_roots(runs: list[RunRecord], shared: Path = SHARED_DATA, env: str | None = None) -> list[str]:
    """The data folders to offer, each once, in this order: ``shared``'s own sets (``cookies``, then every
    ``validation/<set>``), the folders of ``env`` (default: ``$ANOVIT_DATA_ROOTS``), the runs' recorded ones."""
    env = os.environ.get(DATA_ROOTS_ENV, "") if env is None else env
    validation = shared / "validation"
    candidates = [shared / "cookies"] + (sorted(validation.iterdir()) if validation.is_dir() else [])
    candidates += [Path(p) for p in env.split(os.pathsep) if p]
    candidates += [Path(r.training.data_root) for r in runs if r.training.data_root]
    return list(dict.fromkeys(str(c) for c in candidates if is_mvtec_root(c)))
