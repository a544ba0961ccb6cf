"""Results page: per-class AUROC of AnoViT vs l2-CAE beside the paper's Tables 1-5, from the benchmark's
results table and evaluated run folders; the tables are :mod:`anovit.report.tables`'s, their display :mod:`anovit.report.render`'s."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..runs import checkpoint as ckpt
from ..report import tables as report
from ..report import reproduction
from ..evaluation.benchmark import default_results_path
from ..data.paths import resolve_stored
from ..evaluation.metrics import AUPRO_MAX_FPR
from ..models import MODEL_LABELS
from ..runs.provenance import budget, budget_warnings, default_counted, model_cells
from ..report.intervals import DEFECT_TYPE_TITLE, defect_type_table, run_intervals_table
from ..report.unified import published_table, unified_comparison
from ..report.render import (
    DEFECT_TYPE_NOTE, INTERVAL_TEXT, LEGEND, comparison_figure, cost_table, display_defect_types, display_intervals,
    display_models, display_overall, display_table, runs_table, with_protocol,
)
from ..evaluation.run_statistics import METRIC_LEVELS
from ..runs.catalog import list_runs
from .common import page_header, show_errors

CAPTION = ("Per-class AUROC of AnoViT vs l2-CAE beside the paper's Tables 1-5. Every cell names the runs that "
           "fill it; runs of different training budgets are never averaged, and you choose which runs count (below "
           "the tables). Reproduce with `python -m anovit benchmark --dataset synthetic` then `python -m anovit report`.")
RUN_COLUMNS = {"run": "run folder", "model": "model", "class": "class", "seed": "seed", "budget": "budget",
               "recipe": "recipe", "finished_at": "finished", "image_auroc": "image AUROC", "source": "source"}


def runs_that_count(part: pd.DataFrame, key: str) -> pd.Series:
    """An editable table of the runs of one section, one row per run; True where "counts" is ticked
    (by default: :func:`anovit.runs.provenance.default_counted`)."""
    table = part.assign(budget=[budget(e, i) for e, i in zip(part["epochs"], part["train_images"])],
                        finished_at=part["finished_at"].astype(str).str[:16].str.replace("T", " "))
    table = table[list(RUN_COLUMNS)].rename(columns=RUN_COLUMNS)
    table["model"] = table["model"].map(lambda m: MODEL_LABELS.get(m, m))
    table.insert(0, "counts", default_counted(part).to_numpy())
    edited = st.data_editor(
        table, key=key, hide_index=True, disabled=[c for c in table.columns if c != "counts"],
        column_config={"counts": st.column_config.CheckboxColumn(help="Averaged into the tables above"),
                       "image AUROC": st.column_config.NumberColumn(format="%.3f")},
    )
    return pd.Series(edited["counts"].astype(bool).to_numpy(), index=part.index)


def all_classes_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset, data folder, preset and class of ``df`` (the runs that count): per model, the mean
    image and pixel AUROC over its runs and how many runs (seeds) that is."""
    keys = ["dataset", "data_root", "preset", "class"]
    stats = df.groupby(keys + ["model"]).agg(image=("image_auroc", "mean"), pixel=("pixel_auroc", "mean"),
                                             seeds=("seed", "nunique"))
    wide = stats.unstack("model")
    wide.columns = [f"{MODEL_LABELS.get(m, m)} {'seeds' if k == 'seeds' else k + ' AUROC'}" for k, m in wide.columns]
    return wide.reset_index().rename(columns={"data_root": "data folder"})


