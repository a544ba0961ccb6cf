"""Our benchmark results beside the paper's tables: per-class mean ± std over seeds for l2-CAE and
AnoViT, the relative improvement of AnoViT over l2-CAE as the paper computes it, and the delta to
the paper's printed value, as DataFrames; :mod:`anovit.report.render` writes them as Markdown and
CSV and draws them for the app's Results page.

Results come from the sweep's table (:mod:`anovit.evaluation.benchmark`, read against the schema of
:mod:`anovit.evaluation.results_table`: bad rows are left out and listed by line number) and, optionally, from
run folders with a "test" section in metrics.json: one row per run (the table's last row per run folder).
Runs are averaged over seeds only when they share a training budget (:mod:`anovit.runs.provenance`), and
every cell names the runs that fill it. Results on different data folders are never pooled: each
(dataset, data folder, preset) is its own section, and a data folder given for MVTec AD that is not
the official release gets no paper columns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..evaluation.benchmark import CELL_COLUMNS, RESULT_COLUMNS, run_result_row
from .paper_tables import DETECTION, LOCALIZATION, TABLE_1, PaperTable, paper_row, paper_table
from ..runs.provenance import add_provenance, cell_stats, settings_of
from .intervals import DIFFERENCE_COLUMNS, paired_columns
from ..evaluation.results_table import read_table
from ..runs.record import RunRecord

METRICS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO",
           "image_f1_max": "image F1-max", "pixel_f1_max": "pixel F1-max"}
REPORT_METRICS = ("image_auroc", "pixel_auroc", "aupro")
TASKS = {"image_auroc": DETECTION, "pixel_auroc": LOCALIZATION}  # metrics the paper reports
# Datasets whose per-class rows have no paper counterpart but whose summary rows are compared with a
# paper dataset: the synthetic set follows MVTec AD's layout and texture/object split.
PAPER_STAND_IN = {"synthetic": "mvtec"}
TYPE_ORDER = {"object": 0, "texture": 1}  # the paper lists objects first
CAE, ANOVIT = "cae", "anovit"
SUMMARY_ROWS = ("mean", "std")
COMPARISON_COLUMNS = (
    "type", "class", "cae_mean", "cae_std", "cae_n", "anovit_mean", "anovit_std", "anovit_n", "relative_pct",
    "paper_cae", "paper_anovit", "paper_relative_pct", "delta_cae", "delta_anovit",
    "cae_budget", "anovit_budget", "cae_recipe", "anovit_recipe", "cae_runs", "anovit_runs", *DIFFERENCE_COLUMNS,
)
TEXT_COLUMNS = ("type", "class", "cae_budget", "anovit_budget", "cae_recipe", "anovit_recipe", "cae_runs", "anovit_runs")


def relative_improvement(cae: float, anovit: float) -> float:
    """The paper's "Relative Improvement" column: (AnoViT - l2-CAE) / l2-CAE x 100."""
    return (anovit - cae) / cae * 100.0


def _number(value: Any) -> float:
    """A CSV/JSON value as float; empty or missing -> NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def collect_results(results: Path | None, runs: Iterable[RunRecord] = ()) -> pd.DataFrame:
    """One row per run: the results table's (its last row per run folder wins; rows without a folder,
    the last per cell and epochs) and the evaluated ``runs`` not in it; metrics and timings as floats
    (NaN when missing), seed and epochs as integers, plus "source" ("benchmark" or "run folder") and
    the provenance columns of :func:`anovit.runs.provenance.add_provenance` ("run", "train_images", "finished_at").

    Rows of the table that break its schema are left out; ``df.attrs["left_out"]`` lists them as
    "FILE line N: what is wrong" sentences.
    """
    read = read_table(results) if results is not None else None
    table = read.rows if read is not None else pd.DataFrame(columns=list(RESULT_COLUMNS))
    table = table.assign(source="benchmark")
    seen = set(table["run_dir"])
    folders = [row for row in map(run_result_row, runs) if row is not None and row["run_dir"] not in seen]
    folders.reverse()  # list_runs() is newest first; the newest folder of a cell must come last
    extra = pd.DataFrame(folders, columns=list(RESULT_COLUMNS)).assign(source="run folder")
    frames = [f for f in (extra, table) if not f.empty]  # run folders first: the table's row of a cell wins
    df = pd.concat(frames, ignore_index=True) if frames else table
    for col in ("seed", "epochs", *METRICS, "train_seconds", "eval_seconds", "train_images_per_s",
                "eval_images_per_s"):
        df[col] = df[col].map(_number)
    for col in ("seed", "epochs"):
        df[col] = df[col].round().astype("Int64")
    df["data_root"] = df["data_root"].fillna("")
    for col in ("dataset", "data_root", "class", "type", "model", "preset"):
        df[col] = df[col].astype(str)
    df["run_dir"] = df["run_dir"].fillna("").astype(str)
    cells = zip(*(df[c].astype(str) for c in (*CELL_COLUMNS, "epochs")))
    run_key = pd.Series([d or "|".join(cell) for d, cell in zip(df["run_dir"], cells)], index=df.index, dtype=object)
    df = add_provenance(df[~run_key.duplicated(keep="last")].reset_index(drop=True))
    df, repeated = _once_per_cell(df)
    df.attrs["left_out"] = [f"{results} {problem}" for problem in read.problems] if read is not None else []
    df.attrs["repeated"] = repeated
    return df


def _once_per_cell(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``df`` with each run of the same cell (its data root included) and setting counted once, the later row
    winning (e.g. one cell trained again under another --runs-root), and one sentence per run left out."""
    same = pd.Series(["|".join(key) for key in zip(*(df[c].astype(str) for c in CELL_COLUMNS), settings_of(df))],
                     index=df.index)
    repeat = same.duplicated(keep="last")
    kept = {key: run for key, run in zip(same[~repeat], df.loc[~repeat, "run_dir"])}
    notes = [f"run {run or '(no folder)'} repeats the cell of run {kept[key]} ({key.replace('|', ', ')}); only the "
             f"later counts" for key, run in zip(same[repeat], df.loc[repeat, "run_dir"])]
    return df[~repeat].reset_index(drop=True), notes


