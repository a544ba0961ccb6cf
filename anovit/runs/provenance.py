"""Which runs fill a cell of the Results tables, and which runs may be averaged together.

A result row is one run (a benchmark row or an evaluated run folder). Runs of one (dataset, data
folder, preset, class, model) are averaged over seeds only when they share a *setting*: their training
budget (the epochs run and the cap on training images) and their recipe (every other field of
:data:`anovit.runs.catalog.PROTOCOL_FIELDS` that the run folder records: learning rate, batch size, decoder,
mask ratio, image size, score function, sigma, the calibrations of the image and pixel maps, pooling). Runs
that differ in any are never averaged (the cell says "mixed" and names them); runs on different data folders are in different sections of the report
(:func:`anovit.report.tables.sections`). By default the newest run's setting counts; the Results page lets the
reviewer choose. New protocol fields join the recipe by being added to PROTOCOL_FIELDS.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd

from . import checkpoint as ckpt
from ..data.paths import resolve_stored
from .catalog import PROTOCOL_FIELDS, run_protocol

GROUP_COLUMNS = ("dataset", "data_root", "preset", "class", "model")  # one cell of a table
ALL_IMAGES = "all"  # train_images of a run without a cap on its training images
BUDGET_FIELDS = ("epochs_run", "max_train_images")  # the protocol fields that make the budget, not the recipe
RECIPE_NAMES = {"lr": "lr", "batch_size": "batch", "image_size": "px", "mask_ratio": "mask",
                "image_calibration": "image map", "pixel_calibration": "pixel map", "pooling_top_percent": "top %"}
UNSAID = {"image_calibration": "none", "pixel_calibration": "none", "pooling": "max"}  # the paper's: not shown
MIXED = "mixed"  # the budget of a cell whose runs differ in budget (not averaged)


def _run_dir(value: Any) -> Path | None:
    return resolve_stored(str(value)) if isinstance(value, str) and value else None


def evaluated_at(run_dir: Path | None) -> str:
    """When a run folder was evaluated (its metrics file's time, ISO to the second); "" when it is gone."""
    path = run_dir / ckpt.METRICS if run_dir is not None else None
    if path is None or not path.is_file():
        return ""
    return dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")


def recipe(protocol: dict[str, Any]) -> str:
    """A run's recipe in words: every recorded protocol field outside the budget, e.g. "lr 0.001 · batch 16 ·
    decoder stable · px 128 · score l2 · sigma 2 · image map standardise · pooling topk · top % 5"; the paper's raw
    maps and max pooling (:data:`UNSAID`) go unsaid; "" when nothing is recorded (the run folder is gone)."""
    parts = []
    for name in PROTOCOL_FIELDS:
        value = protocol.get(name)
        if name in BUDGET_FIELDS or value is None or UNSAID.get(name) == value:
            continue
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{RECIPE_NAMES.get(name, name)} {shown}")
    return " · ".join(parts)


def add_provenance(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (one row per run) with "run" (the run folder's name), "train_images" (the training-image
    cap from its training.json, "all" without one, "" when the folder is gone), "recipe" (:func:`recipe`)
    and "finished_at" filled in from the metrics file's time where the row has none (evaluated run folders)."""
    out = df.copy()
    dirs = [_run_dir(d) for d in out["run_dir"]]
    out["run"] = [d.name if d is not None else "" for d in dirs]
    protocols = [run_protocol(d) if d is not None and d.is_dir() else None for d in dirs]
    out["train_images"] = ["" if p is None else ALL_IMAGES if p["max_train_images"] is None
                           else str(p["max_train_images"]) for p in protocols]
    out["recipe"] = ["" if p is None else recipe(p) for p in protocols]
    missing = (out["finished_at"].fillna("").astype(str) == "").to_numpy()
    out["finished_at"] = [evaluated_at(d) if m else f for d, m, f in zip(dirs, missing, out["finished_at"])]
    return out


def budget(epochs: Any, train_images: Any) -> str:
    """A run's training budget in words: "10 epochs", "10 epochs on ≤ 50 images"; "?" parts when unknown."""
    text = "? epochs" if pd.isna(epochs) else f"{int(epochs)} epoch{'' if int(epochs) == 1 else 's'}"
    return text if train_images in (ALL_IMAGES, "") else f"{text} on ≤ {train_images} images"


def settings_of(rows: pd.DataFrame) -> list[str]:
    """Each row's setting in words: its budget, then its recipe where recorded ("10 epochs (lr 0.001 · ...)")."""
    return [budget(e, i) + (f" ({r})" if r else "") for e, i, r in zip(rows["epochs"], rows["train_images"],
                                                                        rows["recipe"])]


def budgets(rows: pd.DataFrame) -> list[str]:
    """The distinct budgets (:func:`budget`) of ``rows``, sorted."""
    return sorted({budget(e, i) for e, i in zip(rows["epochs"], rows["train_images"])})


def default_counted(df: pd.DataFrame) -> pd.Series:
    """True for the runs that count by default: per cell (:data:`GROUP_COLUMNS`), every seed of the setting
    (:func:`settings_of`: budget and recipe) of the newest run (by finish time)."""
    counted = pd.Series(False, index=df.index)
    for _, group in df.groupby(list(GROUP_COLUMNS), sort=False, dropna=False):
        setting = pd.Series(settings_of(group), index=group.index)
        newest = group.sort_values("finished_at", kind="stable").index[-1]
        counted[group.index[setting == setting[newest]]] = True
    return counted


def describe_runs(rows: pd.DataFrame) -> str:
    """The runs of one cell in words: each run's folder, seed and finish time; when the runs differ in their
    setting (budget and recipe), grouped under each setting ("setting: runs | setting: runs")."""
    setting = pd.Series(settings_of(rows), index=rows.index)
    parts = []
    for each in sorted(set(setting)):
        same = rows[setting == each]
        runs = ", ".join(
            f"{r.run or '(no folder)'} (seed {r.seed}, {str(r.finished_at)[:16].replace('T', ' ') or 'time unknown'})"
            for r in same.sort_values("seed").itertuples()
        )
        parts.append(f"{each}: {runs}" if setting.nunique() > 1 else runs)
    return " | ".join(parts)


def cell_stats(rows: pd.DataFrame, metric: str, prefix: str) -> dict[str, Any]:
    """Mean, sample std and count of ``metric`` over the runs of one cell, its budget and its runs named
    (keys ``prefix``_mean, _std, _n, _budget, _recipe, _runs). Runs of different settings (budget or recipe) are not
    averaged: mean and std NaN, budget "mixed"."""
    mixed = len(set(settings_of(rows))) > 1
    values = rows[metric].dropna()
    found = budgets(rows)
    recipes = sorted(set(rows["recipe"]))
    cell = {f"{prefix}_n": len(rows) if mixed else len(values), f"{prefix}_runs": describe_runs(rows),
            f"{prefix}_budget": MIXED if mixed else (found[0] if found else ""),
            f"{prefix}_recipe": MIXED if len(recipes) > 1 else (recipes[0] if recipes else "")}
    if mixed:
        cell[f"{prefix}_mean"] = cell[f"{prefix}_std"] = math.nan
        cell[f"{prefix}_runs"] = "not averaged (different settings; choose which runs count): " + cell[f"{prefix}_runs"]
    else:
        cell[f"{prefix}_mean"] = float(values.mean()) if len(values) else math.nan
        cell[f"{prefix}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return cell


def model_cells(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Every model of a section, not only the two the paper compares: one row per (class, model) of ``rows``
    with :func:`cell_stats` (mean, std, n, budget, runs); a model added to the registry appears here as is."""
    records = [{"type": kind, "class": category, "model": model, **{k.removeprefix("cell_"): v for k, v in
                cell_stats(group, metric, "cell").items()}}
               for (kind, category, model), group in rows.groupby(["type", "class", "model"], sort=True)]
    return pd.DataFrame(records, columns=["type", "class", "model", "mean", "std", "n", "budget", "recipe", "runs"])


def budget_warnings(table: pd.DataFrame, first: str = "cae", second: str = "anovit",
                    labels: dict[str, str] | None = None) -> list[str]:
    """One sentence per class of a comparison (:func:`anovit.report.tables.comparison`) whose two models were
    trained with different budgets."""
    labels = labels or {}
    out = []
    for row in table.to_dict("records"):
        a, b = row[f"{first}_budget"], row[f"{second}_budget"]
        if a and b and a != b:
            out.append(f"{row['class']}: {labels.get(first, first)} {a}, {labels.get(second, second)} {b}")
    return out
