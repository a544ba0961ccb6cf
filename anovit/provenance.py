"""Which runs fill a cell of the Results tables, and which runs may be averaged together.

A result row is one run (a benchmark row or an evaluated run folder). Runs of one (dataset, data
folder, preset, class, model) are averaged over seeds only when they share a training budget: the
epochs run and the cap on training images. Runs that differ in either are never averaged (the cell
says "mixed" and names them); runs on different data folders are in different sections of the report
(:func:`anovit.report.sections`). By default the newest run's budget counts; the Results page lets the
reviewer choose.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd

from . import checkpoint as ckpt
from .benchmark import resolve_stored
from .runs import run_protocol

GROUP_COLUMNS = ("dataset", "data_root", "preset", "class", "model")  # one cell of a table
ALL_IMAGES = "all"  # train_images of a run without a cap on its training images
MIXED = "mixed"  # the budget of a cell whose runs differ in budget (not averaged)


def _run_dir(value: Any) -> Path | None:
    return resolve_stored(str(value)) if isinstance(value, str) and value else None


def evaluated_at(run_dir: Path | None) -> str:
    """When a run folder was evaluated (its metrics file's time, ISO to the second); "" when it is gone."""
    path = run_dir / ckpt.METRICS if run_dir is not None else None
    if path is None or not path.is_file():
        return ""
    return dt.datetime.fromtimestamp(path.stat().st_mtime).isoformat(timespec="seconds")


def add_provenance(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (one row per run) with "run" (the run folder's name), "train_images" (the training-image
    cap from its training.json, "all" without one, "" when the folder is gone) and "finished_at" filled
    in from the metrics file's time where the row has none (evaluated run folders)."""
    out = df.copy()
    dirs = [_run_dir(d) for d in out["run_dir"]]
    out["run"] = [d.name if d is not None else "" for d in dirs]
    caps = [run_protocol(d)["max_train_images"] if d is not None and d.is_dir() else "" for d in dirs]
    out["train_images"] = [ALL_IMAGES if c is None else str(c) for c in caps]
    missing = (out["finished_at"].fillna("").astype(str) == "").to_numpy()
    out["finished_at"] = [evaluated_at(d) if m else f for d, m, f in zip(dirs, missing, out["finished_at"])]
    return out


def budget(epochs: Any, train_images: Any) -> str:
    """A run's training budget in words: "10 epochs", "10 epochs on ≤ 50 images"; "?" parts when unknown."""
    text = "? epochs" if pd.isna(epochs) else f"{int(epochs)} epoch{'' if int(epochs) == 1 else 's'}"
    return text if train_images in (ALL_IMAGES, "") else f"{text} on ≤ {train_images} images"


def budgets(rows: pd.DataFrame) -> list[str]:
    """The distinct budgets (:func:`budget`) of ``rows``, sorted."""
    return sorted({budget(e, i) for e, i in zip(rows["epochs"], rows["train_images"])})


def default_counted(df: pd.DataFrame) -> pd.Series:
    """True for the runs that count by default: per cell (:data:`GROUP_COLUMNS`), every seed of the budget
    of the newest run (by finish time)."""
    counted = pd.Series(False, index=df.index)
    for _, group in df.groupby(list(GROUP_COLUMNS), sort=False, dropna=False):
        newest = group.sort_values("finished_at", kind="stable").iloc[-1]
        same = [budget(e, i) == budget(newest["epochs"], newest["train_images"])
                for e, i in zip(group["epochs"], group["train_images"])]
        counted[group.index[same]] = True
    return counted


def describe_runs(rows: pd.DataFrame) -> str:
    """The runs of one cell in words: per budget, each run's folder, seed and finish time."""
    parts = []
    for each in budgets(rows):
        same = rows[[budget(e, i) == each for e, i in zip(rows["epochs"], rows["train_images"])]]
        runs = ", ".join(
            f"{r.run or '(no folder)'} (seed {r.seed}, {str(r.finished_at)[:16].replace('T', ' ') or 'time unknown'})"
            for r in same.sort_values("seed").itertuples()
        )
        parts.append(f"{each}: {runs}")
    return " | ".join(parts)


def cell_stats(rows: pd.DataFrame, metric: str, prefix: str) -> dict[str, Any]:
    """Mean, sample std and count of ``metric`` over the runs of one cell, its budget and its runs named
    (keys ``prefix``_mean, _std, _n, _budget, _runs). Runs of different budgets are not averaged: mean
    and std NaN, budget "mixed"."""
    found = budgets(rows)
    values = rows[metric].dropna()
    cell = {f"{prefix}_n": len(values) if len(found) <= 1 else len(rows), f"{prefix}_runs": describe_runs(rows),
            f"{prefix}_budget": found[0] if len(found) == 1 else (MIXED if found else "")}
    if len(found) > 1:
        cell[f"{prefix}_mean"] = cell[f"{prefix}_std"] = math.nan
        cell[f"{prefix}_runs"] = "not averaged (different budgets; choose which runs count): " + cell[f"{prefix}_runs"]
    else:
        cell[f"{prefix}_mean"] = float(values.mean()) if len(values) else math.nan
        cell[f"{prefix}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return cell


def budget_warnings(table: pd.DataFrame, first: str = "cae", second: str = "anovit",
                    labels: dict[str, str] | None = None) -> list[str]:
    """One sentence per class of a comparison (:func:`anovit.report.comparison`) whose two models were
    trained with different budgets."""
    labels = labels or {}
    out = []
    for row in table.to_dict("records"):
        a, b = row[f"{first}_budget"], row[f"{second}_budget"]
        if a and b and a != b:
            out.append(f"{row['class']}: {labels.get(first, first)} {a}, {labels.get(second, second)} {b}")
    return out