def custom_data(dataset: str, data_root: str, classes: Iterable[str]) -> str:
    """Why ``data_root`` is not the paper's copy of ``dataset`` ("" when it is, or when no folder is recorded).

    Only MVTec AD is read from a folder people choose: a folder counts as the official release when
    every class is an MVTec AD category holding the official numbers of train and test images.
    """
    if dataset != "mvtec" or not data_root:
        return ""
    from ..data.mvtec_ad import MVTEC_CATEGORIES, count_mismatch

    for category in classes:
        spec = MVTEC_CATEGORIES.get(category)
        if spec is None:
            return f"{category!r} is not an MVTec AD class"
        problem = count_mismatch(Path(data_root) / category, spec)
        if problem:
            return f"{category}: {problem}"
    return ""


def _reference(dataset: str, metric: str, custom: str = "") -> tuple[PaperTable | None, bool]:
    """The paper table to compare ``dataset``/``metric`` with, and whether it is a stand-in dataset.

    None when ``custom`` says why the data is not the paper's (see :func:`custom_data`).
    """
    task = TASKS.get(metric)
    if task is None or custom:
        return None, False
    own = paper_table(dataset, task)
    if own is not None:
        return own, False
    stand_in = PAPER_STAND_IN.get(dataset)
    return (paper_table(stand_in, task), True) if stand_in else (None, False)


def paper_source(dataset: str, metric: str, custom: str = "") -> str:
    """Which paper table the comparison of ``dataset``/``metric`` uses, in words ("" when none).

    With ``custom`` (:func:`custom_data`), says why there is none.
    """
    if custom and TASKS.get(metric) is not None and paper_table(dataset, TASKS[metric]) is not None:
        return f"none: this data folder is not the paper's {dataset} ({custom}), so its values would mean nothing here"
    table, stand_in = _reference(dataset, metric, custom)
    if table is None:
        return ""
    note = f" (stand-in: {dataset} has no paper table; only its mean and std rows are compared)" if stand_in else ""
    return f"paper Table {table.number}, {table.title.rstrip('.')}{note}"


def section_rows(df: pd.DataFrame, dataset: str, preset: str, data_root: str = "") -> pd.DataFrame:
    """The cells of one section: ``dataset`` on ``data_root`` ("" for none recorded) with ``preset``."""
    return df[(df["dataset"] == dataset) & (df["preset"] == preset) & (df["data_root"] == data_root)]


def section_custom(df: pd.DataFrame, dataset: str, preset: str, data_root: str = "") -> str:
    """:func:`custom_data` for the classes of one section."""
    return custom_data(dataset, data_root, section_rows(df, dataset, preset, data_root)["class"].unique())


