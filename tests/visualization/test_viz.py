"""Figure builders and image helpers (anovit.visualization.figures)."""

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from anovit.visualization.imaging import colorize, colour_lut, overlay, plotly_colorscale, tile, to_rgb_uint8
from anovit.visualization.figures import (
    CHAR_EM,
    NARROW_PLOT_PX,
    TITLE_FONT_PX,
    Panel,
    Scale,
    ablation_figure,
    architecture_figure,
    layer_distance_figure,
    loss_curve_figure,
    panel_grid_figure,
    roc_figure,
    score_histogram_figure,
    wrapped,
)


def test_to_rgb_uint8_accepts_chw_hwc_grey_and_clips():
    chw = torch.zeros(3, 4, 5)
    chw[0] = 1.0
    out = to_rgb_uint8(chw)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 255).all() and (out[..., 1] == 0).all()
    assert to_rgb_uint8(np.full((2, 2), 2.0))[0, 0].tolist() == [255, 255, 255]
    assert to_rgb_uint8(np.zeros((2, 2), bool)).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="expected an image"):
        to_rgb_uint8(np.zeros((2, 2, 5)))


def test_colorize_maps_range_ends_to_scale_ends_and_clips():
    lut = colour_lut("Inferno")
    out = colorize(np.array([[-1.0, 0.0, 0.5, 1.0, 9.0]]), 0.0, 1.0)
    assert out.shape == (1, 5, 3)
    assert (out[0, 0] == lut[0]).all() and (out[0, 1] == lut[0]).all()
    assert (out[0, 3] == lut[-1]).all() and (out[0, 4] == lut[-1]).all()
    assert lut[0].sum() < 30 and lut[-1].sum() > 600  # inferno: black to pale yellow
    with pytest.raises(ValueError, match="vmax > vmin"):
        colorize(np.zeros((2, 2)), 1.0, 1.0)


def test_overlay_and_tile():
    image = np.zeros((4, 4, 3), np.uint8)
    blended = overlay(image, np.ones((4, 4)), 0.0, 1.0, alpha=1.0)
    assert (blended == colour_lut("Inferno")[-1]).all()
    assert (overlay(image, np.ones((4, 4)), 0.0, 1.0, alpha=0.0) == 0).all()
    assert tile(image, image, image, gap=2).shape == (4, 4 * 3 + 2 * 2, 3)
    with pytest.raises(ValueError, match="one height"):
        tile(image, np.zeros((5, 4, 3), np.uint8))


def test_panel_grid_shares_one_colour_axis_per_scale():
    maps = np.random.default_rng(0).random((3, 8, 8))
    rows = [
        [
            Panel("input", np.zeros((8, 8, 3))),
            Panel("mask", maps[0] > 0.5),
            Panel("cae", maps[1], "error"),
            Panel("anovit", maps[2], "error"),
        ],
        [Panel("input", np.zeros((8, 8, 3))), Panel("attention", maps[0], "attention", marker=(0, 0, 4, 4))],
    ]
    fig = panel_grid_figure(
        rows, {"error": Scale(0.0, 2.0), "attention": Scale(0.1, 0.9, "Viridis", "attention")}, row_titles=["a", "b"]
    )
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(heatmaps) == 3 and len(images) == 3
    assert [h.coloraxis for h in heatmaps] == ["coloraxis", "coloraxis", "coloraxis2"]
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 2.0)
    assert fig.layout.coloraxis2.cmax == 0.9
    assert len(fig.layout.shapes) == 1
    titles = [a.text for a in fig.layout.annotations if a.text in ("input", "mask", "cae", "anovit", "attention")]
    assert titles == ["input", "mask", "cae", "anovit", "input", "attention"]  # rows differ: every cell titled
    same = panel_grid_figure([[Panel("in", maps[0], "error")], [Panel("in", maps[1], "error")]], {"error": Scale(0, 1)})
    assert [a.text for a in same.layout.annotations].count("in") == 1  # identical rows: titled once, on top
    with pytest.raises(ValueError, match="not among"):
        panel_grid_figure([[Panel("x", maps[0], "nope")]], {"error": Scale(0, 1)})
    with pytest.raises(ValueError, match="must be 2-D"):
        panel_grid_figure([[Panel("x", np.zeros((4, 4, 3)), "error")]], {"error": Scale(0, 1)})


def test_wrapped_titles_fit_their_width_and_keep_their_words():
    text = "attention over the input image"
    lines = wrapped(text, 100).split("<br>")
    assert len(lines) > 1 and " ".join(lines) == text
    assert all(len(line) * CHAR_EM * TITLE_FONT_PX <= 100 for line in lines)
    assert wrapped("l2-CAE<br>anomaly map", 1000) == "l2-CAE<br>anomaly map"  # given breaks stay
    assert wrapped(text, 1000) == text


