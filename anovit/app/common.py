"""The frame every page shares: its header, its error handling and the page registry with links.
Nothing here runs at import time.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from ..jobs.background import start_job
from ..training.config import TrainConfig
from ..utils.errors import AnovitError
from ..runs.catalog import REPO_ROOT


def show_errors(render: Callable[[], None]) -> Callable[[], None]:
    """Wrap a page's render function: anovit's own errors (bad data folder, unreadable checkpoint, ...)
    are shown as one ``st.error`` line instead of a traceback, and the app keeps running."""

    @functools.wraps(render)
    def wrapped() -> None:
        try:
            render()
        except AnovitError as err:
            st.error(str(err))

    return wrapped


def threshold_basis(n_validation: int) -> str:
    """Where a validation threshold comes from, in words shown on the page (not in a tooltip)."""
    return (f"fitted on {n_validation} normal validation images (the smallest value above all their anomaly scores; "
            "held out during training, never the test split)")


def page_header(title: str, caption: str) -> None:
    """Page config, title and a one-line caption, identical on every page."""
    st.set_page_config(page_title=f"{title} · anovit", page_icon="🔍", layout="wide")
    st.title(title)
    st.caption(caption)


PAGES = {
    "train": ("app_pages/1_Train.py", "Train", ":material/model_training:"),
    "results": ("app_pages/2_Results.py", "Results", ":material/table_chart:"),
    "gallery": ("app_pages/3_Gallery.py", "Gallery", ":material/photo_library:"),
    "heatmaps": ("app_pages/4_Heatmaps.py", "Heatmaps", ":material/thermostat:"),
    "inspect": ("app_pages/5_Inspect.py", "Inspect", ":material/image_search:"),
    "attention": ("app_pages/6_Attention.py", "Attention", ":material/visibility:"),
    "hub": ("app_pages/7_Hub.py", "Hub", ":material/cloud_sync:"),
    "ablations": ("app_pages/8_Ablations.py", "Ablations", ":material/tune:"),
}


def page_link(page: str, label: str | None = None, query_params: dict[str, str] | None = None) -> None:
    """A link to one of the app's pages (by key of ``PAGES``, with ``query_params`` in its URL); plain text
    when that page file is absent."""
    path, title, icon = PAGES[page]
    if (REPO_ROOT / path).is_file():
        try:
            st.page_link(path, label=label or title, icon=icon, query_params=query_params)
            return
        except StreamlitPageNotFoundError:
            pass  # a page run on its own (not through app.py) knows no other page
    st.markdown(f"{icon} {label or title}")


def start_and_watch(config: TrainConfig, run_dir: Path) -> None:
    """Start ``config`` as a background job in ``run_dir`` and open the Train page on it; an AnovitError (a
    refused data folder, a taken run folder) is shown as one line instead."""
    try:
        start_job(config, run_dir)
    except AnovitError as err:
        st.error(str(err))
        return
    st.switch_page(PAGES["train"][0], query_params={"job": run_dir.name})
