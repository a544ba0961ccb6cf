"""Attention page (beyond the paper): where one patch of a test image looks, per encoder layer and
rolled out through all layers, beside the anomaly map: the global context the paper argues a ViT
encoder brings over a convolutional one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from ..models.attention import (
    HEAD_FUSIONS,
    attention_maps,
    attention_rollout,
    fuse_heads,
    grid_size,
    mean_attention_distance,
    normalized_entropy,
    patch_attention,
    patch_size,
    upsample_map,
)
from ..models.tiling import tile_around
from ..visualization.imaging import ATTENTION_COLORSCALE, overlay
from ..visualization.figures import Panel, Scale, layer_distance_figure, panel_grid_figure
from .common import page_header, show_errors
from .pickers import DataRef, checkpoint_picker, load_dataset, load_model_cached, weights_mtime
from .predictions import predict_items, test_scores

ROLLOUT = "rollout"


@st.cache_data(max_entries=16, show_spinner="Computing attention…")
def _attention(run_dir: str, mtime: float, ref: DataRef, index: int, head_fusion: str,
               origin: tuple[int, int]) -> dict[str, np.ndarray]:
    model = load_model_cached(Path(run_dir))
    (y, x), side = origin, model.config.network_size
    image = load_dataset(ref, "test", model.config.image_size)[index]["image"][None, :, y:y + side, x:x + side]
    layers = attention_maps(model, image)
    return {
        "layers": torch.stack([fuse_heads(a, head_fusion)[0] for a in layers]).numpy(),  # (L, T, T)
        "rollout": attention_rollout(layers, head_fusion)[0].numpy(),  # (T, T)
        "distance": torch.stack(
            [
                mean_attention_distance(a, model.num_prefix_tokens, grid_size(model), patch_size(model))[0]
                for a in layers
            ]
        ).numpy(),  # (L, heads)
    }


def patch_maps(
    attn: dict[str, np.ndarray], patch: int, num_prefix_tokens: int, grid: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Attention of ``patch`` over the patch grid, per layer ("1".."L") and for the rollout."""
    maps = {
        ROLLOUT: patch_attention(torch.from_numpy(attn["rollout"])[None], patch, num_prefix_tokens, grid)[0].numpy()
    }
    for i, layer in enumerate(attn["layers"], 1):
        maps[str(i)] = patch_attention(torch.from_numpy(layer)[None], patch, num_prefix_tokens, grid)[0].numpy()
    return maps


def to_pixels(grid_map: np.ndarray, size: int) -> np.ndarray:
    """A patch-grid map blown up to ``size`` x ``size`` pixels (patches stay visible)."""
    return upsample_map(torch.from_numpy(grid_map)[None], size)[0].numpy()


