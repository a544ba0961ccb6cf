"""Ablations page: for one class and one baseline setting, the effect of each switch (pretrained encoder,
mask ratio, decoder, score function, sigma) on image and pixel AUROC, from the runs that exist; the score
function and sigma by re-scoring the baseline's runs; the missing trained variants queued as background
jobs that run one after another. The logic is :mod:`anovit.evaluation.ablations` and :mod:`anovit.evaluation.ablation_variants`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ..evaluation import ablations as ab
from ..evaluation import ablation_variants as plan
from ..utils.errors import AnovitError, CheckpointError, ConfigError
from ..jobs.queue import queue_jobs
from ..jobs.background import JobError, list_jobs, read_job
from ..models import MODEL_LABELS
from ..utils.network import hub_reachable
from ..training.config import TrainConfig, load_training
from ..visualization.figures import ablation_figure
from .common import page_header, page_link, show_errors
from .pickers import finished_runs, scoring_stamp

QUEUE_KEY = "ablation-queue"  # session state: the run folders this session queued
REFRESH_S = 2.0
CAPTION = ("Each switch changed alone from a baseline run (mean ± std over seeds): trained runs from the "
           "checkpoints folder, score function and sigma also by re-scoring the baseline (no retraining). "
           "Missing trained variants can be queued; they train one after another.")


@st.cache_data(max_entries=512, show_spinner=False)
def _rescore(run_dir: str, stamp: tuple[float | None, ...], score: str, sigma: float) -> tuple[float | None, float | None]:
    """(image AUROC, pixel AUROC) of a run re-scored, cached until its weights or stored fit change (``stamp``)."""
    return ab.rescore(Path(run_dir), score, sigma)


@st.cache_data(ttl=600, show_spinner="Checking whether ImageNet encoder weights are available…")
def weights_unavailable(encoder: str) -> str | None:
    """Why a pretrained ``encoder`` cannot train here ("weights not available offline"), None when its
    ImageNet weights are in the local Hugging Face cache or the Hub is reachable."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(encoder)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return f"timm has no Hub weights for {encoder}"
    if isinstance(try_to_load_from_cache(repo, SAFETENSORS_SINGLE_FILE), str) or hub_reachable():
        return None
    return "weights not available offline (not in the local Hugging Face cache and the Hub is unreachable)"


def unavailable(config: TrainConfig) -> str | None:
    """Why a variant cannot train: a pretrained encoder whose weights cannot be had."""
    overrides = config.model_overrides
    if overrides.get("pretrained") and not overrides.get("encoder_weights"):
        return weights_unavailable(plan.config_switches(config)["encoder"])
    return None


def rescored_points(baseline: ab.Baseline, points: list[ab.Point]) -> list[ab.Point]:
    """The baseline's runs re-scored at every score function and sigma no run covers, with a progress bar."""
    tasks = ab.rescore_tasks(baseline, points)
    if not tasks:
        return []
    bar, out = st.progress(0.0), []
    for i, (switch, value, run) in enumerate(tasks):
        score = value if switch == "score" else baseline.switches["score"]
        sigma = value if switch == "sigma" else baseline.switches["sigma"]
        bar.progress(i / len(tasks), text=f"Re-scoring {run.name} with score {score}, sigma {sigma:g} "
                                          f"({i + 1}/{len(tasks)})…")
        image, pixel = _rescore(str(run.path), scoring_stamp(run.path), score, float(sigma))
        out.append(ab.Point(switch, value, run.name, run.training.seed, ab.RESCORED, image, pixel))
    bar.empty()
    return out


