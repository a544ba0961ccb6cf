"""Gallery page: input / reconstruction / anomaly map of a checkpoint's test images, sorted by anomaly
score, filtered by defect type, and paged (only the visible page is reconstructed, cached per page)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ..visualization.imaging import colorize, header_strip, tile, to_rgb_uint8
from ..visualization.figures import colour_bar_figure, score_histogram_figure
from .common import page_header, show_errors, threshold_basis
from .pickers import checkpoint_picker
from ..scoring.detector import decision
from .predictions import fitted_detector, predict_items, test_scores

SORT_ORDERS = {
    "score, highest first": ("score", False),
    "score, lowest first": ("score", True),
    "file order": ("index", True),
}
PAGE_SIZES = (12, 24, 48)
COLUMNS = 3
PARTS = ("input", "recon.", "anomaly", "truth")  # a tile's parts, left to right, as its header names them


def filter_sort(scores: pd.DataFrame, defect_types: list[str], order: str) -> pd.DataFrame:
    """The rows of ``scores`` whose defect type is selected, in ``order`` (a key of SORT_ORDERS)."""
    column, ascending = SORT_ORDERS[order]
    kept = scores[scores["defect_type"].isin(defect_types)]
    return kept.sort_values([column, "index"], ascending=[ascending, True], kind="stable")


def n_pages(n_items: int, per_page: int) -> int:
    """Pages needed for ``n_items`` (at least one)."""
    return max(1, math.ceil(n_items / per_page))


def page_rows(rows: pd.DataFrame, page: int, per_page: int) -> pd.DataFrame:
    """Rows of 1-based ``page``."""
    start = (page - 1) * per_page
    return rows.iloc[start : start + per_page]


def tile_image(
    image: np.ndarray, recon: np.ndarray, anomaly_map: np.ndarray, vmax: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Input | reconstruction | anomaly map (0..vmax on the anomaly colour scale) [| ground-truth mask] side by side."""
    parts = [to_rgb_uint8(image), to_rgb_uint8(recon), colorize(anomaly_map, 0.0, vmax)]
    if mask is not None:
        parts.append(to_rgb_uint8(mask.astype(np.float32)))
    return tile(*parts)


def validation_threshold(run: Any, ref: Any) -> tuple[float, str]:
    """The run's threshold fitted on its normal validation images, and its basis in words."""
    detector = fitted_detector(run, ref)
    return float(detector.threshold), threshold_basis(len(detector.validation_scores_))


@show_errors
def render() -> None:
    """The Gallery page."""
    page_header("Gallery", "Input, reconstruction and anomaly map of every test image of a checkpoint's class.")
    checkpoint = checkpoint_picker("gallery")
    if checkpoint is None:
        return
    run, ref, model = checkpoint
    scores = test_scores(run, ref, model.config.image_size)
    types = sorted(scores["defect_type"].unique(), key=lambda t: (t != "good", t))
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
    chosen = c1.multiselect("Defect types", types, default=types)
    order = c2.selectbox("Sort", list(SORT_ORDERS))
    per_page = c3.selectbox("Per page", PAGE_SIZES, index=1)
    rows = filter_sort(scores, chosen, order)
    pages = n_pages(len(rows), per_page)
    page = c4.number_input(f"Page (of {pages})", 1, pages, 1)
    show_mask = st.checkbox("Show the ground-truth mask", value=True)
    vmax = float(scores["score"].max()) or 1.0
    threshold, basis = validation_threshold(run, ref)
    flagged = int((rows["score"] >= threshold).sum())
    st.markdown(f"**Threshold {threshold:.4g}** (validation rule, {basis}): {flagged} of the {len(rows)} images shown are "
                "decided anomalous (score ≥ threshold); each tile's caption gives its decision.")
    st.plotly_chart(score_histogram_figure(rows["score"], rows["defect_type"], bins_of=scores["score"]),
                    key="gallery-hist")
    st.caption(
        f"{ref.label}: {len(rows)} of {len(scores)} test images (the histogram shows the selected defect types, on "
        "bins shared by all of them) · each tile: input | reconstruction | anomaly map"
        + (" | ground truth" if show_mask else "")
        + " · hover a tile and click its ⤢ button to enlarge it"
    )
    st.plotly_chart(colour_bar_figure(0.0, vmax, title=f"anomaly map colours: squared error, 0 to {vmax:.3g} (the "
                                      "largest image score of the split), shared by every tile"),
                    key="gallery-colours", theme=None)
    visible = page_rows(rows, int(page), per_page)
    if visible.empty:
        st.info("No image of the selected defect types.")
        return
    items = predict_items(run, ref, visible["index"].tolist())
    cols = st.columns(COLUMNS)
    header = header_strip(list(PARTS if show_mask else PARTS[:-1]), items["image"].shape[2])
    for col in cols[: len(items["index"])]:
        col.image(header, width="stretch")
    for k in range(len(items["index"])):
        image = tile_image(
            items["image"][k], items["recon"][k], items["anomaly_map"][k], vmax, items["mask"][k] if show_mask else None
        )
        score = float(items["score"][k])
        caption = (f"#{items['index'][k]} · {items['defect_type'][k]} · score {score:.4g} · "
                   f"{decision(score, threshold)}")
        cols[k % COLUMNS].image(image, caption=caption, width="stretch")
