"""Cached loaders, pickers and per-checkpoint computations shared by the pages.

Caches are keyed by the run folder *and* its weights file's modification time, so a retrained or
newly pulled checkpoint is picked up at once; datasets are cached per (dataset, split, size).
Nothing here runs at import time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st
import torch
import torch.nn as nn
from streamlit.errors import StreamlitPageNotFoundError
from torch.utils.data import Dataset, Subset

from .. import checkpoint as ckpt
from ..data import DATASETS, get_dataset, list_classes, train_val_datasets
from ..data.paths import default_data_dir
from ..data.splits import DEFAULT_VAL_FRACTION
from ..data.synthetic import MARKER
from ..errors import AnovitError
from ..detector import SCORE_BATCH_SIZE, Detector, Progress
from ..evaluate import ROW_FIELDS, evaluate_detector
from ..jobs import list_jobs
from ..metrics import BinnedROC
from ..models import MODEL_LABELS
from ..runs import REPO_ROOT, RunInfo, list_runs
from ..scoring import DEFAULT_SIGMA


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _load_model(path: str, mtime: float) -> nn.Module:
    return ckpt.load_model(Path(path))


def weights_mtime(run_dir: Path) -> float:
    """Modification time of the run's weights: part of every cache key, so new weights are picked up."""
    return (Path(run_dir) / ckpt.WEIGHTS).stat().st_mtime


def load_model_cached(run_dir: Path) -> nn.Module:
    """The run's model in eval mode, cached until its weights file changes."""
    return _load_model(str(run_dir), weights_mtime(run_dir))


def run_label(run: RunInfo) -> str:
    """One line naming a run: folder, model, and its image AUROC when evaluated."""
    auroc = run.test.get("image_auroc")
    score = f", image AUROC {auroc:.3f}" if isinstance(auroc, float) else ""
    return f"{run.name} ({MODEL_LABELS.get(run.model_type, run.model_type)}{score})"


def finished_runs(model_type: str | None = None) -> list[RunInfo]:
    """Run folders (optionally of one model type) whose training is not in progress, newest first."""
    training = {path.resolve() for path, state in list_jobs() if state.active}
    return [
        r
        for r in list_runs()
        if (model_type is None or r.model_type == model_type) and r.path.resolve() not in training
    ]


def run_picker(label: str = "Checkpoint", *, model_type: str | None = None, key: str | None = None) -> RunInfo | None:
    """A selectbox over the run folders (optionally of one model type); None, with a hint, if there are none.

    Runs whose training job is still in progress are left out (their weights are not final yet).
    """
    runs = finished_runs(model_type)
    if not runs:
        what = f"{MODEL_LABELS.get(model_type, model_type)} checkpoint" if model_type else "checkpoint"
        st.info(f"No {what} yet: train one on the Train page or load one on the Hub page.")
        return None
    return st.selectbox(label, runs, format_func=run_label, key=key)


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


def run_data(run: RunInfo) -> DataRef | None:
    """The data a run was trained on (from training.json), None for runs without one (e.g. pulled from the Hub)."""
    t = run.training
    if not t.get("dataset") or t.get("category") is None:
        return None
    return DataRef(
        t["dataset"], str(t["category"]), t.get("data_root"), int(t.get("seed", 0)), float(t.get("val_fraction", DEFAULT_VAL_FRACTION))
    )


def data_picker(run: RunInfo, *, key: str) -> DataRef | None:
    """The run's own data, or (for runs without training.json) selectboxes to choose a dataset and class."""
    ref = run_data(run)
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
) -> tuple[RunInfo, DataRef, nn.Module] | None:
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


class _Bar:
    """A progress bar created inside a cached function (so cache hits replay it) and removed at the end;
    called as ``bar(done, total)`` like the detector's progress callback."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.bar = st.progress(0.0, text=text)

    def __call__(self, done: int, total: int) -> None:
        self.bar.progress(min(done / max(total, 1), 1.0), text=f"{self.text} {done}/{total}")

    def close(self) -> None:
        self.bar.empty()


def detector_for(run_dir: Path, sigma: float = DEFAULT_SIGMA) -> Detector:
    """The run's :class:`~anovit.detector.Detector` (cached model; bf16 where the CPU supports it), no threshold."""
    return Detector(load_model_cached(Path(run_dir)), sigma=sigma)


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).numpy()


