"""Unified runs (one model for every class, :mod:`anovit.data.unified`) class by class, beside the per-class runs
of the same class, model, preset and seed, with the paired 95 % bootstrap interval of unified minus per-class
where both have per-image test scores (:func:`anovit.evaluation.run_statistics.run_difference`), and the
published unified numbers of MVTec AD for reference (pretrained encoders, other budgets)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from ..data import ALL_CLASSES
from ..evaluation.run_statistics import run_difference
from ..models import MODEL_LABELS
from ..runs.catalog import class_dir
from ..runs.metrics_record import TestSummary
from ..runs.record import RunRecord

# Mean image / pixel AUROC on MVTec AD (15 classes) of published unified models, all with pretrained encoders
# (as the papers report them; not comparable with from-scratch CPU runs on other sets).
PUBLISHED_UNIFIED = (
    {"method": "UniAD", "paper": "You et al., A Unified Model for Multi-class Anomaly Detection, NeurIPS 2022",
     "image_auroc": 0.965, "pixel_auroc": 0.968, "pretrained": "EfficientNet-b4"},
    {"method": "ViTAD", "paper": "Zhang et al., Exploring Plain ViT Reconstruction for Multi-class Unsupervised "
                                 "Anomaly Detection, arXiv 2312.07495 (2023)",
     "image_auroc": 0.983, "pixel_auroc": 0.977, "pretrained": "ViT"},
    {"method": "Dinomaly", "paper": "Guo et al., Dinomaly: The Less Is More Philosophy in Multi-Class Unsupervised "
                                    "Anomaly Detection, CVPR 2025 (arXiv 2405.14325)",
     "image_auroc": 0.996, "pixel_auroc": 0.984, "pretrained": "ViT-B/14 (DINOv2 with registers)"},
)
COLUMNS = ("class", "model", "seed", "unified run", "image AUROC unified", "image AUROC per-class",
           "image diff low", "image diff high", "pixel AUROC unified", "pixel AUROC per-class", "pixel diff low",
           "pixel diff high", "per-class run")


def _class_folder(run: RunRecord, category: str) -> str | None:
    """The real path of ``category``'s folder under the run's data root (None without a recorded root)."""
    root = run.training.data_root
    return os.path.realpath(Path(root) / category) if root else None


def _per_class_run(unified: RunRecord, category: str, runs: list[RunRecord]) -> RunRecord | None:
    """The newest evaluated per-class run of ``category`` (the same class folder, links resolved) with the
    unified run's dataset, model, preset and seed."""
    folder = _class_folder(unified, category)
    setting = lambda t: (t.dataset, t.preset, t.seed)  # noqa: E731
    for run in runs:
        if (run.category == category and run.test and run.model_type == unified.model_type
                and setting(run.training) == setting(unified.training)
                and folder is not None and _class_folder(run, category) == folder):
            return run
    return None


def unified_comparison(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per class of each evaluated unified run among ``runs`` (e.g. :func:`anovit.runs.catalog.list_runs`,
    newest first): its image and pixel AUROC, those of the matching per-class run (NaN without one) and the
    paired 95 % interval of unified minus per-class (NaN where a run lacks per-image scores or the test images
    differ). Columns :data:`COLUMNS`."""
    runs = list(runs)
    rows: list[dict[str, Any]] = []
    for run in runs:
        per_class = run.metrics.per_class
        if run.category != ALL_CLASSES or not per_class:
            continue
        for category in sorted(per_class):
            own = per_class[category]
            other = _per_class_run(run, category, runs)
            row = {"class": category, "model": MODEL_LABELS.get(run.model_type, run.model_type),
                   "seed": run.training.seed, "unified run": run.name,
                   "per-class run": other.name if other else ""}
            for level in ("image", "pixel"):
                metric = f"{level}_auroc"
                diff = run_difference(class_dir(run.path, category), other.path, metric) if other else None
                row.update({f"{level} AUROC unified": _number(own.metric(metric)),
                            f"{level} AUROC per-class": _number(other.metric(metric)) if other else math.nan,
                            f"{level} diff low": diff.low if diff else math.nan,
                            f"{level} diff high": diff.high if diff else math.nan})
            rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def per_class_table(per_class: Mapping[str, TestSummary]) -> pd.DataFrame:
    """A unified run's summaries per class (:attr:`anovit.runs.record.RunMetrics.per_class`) as one row per class:
    image AUROC, pixel AUROC, AUPRO, test images."""
    return pd.DataFrame([{"class": c, "image AUROC": _number(m.image_auroc), "pixel AUROC": _number(m.pixel_auroc),
                          "AUPRO": _number(m.aupro), "test images": m.n_images} for c, m in sorted(per_class.items())])


def published_table() -> pd.DataFrame:
    """:data:`PUBLISHED_UNIFIED` as a table (method, paper, image AUROC, pixel AUROC, pretrained encoder)."""
    return pd.DataFrame(PUBLISHED_UNIFIED).rename(columns={"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC",
                                                            "pretrained": "pretrained encoder"})


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
