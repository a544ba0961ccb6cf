"""Home page: what AnoViT is, where data and checkpoints live, and a first step that works offline."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..data.paths import default_data_dir, stored_path
from ..report.deviations import deviations_markdown
from ..jobs.background import list_jobs, unique_run_dir
from ..runs.catalog import default_checkpoint_dir, list_runs
from ..visualization.figures import architecture_figure
from .common import page_header, page_link, show_errors, start_and_watch
from .pickers import synthetic_ready
from .training import make_train_config

# The first step is a quick look (about a minute each), not the preset's full run. The l2-CAE trains about
# 5x faster than the cpu-tiny AnoViT (NOTES-env: 216 vs 43 images/s at 128 px), so it gets 5x the epochs
# in the same time: on synthetic weave its pixel AUROC was 0.776 after 5 epochs and 0.887 after 25 (seed 0).
FIRST_EPOCHS = {"anovit": 5, "cae": 25}
FIRST_STEP_SUFFIX = "first-step"  # its folder is not the CLI's default one: the README's commands still run after it
PAGE_TEXT = {
    "train": "fine-tune AnoViT or the l2-CAE as a background job: live loss curve, ETA, cancel",
    "results": "per-class image and pixel AUROC tables like the paper's Tables 2-5, beside the paper's numbers",
    "gallery": "input, reconstruction and anomaly map of every test image, sorted by score, filtered by defect",
    "heatmaps": "l2-CAE and AnoViT maps side by side with the ground truth (Fig. 3), threshold and ROC curves",
    "inspect": "upload an image and get its reconstruction, heatmap, score and decision",
    "attention": "where a patch looks in the ViT encoder, per layer and rolled out, beside the anomaly map",
    "hub": "load published checkpoints from the Hugging Face Hub; the command that publishes yours",
    "ablations": "for one class, the effect of each switch (pretrained encoder, mask ratio, decoder, score "
                 "function, sigma) on image and pixel AUROC; queue the missing runs",
}


def first_step(model: str) -> None:
    """Start the suggested first run (cpu-tiny, synthetic weave) and open the Train page on it."""
    config = make_train_config(
        dataset="synthetic",
        category="weave",
        root=None,
        model=model,
        preset="cpu-tiny",
        epochs=FIRST_EPOCHS[model],
    )
    start_and_watch(config, unique_run_dir(default_checkpoint_dir(), f"{config.run_name()}-{FIRST_STEP_SUFFIX}"))


def shown_path(path: Path) -> str:
    """``path`` as the page shows it: relative to the workspace (``checkpoints/``) when inside it, else absolute."""
    stored = stored_path(path)
    return stored if Path(stored).is_absolute() else f"{stored}/"


@show_errors
def render() -> None:
    """The Home page."""
    page_header(
        "AnoViT explorer",
        "Reconstruction-based anomaly detection with a Vision Transformer encoder "
        "(Lee & Kang 2022) and its l2-CAE baseline (Bergmann et al.).",
    )
    st.markdown(
        "**AnoViT** learns to reconstruct *normal* images only. A ViT encoder turns the image's 16x16 patches into "
        "embeddings; the [cls] token is dropped and the patch embeddings are laid back on their √N x √N grid, a "
        "feature map that a transposed-convolution decoder turns back into an image. Trained on defect-free images, "
        "it reconstructs defects poorly: the squared reconstruction error is the anomaly map (eq. 6) and its maximum "
        "the image's anomaly score (eq. 7). Self-attention lets every patch see the whole image, the global context "
        "a convolutional auto-encoder such as the **l2-CAE** lacks."
    )
    st.plotly_chart(architecture_figure(), key="architecture")
    runs, jobs = list_runs(), list_jobs()
    active = sum(state.active for _, state in jobs)
    c1, c2 = st.columns(2)
    ready = synthetic_ready()
    c1.markdown(
        f"**Data** · `{shown_path(default_data_dir())}`  \nEmbedded synthetic dataset (weave, tiles: textures; washer: "
        f"object): {'ready' if ready else 'generated on first use, about 15 s'}. Set `ANOVIT_DATA_DIR` to move it."
    )
    c2.markdown(
        f"**Checkpoints** · `{shown_path(default_checkpoint_dir())}`  \n{len(runs)} run folder(s), {active} training now. "
        "Set `ANOVIT_CHECKPOINTS` to move them."
    )
    st.subheader("First step (offline, about a minute)")
    st.markdown(
        f"Train a **cpu-tiny AnoViT on the synthetic weave class** ({FIRST_EPOCHS['anovit']} epochs), then the "
        f"l2-CAE on the same class ({FIRST_EPOCHS['cae']} epochs: it trains about 5x faster; its published recipe "
        "is 200), and compare them on the Gallery and Heatmaps pages."
    )
    if st.button("Train AnoViT (cpu-tiny) on synthetic weave", type="primary"):  # one per line: never cut
        first_step("anovit")
    if st.button("Train the l2-CAE (cpu-tiny) on synthetic weave"):
        first_step("cae")
    with st.expander("Deviations from the paper"):
        st.markdown(deviations_markdown())
    st.subheader("Pages")
    for page, text in PAGE_TEXT.items():
        cols = st.columns([2, 5])  # wide enough for "Attention" at an 800 px window
        with cols[0]:
            page_link(page)
        cols[1].markdown(text)
