"""Results page: per-class AUROC of AnoViT vs l2-CAE beside the paper's Tables 1-5, from the benchmark's
results table and evaluated run folders; the tables are :mod:`anovit.report`'s, their display :mod:`anovit.report_render`'s."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .. import report, reproduction
from ..report_render import comparison_figure, cost_table, display_table, with_protocol
from ..benchmark import default_results_path
from ..runs import list_runs
from .common import page_header, show_errors

CAPTION = ("Mean ± sample std over seeds per class; mean and std rows over classes; relative improvement = "
           "(AnoViT − l2-CAE) / l2-CAE × 100 on the means, as in the paper; Δ = ours − paper. "
           "Reproduce with `python -m anovit benchmark --dataset synthetic` then `python -m anovit report`.")


def _metric_tab(df: pd.DataFrame, dataset: str, preset: str, metric: str, data_root: str) -> None:
    table = report.comparison(df, dataset, preset, metric, data_root)
    source = report.paper_source(dataset, metric, report.section_custom(df, dataset, preset, data_root))
    st.caption(f"Paper columns: {source}." if source else "The paper reports no such table.")
    st.dataframe(display_table(table), hide_index=True)
    st.plotly_chart(comparison_figure(table, metric), key=f"chart-{metric}")
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


@show_errors
def render() -> None:
    """The Results page."""
    page_header("Results", CAPTION)
    _reproduced_table_2()
    path = default_results_path()
    with_runs = st.toggle("Include evaluated run folders from the checkpoints folder", value=True)
    df = report.collect_results(path, list_runs() if with_runs else ())
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
    metrics = [m for d, r, p, m in report.sections(df) if (d, r, p) == (dataset, data_root, preset)]
    for tab, metric in zip(st.tabs([report.METRICS[m] for m in metrics]), metrics):
        with tab:
            _metric_tab(df, dataset, preset, metric, data_root)
    st.caption("Training budget and protocol of each model (read from the cells' run folders)")
    st.dataframe(cost_table(report.section_rows(df, dataset, preset, data_root)), hide_index=True)
    with st.expander("Overall, beside the paper's Table 1"):
        st.dataframe(report.overall(df), hide_index=True)
    with st.expander(f"Every cell ({len(df)}): one row per dataset, class, model, preset and seed, with its "
                     "training budget and sigma"):
        st.dataframe(with_protocol(df), hide_index=True)
        st.download_button("Download all results (CSV)", df.to_csv(index=False), mime="text/csv",
                           file_name="results.csv", key="csv-all")
