"""Choosing what a page shows: the run (cached model), the data it was trained on, and that data's
datasets, cached. Model caches are keyed by the run folder *and* its weights file's modification
time, so a retrained or newly pulled checkpoint is picked up at once; datasets are cached per
(data, split, size). Nothing here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import streamlit as st
import torch.nn as nn
from torch.utils.data import Dataset

from ..runs import checkpoint as ckpt
from ..data import ALL_CLASSES, DATASETS, get_dataset, list_classes, train_val_datasets
from ..data.paths import default_data_dir
from ..data.splits import DEFAULT_VAL_FRACTION
from ..data.synthetic import MARKER
from ..utils.errors import AnovitError
from ..jobs.background import list_jobs
from ..models import MODEL_LABELS
from ..runs.catalog import list_runs
from ..runs.record import RunRecord


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _load_model(path: str, mtime: float) -> nn.Module:
    return ckpt.load_model(Path(path))


def weights_mtime(run_dir: Path) -> float:
    """Modification time of the run's weights: part of every cache key, so new weights are picked up."""
    return (Path(run_dir) / ckpt.WEIGHTS).stat().st_mtime


def scoring_stamp(run_dir: Path) -> tuple[float | None, ...]:
    """Modification times of the files a run's scores depend on (weights, calibration.safetensors,
    threshold.json; None where absent): the cache key of every scored result, so new weights or a refitted
    calibration or threshold (``evaluate --refit-threshold``) are picked up."""
    paths = [Path(run_dir) / name for name in (ckpt.WEIGHTS, ckpt.CALIBRATION, ckpt.THRESHOLD)]
    return tuple(path.stat().st_mtime if path.is_file() else None for path in paths)


def load_model_cached(run_dir: Path) -> nn.Module:
    """The run's model in eval mode, cached until its weights file changes."""
    return _load_model(str(run_dir), weights_mtime(run_dir))


def run_label(run: RunRecord) -> str:
    """One line naming a run: folder, model, its image AUROC when evaluated, and its state unless done."""
    auroc = run.metric("image_auroc")
    score = f", image AUROC {auroc:.3f}" if isinstance(auroc, float) else ""
    state = "" if run.status == "done" else f" [{run.status.upper()}]"
    return f"{run.name} ({MODEL_LABELS.get(run.model_type, run.model_type)}{score}){state}"


def finished_runs(model_type: str | None = None) -> list[RunRecord]:
    """Run folders (optionally of one model type) whose training is not in progress, with their job's state:
    done runs first, newest first, then cancelled and failed ones (never a picker's default)."""
    states = {path.resolve(): state for path, state in list_jobs()}
    runs = []
    for run in list_runs():
        state = states.get(run.path.resolve())
        if (model_type is None or run.model_type == model_type) and not (state and state.active):
            runs.append(replace(run, status=state.status if state else "done"))
    return sorted(runs, key=lambda r: r.status != "done")  # stable: newest first within each group


def run_seeds(runs: list[RunRecord]) -> list[int]:
    """The training seeds of ``runs`` (from training.json), each once, ascending; runs without one are left out."""
    return sorted({r.training.seed for r in runs if r.training.seed is not None})


def of_seed(runs: list[RunRecord], seed: int | None) -> list[RunRecord]:
    """The runs trained with ``seed`` (all of them for None)."""
    return runs if seed is None else [r for r in runs if r.training.seed == seed]


def seed_picker(seeds: list[int], *, key: str) -> int | None:
    """A Seed selectbox ("all" is None) when there is more than one seed to choose from; None otherwise."""
    if len(seeds) < 2:
        return None
    return st.selectbox("Seed", [None, *seeds], format_func=lambda s: "all" if s is None else str(s), key=key,
                        help="The training seed: runs of one setting that differ only in it")