def pending_switches(key: ab.DataKey) -> list[dict]:
    """:func:`anovit.evaluation.ablations.config_switches` of the queued and running jobs on the test split ``key``."""
    pending = []
    for _, state in list_jobs():
        if not state.active:
            continue
        try:
            config = TrainConfig.from_dict(state.config)
        except (ConfigError, TypeError):
            continue
        if (config.dataset, config.data_root or "", config.category) == key:
            pending.append(plan.config_switches(config))
    return pending


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The summary as the page shows it: switch labels, baseline marked, "mean ± std" and deltas to 3 decimals."""
    labels = {s.name: s.label for s in ab.SWITCHES}
    out = table[["switch", "value", "source", "baseline", "runs"]].assign(
        switch=table["switch"].map(labels), baseline=table["baseline"].map({True: "baseline", False: ""}))
    for m in ab.METRICS:
        name = m.replace("_auroc", " AUROC")
        out[name] = [_number(v) if pd.isna(sd) else f"{_number(v)} ± {sd:.3f}" for v, sd in zip(table[m], table[f"{m}_std"])]
        out[f"Δ {name}"] = table[f"delta_{m}"].map(lambda v: _number(v, "+"))
    out["run folders"] = table["run folders"]
    return out


def _number(value: float, sign: str = "") -> str:
    return "n/a" if pd.isna(value) else f"{value:{sign}.3f}"


def missing_runs(baseline: ab.Baseline, points: list[ab.Point]) -> tuple[list[plan.Missing], str]:
    """The missing trained variants (trained like the baseline's lowest-seed run, one switch changed) and a
    sentence on what they are trained like; none, and why, when that run has no usable training.json."""
    base_run = min(baseline.runs, key=lambda r: (r.training.seed or 0, r.name))
    try:
        base = load_training(base_run.path)
    except CheckpointError:
        return [], f"{base_run.name} has no usable training.json: its variants cannot be configured."
    missing = plan.missing_variants(base, baseline, points, pending_switches(baseline.key), unavailable)
    return missing, f"Trained like {base_run.name} (seed {base.seed}, {base.epochs} epochs), one switch changed."


def _queue_section(missing: list[plan.Missing], note: str, model: str) -> None:
    st.subheader("Missing trained variants")
    if not any(s.trained for s in ab.switches_of(model)):
        st.caption(f"The {MODEL_LABELS.get(model, model)} has no switch here that needs training: its score function "
                   "and sigma are re-scored above.")
        return
    labels = {s.name: s.label for s in ab.SWITCHES}
    for m in (m for m in missing if m.reason):
        st.info(f"{labels[m.switch]} {ab.value_text(m.value)}: {m.reason}.")
    ready = [m for m in missing if not m.reason]
    if not ready:
        st.success("Every variant of the training switches has a run, a queued or running job, or cannot train here.")
    else:
        st.caption(note)
        st.dataframe(pd.DataFrame([{"switch": labels[m.switch], "value": ab.value_text(m.value), "run folder": m.name}
                                   for m in ready]), hide_index=True)
        if st.button(f"Queue the {len(ready)} missing run{'s' if len(ready) > 1 else ''}", type="primary",
                     help="They train one after another, in the background, and appear on the Train page"):
            try:
                run_dirs = queue_jobs([(m.config, m.name) for m in ready])
            except (AnovitError, OSError) as err:
                st.error(f"Could not queue the runs: {err}")
                return
            st.session_state[QUEUE_KEY] = st.session_state.get(QUEUE_KEY, []) + [str(p) for p in run_dirs]
            st.rerun()
    queued = st.session_state.get(QUEUE_KEY, [])
    if queued:
        active = any(s is not None and s.active for s in map(_state, queued))
        st.fragment(_queue_status, run_every=REFRESH_S if active else None)(queued)


def _state(run_dir: str):
    try:
        return read_job(Path(run_dir))
    except (JobError, CheckpointError):
        return None


def _queue_status(queued: list[str]) -> None:
    """The jobs this session queued: status and progress (refreshed while one is active)."""
    states = [_state(p) for p in queued]
    rows = [{"run folder": Path(p).name, "status": s.status if s else "deleted",
             "progress": f"{s.progress:.0%}" if s else "", "phase": s.phase if s else ""} for p, s in zip(queued, states)]
    st.caption("Queued from this page (one trains at a time; cancel one on the Train page)")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    active = [s is not None and s.active for s in states]
    if active != st.session_state.get(f"{QUEUE_KEY}-active", active):
        st.session_state[f"{QUEUE_KEY}-active"] = active
        st.rerun()  # a job finished: redraw the chart with its run
    st.session_state[f"{QUEUE_KEY}-active"] = active
    page_link("train", "Watch them on the Train page")


@show_errors
def render() -> None:
    """The Ablations page."""
    page_header("Ablations", CAPTION)
    runs = finished_runs()
    keys = ab.data_keys(runs)
    if not keys:
        st.info("No evaluated run yet: train one on the Train page (its test metrics are computed at the end).")
        return
    left, middle, right = st.columns([2, 1, 3])
    key = left.selectbox("Test split (dataset / class)", list(keys),
                         format_func=lambda k: f"{k[0]} / {k[2]}" + (f" ({k[1]})" if k[1] else ""))
    model = middle.selectbox("Model", keys[key], format_func=lambda m: MODEL_LABELS.get(m, m))
    groups = ab.baselines(runs, model, key)
    baseline = groups[right.selectbox("Baseline setting", range(len(groups)), format_func=lambda i: groups[i].label)]
    if not baseline.recipe:
        right.caption("Not a preset's recipe: the paper's AnoViT has mask ratio 0 and the l2 score.")
    points = ab.trained_points(runs, baseline)
    if st.toggle("Re-score the baseline for the score functions and sigmas no run covers (no training)",
                 key="ablation-rescore", help="one pass over the test split per value and run; cached"):
        points += rescored_points(baseline, points)
    switches = ab.switches_of(model)
    table = ab.summary(points, baseline)
    missing, note = missing_runs(baseline, points)
    texts = {s.name: [ab.value_text(m.value) for m in missing if m.switch == s.name] for s in switches}
    figure = ablation_figure(table, [(s.name, s.label) for s in switches], texts)
    st.plotly_chart(figure, key="ablation-chart")
    st.caption("Filled: a run's own test metrics; open: a baseline run re-scored; shaded: the baseline's value; "
               "grey crosses: variants not trained yet. Error bars: sample std over runs (seeds).")
    st.dataframe(display(table), hide_index=True, height=min(38 + 35 * len(table), 800))  # every row, no scrolling
    _queue_section(missing, note, model)
