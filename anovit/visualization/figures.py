"""Plotly figures for the app (pure functions: arrays in, figures out); the array image operations
they use are :mod:`anovit.visualization.imaging`'s.

Conventions: RGB images are numpy uint8 (H, W, 3) or float (H, W, 3) / torch (3, H, W) in [0, 1];
anomaly and attention maps are float (H, W). Maps that should be compared share one named colour
scale (:class:`Scale`), so equal colours mean equal values across panels and models.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .imaging import ERROR_COLORSCALE, plotly_colorscale, to_rgb_uint8

MODEL_COLOURS = {"AnoViT": "#d62728", "l2-CAE": "#1f77b4"}
# The narrowest chart the layouts are made for: a full-width chart in the app's main column at an 800 px window
# with the sidebar open (measured in chromium: 468 px); titles are wrapped to fit their panels at this width.
NARROW_PLOT_PX = 460
TITLE_FONT_PX = 13
CHAR_EM = 0.6  # an average character of plotly's default sans-serif font is at most this wide, in font sizes
COLOURBAR_PX = 70  # a horizontal colour bar under a panel grid: its title, bar and tick labels


@dataclass(frozen=True)
class Scale:
    """A colour scale shared by every map panel that names it."""

    vmin: float
    vmax: float
    colorscale: str = ERROR_COLORSCALE
    title: str = "squared error"


@dataclass
class Panel:
    """One cell of :func:`panel_grid_figure`: an RGB image (``scale=None``; bool arrays show white on black)
    or a float map drawn on the shared colour scale named ``scale``."""

    title: str
    data: np.ndarray
    scale: str | None = None
    marker: tuple[int, int, int, int] | None = None  # (y0, x0, y1, x1) rectangle drawn on top


def _panel_trace(panel: Panel, axis_names: dict[str, str]) -> go.BaseTraceType:
    data = np.asarray(panel.data)
    if panel.scale is None:
        rgb = to_rgb_uint8(data.astype(np.float32) if data.dtype == bool else data)
        return go.Image(z=rgb, hoverinfo="skip")
    if data.ndim != 2:
        raise ValueError(f"panel {panel.title!r}: a map on scale {panel.scale!r} must be 2-D, got shape {data.shape}")
    return go.Heatmap(
        z=data.astype(np.float32),
        coloraxis=axis_names[panel.scale],
        hovertemplate="x %{x}, y %{y}: %{z:.4g}<extra></extra>",
    )


def wrapped(text: str, width_px: float, font_px: int = TITLE_FONT_PX) -> str:
    """``text`` broken into lines (plotly's ``<br>``, kept where ``text`` has them) that fit ``width_px`` at
    ``font_px``: plotly does not wrap titles, and a title wider than its panel runs into its neighbour's."""
    chars = max(4, int(width_px / (CHAR_EM * font_px)))
    return "<br>".join(line for part in text.split("<br>") for line in textwrap.wrap(part, chars, break_long_words=False))


def _lines(text: str) -> int:
    return text.count("<br>") + 1 if text else 0


def panel_grid_figure(
    rows: Sequence[Sequence[Panel]],
    scales: dict[str, Scale] | None = None,
    *,
    row_titles: Sequence[str] | None = None,
    cell_px: int = 190,
    max_cols: int | None = None,
) -> go.Figure:
    """A grid of image / map panels (rows x columns) with one horizontal colour bar per shared scale (that a panel
    uses) below it.

    When every row has the same panel titles, they are written once, above the first row. A row longer than
    ``max_cols`` continues on the next row (fewer, larger panels). The layout holds from a chart
    :data:`NARROW_PLOT_PX` wide up: titles wrap to fit their panel there, colour bars sit side by side under
    the grid (never beside a title), and each image is drawn at the top of its cell, under its title.

    Raises:
        ValueError: with no panel, a map that is not 2-D, or a panel naming a scale not in ``scales``.
    """
    scales = scales or {}
    if max_cols is not None:
        if row_titles:
            raise ValueError("panel_grid_figure: max_cols cannot split rows that have row_titles")
        rows = [row[i : i + max_cols] for row in rows for i in range(0, len(row), max_cols)]
    n_rows, n_cols = len(rows), max((len(r) for r in rows), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("panel_grid_figure needs at least one panel")
    used = {p.scale for row in rows for p in row}
    scales = {name: scale for name, scale in scales.items() if name in used}  # a bar (and its room) per scale shown
    right = 30 if row_titles else 10
    column_px = (NARROW_PLOT_PX - right - 10) / n_cols
    titles = [[wrapped(p.title, column_px) for p in r] + [""] * (n_cols - len(r)) for r in rows]
    if all(t == titles[0] for t in titles):
        titles = [titles[0]] + [[""] * n_cols] * (n_rows - 1)
    line_px = TITLE_FONT_PX + 4
    top = 10 + line_px * max(map(_lines, titles[0]))
    gap = 8 + line_px * max((_lines(t) for row in titles[1:] for t in row), default=0)
    bottom = 10 + COLOURBAR_PX * bool(scales)
    height = cell_px * n_rows + gap * (n_rows - 1) + top + bottom
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=[t for row in titles for t in row],
        row_titles=list(row_titles) if row_titles else None,
        horizontal_spacing=0.02,
        vertical_spacing=gap / (height - top - bottom) if n_rows > 1 else 0.0,
    )
    fig.update_annotations(font_size=TITLE_FONT_PX)
    axis_names = {name: "coloraxis" if i == 0 else f"coloraxis{i + 1}" for i, name in enumerate(scales)}
    for r, row in enumerate(rows, 1):
        for c, panel in enumerate(row, 1):
            if panel.scale is not None and panel.scale not in scales:
                raise ValueError(f"panel {panel.title!r} uses scale {panel.scale!r}, not among {sorted(scales)}")
            fig.add_trace(_panel_trace(panel, axis_names), row=r, col=c)
            if panel.marker is not None:
                y0, x0, y1, x1 = panel.marker
                fig.add_shape(
                    type="rect",
                    x0=x0 - 0.5,
                    y0=y0 - 0.5,
                    x1=x1 - 0.5,
                    y1=y1 - 0.5,
                    line=dict(color="#00e5ff", width=2),
                    row=r,
                    col=c,
                )
    for i, (name, scale) in enumerate(scales.items()):
        fig.update_layout(
            {
                axis_names[name]: dict(
                    cmin=scale.vmin,
                    cmax=scale.vmax,
                    colorscale=plotly_colorscale(scale.colorscale),
                    colorbar=dict(  # side by side under the grid, each in its own slot
                        title=dict(text=scale.title, side="top"),
                        orientation="h",
                        x=(i + 0.5) / len(scales),
                        xanchor="center",
                        len=0.75 / len(scales),
                        yref="container",
                        y=0,
                        yanchor="bottom",
                        ypad=4,
                        thickness=12,
                        nticks=5,
                    ),
                )
            }
        )
    fig.update_xaxes(visible=False)
    # square pixels in every cell, the image at the top of its cell (under its title) when the cell is taller
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain", constraintoward="top")
    for i in range(1, n_rows * n_cols + 1):
        fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor = f"x{'' if i == 1 else i}"
    fig.update_layout(
        height=height, margin=dict(l=10, r=right, t=top, b=bottom), plot_bgcolor="white",
        template="plotly",  # not the process-wide default, which Streamlit sets to its own (with #0000xx colours)
    )
    return fig


def loss_curve_figure(
    step_losses: Sequence[Sequence[float]], history: Sequence[dict[str, float]], steps_per_epoch: int
) -> go.Figure:
    """Training loss per step (thin line) and train / validation loss per epoch, over epochs."""
    fig = go.Figure()
    if step_losses:
        steps = np.asarray(step_losses, np.float64)
        fig.add_trace(
            go.Scatter(
                x=steps[:, 0] / max(steps_per_epoch, 1),
                y=steps[:, 1],
                mode="lines",
                name="train loss (step)",
                line=dict(width=1, color="rgba(31,119,180,0.45)"),
            )
        )
    if history:
        epochs = [h["epoch"] for h in history]
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h["train_loss"] for h in history],
                mode="lines+markers",
                name="train loss (epoch)",
                line=dict(color="#1f77b4"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h["val_loss"] for h in history],
                mode="lines+markers",
                name="validation loss",
                line=dict(color="#ff7f0e"),
            )
        )
    fig.update_layout(
        xaxis_title="epoch",
        yaxis_title="reconstruction loss (MSE, eq. 1)",
        yaxis_type="log",
        yaxis_tickformat=".2~g",  # 0.02, 0.05, 0.1: not plotly's bare "2", "5" between decades
        yaxis_dtick="D2",  # only 1, 2 and 5 of each decade carry a label
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.12),
    )
    return fig


