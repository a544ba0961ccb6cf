"""The report for people: comparison tables as strings, each model's training budget and protocol,
the whole report as Markdown (+ CSV), and the app's comparison figure (plotly, imported only there:
the report CLI does without it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..data.paths import resolve_stored
from ..evaluation.metrics import AUPRO_MAX_FPR
from ..models import MODEL_LABELS
from .tables import (
    ANOVIT, CAE, METRICS, SUMMARY_ROWS, comparison, overall, paper_source, report_tables, section_custom, section_rows,
    sections,
)
from .intervals import DEFECT_TYPE_TITLE, defect_type_table, run_intervals_table
from ..evaluation.run_statistics import METRIC_LEVELS
from ..runs.catalog import PROTOCOL_FIELDS, run_protocol

if TYPE_CHECKING:
    import plotly.graph_objects as go


LEGEND = (
    "Values are AUROC (or AUPRO) as mean ± sample std over seeds; mean and std rows are over the class means. "
    "abs. diff. = AnoViT − l2-CAE; rel. impr. = (AnoViT − l2-CAE) / l2-CAE × 100 on the means, as in the paper; "
    "paired diff. 95 % CI: bootstrap interval of AnoViT − l2-CAE over the same test images (seed pairs averaged), "
    "\"not distinguishable\" when it spans 0. Δ = ours − paper, only where the dataset is the paper's. seeds n/m: how many runs (seeds) fill the l2-CAE / "
    "AnoViT cell; budget: their training epochs (and training-image cap), l2-CAE / AnoViT; type: object or "
    "texture class, as the paper groups MVTec AD. An AUROC of 0.5 is chance. AUPRO integrates the per-region "
    f"overlap up to a false positive rate of {AUPRO_MAX_FPR:g}."
)


INTERVAL_TEXT = ("95 % bootstrap interval over the test images (1000 resamples; normal and anomalous images resampled "
                 "separately, pixel AUROC by whole images); interval n/a: a run evaluated before per-image pixel "
                 "histograms were stored, or without a run folder")
DEFECT_TYPE_NOTE = ("Image AUROC: the normal test images against that defect type's only; pixel AUROC: the pixels of the "
                    "normal images and of that type's images. Mean over the runs that count.")


def _value(x: float, digits: int = 3) -> str:
    return "" if pd.isna(x) else f"{x:.{digits}f}"


def _mean_std(mean: float, std: float, digits: int = 3) -> str:
    if pd.isna(mean):
        return ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if not pd.isna(std) else f"{mean:.{digits}f}"


def _percent(x: float, digits: int = 2) -> str:
    return "" if pd.isna(x) else f"{x:+.{digits}f}%"


def _signed(x: float, digits: int = 3) -> str:
    return "" if pd.isna(x) else f"{x:+.{digits}f}"


def _paired(low: float, high: float) -> str:
    """The paired interval of AnoViT − l2-CAE, read "not distinguishable" when it spans 0 ("" when none)."""
    if pd.isna(low):
        return ""
    return f"[{low:+.3f}, {high:+.3f}]" + (" not distinguishable" if low <= 0 <= high else "")


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison as strings for people: "0.912 ± 0.010" (mean ± std over seeds), the absolute and relative
    difference, seeds and training budget per model ("l2-CAE / AnoViT"), the paper's values and the deltas
    (only where the dataset is the paper's)."""
    summary = table["class"].isin(SUMMARY_ROWS)
    out = pd.DataFrame({
        "type": table["type"], "class": table["class"],
        "l2-CAE": [_value(m) if s else _mean_std(m, d) for m, d, s in zip(table["cae_mean"], table["cae_std"], summary)],
        "AnoViT": [_value(m) if s else _mean_std(m, d) for m, d, s in
                   zip(table["anovit_mean"], table["anovit_std"], summary)],
        "abs. diff.": [_signed(a - c) if r != "std" else "" for a, c, r in
                       zip(table["anovit_mean"], table["cae_mean"], table["class"])],
        "paired diff. 95 % CI": [_paired(lo, hi) for lo, hi in zip(table["diff_low"], table["diff_high"])],
        "rel. impr.": table["relative_pct"].map(_percent),
        "seeds": [f"{int(a)}/{int(b)}" if not s else "" for a, b, s in zip(table["cae_n"], table["anovit_n"], summary)],
        "budget": [f"{c or '—'} / {a or '—'}" if c or a else "" for c, a in
                   zip(table["cae_budget"], table["anovit_budget"])],
    })
    if table["paper_cae"].notna().any():
        out["paper l2-CAE"] = table["paper_cae"].map(_value)
        out["paper AnoViT"] = table["paper_anovit"].map(_value)
        out["paper rel. impr."] = table["paper_relative_pct"].map(lambda x: _percent(x, 3))  # all printed digits
        if table[["delta_cae", "delta_anovit"]].notna().any().any():
            out["Δ l2-CAE"] = table["delta_cae"].map(_signed)
            out["Δ AnoViT"] = table["delta_anovit"].map(_signed)
    return out


