"""Train page: configure a run, start it as a background job, watch and cancel it.

The page never trains in its own process: :mod:`anovit.jobs.background` starts a worker and the page only
reads RUN/job.json (auto-refreshed by a fragment), so reruns, page switches, reloads and several
tabs all show the same job. The job watched by a tab is kept in its URL (``?job=<run name>``).
"""

from __future__ import annotations

import math
from argparse import ArgumentTypeError
import time
from pathlib import Path
from typing import Any

import streamlit as st

from ..runs import checkpoint as ckpt
from ..data import ALL_CLASSES, DATASETS, dataset_spec, default_augment, flip_rule, list_classes, supports_all_classes
from ..utils.errors import AnovitError
from ..jobs.background import (
    JOB_FILE, LOG_FILE, JobState, cancel_job, delete_run, list_jobs, read_job, restart_job, start_job, unique_run_dir,
)
from ..models import MODEL_LABELS, PRESETS
from ..utils.network import hub_reachable
from ..evaluation.run_statistics import METRIC_LEVELS, run_interval
from ..report.unified import per_class_table
from ..runs.catalog import default_checkpoint_dir, list_runs
from ..runs.metrics_record import TestSummary, read_run_metrics
from ..training.config import TrainConfig, model_config
from ..evaluation.uncertainty import flag_everything_f1
from ..utils.validation import PATCH_SIZE, encoder_arg, image_size_arg
from ..visualization.figures import loss_curve_figure
from .common import page_header, page_link, show_errors
from .data_roots import suggested_roots
from .heatmaps import heatmaps_query
from .settings_form import form_settings, setting_widgets
from .intervals import INTERVAL_NOTE, below_chance, interval_caption

REFRESH_S = 1.0  # the status line and progress bar
CHART_REFRESH_S = 10.0  # the loss curve, the one large element
FOCUS_AFTER_S = 600.0  # a job this session watched run stays the page's focus (above the form) so long after its end
WATCHED = "train-watched-job"  # session state: the last job this session showed while it was queued or running
STALE_CHECK_S = 10.0  # re-read an unchanged job.json this often (read_job tells a dead worker's job "stale")
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/directions_run:",
    "done": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "stale": ":material/help:",
}


def make_train_config(
    *,
    dataset: str,
    category: str,
    root: str | None,
    model: str,
    preset: str,
    affine: bool = True,
    hflip: bool | None = None,
    vflip: bool | None = None,
    pretrained: bool | None = None,
    image_size: int | None = None,
    encoder: str | None = None,
    mask_ratio: float | None = None,
    tile_size: int | None = None,
    **settings: Any,
) -> TrainConfig:
    """The TrainConfig of the form's values; ``settings``: the form's other TrainConfig fields (its
    :func:`~anovit.app.settings_form.form_settings`: epochs, batch size, ...), None keeping TrainConfig's default
    (epochs and lr: the preset's). Flips default to the dataset's rule (no flip that makes a normal image look
    defective); ``pretrained``, ``encoder`` and ``mask_ratio`` only apply to AnoViT (None keeps the preset's);
    ``image_size`` and ``tile_size`` None keep the preset's (the paper preset's size follows the dataset; a tile
    of the image size is untiled)."""
    overrides: dict = {k: int(v) for k, v in (("image_size", image_size), ("tile_size", tile_size)) if v}
    if model == "anovit":
        overrides.update({k: v for k, v in (("pretrained", pretrained), ("encoder", encoder or None),
                                            ("mask_ratio", mask_ratio)) if v is not None})
    return TrainConfig(
        dataset=dataset,
        category=category,
        data_root=root or None,
        model=model,
        preset=preset,
        model_overrides=overrides,
        augment=default_augment(dataset, category, affine=affine, hflip=hflip, vflip=vflip),
        **{k: v for k, v in settings.items() if v is not None},
    )


