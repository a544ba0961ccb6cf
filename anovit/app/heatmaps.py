"""Heatmaps page (the paper's Fig. 3): l2-CAE and AnoViT anomaly maps of the same test images beside
the ground-truth mask on one colour scale first; then the thresholded view, each model binarised at its
threshold under the rule chosen (validation: fitted on the model's normal validation images by
:meth:`anovit.scoring.detector.Detector.fit_threshold`; oracle: the test split's F1-optimal; manual) with its
TPR/FPR stated, the AUROCs with their 95 % intervals, and the ROC curves of both models."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping

import numpy as np
import pandas as pd
import streamlit as st

from ..scoring.detector import decision, is_anomalous
from ..evaluation.metrics import f1_max
from ..models import MODEL_LABELS
from ..runs.record import RunRecord
from ..visualization.figures import Panel, Scale, panel_grid_figure, roc_figure
from ..evaluation.run_statistics import METRIC_LEVELS, run_interval
from ..evaluation.uncertainty import Interval
from .common import page_header, page_link, show_errors, threshold_basis
from .intervals import INTERVAL_NOTE
from .partners import partner_buttons
from .pickers import DataRef, finished_runs, of_seed, run_data, run_label, run_seeds, seed_picker
from .predictions import fitted_detector, predict_items, test_pass

MODELS = ("cae", "anovit")  # column order: baseline first, as in the paper's figure
N_THRESHOLDS = 121
VALIDATION, TEST_F1, MANUAL = (
    "validation (each model's own, normal images only)",
    "oracle (each model's F1-optimal on the test split, chosen with its labels)",
    "manual (one threshold for both)",
)
BORDER_NOTE = (
    "The l2-CAE's maps are bright along the image border on every image, normal or not: its strided "
    "convolutions pad with zeros, so it reconstructs the outermost pixels poorly. Since an image's anomaly "
    "score is the maximum of its map, this border error sets a floor under all its scores, and its threshold "
    "(fitted on normal validation images) sits above that floor; a defect must outshine the border to count."
)


def per_model(threshold: float | Mapping[str, float]) -> dict[str, float]:
    """A threshold per model: ``threshold`` itself when it is one, else one for all of :data:`MODELS`."""
    return dict(threshold) if isinstance(threshold, Mapping) else {m: float(threshold) for m in MODELS}


def test_f1_threshold(scores: pd.DataFrame) -> float | None:
    """The image-level F1-optimal threshold on the test split's anomaly scores (:func:`anovit.evaluation.metrics.f1_max`);
    None when the split has no anomalous image."""
    if not scores["label"].astype(bool).any():
        return None
    return f1_max(scores["score"].to_numpy(), scores["label"].to_numpy())[1]


def group_runs(runs: list[RunRecord]) -> dict[DataRef, dict[str, list[RunRecord]]]:
    """Runs grouped by the data they were trained on (dataset, class, folder), then by model type.

    Only groups holding both an l2-CAE and an AnoViT run are returned.
    """
    groups: dict[DataRef, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        ref = run_data(run)
        if ref is not None and run.model_type in MODELS:
            groups[DataRef(ref.dataset, ref.category, ref.root)][run.model_type].append(run)
    return {ref: dict(by_model) for ref, by_model in groups.items() if all(by_model.get(m) for m in MODELS)}


def requested_group(refs: list[DataRef], params: Mapping[str, str]) -> int:
    """Index in ``refs`` of the data a link asked for (``?dataset=...&class=...``, optionally ``&root=``: see
    :func:`heatmaps_query`); 0 when it names none of them."""
    for i, ref in enumerate(refs):
        if (ref.dataset, ref.category) == (params.get("dataset"), params.get("class")) and (
            "root" not in params or (ref.root or "") == params["root"]
        ):
            return i
    return 0


def heatmaps_query(training: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters that open Heatmaps on a run's data (its training.json / job config)."""
    query = {"dataset": str(training.get("dataset")), "class": str(training.get("category"))}
    return query | {"root": str(training["data_root"])} if training.get("data_root") else query