def scored_items(detector: Detector, dataset: Dataset, progress: Progress | None = None) -> dict[str, Any]:
    """Every item of ``dataset`` through ``detector``, as arrays for the pages: image and recon (uint8 N,H,W,3),
    score_map (anomaly maps, N,H,W), score (anomaly scores, N), mask (N,H,W bool), label, defect_type, path."""
    batches = list(detector.iter_scored(dataset, progress=progress))
    return {
        "image": np.concatenate([_uint8(b.image) for b in batches]),
        "recon": np.concatenate([_uint8(b.reconstruction) for b in batches]),
        "score_map": np.concatenate([b.anomaly_map.numpy() for b in batches]),
        "score": np.concatenate([b.pred_score.numpy() for b in batches]),
        "mask": np.concatenate([b.gt_mask.numpy() for b in batches]),
        "label": np.concatenate([b.gt_label.numpy() for b in batches]),
        "defect_type": [t for b in batches for t in b.defect_type],
        "path": [p for b in batches for p in b.image_path],
    }


@st.cache_data(max_entries=48, show_spinner=False)
def _predict_items(
    run_dir: str, mtime: float, ref: DataRef, split: str, indices: tuple[int, ...], sigma: float
) -> dict[str, Any]:
    detector = detector_for(Path(run_dir), sigma)
    bar = _Bar("Reconstructing")
    items = scored_items(detector, Subset(load_dataset(ref, split, detector.image_size), list(indices)), bar)
    bar.close()
    return {**items, "index": np.asarray(indices)}


def predict_items(
    run: RunInfo, ref: DataRef, indices: list[int], split: str = "test", sigma: float = DEFAULT_SIGMA
) -> dict[str, Any]:
    """Inputs, reconstructions (uint8 N,H,W,3), anomaly maps (N,H,W), anomaly scores, masks, labels of
    ``indices`` of a split, through the run's :func:`detector_for`.

    Cached per checkpoint (path and weights time), data, split, indices and sigma: a gallery page
    is computed once.
    """
    return _predict_items(str(run.path), weights_mtime(run.path), ref, split, tuple(int(i) for i in indices), sigma)


@st.cache_data(max_entries=16, show_spinner=False)
def _test_pass(run_dir: str, mtime: float, ref: DataRef, sigma: float, roc_points: int) -> dict[str, Any]:
    detector = detector_for(Path(run_dir), sigma)
    bar = _Bar("Scoring the test split")
    result = evaluate_detector(detector, load_dataset(ref, "test", detector.image_size), batch_size=SCORE_BATCH_SIZE,
                               progress=bar)
    bar.close()
    scores = pd.DataFrame(result.rows, columns=list(ROW_FIELDS))
    scores.insert(0, "index", range(len(scores)))
    images = BinnedROC().update(scores["score"].to_numpy(), scores["label"].to_numpy())
    pixels = result.pixel_roc
    has_pixels = pixels is not None and pixels.n_pos and pixels.n_neg
    return {
        "scores": scores,
        "pixel_roc": pixels.roc_curve(roc_points) if has_pixels else None,
        "image_roc": images.roc_curve(roc_points) if result.image_auroc is not None else None,
        "pixel_auroc": result.pixel_auroc,
        "image_auroc": result.image_auroc,
    }


def test_pass(run: RunInfo, ref: DataRef, sigma: float = DEFAULT_SIGMA, roc_points: int = 2048) -> dict[str, Any]:
    """One :func:`anovit.evaluate.evaluate_detector` pass over the test split: per-image anomaly scores (DataFrame),
    image and pixel ROC (fpr, tpr, thresholds) from :class:`~anovit.metrics.BinnedROC`, and both AUROCs
    (None when the split lacks a class)."""
    return _test_pass(str(run.path), weights_mtime(run.path), ref, sigma, roc_points)