def display_intervals(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`anovit.report.intervals.run_intervals_table` for people: value, "[low, high]" (or "interval n/a") and
    the comparison with chance (0.5)."""
    return pd.DataFrame({
        "class": runs["class"], "model": runs["model"], "seed": runs["seed"], "run": runs["run"],
        "value": runs["value"].map(_value),
        "95 % CI": [f"[{lo:.3f}, {hi:.3f}]" if not pd.isna(lo) else "interval n/a" for lo, hi in
                    zip(runs["low"], runs["high"])],
        "vs chance (0.5)": [note or ("above" if not pd.isna(v) else "") for note, v in zip(runs["note"], runs["value"])],
    })


def display_defect_types(types: pd.DataFrame) -> pd.DataFrame:
    """:func:`anovit.report.intervals.defect_type_table` with 3 decimals (blank where a value is missing)."""
    return types.assign(**{c: types[c].map(_value) for c in types.columns if "AUROC" in c})


def runs_table(table: pd.DataFrame) -> pd.DataFrame:
    """Which runs fill each cell of a comparison: one row per class and model, with its budget, its recipe
    and its run folders (seed, finish time)."""
    rows = [{"class": row["class"], "model": MODEL_LABELS.get(model, model), "budget": row[f"{model}_budget"],
             "recipe": row[f"{model}_recipe"], "runs": row[f"{model}_runs"]}
            for row in table.to_dict("records") for model in (CAE, ANOVIT) if row[f"{model}_runs"]]
    return pd.DataFrame(rows, columns=["class", "model", "budget", "recipe", "runs"])


def display_models(cells: pd.DataFrame) -> pd.DataFrame:
    """:func:`anovit.runs.provenance.model_cells` for people: model labels, "mean ± std" with 3 decimals."""
    return pd.DataFrame({
        "type": cells["type"], "class": cells["class"], "model": cells["model"].map(lambda m: MODEL_LABELS.get(m, m)),
        "value": [_mean_std(m, d) for m, d in zip(cells["mean"], cells["std"])], "seeds": cells["n"],
        "budget": cells["budget"], "recipe": cells["recipe"], "runs": cells["runs"],
    })


def display_overall(top: pd.DataFrame) -> pd.DataFrame:
    """:func:`anovit.report.tables.overall` as strings for people: readable column names, 3 decimals, the absolute
    and relative difference, the paper's Table 1 row beside ours, blanks where there is none."""
    return pd.DataFrame({
        "dataset": top["dataset"], "data folder": top["data_root"].replace("", "(built in / not recorded)"),
        "preset": top["preset"], "task": top["task"],
        "l2-CAE": top["cae"].map(_value), "AnoViT": top["anovit"].map(_value),
        "abs. diff.": (top["anovit"] - top["cae"]).map(_signed),
        "rel. impr.": top["relative_pct"].map(_percent), "paper row": top["paper_row"].fillna(""),
        "paper l2-CAE": top["paper_cae"].map(_value), "paper AnoViT": top["paper_anovit"].map(_value),
        "paper rel. impr.": top["paper_relative_pct"].map(lambda x: _percent(x, 3)),
    })


def to_markdown(table: pd.DataFrame) -> str:
    """A DataFrame of strings as a GitHub Markdown table."""
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def markdown_report(df: pd.DataFrame, source: str = "") -> str:
    """The whole report: Table 1 style overview, then one paper-style table per (dataset, preset, metric)."""
    lines = ["# AnoViT vs l2-CAE: our results beside the paper's", ""]
    if source:
        lines += [f"Source: {source} ({len(df)} runs).", ""]
    left_out = df.attrs.get("left_out", [])
    if left_out:
        lines += [f"**{len(left_out)} row(s) of the results table were left out** (they break its schema):", "",
                  *[f"- {problem}" for problem in left_out], ""]
    repeated = df.attrs.get("repeated", [])
    if repeated:
        lines += [f"**{len(repeated)} run(s) repeat a cell already counted** (the same data, class, model, preset, "
                  "seed and setting; the later run counts):", "", *[f"- {note}" for note in repeated], ""]
    lines += [LEGEND, ""]
    not_counted = df.attrs.get("not_counted", 0)
    if not_counted:
        lines += [f"{not_counted} older run(s) trained with another budget than the newest run of their cell are "
                  "not counted (anovit.runs.provenance.default_counted); the Results page lets you choose.", ""]
    top = overall(df)
    if not top.empty:
        lines += ["## Overall (paper Table 1)", "", to_markdown(display_overall(top)), ""]
    for dataset, data_root, preset, metric in sections(df):
        folder = f" ({data_root})" if data_root else ""
        lines += [f"## {dataset}{folder} · {preset} · {METRICS[metric]}", ""]
        where = paper_source(dataset, metric, section_custom(df, dataset, preset, data_root))
        lines += [f"Paper columns: {where}.", ""] if where else []
        table = comparison(df, dataset, preset, metric, data_root)
        lines += [to_markdown(display_table(table)), "", to_markdown(runs_table(table)), ""]
        part = section_rows(df, dataset, preset, data_root)
        if metric in METRIC_LEVELS:
            lines += [f"Each run's {METRICS[metric]} with its {INTERVAL_TEXT}:", "",
                      to_markdown(display_intervals(run_intervals_table(part, metric))), ""]
        if metric == "image_auroc":
            types = defect_type_table(part)
            if not types.empty:
                lines += [f"### {DEFECT_TYPE_TITLE}", "", DEFECT_TYPE_NOTE, "",
                          to_markdown(display_defect_types(types)), ""]
    lines += ["## Training budget and protocol per model (cost: mean per cell)", "", to_markdown(cost_table(df)), ""]
    return "\n".join(lines)


def _values(series: pd.Series, fmt: str = "{}") -> str:
    """The distinct non-missing values of ``series`` joined by ", " ("" when none)."""
    return ", ".join(fmt.format(v) for v in sorted(set(series.dropna().tolist()), key=str))


def with_protocol(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (one row per cell) with each cell's training budget and protocol from its run folder
    (:func:`anovit.runs.catalog.run_protocol`: epochs run, lr, batch size, training-image cap, decoder, image
    size, sigma; missing where the folder is gone)."""
    protocol = [run_protocol(resolve_stored(str(p))) for p in df["run_dir"]]
    return df.assign(**pd.DataFrame(protocol, index=df.index, columns=list(PROTOCOL_FIELDS)))


def cost_table(df: pd.DataFrame) -> pd.DataFrame:
    """Each model's training budget and protocol per (dataset, preset, model), as strings: epochs, Adam
    learning rate, batch size, training-image cap, decoder, image size and sigma (read from the cells'
    run folders; every distinct value is listed), mean training seconds and images/s."""
    rows = []
    runs = with_protocol(df)
    for (dataset, preset, model), g in runs.groupby(["dataset", "preset", "model"], sort=True):
        rows.append({"dataset": dataset, "preset": preset, "model": MODEL_LABELS.get(model, model), "cells": len(g),
                     "epochs": _values(g["epochs"]), "lr": _values(g["lr"], "{:g}"),
                     "batch": _values(g["batch_size"], "{:g}"), "train images": _values(g["max_train_images"]) or "all",
                     "decoder": _values(g["decoder"]) or "—", "size px": _values(g["image_size"]),
                     "sigma": _values(g["sigma"], "{:g}"), "train s": _value(g["train_seconds"].mean(), 1),
                     "train img/s": _value(g["train_images_per_s"].mean(), 1),
                     "eval img/s": _value(g["eval_images_per_s"].mean(), 1)})
    return pd.DataFrame(rows, columns=["dataset", "preset", "model", "cells", "epochs", "lr", "batch", "train images",
                                       "decoder", "size px", "sigma", "train s", "train img/s", "eval img/s"])


def write_report(df: pd.DataFrame, output_dir: Path, source: str = "") -> tuple[Path, Path]:
    """Write report.md and report.csv into ``output_dir``; returns their paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    md, csv = output_dir / "report.md", output_dir / "report.csv"
    md.write_text(markdown_report(df, source))
    report_tables(df).to_csv(csv, index=False, float_format="%.6g")
    return md, csv


def comparison_figure(table: pd.DataFrame, metric: str, runs: pd.DataFrame | None = None) -> go.Figure:
    """Grouped bars per class (and the mean): l2-CAE and AnoViT with ± std error bars over seeds, the
    paper's values as diamonds on their model's bar, and each run of ``runs`` (columns class, model, seed,
    ``metric``: the runs the bars average) as a small point on its model's bar, named by its seed."""
    import plotly.graph_objects as go

    rows = table[table["class"] != "std"]
    x = rows["class"].tolist()
    fig = go.Figure()
    colours = {CAE: "#7f7f7f", ANOVIT: "#d62728"}
    for model in (CAE, ANOVIT):
        fig.add_bar(name=MODEL_LABELS[model], x=x, y=rows[f"{model}_mean"], offsetgroup=model,
                    marker_color=colours[model],
                    error_y=dict(type="data", array=rows[f"{model}_std"].fillna(0.0), visible=True))
        points = runs[(runs["model"] == model) & runs[metric].notna()] if runs is not None else None
        if points is not None and not points.empty:
            fig.add_scatter(name=f"{MODEL_LABELS[model]} per seed", x=points["class"], y=points[metric],
                            mode="markers", offsetgroup=model, customdata=points[["seed"]],
                            hovertemplate="seed %{customdata[0]}: %{y:.3f}<extra></extra>",
                            marker=dict(symbol="circle", size=7, color="white", line=dict(color="black", width=1)))
        if rows[f"paper_{model}"].notna().any():
            fig.add_scatter(name=f"paper {MODEL_LABELS[model]}", x=x, y=rows[f"paper_{model}"], mode="markers",
                            offsetgroup=model, marker=dict(symbol="diamond", size=11, color="black",
                                                           line=dict(color=colours[model], width=2)))
    fig.update_layout(barmode="group", scattermode="group", yaxis_title=METRICS.get(metric, metric),
                      xaxis_title="class", margin=dict(t=30, b=10), yaxis_range=[0, 1.05],
                      legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))  # above: clear of the axis title
    return fig
