"""Shared test fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic dataset (all categories, full test split, 12 train images each), generated once."""
    from anovit.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic"), n_train=12)


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> Path:
    """A checkpoints folder with a finished one-epoch l2-CAE and AnoViT job on synthetic weave, trained once
    (via the job worker); modules copy it (shutil.copytree) before they change it."""
    from dataclasses import asdict

    from anovit.jobs.background import JobState, run_worker, write_state
    from anovit.training.config import TrainConfig

    root = tmp_path_factory.mktemp("trained-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANOVIT_CHECKPOINTS", str(root))
        mp.setenv("ANOVIT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        for model in ("cae", "anovit"):
            config = TrainConfig(
                dataset="synthetic",
                category="weave",
                data_root=str(synthetic_root),
                model=model,
                preset="cpu-tiny",
                epochs=1,
                batch_size=4,
                val_fraction=0.25,
            )
            run_dir = root / f"weave-{model}"
            run_dir.mkdir()
            write_state(run_dir, JobState(config=asdict(config)))
            assert run_worker(run_dir).status == "done"
    return root



@pytest.fixture(scope="session", autouse=True)
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The disk cache of decoded images (anovit.data.image_cache) in a folder of this test session, shared by
    its tests and the subprocesses they start, never the checkout's data/."""
    import os

    from anovit.data.image_cache import CACHE_ENV

    folder = tmp_path_factory.mktemp("image-cache")
    os.environ[CACHE_ENV] = str(folder)
    return folder