def roc_figure(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    aucs: dict[str, float | None] | None = None,
    *,
    title: str = "ROC",
    marks: dict[str, tuple[float, float]] | None = None,
) -> go.Figure:
    """ROC curves (name -> (fpr, tpr)) with the chance diagonal; ``marks`` puts a point (fpr, tpr) on a curve."""
    aucs, marks = aucs or {}, marks or {}
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dot", color="grey")))
    for name, (fpr, tpr) in curves.items():
        auc = aucs.get(name)
        label = f"{name} (AUROC {auc:.3f})" if auc is not None else name
        colour = MODEL_COLOURS.get(name.split(" ")[0])
        fig.add_trace(
            go.Scatter(x=np.asarray(fpr), y=np.asarray(tpr), mode="lines", name=label, line=dict(color=colour))
        )
        if name in marks:
            x, y = marks[name]
            fig.add_trace(
                go.Scatter(
                    x=[x],
                    y=[y],
                    mode="markers",
                    name=f"{name} at threshold",
                    showlegend=False,
                    marker=dict(size=10, color=colour, line=dict(color="black", width=1)),
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(x=0.98, xanchor="right", y=0.02, yanchor="bottom"),
    )
    return fig


def shared_bins(scores: Sequence[float], n: int = 30) -> dict[str, float]:
    """Plotly ``xbins`` (start, end, size) of ``n`` equal bins spanning ``scores``: one set of bins for every
    trace of a histogram, so bars of different groups (and of a filtered subset) are comparable."""
    edges = np.histogram_bin_edges(np.asarray(scores, np.float64), bins=n)
    return {"start": float(edges[0]), "end": float(edges[-1]), "size": float(edges[1] - edges[0]) or 1.0}


def score_histogram_figure(
    scores: Sequence[float],
    kinds: Sequence[str],
    threshold: float | None = None,
    *,
    bins_of: Sequence[float] | None = None,
    marks: dict[str, float] | None = None,
) -> go.Figure:
    """Overlaid histograms of image scores per group (e.g. defect type) on one set of bins (those of
    ``bins_of``, default ``scores``: :func:`shared_bins`), an optional threshold line and one labelled
    line per entry of ``marks`` (e.g. the score of the image being inspected)."""
    fig = go.Figure()
    scores, kinds = np.asarray(scores, np.float64), np.asarray(kinds)
    xbins = shared_bins(scores if bins_of is None else bins_of) if scores.size else None
    for kind in sorted(set(kinds.tolist()), key=lambda k: (k != "good", k)):
        fig.add_trace(go.Histogram(x=scores[kinds == kind], name=kind, opacity=0.65, xbins=xbins, autobinx=False))
    if threshold is not None:
        fig.add_vline(x=threshold, line=dict(color="black", dash="dash"), annotation_text="threshold")
    for label, value in (marks or {}).items():
        fig.add_vline(x=value, line=dict(color="#d62728", width=3), annotation_text=label,
                      annotation_position="top left")
    fig.update_layout(
        barmode="overlay",
        xaxis_title="image anomaly score (eq. 7)",
        yaxis_title="images",
        height=280,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.15),
    )
    return fig


