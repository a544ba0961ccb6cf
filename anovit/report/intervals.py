"""The report's statistics that need each run's per-image evaluation: each run's AUROC with its 95 %
bootstrap interval, the paired interval of AnoViT minus l2-CAE per class, and AUROC per defect type
(:mod:`anovit.evaluation.run_statistics` reads the run folders; rows without a run folder get none).
"""

from __future__ import annotations

import math

import pandas as pd

from ..data.paths import resolve_stored
from ..models import MODEL_LABELS
from ..evaluation.run_statistics import METRIC_LEVELS, run_defect_types, run_difference, run_interval
from ..evaluation.uncertainty import chance_note

DIFFERENCE_COLUMNS = ("diff_low", "diff_high", "diff_pairs")
INTERVAL_COLUMNS = ("class", "model", "seed", "run", "value", "low", "high", "note")
DEFECT_TYPE_TITLE = "AUROC per defect type"


def _folder(run_dir: str) -> str | None:
    return str(resolve_stored(run_dir)) if run_dir else None


def paired_columns(table: pd.DataFrame, part: pd.DataFrame, metric: str, first: str = "cae",
                   second: str = "anovit") -> pd.DataFrame:
    """``table`` (:func:`anovit.report.tables.comparison` of ``part``) with the paired 95 % interval of ``second`` minus
    ``first`` per class: diff_low, diff_high (NaN where no run pair shares a seed and its test images) and
    diff_pairs (how many seed pairs). Only for image and pixel AUROC; other metrics get NaN."""
    out = table.assign(diff_low=math.nan, diff_high=math.nan, diff_pairs=0)
    if metric not in METRIC_LEVELS:
        return out
    for i, category in table["class"].items():
        group = part[part["class"] == category]
        by_seed = {m: {s: _folder(r) for s, r in zip(group.loc[group["model"] == m, "seed"],
                                                     group.loc[group["model"] == m, "run_dir"]) if r}
                   for m in (first, second)}
        seeds = sorted(set(by_seed[first]) & set(by_seed[second]), key=str)
        if not seeds:
            continue
        diff = run_difference([by_seed[second][s] for s in seeds], [by_seed[first][s] for s in seeds], metric)
        if diff is not None:
            out.loc[i, ["diff_low", "diff_high", "diff_pairs"]] = diff.low, diff.high, len(seeds)
    return out


def run_intervals_table(part: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per run of ``part`` with its ``metric`` and 95 % bootstrap interval (NaN: "interval n/a") and the
    below-chance note."""
    rows = []
    for row in part.sort_values(["class", "model", "seed"]).to_dict("records"):
        folder = _folder(row["run_dir"]) if metric in METRIC_LEVELS else None
        interval = run_interval(folder, metric) if folder else None
        value = row[metric]
        rows.append({"class": row["class"], "model": MODEL_LABELS.get(row["model"], row["model"]), "seed": row["seed"],
                     "run": row["run"], "value": value, "low": interval.low if interval else math.nan,
                     "high": interval.high if interval else math.nan,
                     "note": chance_note(None if pd.isna(value) else float(value), interval)})
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))


def defect_type_table(part: pd.DataFrame) -> pd.DataFrame:
    """AUROC per defect type of the runs of ``part``: one row per (class, defect type) with its number of test
    images and, per model, image and pixel AUROC (mean over the model's runs; columns "image AUROC <model>",
    "pixel AUROC <model>"). Empty when no run folder holds test_scores.csv."""
    frames = []
    for row in part.to_dict("records"):
        types = run_defect_types(_folder(row["run_dir"])) if row["run_dir"] else None
        if types is not None and not types.empty:
            frames.append(types.assign(**{"class": row["class"], "model": MODEL_LABELS.get(row["model"], row["model"])}))
    if not frames:
        return pd.DataFrame(columns=["class", "defect type", "images"])
    long = pd.concat(frames, ignore_index=True)
    mean = long.groupby(["class", "defect_type", "model"], sort=True).agg(
        images=("n_images", "max"), image=("image_auroc", "mean"), pixel=("pixel_auroc", "mean")).reset_index()
    wide = mean.pivot_table(index=["class", "defect_type"], columns="model", values=["image", "pixel"], dropna=False)
    wide.columns = [f"{level} AUROC {model}" for level, model in wide.columns]
    images = mean.groupby(["class", "defect_type"])["images"].max()
    table = wide.assign(images=images).reset_index().rename(columns={"defect_type": "defect type"})
    return table[["class", "defect type", "images", *[c for c in table.columns if "AUROC" in c]]]