def patch_box(patch: int, grid: tuple[int, int], patch_px: int) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) pixel box of a row-major patch index."""
    row, col = divmod(patch, grid[1])
    return row * patch_px, col * patch_px, (row + 1) * patch_px, (col + 1) * patch_px


def _image_choice(run: Any, ref: DataRef, image_size: int) -> int:
    scores = test_scores(run, ref, image_size).sort_values("score", ascending=False)
    labels = {int(r.index): f"#{r.index} {r.defect_type} (score {r.score:.3g})" for r in scores.itertuples()}
    return st.selectbox("Test image (highest anomaly score first)", list(labels), format_func=labels.get)


@show_errors
def render() -> None:
    """The Attention page."""
    page_header(
        "Attention",
        "Where a patch looks in AnoViT's ViT encoder, per layer and rolled out "
        "(Abnar & Zuidema 2020), beside the anomaly map.",
    )
    checkpoint = checkpoint_picker("attention", "AnoViT checkpoint", model_type="anovit")
    if checkpoint is None:
        return
    run, ref, model = checkpoint
    size, grid, px = model.config.network_size, grid_size(model), patch_size(model)
    index = _image_choice(run, ref, model.config.image_size)
    item = predict_items(run, ref, [index])
    error, image = item["anomaly_map"][0], item["image"][0]
    origin = (0, 0)
    if model.config.tile_size is not None:  # the encoder sees one tile at a time: the tile around the largest error
        origin = tile_around(model.config.image_size, size, *np.unravel_index(int(np.argmax(error)), error.shape))
        error, image = (a[origin[0]:origin[0] + size, origin[1]:origin[1] + size] for a in (error, image))
        st.caption(f"Tiled model: its encoder sees {size} px tiles of the {model.config.image_size} px image; shown "
                   f"is the tile at row {origin[0]}, column {origin[1]} px, around the largest anomaly-map value.")
    peak_y, peak_x = np.unravel_index(int(np.argmax(error)), error.shape)
    c1, c2, c3, c4 = st.columns(4)
    row = c1.number_input(
        f"Patch row (0-{grid[0] - 1})",
        0,
        grid[0] - 1,
        int(min(peak_y // px, grid[0] - 1)),
        help="Default: the patch holding the largest error",
    )
    col = c2.number_input(f"Patch column (0-{grid[1] - 1})", 0, grid[1] - 1, int(min(peak_x // px, grid[1] - 1)))
    fusion = c3.selectbox("Heads", HEAD_FUSIONS, help="How the heads of a layer are combined")
    n_layers = len(model.encoder.blocks)
    layer = c4.select_slider("Layer", [ROLLOUT] + [str(i) for i in range(1, n_layers + 1)], value=ROLLOUT)
    attn = _attention(str(run.path), weights_mtime(run.path), ref, index, fusion, origin)
    patch = int(row) * grid[1] + int(col)
    maps = patch_maps(attn, patch, model.num_prefix_tokens, grid)
    box = patch_box(patch, grid, px)
    chosen = to_pixels(maps[layer], size)
    low, top = 0.0, max(float(chosen.max()), 1e-6)  # from 0: near-uniform attention looks flat, not structured
    title = "rollout" if layer == ROLLOUT else f"layer {layer}"
    panels = [
        [
            Panel("input (patch outlined)", image, marker=box),
            Panel(f"attention, {title}", chosen, "attention", marker=box),
            Panel(
                "attention over input",
                overlay(image, chosen, low, top, 0.6, ATTENTION_COLORSCALE),
                marker=box,
            ),
            Panel("anomaly map", error, "error", marker=box),
        ]
    ]
    scales = {
        "attention": Scale(low, top, ATTENTION_COLORSCALE, "attention"),
        "error": Scale(0.0, float(error.max()) or 1.0, title="squared error"),
    }
    st.plotly_chart(panel_grid_figure(panels, scales, cell_px=250), key="attention-panels", theme=None)
    n_tokens = attn["rollout"].shape[-1]
    st.metric(f"Attention entropy ({title})", f"{normalized_entropy(maps[layer]):.3f}",
              help="Entropy of the patch's attention over the patches divided by its largest possible value: "
                   "1.000 is uniform attention (looks everywhere alike), 0 all of it on one patch")
    st.caption(
        f"Attention colours span 0 to the largest weight shown, so near-uniform attention looks flat (uniform "
        f"is 1/{n_tokens} = {1 / n_tokens:.3g} per token); the entropy above says how uniform it is. An encoder "
        "trained from random weights for a few epochs (cpu-tiny) attends almost uniformly (entropy near 1); "
        "ImageNet weights (the paper preset) give structured maps."
    )
    st.subheader("Every layer, for this patch")
    layer_panels = [
        Panel(f"layer {i}", to_pixels(maps[str(i)], size), "layers", marker=box) for i in range(1, n_layers + 1)
    ]
    layer_low = 0.0
    layer_top = max(max(float(p.data.max()) for p in layer_panels), 1e-6)
    st.plotly_chart(
        panel_grid_figure(
            [layer_panels], {"layers": Scale(layer_low, layer_top, ATTENTION_COLORSCALE, "attention")}, cell_px=150,
            max_cols=4,
        ),
        key="attention-layers",
        theme=None,
    )
    st.subheader("How far the heads look")
    st.plotly_chart(layer_distance_figure(attn["distance"], px), key="attention-distance")
    st.caption(
        "Mean attention distance of each head (pixels between a patch and the patches it attends to, averaged "
        "over patches). Heads far above one patch gather context from across the image, which a "
        "convolutional encoder's small receptive field cannot."
    )
