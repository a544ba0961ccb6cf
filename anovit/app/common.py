"""Cached loaders and pickers used by several pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch.nn as nn

from .. import checkpoint as ckpt
from ..models import MODEL_LABELS
from ..runs import RunInfo, list_runs


@st.cache_resource(max_entries=6, show_spinner="Loading model…")
def _load_model(path: str, mtime: float) -> nn.Module:
    return ckpt.load_model(Path(path))


def load_model_cached(run_dir: Path) -> nn.Module:
    """The run's model in eval mode, cached until its weights file changes."""
    weights = Path(run_dir) / ckpt.WEIGHTS
    return _load_model(str(run_dir), weights.stat().st_mtime)


def run_label(run: RunInfo) -> str:
    """One line naming a run: folder, model, and its image AUROC when evaluated."""
    auroc = run.test.get("image_auroc")
    score = f", image AUROC {auroc:.3f}" if isinstance(auroc, float) else ""
    return f"{run.name} ({MODEL_LABELS.get(run.model_type, run.model_type)}{score})"


def run_picker(label: str = "Checkpoint", *, model_type: str | None = None, key: str | None = None) -> RunInfo | None:
    """A selectbox over the run folders (optionally of one model type); None, with a hint, if there are none."""
    runs = [r for r in list_runs() if model_type is None or r.model_type == model_type]
    if not runs:
        st.info("No checkpoint yet: train one on the Train page or load one on the Hub page.")
        return None
    return st.selectbox(label, runs, format_func=run_label, key=key)