def comparison(df: pd.DataFrame, dataset: str, preset: str, metric: str, data_root: str = "") -> pd.DataFrame:
    """The paper-style table of ``metric`` for ``dataset`` (on ``data_root``) / ``preset``: one row per
    class (mean, sample std and count over seeds for each model, its budget and runs named:
    :func:`anovit.runs.provenance.cell_stats`), then the "mean" and "std" rows over classes.

    relative_pct is :func:`relative_improvement` of the two means (per class, and of the class means
    in the mean row, unrounded). paper_* are the paper's printed values where it has the class (or its
    mean/std rows, also for a stand-in dataset), delta_* are ours minus the paper's (not in the std row,
    and only where the dataset is the paper's); none for a data folder that is not the paper's (:func:`custom_data`).
    diff_low/diff_high: the paired 95 % bootstrap interval of AnoViT minus l2-CAE per class
    (:func:`anovit.report.intervals.paired_columns`).
    """
    part = section_rows(df, dataset, preset, data_root)
    reference, stand_in = _reference(dataset, metric, custom_data(dataset, data_root, part["class"].unique()))
    rows = []
    for (kind, category), group in part.groupby(["type", "class"], sort=False):
        row: dict[str, Any] = {"type": kind, "class": category}
        for model in (CAE, ANOVIT):
            row.update(cell_stats(group[group["model"] == model], metric, model))
        printed = paper_row(reference, category) if reference is not None and not stand_in else None
        row["paper_cae"], row["paper_anovit"], row["paper_relative_pct"] = (
            (printed.cae, printed.anovit, printed.relative) if printed else (math.nan,) * 3)
        rows.append(row)
    classes = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    classes = classes.sort_values(["type", "class"], key=_sort_key, kind="stable").reset_index(drop=True)
    summary = []
    for name in SUMMARY_ROWS:
        row = {"type": "", "class": name}
        for model in (CAE, ANOVIT):
            per_class = classes[f"{model}_mean"].dropna()
            row[f"{model}_mean"] = float(per_class.mean()) if name == "mean" else float(per_class.std(ddof=1))
            row[f"{model}_n"] = len(per_class)
        if reference is not None:
            row["paper_cae"], row["paper_anovit"] = reference.mean[:2] if name == "mean" else reference.std
            row["paper_relative_pct"] = reference.mean[2] if name == "mean" else math.nan
        summary.append(row)
    table = pd.concat([classes, pd.DataFrame(summary, columns=list(COMPARISON_COLUMNS))], ignore_index=True)
    table = table.astype({c: float for c in COMPARISON_COLUMNS if c not in TEXT_COLUMNS})
    table[list(TEXT_COLUMNS)] = table[list(TEXT_COLUMNS)].fillna("")
    is_mean = table["class"] != "std"
    table.loc[is_mean, "relative_pct"] = relative_improvement(table.loc[is_mean, "cae_mean"],
                                                              table.loc[is_mean, "anovit_mean"])
    if not stand_in:  # ours minus the paper's only where the dataset is the paper's
        table.loc[is_mean, "delta_cae"] = table.loc[is_mean, "cae_mean"] - table.loc[is_mean, "paper_cae"]
        table.loc[is_mean, "delta_anovit"] = table.loc[is_mean, "anovit_mean"] - table.loc[is_mean, "paper_anovit"]
    return paired_columns(table, part, metric)


def _sort_key(col: pd.Series) -> pd.Series:
    if col.name == "type":
        return col.map(lambda t: TYPE_ORDER.get(t, 2))
    return col.map(lambda c: (0, int(c), "") if str(c).isdigit() else (1, 0, str(c)))


def sections(df: pd.DataFrame, metrics: Iterable[str] = REPORT_METRICS) -> list[tuple[str, str, str, str]]:
    """(dataset, data_root, preset, metric) of every comparison the results support, in a stable order."""
    out = []
    for (dataset, data_root, preset), part in df.groupby(["dataset", "data_root", "preset"], sort=True):
        out += [(dataset, data_root, preset, m) for m in metrics if part[m].notna().any()]
    return out


def overall(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 beside ours: the mean rows of every image/pixel AUROC comparison with the paper's overall row."""
    rows = []
    for dataset, data_root, preset, metric in sections(df, TASKS):
        mean = comparison(df, dataset, preset, metric, data_root).set_index("class").loc["mean"]
        reference, _ = _reference(dataset, metric, section_custom(df, dataset, preset, data_root))
        paper = next((r for r in TABLE_1 if reference is not None and r.dataset == reference.dataset
                      and r.task == reference.task), None)
        rows.append({
            "dataset": dataset, "data_root": data_root, "preset": preset, "task": TASKS[metric], "metric": metric,
            "cae": mean["cae_mean"], "anovit": mean["anovit_mean"], "relative_pct": mean["relative_pct"],
            "paper_row": paper.printed if paper else "", "paper_cae": paper.cae if paper else math.nan,
            "paper_anovit": paper.anovit if paper else math.nan, "paper_relative_pct": paper.relative if paper else math.nan,
        })
    return pd.DataFrame(rows)


def report_tables(df: pd.DataFrame) -> pd.DataFrame:
    """Every comparison stacked in one long table (the report's CSV), with dataset, data_root, preset and metric columns."""
    keys = ["dataset", "data_root", "preset", "metric"]
    frames = [comparison(df, d, p, m, r).assign(dataset=d, data_root=r, preset=p, metric=m,
                                                paper_source=paper_source(d, m, section_custom(df, d, p, r)))
              for d, r, p, m in sections(df)]
    if not frames:
        return pd.DataFrame(columns=[*keys, *COMPARISON_COLUMNS, "paper_source"])
    table = pd.concat(frames, ignore_index=True)
    return table[[*keys, *COMPARISON_COLUMNS, "paper_source"]]
