"""Where anovit keeps datasets it generates, downloads or decompresses, and its other working files."""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout when anovit runs from its sources


def workspace_dir() -> Path:
    """The folder that holds data/, checkpoints/ and results/ by default: the source checkout when
    anovit runs from one (it has pyproject.toml), else the current directory (an installed wheel)."""
    return SOURCE_ROOT if (SOURCE_ROOT / "pyproject.toml").is_file() else Path.cwd()


def default_data_dir() -> Path:
    """Environment variable ANOVIT_DATA_DIR if set, else data/ in :func:`workspace_dir`."""
    env = os.environ.get("ANOVIT_DATA_DIR")
    return Path(env) if env else workspace_dir() / "data"


def stored_path(path: Path) -> str:
    """``path`` relative to the workspace when inside it (portable tables), else absolute."""
    path, root = Path(path).resolve(), workspace_dir()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def resolve_stored(path: str) -> Path:
    """Inverse of :func:`stored_path`."""
    p = Path(path)
    return p if p.is_absolute() else workspace_dir() / p