def test_panel_grid_fits_a_narrow_chart():
    """Titles wrapped to their column at NARROW_PLOT_PX, colour bars horizontal under the grid side by side (only
    those a panel uses), long rows split at max_cols."""
    maps = np.random.default_rng(0).random((6, 8, 8))
    row = [Panel(f"attention over input {i}", m, "attention" if i % 2 else "error") for i, m in enumerate(maps)]
    fig = panel_grid_figure([row], {"error": Scale(0, 1), "attention": Scale(0, 1), "unused": Scale(0, 1)},
                            max_cols=4)
    assert [t.xaxis for t in fig.data] == ["x", "x2", "x3", "x4", "x5", "x6"]  # 2 rows of 4 columns:
    assert fig.layout.xaxis5.domain == fig.layout.xaxis.domain  # the fifth panel starts the second row
    column_px = NARROW_PLOT_PX / 4
    for title in (a.text for a in fig.layout.annotations):
        assert max(len(line) for line in title.split("<br>")) * CHAR_EM * TITLE_FONT_PX <= column_px, title
    bars = [fig.layout[name].colorbar for name in ("coloraxis", "coloraxis2")]
    assert "coloraxis3" not in fig.layout.to_plotly_json()  # the unused scale draws no bar
    assert all(bar.orientation == "h" and bar.yref == "container" and bar.yanchor == "bottom" for bar in bars)
    assert bars[0].x + bars[0].len / 2 < bars[1].x - bars[1].len / 2  # side by side, apart
    assert fig.layout.margin.b >= 60  # room under the grid for them
    with pytest.raises(ValueError, match="row_titles"):
        panel_grid_figure([row], {"error": Scale(0, 1), "attention": Scale(0, 1)}, row_titles=["a"], max_cols=4)


def test_ablation_titles_wrap_to_their_panel():
    import pandas as pd

    table = pd.DataFrame({"switch": ["mask"], "value": ["0"], "source": ["trained"], "baseline": [True],
                          "image_auroc": [0.5], "image_auroc_std": [0.0], "pixel_auroc": [0.6],
                          "pixel_auroc_std": [0.0], "runs": [1]})
    switches = [("mask", "pretrained encoder"), ("b", "score function"), ("c", "mask ratio"), ("d", "decoder"),
                ("e", "sigma (px)")]
    fig = ablation_figure(table, switches)
    titles = [a.text for a in fig.layout.annotations]
    assert "pretrained<br>encoder" in titles and "score<br>function" in titles
    assert fig.layout.margin.t >= 2 * TITLE_FONT_PX


def test_map_colours_survive_streamlits_placeholder_rewrite():
    """Streamlit's chart element replaces the hex strings #000000-#000040 of a figure's JSON by theme colours;
    Inferno's low end is #000004. The map figures carry their scales as rgb() stops equal to plotly's."""
    import re

    import plotly.colors as pcolors

    fig = panel_grid_figure([[Panel("map", np.zeros((4, 4)), "error")]], {"error": Scale(0.0, 1.0)})
    assert not re.search(r"#0000[0-3][0-9]|#000040", fig.to_json(), re.IGNORECASE)
    for name in ("Inferno", "Viridis"):
        reference = pcolors.get_colorscale(name)
        ours = plotly_colorscale(name)
        assert [p for p, _ in ours] == [p for p, _ in reference]
        assert [pcolors.hex_to_rgb(c) for _, c in reference] == [pcolors.unlabel_rgb(c) for _, c in ours]


def test_loss_curve_roc_histogram_and_distance_figures():
    fig = loss_curve_figure(
        [[1, 0.5], [2, 0.4], [3, 0.3], [4, 0.2]],
        [{"epoch": 1, "train_loss": 0.45, "val_loss": 0.5}, {"epoch": 2, "train_loss": 0.25, "val_loss": 0.3}],
        2,
    )
    assert [t.name for t in fig.data] == ["train loss (step)", "train loss (epoch)", "validation loss"]
    assert list(fig.data[0].x) == [0.5, 1.0, 1.5, 2.0]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.tickformat == ".2~g" and fig.layout.yaxis.dtick == "D2"  # ticks read 0.2, 0.3, 0.5

    roc = roc_figure(
        {"AnoViT": (np.array([0, 0.5, 1]), np.array([0, 0.9, 1])), "l2-CAE": (np.array([0, 1]), np.array([0, 1]))},
        {"AnoViT": 0.85, "l2-CAE": None},
        marks={"AnoViT": (0.5, 0.9)},
    )
    names = [t.name for t in roc.data]
    assert names[0] == "chance" and "AnoViT (AUROC 0.850)" in names and "l2-CAE" in names
    assert len(roc.data) == 4  # chance, two curves, one threshold marker

    hist = score_histogram_figure([1, 2, 3, 4], ["good", "hole", "good", "hole"], threshold=2.5)
    assert [t.name for t in hist.data] == ["good", "hole"]
    assert len(hist.layout.shapes) == 1
    assert hist.data[0].xbins == hist.data[1].xbins  # one set of bins for every group
    hist = score_histogram_figure([1, 2], ["good", "good"], bins_of=[0, 1, 2, 3, 4], marks={"this image": 2.0})
    assert (hist.data[0].xbins.start, hist.data[0].xbins.end) == (0, 4)  # the bins of the whole split
    assert [a.text for a in hist.layout.annotations] == ["this image"]

    dist = layer_distance_figure(np.ones((12, 3)), 16)
    assert len(dist.data) == 3 + 1


def test_architecture_figure_has_the_seven_stages():
    fig = architecture_figure()
    assert len([s for s in fig.layout.shapes if s.type == "rect"]) == 7
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "ViT encoder" in texts and "decoder" in texts and "eq. 7" in texts


def test_header_strip_spans_its_tile_and_labels_each_part():
    from anovit.visualization.imaging import header_strip, tile

    parts = [np.zeros((128, 128, 3), np.uint8)] * 4
    strip = header_strip(["input", "recon.", "anomaly", "truth"], 128)
    assert strip.shape[1] == tile(*parts).shape[1] and strip.dtype == np.uint8
    ink = (strip < 128).any(axis=(0, 2))  # columns holding text
    for k in range(4):  # every part has its label, within its own width
        assert ink[k * 130 : k * 130 + 128].any()
    assert not ink[128:130].any() and not ink[-3:].any()
