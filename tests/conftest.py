"""Shared test fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset (all categories, full test split, 12 train images each), generated once."""
    from anovit.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), n_train=12)