def _scores_file_matches(scores: pd.DataFrame, items: pd.DataFrame) -> bool:
    return len(scores) == len(items) and scores["path"].astype(str).tolist() == items["path"].tolist()


@st.cache_data(max_entries=16, show_spinner="Reading the test split…")
def _test_scores(
    run_dir: str, mtime: float, csv_mtime: float | None, ref: DataRef, image_size: int
) -> pd.DataFrame | None:
    if csv_mtime is None:
        return None
    items = describe_items(load_dataset(ref, "test", image_size))
    scores = pd.read_csv(Path(run_dir) / ckpt.TEST_SCORES)
    if not {"path", "score"} <= set(scores.columns) or not _scores_file_matches(scores, items):
        return None
    return items.assign(score=scores["score"].astype(float).to_numpy())


def test_scores(run: RunInfo, ref: DataRef, image_size: int, sigma: float = DEFAULT_SIGMA) -> pd.DataFrame:
    """index, path, label, defect_type, score of every test image: from the run's test_scores.csv when it
    covers exactly this split (written by the evaluation at the default sigma), else computed."""
    csv = run.path / ckpt.TEST_SCORES
    csv_mtime = csv.stat().st_mtime if csv.is_file() and sigma == DEFAULT_SIGMA else None
    scores = _test_scores(str(run.path), weights_mtime(run.path), csv_mtime, ref, image_size)
    return scores if scores is not None else test_pass(run, ref, sigma)["scores"]


@st.cache_data(max_entries=16, show_spinner=False)
def _fitted_threshold(run_dir: str, mtime: float, ref: DataRef, sigma: float) -> tuple[float, np.ndarray]:
    detector = detector_for(Path(run_dir), sigma)
    bar = _Bar("Scoring the validation images")
    detector.fit_threshold(load_dataset(ref, "val", detector.image_size), progress=bar)
    bar.close()
    assert detector.threshold is not None and detector.validation_scores_ is not None
    return detector.threshold, detector.validation_scores_


def fitted_detector(run: RunInfo, ref: DataRef, sigma: float = DEFAULT_SIGMA) -> Detector:
    """The run's detector with its threshold fitted (:meth:`~anovit.detector.Detector.fit_threshold`) on the
    normal validation images held out during training (same seed and fraction); cached per weights."""
    detector = detector_for(run.path, sigma)
    detector.threshold, detector.validation_scores_ = _fitted_threshold(
        str(run.path), weights_mtime(run.path), ref, sigma
    )
    return detector


def show_errors(render: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page's render function: anovit's own errors (bad data folder, unreadable checkpoint, ...)
    are shown as one ``st.error`` line instead of a traceback, and the app keeps running."""

    @functools.wraps(render)
    def wrapped() -> None:
        try:
            render()
        except AnovitError as err:
            st.error(str(err))

    return wrapped


def page_header(title: str, caption: str) -> None:
    """Page config, title and a one-line caption, identical on every page."""
    st.set_page_config(page_title=f"{title} · anovit", page_icon="🔍", layout="wide")
    st.title(title)
    st.caption(caption)


PAGES = {
    "train": ("pages/1_Train.py", "Train", ":material/model_training:"),
    "results": ("pages/2_Results.py", "Results", ":material/table_chart:"),
    "gallery": ("pages/3_Gallery.py", "Gallery", ":material/photo_library:"),
    "heatmaps": ("pages/4_Heatmaps.py", "Heatmaps", ":material/thermostat:"),
    "inspect": ("pages/5_Inspect.py", "Inspect", ":material/image_search:"),
    "attention": ("pages/6_Attention.py", "Attention", ":material/visibility:"),
    "hub": ("pages/7_Hub.py", "Hub", ":material/cloud_sync:"),
}


def page_link(page: str, label: str | None = None) -> None:
    """A link to one of the app's pages (by key of ``PAGES``); plain text when that page file is absent."""
    path, title, icon = PAGES[page]
    if (REPO_ROOT / path).is_file():
        try:
            st.page_link(path, label=label or title, icon=icon)
            return
        except StreamlitPageNotFoundError:
            pass  # a page run on its own (not through app.py) knows no other page
    st.markdown(f"{icon} {label or title}")