def format_duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``12 s``; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def progress_text(state: JobState) -> str:
    """One line: phase, epoch/step, loss, speed and ETA."""
    if state.phase == "data":
        return f"preparing: {state.detail or 'reading (or, the first time, generating) the images and building the model'}…"
    if state.phase == "evaluate":
        return f"evaluating on the test split: {state.eval_progress:.0%}"
    if state.phase == "queued":
        return "queued: waiting for its turn (jobs queued together train one after another) or for its worker to start…"
    parts = [f"epoch {state.epoch}/{state.epochs}", f"step {state.step}/{state.steps}"]
    if state.loss is not None:
        parts.append(f"loss {state.loss:.5f}")
    if state.images_per_s:
        parts.append(f"{state.images_per_s:.0f} img/s")
    if state.active:  # no ETA before a few steps have been timed
        parts.append(f"ETA {format_duration(state.eta_s)} at this run's pace so far, then the test split is scored"
                     if state.eta_s and state.progress >= 0.02 else "ETA: timing…")
    return " · ".join(parts)


def job_label(run_dir: Path, state: JobState) -> str:
    """How a job is listed: run name and status (its progress is on the bar below, which stays current)."""
    return f"{run_dir.name} — {state.status}"


def jobs_first(jobs: list[tuple[Path, JobState]], watched: str | None, now: float | None = None) -> bool:
    """Whether the page opens on its jobs rather than on the form: while a job is queued or running, or when
    ``watched`` (the job this session last saw running) ended less than :data:`FOCUS_AFTER_S` ago (its outcome
    is the news)."""
    now = time.time() if now is None else now
    return any(state.active or (path.name == watched and now - (state.finished_at or 0.0) < FOCUS_AFTER_S)
               for path, state in jobs)


def default_job(jobs: list[tuple[Path, JobState]], wanted: str | None) -> int:
    """Index of the job to show: the one named in the URL, else the newest active one, else the newest."""
    names = [path.name for path, _ in jobs]
    if wanted in names:
        return names.index(wanted)
    return next((i for i, (_, state) in enumerate(jobs) if state.active), 0)


def class_choices(dataset: str, classes: list[str]) -> list[str]:
    """The Train page's class picker: ``classes``, then "all" (one model for every class, evaluated per class)
    where the dataset has class folders and at least two of them (never when a class folder is itself "all")."""
    unified = supports_all_classes(dataset) and len(classes) >= 2 and ALL_CLASSES not in classes
    return [*classes, ALL_CLASSES] if unified else list(classes)


def class_label(category: str) -> str:
    """How the class picker shows a class: "all classes, one model" for "all", else its name."""
    return "all classes, one model" if category == ALL_CLASSES else category