def run_picker(label: str = "Checkpoint", *, model_type: str | None = None, key: str | None = None) -> RunRecord | None:
    """A selectbox over the run folders (optionally of one model type), defaulting to the newest finished
    one; None, with a hint, if there are none. Runs still training are left out (their weights are not final)."""
    runs = finished_runs(model_type)
    if not runs:
        what = f"{MODEL_LABELS.get(model_type, model_type)} checkpoint" if model_type else "checkpoint"
        st.info(f"No {what} yet: train one on the Train page or load one on the Hub page.")
        return None
    runs = of_seed(runs, seed_picker(run_seeds(runs), key=f"{key or label}-seed"))
    run = st.selectbox(label, runs, format_func=run_label, key=key)
    if run.status != "done":
        st.warning(f"{run.name} was {run.status}: its weights are those of its best epoch before it stopped.")
    return run


@dataclass(frozen=True)
class DataRef:
    """Which images a run belongs to: dataset, class, folder and the split seed of its training."""

    dataset: str
    category: str
    root: str | None = None
    seed: int = 0
    val_fraction: float = DEFAULT_VAL_FRACTION

    @property
    def label(self) -> str:
        return f"{self.dataset} / {self.category}"


def run_data(run: RunRecord) -> DataRef | None:
    """The data a run was trained on (from training.json), None for runs without one (e.g. pulled from the Hub)."""
    t = run.training
    if not t.dataset or t.category is None:
        return None
    return DataRef(t.dataset, t.category, t.data_root, t.seed if t.seed is not None else 0, t.val_fraction)


def data_picker(run: RunRecord, *, key: str) -> DataRef | None:
    """The run's own data (for a unified run, one of its classes, chosen in a selectbox), or (for runs without
    training.json) selectboxes to choose a dataset and class."""
    ref = run_data(run)
    if ref is not None and ref.category == ALL_CLASSES and run.classes is not None:
        return replace(ref, category=st.selectbox("Class (of the one model for every class)",
                                                  list(run.classes), key=f"{key}-class"))
    if ref is not None:
        return ref
    st.caption(f"{run.name} has no training.json: choose the images to score it on.")
    name = st.selectbox("Dataset", DATASETS, key=f"{key}-dataset")
    root = st.text_input("Data folder (MVTec layout; empty = embedded synthetic data)", key=f"{key}-root") or None
    try:
        classes = list_classes(name, root)
    except AnovitError as err:
        st.error(str(err))
        return None
    if not classes:
        st.error(f"no class folders (<class>/train/good) under {root}")
        return None
    return DataRef(name, st.selectbox("Class", classes, key=f"{key}-class"), root)


def checkpoint_picker(
    key: str, label: str = "Checkpoint", *, model_type: str | None = None
) -> tuple[RunRecord, DataRef, nn.Module] | None:
    """The run, its data and its model for a page that scores one checkpoint: :func:`run_picker` (key
    ``{key}-run``), then :func:`data_picker`; None, with a hint, when either has nothing to offer."""
    run = run_picker(label, model_type=model_type, key=f"{key}-run")
    if run is None:
        return None
    ref = data_picker(run, key=key)
    if ref is None:
        return None
    return run, ref, load_model_cached(run.path)


def synthetic_ready() -> bool:
    """Whether the embedded synthetic dataset has been generated already (it takes ~15 s once)."""
    return (default_data_dir() / "synthetic" / MARKER).is_file()


@st.cache_resource(max_entries=12, show_spinner="Loading images (the synthetic set is generated on first use, ~15 s)…")
def load_dataset(ref: DataRef, split: str, image_size: int) -> Dataset:
    """``split`` ("test" or "val": the held-out normal images of training) of ``ref`` at ``image_size`` px."""
    if split == "val":
        return train_val_datasets(
            ref.dataset,
            category=ref.category,
            image_size=image_size,
            root=ref.root,
            val_fraction=ref.val_fraction,
            seed=ref.seed,
        )[1]
    return get_dataset(ref.dataset, split, category=ref.category, image_size=image_size, root=ref.root, seed=ref.seed)


def describe_items(dataset: Dataset) -> pd.DataFrame:
    """index, label, defect_type and path of every item (decodes each image once; datasets cache them)."""
    rows = []
    for i in range(len(dataset)):
        item = dataset[i]
        rows.append({"index": i, "label": int(item["label"]), "defect_type": item["defect_type"], "path": item["path"]})
    return pd.DataFrame(rows, columns=["index", "label", "defect_type", "path"])