def colour_bar_figure(vmin: float, vmax: float, colorscale: str = ERROR_COLORSCALE,
                      title: str = "squared error") -> go.Figure:
    """A horizontal colour bar (a one-row heatmap from ``vmin`` to ``vmax``) to show beside images coloured
    with :func:`anovit.visualization.imaging.colorize` on the same scale."""
    x = np.linspace(vmin, vmax, 256)
    fig = go.Figure(go.Heatmap(z=x[None, :], x=x, colorscale=plotly_colorscale(colorscale), zmin=vmin, zmax=vmax,
                               showscale=False, hovertemplate="%{x:.4g}<extra></extra>"))
    fig.update_layout(height=90, margin=dict(l=10, r=10, t=10, b=40), xaxis_title=title,
                      yaxis=dict(visible=False))
    return fig


AUROC_COLOURS = {"image_auroc": "#d62728", "pixel_auroc": "#1f77b4"}
AUROC_LABELS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"}


def ablation_figure(table: pd.DataFrame, switches: Sequence[tuple[str, str]],
                    missing: dict[str, list[str]] | None = None) -> go.Figure:
    """One panel per switch ((name, label) pairs) of an ablation summary (:func:`anovit.evaluation.ablations.summary`:
    columns switch, value, source, baseline, image/pixel AUROC mean and ``_std``): mean image and pixel
    AUROC per value, ± std over runs as error bars; filled markers for trained runs, open ones for re-scored
    runs; the baseline's value shaded; ``missing`` values (switch -> value texts) as grey crosses at 0."""
    missing = missing or {}
    titles = [wrapped(label, (NARROW_PLOT_PX - 60) / max(len(switches), 1)) for _, label in switches]
    fig = make_subplots(rows=1, cols=len(switches), shared_yaxes=True, subplot_titles=titles,
                        horizontal_spacing=0.04)
    fig.update_annotations(font_size=TITLE_FONT_PX)
    shown: set[str] = set()
    for col, (name, _) in enumerate(switches, start=1):
        rows = table[table["switch"] == name]
        categories = list(dict.fromkeys(rows["value"].tolist() + missing.get(name, [])))
        for value in rows.loc[rows["baseline"], "value"].unique():
            i = categories.index(value)
            fig.add_vrect(x0=i - 0.45, x1=i + 0.45, fillcolor="#bbbbbb", opacity=0.3, line_width=0, layer="below",
                          row=1, col=col, exclude_empty_subplots=False)
        for source, symbol in (("trained", "circle"), ("re-scored", "circle-open")):
            part = rows[rows["source"] == source]
            for metric, colour in AUROC_COLOURS.items():
                legend = f"{AUROC_LABELS[metric]} ({source})"
                if part.empty or part[metric].isna().all():
                    continue
                fig.add_trace(go.Scatter(
                    x=part["value"], y=part[metric], mode="markers", name=legend, legendgroup=legend,
                    showlegend=legend not in shown, offsetgroup=metric,
                    marker=dict(symbol=symbol, size=11, color=colour, line=dict(width=2, color=colour)),
                    error_y=dict(type="data", array=part[f"{metric}_std"].fillna(0.0), visible=True, color=colour),
                    customdata=part[["runs"]], hovertemplate=f"{legend}: %{{y:.3f}} (%{{customdata[0]}} run(s))<extra></extra>",
                ), row=1, col=col)
                shown.add(legend)
        if missing.get(name):
            fig.add_trace(go.Scatter(
                x=missing[name], y=[0.0] * len(missing[name]), mode="markers", name="missing run (not trained yet)",
                legendgroup="missing", showlegend="missing" not in shown,
                marker=dict(symbol="x-thin-open", size=12, color="#7f7f7f", line=dict(width=2, color="#7f7f7f")),
                hovertemplate="%{x}: not trained yet<extra></extra>"), row=1, col=col)
            shown.add("missing")
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=categories, row=1, col=col)
    fig.update_yaxes(title_text="AUROC (test split)", range=[-0.03, 1.03], row=1, col=1)
    top = 14 + (TITLE_FONT_PX + 4) * max(map(_lines, titles), default=1)
    fig.update_layout(scattermode="group", height=380, margin=dict(l=10, r=10, t=top, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig


def layer_distance_figure(distances: np.ndarray, patch_px: int) -> go.Figure:
    """Mean attention distance (pixels) per layer, one point per head, mean line across heads."""
    distances = np.asarray(distances, np.float64)
    layers = np.arange(1, distances.shape[0] + 1)
    fig = go.Figure()
    for h in range(distances.shape[1]):
        fig.add_trace(
            go.Scatter(
                x=layers, y=distances[:, h], mode="markers", name=f"head {h + 1}", marker=dict(size=7, opacity=0.7)
            )
        )
    fig.add_trace(
        go.Scatter(x=layers, y=distances.mean(axis=1), mode="lines", name="mean of heads", line=dict(color="black"))
    )
    fig.add_hline(y=patch_px, line=dict(dash="dot", color="grey"), annotation_text="one patch")
    fig.update_layout(
        xaxis_title="encoder layer",
        yaxis_title="mean attention distance (px)",
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=1.2),
    )
    return fig


def architecture_figure() -> go.Figure:
    """The AnoViT encoder-decoder as a block diagram (paper Fig. 2): image -> patches -> ViT -> grid F -> decoder.

    Two rows, read as a snake (the encoder left to right, then the decoder right to left under it), so that
    every box is wide enough for its text in a chart :data:`NARROW_PLOT_PX` wide.
    """
    boxes = [
        ("input image<br>H x W x 3", "#e8e8e8"),
        ("16 x 16 patches<br>+ position emb.", "#dbe9f6"),
        ("ViT encoder<br>(L self-attention<br>layers)", "#9ecae1"),
        ("patch tokens,<br>[cls] dropped,<br>√N x √N grid: F", "#c6dbef"),
        ("6 ConvT blocks<br>(+ norm, ReLU),<br>upsample, conv", "#fdd0a2"),
        ("reconstruction<br>H x W x 3", "#e8e8e8"),
        ("anomaly map<br>(eq. 6); score<br>= max (eq. 7)", "#fcbba1"),
    ]
    per_row, width, gap, height, row_gap = 4, 1.0, 0.3, 1.0, 0.5
    font = dict(size=11, color="#111")

    def place(i: int) -> tuple[float, float]:
        """Lower-left corner of box ``i``: the first row left to right, the second right to left."""
        row, k = divmod(i, per_row)
        column = k if row == 0 else per_row - 1 - k
        return column * (width + gap), -row * (height + row_gap)

    fig = go.Figure()
    for i, (text, colour) in enumerate(boxes):
        x0, y0 = place(i)
        fig.add_shape(type="rect", x0=x0, x1=x0 + width, y0=y0, y1=y0 + height, fillcolor=colour,
                      line=dict(color="#555"))
        fig.add_annotation(x=x0 + width / 2, y=y0 + height / 2, text=text, showarrow=False, font=font)
    for i in range(1, len(boxes)):
        (px, py), (x, y) = place(i - 1), place(i)
        if py != y:  # down from the last box of the first row
            tail, head = (px + width / 2, py), (x + width / 2, y + height)
        elif x > px:
            tail, head = (px + width, py + height / 2), (x, y + height / 2)
        else:
            tail, head = (px, py + height / 2), (x + width, y + height / 2)
        fig.add_annotation(x=head[0], y=head[1], ax=tail[0], ay=tail[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=2, arrowwidth=1.5, text="")
    total = per_row * (width + gap) - gap
    fig.add_annotation(x=total / 2, y=height + 0.15, text="encoder E (first row)", showarrow=False,
                       yanchor="bottom", font=font)
    fig.add_annotation(x=total / 2, y=-row_gap - height - 0.15, text="decoder D (second row, right to left)",
                       showarrow=False, yanchor="top", font=font)
    fig.update_xaxes(visible=False, range=[-0.05, total + 0.05])
    fig.update_yaxes(visible=False, range=[-row_gap - height - 0.5, height + 0.5])
    fig.update_layout(height=300, margin=dict(l=0, r=0, t=0, b=0), plot_bgcolor="white", title=None)
    return fig


__all__ = [
    "MODEL_COLOURS",
    "Panel",
    "Scale",
    "ablation_figure",
    "architecture_figure",
    "layer_distance_figure",
    "loss_curve_figure",
    "panel_grid_figure",
    "roc_figure",
    "score_histogram_figure",
    "wrapped",
]