def _form() -> None:
    st.subheader("New training run")
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox("Dataset", DATASETS, format_func=lambda name: f"{name}: {dataset_spec(name).title}")
    spec = dataset_spec(dataset)
    known = [""] + (suggested_roots(list_runs()) if spec.layout == dataset_spec("mvtec").layout else [])
    picked = c1.selectbox("Known data folder", known, format_func=lambda r: r or "(none: type one below)",
                          help="../shared/data's sets, $ANOVIT_DATA_ROOTS and the folders runs were trained on")
    root = c1.text_input(
        "Data folder",
        value=picked,
        placeholder="default" if not spec.needs_root else "required",
        help=f"{spec.protocol}. Source: {spec.source}",
    )
    if spec.classes is None and not root:
        c1.info("Enter the folder holding the class folders (e.g. ../shared/data/cookies).")
        return
    try:
        classes = list_classes(dataset, root or None)
    except AnovitError as err:
        c1.error(str(err))
        return
    if not classes:
        c1.error(f"No class folder under {root}.")
        return
    category = c1.selectbox("Class (the normal class)", class_choices(dataset, classes), format_func=class_label)
    model = c2.radio("Model", list(MODEL_LABELS), format_func=MODEL_LABELS.get, horizontal=True)
    preset = c2.selectbox(
        "Preset", list(PRESETS[model]), help="cpu-tiny: minutes on a CPU; paper: ViT-B/16 at 384 px, a GPU job; "
                                             "cpu-tiny-masked: masked-patch inpainting from scratch (beyond the paper); "
                                             "cpu-default: the best CPU recipe on real photographs (the CLI's default)"
    )
    pretrained = None
    if model == "anovit":
        pretrained = c2.checkbox(
            "ImageNet encoder weights",
            value=bool(PRESETS[model][preset].get("pretrained", False)),
            help="Downloaded from the Hugging Face Hub (or its local cache)",
        )
        if pretrained and not hub_reachable():
            c2.warning("The Hugging Face Hub is unreachable: the job fails unless the weights are in the local cache.")
    base = TrainConfig(dataset=dataset, category=category, model=model, preset=preset)  # the defaults offered
    resolved = model_config(base)
    image_size = c2.number_input("Image size (px)", PATCH_SIZE, 1024, resolved.image_size, step=PATCH_SIZE,
                                 key=f"size-{model}-{preset}-{dataset}",
                                 help="the preset's; the paper preset's follows the dataset (224 MNIST/CIFAR-10, 384 MVTec AD)")
    encoder = None
    if model == "anovit":
        encoder = c2.text_input("Encoder (timm ViT/DeiT name)", resolved.encoder, key=f"enc-{preset}-{dataset}")
    mask_ratio = None
    if model == "anovit":
        mask_ratio = c2.number_input("Mask ratio", 0.0, 0.9, float(resolved.mask_ratio), step=0.05,
                                     key=f"mask-{preset}", help="share of patches hidden in training; at test, "
                                     "round(1/ratio) complementary passes (0: the paper's AnoViT)")
    # the form's other settings: picks beside the model's, numbers in the third column
    settings = setting_widgets(c2, base, form_settings(TrainConfig, picks=True), model, preset)
    for check, value, what in ((image_size_arg, str(int(image_size)), "Image size"), (encoder_arg, encoder, "Encoder")):
        if value is None:
            continue
        try:
            check(value)
        except ArgumentTypeError as err:
            c2.error(f"{what} {err}.")
            return
    # the tile the preset gives this image size (untiled: the image itself); keyed by the size, so it follows it
    sized = model_config(TrainConfig(dataset=dataset, category=category, model=model, preset=preset,
                                     model_overrides={"image_size": int(image_size)}))
    preset_tile = sized.tile_size or sized.image_size
    tile_size = c2.number_input("Tile size (px)", PATCH_SIZE, sized.image_size, preset_tile, step=PATCH_SIZE,
                                key=f"tile-{model}-{preset}-{dataset}-{sized.image_size}",
                                help="the network's input: larger images are reconstructed from overlapping tiles "
                                     "(AnoViT cpu-default: 128 px tiles); the image size: untiled")
    try:
        image_size_arg(str(int(tile_size)))
    except ArgumentTypeError as err:
        c2.error(f"Tile size {err}.")
        return
    settings |= setting_widgets(c3, base, form_settings(TrainConfig, picks=False), model, preset)
    affine = c2.checkbox("Random affine augmentation", value=True)
    rule_h, rule_v, why = flip_rule(dataset, category)
    hflip = c2.checkbox("Horizontal flips", value=rule_h, help=why, key=f"hflip-{dataset}-{category}")
    vflip = c2.checkbox("Vertical flips", value=rule_v, help=why, key=f"vflip-{dataset}-{category}")
    config = make_train_config(
        dataset=dataset,
        category=category,
        root=root,
        model=model,
        preset=preset,
        affine=affine,
        hflip=hflip,
        vflip=vflip,
        pretrained=pretrained,
        image_size=image_size if image_size != resolved.image_size else None,
        encoder=encoder if model == "anovit" and encoder != resolved.encoder else None,
        mask_ratio=mask_ratio if model == "anovit" and mask_ratio != resolved.mask_ratio else None,
        tile_size=tile_size if tile_size != preset_tile else None,
        **settings,
    )
    suggested = unique_run_dir(default_checkpoint_dir(), config.run_name()).name
    name = st.text_input("Run name (folder under checkpoints/)", value=suggested)
    if st.button("Start training", type="primary"):
        try:
            start_job(config, default_checkpoint_dir() / name.strip())
        except AnovitError as err:
            st.error(str(err))
            return
        st.query_params["job"] = name.strip()
        st.rerun()


