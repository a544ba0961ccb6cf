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
