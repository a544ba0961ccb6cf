"""Where anovit keeps datasets it generates, downloads or decompresses."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """Environment variable ANOVIT_DATA_DIR if set, else <repo>/data."""
    env = os.environ.get("ANOVIT_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"
