"""The partner run a comparison needs: for a class trained with only one of the l2-CAE and AnoViT, the
config that trains the other model on the same images, and the button that starts it (Heatmaps)."""

from __future__ import annotations


import streamlit as st

from ..jobs.background import JobState, list_jobs, unique_run_dir
from ..models import MODEL_LABELS, PRESETS
from ..runs.catalog import default_checkpoint_dir
from ..runs.record import RunRecord
from ..training.config import TrainConfig
from .common import start_and_watch
from .pickers import DataRef, run_data

MODELS = ("cae", "anovit")  # the two models a comparison pairs
MAX_BUTTONS = 3  # partner buttons shown at once (the newest lone runs)


def lone_runs(runs: list[RunRecord]) -> dict[DataRef, RunRecord]:
    """For each data (dataset, class, folder) trained with one of :data:`MODELS` only, its first run in
    ``runs`` (the catalog lists the newest first)."""
    by_data: dict[DataRef, dict[str, RunRecord]] = {}
    for run in runs:
        ref = run_data(run)
        if ref is not None and run.model_type in MODELS:
            by_data.setdefault(DataRef(ref.dataset, ref.category, ref.root), {}).setdefault(run.model_type, run)
    return {ref: next(iter(found.values())) for ref, found in by_data.items() if len(found) == 1}


def partner_config(run: RunRecord) -> TrainConfig:
    """The other model trained on ``run``'s images: same dataset, class, folder, seed, validation share,
    training-image cap and image size; the run's preset when the other model has one of that name, else
    TrainConfig's default preset (or the other model's first), at that preset's epochs and learning rate."""
    t = run.training
    other = MODELS[1 - MODELS.index(run.model_type)]
    preset = next(p for p in (t.preset, TrainConfig.default("preset"), *PRESETS[other]) if p in PRESETS[other])
    return TrainConfig(
        dataset=t.dataset,
        category=t.category,
        data_root=t.data_root,
        model=other,
        preset=preset,
        model_overrides={"image_size": run.image_size} if run.image_size else {},
        batch_size=t.batch_size or TrainConfig.default("batch_size"),
        seed=t.seed if t.seed is not None else TrainConfig.default("seed"),
        val_fraction=t.val_fraction,
        max_train_images=t.max_train_images,
    )


def in_training(config: TrainConfig, jobs: list[tuple[object, JobState]]) -> bool:
    """Whether one of ``jobs`` (queued or running) trains ``config``'s model on its dataset, class and folder."""
    fields = ("dataset", "category", "data_root", "model")
    wanted = [str(getattr(config, f)) for f in fields]
    return any(state.active and [str(state.config.get(f)) for f in fields] == wanted for _, state in jobs)


def partner_buttons(runs: list[RunRecord]) -> None:
    """One button per class that lacks its partner run and is not training it now (at most :data:`MAX_BUTTONS`):
    it starts that training as a background job and opens the Train page on it."""
    jobs = list_jobs()
    wanted = [(ref, run, config) for ref, run in lone_runs(runs).items()
              if not in_training(config := partner_config(run), jobs)]
    for ref, run, config in wanted[:MAX_BUTTONS]:
        label = f"Train the {MODEL_LABELS[config.model]} partner for {ref.label} ({config.preset}, like {run.name})"
        if st.button(label, key=f"partner-{run.name}"):
            start_and_watch(config, unique_run_dir(default_checkpoint_dir(), config.run_name()))