def _log_tail(run_dir: Path, lines: int = 30) -> str:
    log = run_dir / LOG_FILE
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else "(no log)"


def watched_state(run_dir: Path) -> JobState | None:
    """The job's state, parsed again only when job.json changed since this session last read it (the
    watching fragments poll it every second; the worker writes it about once a second)."""
    path = run_dir / JOB_FILE
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    key, now = f"job-state-{run_dir}", time.monotonic()
    cached = st.session_state.get(key)
    if cached is None or cached[0] != stamp or now - cached[1] > STALE_CHECK_S:  # a dead worker writes nothing
        cached = (stamp, now, read_job(run_dir))
        st.session_state[key] = cached
    return cached[2]


def show_progress(run_dir: Path) -> None:
    """Status line, progress bar and cancel button of one job (small: redrawn every second while it runs)."""
    state = watched_state(run_dir)
    if state is None:
        st.warning(f"{run_dir} has no job state any more.")
        return
    st.markdown(
        f"**{run_dir.name}** · {STATUS_ICONS.get(state.status, '')} {state.status} · "
        f"elapsed {format_duration(state.elapsed_s)}"
    )
    if state.active:
        st.progress(min(max(state.progress, 0.0), 1.0), text=progress_text(state))
        if st.button(
            "Cancel",
            key=f"cancel-{run_dir.name}",
            help="Stops at the end of the current epoch; the best epoch so far is kept",
        ):
            cancel_job(run_dir)
            st.toast(f"Cancelling {run_dir.name} at the end of this epoch…")
    if state.status != st.session_state.get(f"was-status-{run_dir.name}", state.status):
        st.rerun()  # queued -> running, or finished: redraw the page once (the job list's labels, the outcome)
    st.session_state[f"was-status-{run_dir.name}"] = state.status


def show_loss(run_dir: Path) -> None:
    """The loss curve of one job (redrawn every CHART_REFRESH_S while it runs)."""
    state = watched_state(run_dir)
    if state is not None and (state.step_losses or state.history):
        figure = loss_curve_figure(state.step_losses, state.history, state.steps or 1)
        st.plotly_chart(figure, key=f"loss-{run_dir.name}")