def per_image_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """The per-image test scores (each run folder's test_scores.csv) of ``rows``, with run, model, class and seed."""
    frames = []
    for row in rows.to_dict("records"):
        path = resolve_stored(row["run_dir"]) / ckpt.TEST_SCORES if row["run_dir"] else None
        if path is not None and path.is_file():
            frames.append(pd.read_csv(path).assign(**{k: row[k] for k in ("run", "model", "class", "seed")}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _metric_tab(df: pd.DataFrame, dataset: str, preset: str, metric: str, data_root: str) -> None:
    table = report.comparison(df, dataset, preset, metric, data_root)
    source = report.paper_source(dataset, metric, report.section_custom(df, dataset, preset, data_root))
    note = f"Paper columns: {source}." if source else "The paper reports no such table."
    if metric == "aupro":
        note += f" AUPRO integrates the per-region overlap up to a false positive rate of {AUPRO_MAX_FPR:g}."
    st.caption(note)
    mismatched = budget_warnings(table, labels=MODEL_LABELS)
    if mismatched:
        st.warning("The two models were not trained alike, so their difference is not only the model: "
                   + "; ".join(mismatched) + ". Tick runs of equal budgets below.")
    st.dataframe(display_table(table), hide_index=True)
    if metric in METRIC_LEVELS:
        st.caption(f"Each run's {report.METRICS[metric]} with its {INTERVAL_TEXT}. Chance is 0.5.")
        st.dataframe(display_intervals(run_intervals_table(report.section_rows(df, dataset, preset, data_root), metric)),
                     hide_index=True)
    st.caption("Which runs fill each cell (budget, recipe; run folder, seed, finished):")
    st.dataframe(runs_table(table), hide_index=True)
    st.plotly_chart(comparison_figure(table, metric, report.section_rows(df, dataset, preset, data_root)),
                    key=f"chart-{metric}")
    st.caption("White points: each run that counts (hover: its seed); bars: their mean.")
    with st.expander("Every model of this section, per class (also those the paper does not compare)"):
        st.dataframe(display_models(model_cells(report.section_rows(df, dataset, preset, data_root), metric)),
                     hide_index=True)
    st.download_button("Download this table (CSV)", table.to_csv(index=False), mime="text/csv",
                       file_name=f"{dataset}-{preset}-{metric}.csv", key=f"csv-{metric}")


def _reproduced_table_2() -> None:
    with st.expander("Table 2 reproduced offline on the real MNIST (CPU setting), beside the paper's"):
        measured = reproduction.load_measured()
        if measured is None:
            st.info("Not measured yet: run `python benchmarks/mnist_table2.py` (about 40 minutes on 2 cores).")
            return
        st.caption(reproduction.setting_text(measured))
        st.dataframe(reproduction.display(reproduction.measured_table(measured)), hide_index=True)


def _defect_types(part: pd.DataFrame) -> None:
    st.subheader(DEFECT_TYPE_TITLE)
    types = defect_type_table(part)
    if types.empty:
        st.info("No run that counts has per-image test scores (test_scores.csv): evaluate a run to see which defect "
                "types it misses.")
        return
    st.caption(DEFECT_TYPE_NOTE)
    st.dataframe(display_defect_types(types), hide_index=True)


UNIFIED_TITLE = "Unified runs (one model for every class), per class beside the per-class runs"
UNIFIED_NOTE = ("Each class of a run trained with --category all, scored with that class's own threshold and "
                "calibration, beside the newest evaluated per-class run of the same class folder, model, preset and "
                "seed; diff: unified minus per-class with its paired 95 % bootstrap interval over the test images "
                "(empty where a run lacks per-image scores). Published unified models on MVTec AD below, all with "
                "pretrained encoders: not comparable with from-scratch runs on other sets.")


def unified_section(runs: list) -> None:
    """The unified runs among ``runs`` per class (:func:`anovit.report.unified.unified_comparison`), and the
    published unified numbers; nothing when no unified run is evaluated."""
    table = unified_comparison(runs)
    if table.empty:
        return
    with st.expander(UNIFIED_TITLE, expanded=True):
        st.caption(UNIFIED_NOTE)
        st.dataframe(table, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3f")
                                                            for c in table.columns if "AUROC" in c or "diff" in c})
        st.dataframe(published_table(), hide_index=True)


@show_errors
def render() -> None:
    """The Results page."""
    page_header("Results", CAPTION)
    _reproduced_table_2()
    path = default_results_path()
    with_runs = st.toggle("Include evaluated run folders from the checkpoints folder", value=True)
    runs = list_runs() if with_runs else []
    unified_section(runs)
    df = report.collect_results(path, runs)
    for problem in df.attrs["left_out"]:
        st.warning(f"Left out: {problem}")
    if df.empty:
        st.info(f"No results yet: run `python -m anovit benchmark --dataset synthetic` (it writes {path}), "
                "or evaluate a trained run.")
        return
    left, middle, right = st.columns(3)
    dataset = left.selectbox("Dataset", sorted(df["dataset"].unique()))
    roots = sorted(df.loc[df["dataset"] == dataset, "data_root"].unique())
    data_root = middle.selectbox("Data folder", roots, format_func=lambda r: r or "(built in / not recorded)")
    in_folder = df[(df["dataset"] == dataset) & (df["data_root"] == data_root)]
    preset = right.selectbox("Preset", sorted(in_folder["preset"].unique()))
    part = report.section_rows(df, dataset, preset, data_root)
    counted = default_counted(df)
    tables = st.container()
    st.subheader("Runs that count")
    st.caption("One row per run. Runs of one class and model are averaged only when they share their budget "
               "(epochs, training-image cap) and recipe (learning rate, batch, decoder, mask ratio, image size, "
               "score function, sigma); by default every seed of the newest run's setting counts. Untick a run to "
               "leave it out, tick one to put it in.")
    counted[part.index] = runs_that_count(part, key=f"runs-{dataset}-{data_root}-{preset}-{with_runs}")
    chosen = df[counted]
    with tables:
        st.caption(LEGEND + " Error bars: sample std over seeds.")
        metrics = [m for d, r, p, m in report.sections(chosen) if (d, r, p) == (dataset, data_root, preset)]
        for tab, metric in zip(st.tabs([report.METRICS[m] for m in metrics]), metrics):
            with tab:
                _metric_tab(chosen, dataset, preset, metric, data_root)
        if not metrics:
            st.info("No run counts: tick some in the table below.")
        _defect_types(chosen[chosen.index.isin(part.index)])
    scores = per_image_scores(chosen[chosen.index.isin(part.index)])
    if not scores.empty:
        st.download_button("Download the per-image scores of the runs that count (CSV)", scores.to_csv(index=False),
                           mime="text/csv", file_name=f"{dataset}-{preset}-per-image-scores.csv", key="csv-scores")
    st.caption("Training budget and protocol of each model (read from the runs' folders)")
    st.dataframe(cost_table(report.section_rows(chosen, dataset, preset, data_root)), hide_index=True)
    with st.expander("All datasets and classes in one table (the runs that count)"):
        overview = all_classes_table(chosen)
        st.dataframe(overview, hide_index=True, column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in overview if c.endswith("AUROC")})
    with st.expander("Overall, beside the paper's Table 1 (the runs that count)"):
        st.dataframe(display_overall(report.overall(chosen)), hide_index=True)
    with st.expander(f"Every run ({len(df)}), with its training budget and sigma"):
        st.dataframe(with_protocol(df), hide_index=True,
                     column_config={m: st.column_config.NumberColumn(format="%.3f") for m in report.METRICS})
        st.download_button("Download all results (CSV)", df.to_csv(index=False), mime="text/csv",
                           file_name="results.csv", key="csv-all")