def rates_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float | None, float | None]:
    """(true positive rate, false positive rate) when "anomalous" means score >= threshold; None without that class."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    flagged = is_anomalous(scores, threshold)
    tpr = float(flagged[labels].mean()) if labels.any() else None
    fpr = float(flagged[~labels].mean()) if (~labels).any() else None
    return tpr, fpr


def roc_point_at(roc: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float) -> tuple[float, float]:
    """(fpr, tpr) of a ROC curve (fpr, tpr, decreasing thresholds) at ``threshold``: the last point whose
    threshold is still >= it (exact up to the curve's binning and point spacing)."""
    fpr, tpr, thr = roc
    i = int(np.searchsorted(-np.asarray(thr), -threshold, side="right")) - 1
    i = min(max(i, 0), len(fpr) - 1)
    return float(fpr[i]), float(tpr[i])


def mask_stats(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """Pixel precision, recall, IoU and F1 of a binarised map against a mask (None where undefined)."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    tp = float((predicted & truth).sum())
    fp = float((predicted & ~truth).sum())
    fn = float((~predicted & truth).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "iou": tp / (tp + fp + fn) if tp + fp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    }


def threshold_options(rocs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int = N_THRESHOLDS) -> list[float]:
    """``n`` log-spaced thresholds spanning the finite, positive thresholds of the given ROC curves."""
    finite = np.concatenate([np.asarray(r[2])[np.isfinite(r[2]) & (np.asarray(r[2]) > 0)] for r in rocs])
    if finite.size == 0:
        return [1.0]
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return [lo]
    return np.geomspace(lo, hi, n).tolist()


def default_images(scores: pd.DataFrame, per_type: int = 1, limit: int = 5) -> list[int]:
    """Test indices shown first: the first ``per_type`` image(s) of each defect type, normal last, at most ``limit``."""
    types = sorted(scores["defect_type"].unique(), key=lambda t: (t == "good", t))
    chosen: list[int] = []
    for kind in types:
        chosen += scores[scores["defect_type"] == kind]["index"].head(per_type).tolist()
    return [int(i) for i in chosen[:limit]]


def nearest(options: list[float], value: float | None) -> float:
    """The option closest to ``value`` in log scale (the middle one when value is None or not positive)."""
    if value is None or not value > 0:
        return options[len(options) // 2]
    return min(options, key=lambda o: abs(np.log(o) - np.log(value)))


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def comparison_rows(
    items: dict[str, dict[str, Any]], threshold: float | Mapping[str, float], binarised: bool = True
) -> tuple[list[list[Panel]], list[str], pd.DataFrame]:
    """Panels (input, GT, each model's map, and with ``binarised`` each model's map binarised at its threshold)
    per image, row titles and a numbers table; ``threshold`` is one for both models or one per model (:func:`per_model`)."""
    thresholds = per_model(threshold)
    base = items["anovit"]
    rows, titles, table = [], [], []
    for k, index in enumerate(base["index"]):
        mask = base["mask"][k]
        row = [Panel("input", base["image"][k]), Panel("ground truth", mask)]
        row += [Panel(f"{MODEL_LABELS[m]}<br>anomaly map", items[m]["anomaly_map"][k], "error") for m in MODELS]
        record: dict[str, Any] = {"image": f"#{index}", "defect type": base["defect_type"][k]}
        for m in MODELS:
            binary = is_anomalous(items[m]["anomaly_map"][k], thresholds[m])
            if binarised:
                row.append(Panel(f"{MODEL_LABELS[m]}<br>≥ threshold", binary))
            stats = mask_stats(binary, items[m]["mask"][k])
            score = float(items[m]["score"][k])
            record[f"{MODEL_LABELS[m]} score"] = f"{score:.4g}"
            record[f"{MODEL_LABELS[m]} decision"] = decision(score, thresholds[m])
            record[f"{MODEL_LABELS[m]} pixel F1"] = _fmt(stats["f1"])
            record[f"{MODEL_LABELS[m]} IoU"] = _fmt(stats["iou"])
        rows.append(row)
        titles.append(f"#{index} {base['defect_type'][k]}")
        table.append(record)
    return rows, titles, pd.DataFrame(table)


def summary_at(passes: dict[str, dict[str, Any]], threshold: float | Mapping[str, float],
               intervals: Mapping[str, Mapping[str, Interval | None]] | None = None) -> pd.DataFrame:
    """Per model: its threshold, both AUROCs (with their 95 % interval from ``intervals``: model -> metric ->
    :class:`~anovit.evaluation.uncertainty.Interval`, "n/a" where None), image TPR/FPR over the whole test split and pixel
    TPR/FPR (binned ROC) there; ``threshold`` is one for both models or one per model (:func:`per_model`)."""
    thresholds = per_model(threshold)
    records = []
    for m in MODELS:
        p, threshold = passes[m], thresholds[m]
        tpr, fpr = rates_at(p["scores"]["score"].to_numpy(), p["scores"]["label"].to_numpy(), threshold)
        record = {
            "model": MODEL_LABELS[m],
            "threshold": f"{threshold:.4g}",
            "image AUROC": _fmt(p["image_auroc"]),
            "pixel AUROC": _fmt(p["pixel_auroc"]),
            "image TPR": _fmt(tpr),
            "image FPR": _fmt(fpr),
            "pixel TPR": "—",
            "pixel FPR": "—",
        }
        if intervals is not None:
            for key, label in (("image_auroc", "image AUROC"), ("pixel_auroc", "pixel AUROC")):
                iv = intervals[m].get(key)
                record[f"{label} 95 % CI"] = f"[{iv.low:.3f}, {iv.high:.3f}]" if iv is not None else "n/a"
        if p["pixel_roc"] is not None:
            pfpr, ptpr = roc_point_at(p["pixel_roc"], threshold)
            record["pixel TPR"], record["pixel FPR"] = _fmt(ptpr), _fmt(pfpr)
        records.append(record)
    return pd.DataFrame(records)


def _roc_figures(passes: dict[str, dict[str, Any]], thresholds: dict[str, float]) -> None:
    for col, level in zip(st.columns(2), ("image", "pixel")):
        curves, aucs, marks = {}, {}, {}
        for m in MODELS:
            roc = passes[m][f"{level}_roc"]
            if roc is None:
                continue
            label = MODEL_LABELS[m]
            curves[label], aucs[label] = (roc[0], roc[1]), passes[m][f"{level}_auroc"]
            marks[label] = roc_point_at(roc, thresholds[m])
        if curves:
            col.plotly_chart(roc_figure(curves, aucs, title=f"{level}-level ROC", marks=marks), key=f"roc-{level}")
        else:
            col.info(f"No {level}-level ROC: the test split lacks normal or anomalous {level}s.")


def threshold_table(fitted: dict[str, float], reference: dict[str, float | None]) -> pd.DataFrame:
    """Per model: the threshold fitted on its validation split and the test split's F1-optimal one."""
    return pd.DataFrame({
        "model": [MODEL_LABELS[m] for m in MODELS],
        "validation threshold": [f"{fitted[m]:.4g}" for m in MODELS],
        "test F1-optimal (reference)": ["—" if reference[m] is None else f"{reference[m]:.4g}" for m in MODELS],
    })


def _choose_thresholds(chosen: dict[str, RunRecord], data: dict[str, Any], passes: dict[str, dict[str, Any]]
                       ) -> tuple[dict[str, float], str]:
    """The thresholds the page uses, per model (by default each model's validation threshold), and the rule's name."""
    detectors = {m: fitted_detector(chosen[m], data[m]) for m in MODELS}
    fitted = {m: float(detectors[m].threshold) for m in MODELS}
    reference = {m: test_f1_threshold(passes[m]["scores"]) for m in MODELS}
    how = st.radio("Threshold rule", (VALIDATION, TEST_F1, MANUAL), horizontal=True)
    st.dataframe(threshold_table(fitted, reference), hide_index=True)
    st.markdown("**Validation** thresholds: " + "; ".join(
        f"{MODEL_LABELS[m]} {threshold_basis(len(detectors[m].validation_scores_))}" for m in MODELS)
        + ". **Oracle**: the test split's F1-optimal threshold, chosen with the very labels it is then judged on "
          "(an upper reference, not a deployable rule). **Manual**: one value for both models, to explore. The two "
          "models' errors live on different scales, so each gets its own threshold except in manual.")
    if how == VALIDATION:
        return fitted, how
    if how == TEST_F1:
        return {m: fitted[m] if reference[m] is None else reference[m] for m in MODELS}, how
    rocs = [passes[m][key] for m in MODELS for key in ("pixel_roc", "image_roc") if passes[m][key] is not None]
    options = threshold_options(rocs) if rocs else [1.0]
    one = st.select_slider("One threshold on the squared error for both models", options,
                           value=nearest(options, fitted["anovit"]), format_func=lambda v: f"{v:.3g}",
                           help="Starts at AnoViT's validation threshold")
    return per_model(one), how


@show_errors
def render() -> None:
    """The Heatmaps page."""
    page_header(
        "Heatmaps",
        "l2-CAE and AnoViT side by side on the same test images (the paper's Fig. 3), "
        "on one colour scale, each at its own threshold.",
    )
    runs = finished_runs()
    groups = group_runs(runs)
    if not groups:
        st.info(
            "This page needs an l2-CAE and an AnoViT checkpoint trained on the same class: train both on the Train "
            "page (e.g. synthetic / weave, preset cpu-tiny)."
        )
        page_link("train")
    partner_buttons(runs)  # a class with one of the two: its partner in one click
    if not groups:
        return
    refs = list(groups)
    ref = st.selectbox("Dataset / class", refs, format_func=lambda r: r.label + (f" ({r.root})" if r.root else ""),
                       index=requested_group(refs, st.query_params))
    seed = seed_picker(sorted(set.intersection(*(set(run_seeds(groups[ref][m])) for m in MODELS))), key="hm-seed")
    cols = st.columns(2)
    chosen = {
        m: cols[i].selectbox(f"{MODEL_LABELS[m]} checkpoint", of_seed(groups[ref][m], seed), format_func=run_label,
                             key=f"hm-{m}")
        for i, m in enumerate(MODELS)
    }
    data = {m: run_data(chosen[m]) for m in MODELS}
    passes = {m: test_pass(chosen[m], data[m]) for m in MODELS}
    scores = passes["anovit"]["scores"]
    types = sorted(scores["defect_type"].unique(), key=lambda t: (t == "good", t))
    kept = st.multiselect("Defect types", types, default=types, key="hm-types")
    shown = scores[scores["defect_type"].isin(kept)]
    labels = {int(r.index): f"#{r.index} {r.defect_type} (AnoViT score {r.score:.3g})" for r in shown.itertuples()}
    picked = st.multiselect(
        "Test images", list(labels), default=default_images(shown), format_func=labels.get, max_selections=8,
        key=f"hm-images-{'-'.join(kept)}",
    )
    if not picked:
        st.info("Pick at least one test image.")
        return
    items = {m: predict_items(chosen[m], data[m], picked) for m in MODELS}
    vmax = max(float(items[m]["anomaly_map"].max()) for m in MODELS) or 1.0
    scale = {"error": Scale(0.0, vmax)}
    rows, titles, _ = comparison_rows(items, 0.0, binarised=False)
    st.plotly_chart(panel_grid_figure(rows, scale, row_titles=titles, cell_px=170), key="heatmap-maps", theme=None)
    st.caption(f"The anomaly maps on one colour scale for both models: 0 to {vmax:.3g} (the largest value among the "
               "maps shown). " + BORDER_NOTE)
    st.subheader("Thresholded view")
    thresholds, rule = _choose_thresholds(chosen, data, passes)
    intervals = {m: {k: run_interval(chosen[m].path, k) for k in METRIC_LEVELS} for m in MODELS}
    summary = summary_at(passes, thresholds, intervals)
    st.markdown(f"**Rule: {rule}.** " + " ".join(
        f"{r['model']}: threshold {r['threshold']}, image TPR {r['image TPR']} / FPR {r['image FPR']}, pixel TPR "
        f"{r['pixel TPR']} / FPR {r['pixel FPR']}." for r in summary.to_dict("records")))
    rows, titles, table = comparison_rows(items, thresholds)
    binary = [[p for p in row if "≥ threshold" in p.title or p.title in ("input", "ground truth")] for row in rows]
    st.plotly_chart(panel_grid_figure(binary, scale, row_titles=titles, cell_px=170), key="heatmap-grid", theme=None)
    st.caption("White: pixels at or above their model's threshold (an image is anomalous when its map reaches it "
               "anywhere). All black means no pixel of that image reaches the threshold: see the TPR above.")
    st.subheader("At these thresholds")
    st.dataframe(summary, hide_index=True)
    st.caption("AUROC: 0.5 is chance, 1.000 perfect. " + INTERVAL_NOTE)
    st.dataframe(table, hide_index=True)
    _roc_figures(passes, thresholds)