def show_outcome(run_dir: Path, state: JobState) -> None:
    """What a finished job left: its test metrics (from metrics.json), its error, or the cancellation."""
    if state.status == "done":
        metrics = read_run_metrics(run_dir)  # the file every page reads, not the job's copy
        test = metrics.test or TestSummary()
        cols = st.columns(4)
        for col, (label, key) in zip(
            cols,
            [
                ("image AUROC", "image_auroc"),
                ("pixel AUROC", "pixel_auroc"),
                ("image F1-max", "image_f1_max"),
                ("test images", "n_images"),
            ],
        ):
            value = getattr(test, key)
            col.metric(label, "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else value))
            if key in METRIC_LEVELS:
                col.caption(interval_caption(value, run_interval(run_dir, key)))
        if metrics.per_class:  # one model for every class: the metrics above are the means over its classes
            st.caption("One model for every class: the AUROCs above are the means over its classes, each scored with "
                       "its own threshold and calibration:")
            st.dataframe(per_class_table(metrics.per_class), hide_index=True)
        if test.image_f1_max is not None and test.n_anomalous:
            cols[2].caption(f"flagging every image anomalous: "
                            f"{flag_everything_f1(test.n_anomalous, test.n_images):.3f}")
        st.caption("AUROC: 0.5 is chance (scores that do not tell normal from anomalous), 1.000 perfect. F1-max: the "
                   "best F1 over all thresholds of the test split, beside the F1 of flagging every image. "
                   + INTERVAL_NOTE)
        pages = "Results, Gallery, Heatmaps, Inspect" + (" and Attention" if state.config.get("model") == "anovit" else "")
        weak = below_chance({"image AUROC": test.image_auroc, "pixel AUROC": test.pixel_auroc})
        if weak:
            st.warning(f"Finished, but its {' and '.join(weak)} lie below chance (0.5): the anomaly scores rank "
                       f"normal images above anomalous ones. The checkpoint is listed on the {pages} pages.")
        else:
            st.success(f"Done: the checkpoint is listed on the {pages} pages.")
        for col, (page, label, query) in zip(
            st.columns(3),
            [("gallery", "Open the Gallery", None), ("heatmaps", "Compare heatmaps", heatmaps_query(state.config)),
             ("results", "See the Results table", None)],
        ):
            with col:
                page_link(page, label, query)
    elif state.status in ("failed", "stale"):
        st.error(state.error or "the job failed")
        with st.expander("Worker log (job.log)"):
            st.code(_log_tail(run_dir))
    elif state.status == "cancelled":
        st.warning("Cancelled: the best epoch so far is saved in the run folder, without test metrics.")
    if state.status in ("cancelled", "failed", "stale"):
        _restart_buttons(run_dir)
    if not state.active:
        _delete_button(run_dir)


def _restart_buttons(run_dir: Path) -> None:
    """Continue an ended run's training from its last saved epoch, or score its best epoch as it is."""
    offers = [("resume", "Continue training", ckpt.RESUME, "from its last saved epoch up to its configured epochs, "
               "then scored on the test split"),
              ("evaluate", "Evaluate as it is", ckpt.WEIGHTS, "score its best epoch so far on the test split")]
    for col, (mode, label, needed, what) in zip(st.columns(len(offers)), offers):
        if (run_dir / needed).is_file() and col.button(label, key=f"{mode}-{run_dir.name}", help=what):
            try:
                restart_job(run_dir, mode)
            except AnovitError as err:
                st.error(str(err))
                return
            st.rerun()


def _delete_button(run_dir: Path) -> None:
    """Delete the run folder, after a confirmation."""
    with st.popover("Delete this run…"):
        st.write(f"Deletes {run_dir.name} (weights, metrics and log) for good.")
        if st.button(f"Delete {run_dir.name}", type="primary", key=f"delete-{run_dir.name}"):
            delete_run(run_dir)
            st.query_params.pop("job", None)
            st.rerun()


def _monitor() -> None:
    st.subheader("Jobs")
    jobs = list_jobs()
    if not jobs:
        st.info("No training job yet: start one above.")
        return
    index = default_job(jobs, st.query_params.get("job"))
    chosen = st.selectbox("Job", range(len(jobs)), index=index, format_func=lambda i: job_label(*jobs[i]))
    run_dir, state = jobs[chosen]
    if st.query_params.get("job") != run_dir.name:
        st.query_params["job"] = run_dir.name
    st.session_state[f"was-status-{run_dir.name}"] = state.status
    live = state.active
    if live:
        st.session_state[WATCHED] = run_dir.name
    st.fragment(show_progress, run_every=REFRESH_S if live else None)(run_dir)
    st.fragment(show_loss, run_every=CHART_REFRESH_S if live else None)(run_dir)
    if not live:
        show_outcome(run_dir, state)


@show_errors
def render() -> None:
    """The Train page."""
    page_header(
        "Train",
        "Fine-tune AnoViT or the l2-CAE on the normal images of one class, as a background job "
        "that survives reruns, page switches and browser reloads.",
    )
    parts = [_form, _monitor]
    if jobs_first(list_jobs(), st.session_state.get(WATCHED)):
        parts.reverse()  # the running (or just finished) job is the page's focus; the form for the next one below
    parts[0]()
    st.divider()
    parts[1]()
