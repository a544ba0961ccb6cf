"""Hub page: load a published AnoViT / l2-CAE checkpoint from the Hugging Face Hub (or the local cache)
into checkpoints/, where Gallery, Heatmaps, Inspect and Attention find it; the fetching is :mod:`anovit.hub.repo`'s.
Publishing stays on the command line (it needs a Hub token, which the app never holds): the page shows
the ``anovit hub push`` command for a chosen run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ..utils.errors import AnovitError
from ..hub.repo import SOURCE, offline_reason, pull
from ..hub.catalog import cached_repos, card_text, curated_models, pulled_runs
from ..models import MODEL_LABELS
from ..utils.network import hub_reachable
from ..runs.catalog import list_runs
from ..runs.record import RunRecord
from .common import page_header, page_link, show_errors

NO_CHOICE = "(type a repo id below)"


@st.cache_data(ttl=30, show_spinner=False)
def _hub_online() -> bool:
    return hub_reachable()


def suggestions() -> dict[str, str]:
    """Label -> repo id of the curated repos and of the anovit repos in the local Hub cache (shown: st.error
    when the curated list is malformed)."""
    try:
        found = {f"{m.title} — {m.repo_id}": m.repo_id for m in curated_models()}
    except AnovitError as err:
        st.error(str(err))
        found = {}
    return found | {f"{repo} (in the local cache)": repo for repo in cached_repos()}


def _auroc(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def pulled_table(pulled: list[tuple[RunRecord, dict]]) -> pd.DataFrame:
    """One row per run folder pulled from the Hub: checkpoint, model, repo, revision, commit, AUROCs."""
    return pd.DataFrame([{
        "checkpoint": run.name, "model": MODEL_LABELS.get(run.model_type, run.model_type), "repo": source.get("repo_id"),
        "revision": source.get("revision") or "main", "commit": str(source.get("commit", ""))[:10],
        "image AUROC": _auroc(run.metric("image_auroc")), "pixel AUROC": _auroc(run.metric("pixel_auroc")),
    } for run, source in pulled])


def _load(repo: str) -> None:
    bar = st.progress(0.0, text="Starting…")
    try:
        dest = pull(repo, progress=lambda fraction, message: bar.progress(fraction, text=message))
    except (AnovitError, OSError) as err:
        bar.empty()
        st.error(str(err))
        return
    st.success(f"{repo.strip()} is ready as checkpoint {dest.name}: pick it on these pages.")
    for page in ("gallery", "heatmaps", "inspect", "attention"):
        page_link(page)


def push_command(run_dir: Path, repo_id: str, dry_run: bool = True) -> str:
    """The ``anovit hub push`` command that publishes ``run_dir`` (relative to the current folder when inside it)."""
    path = Path(run_dir).resolve()
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    return f"python -m anovit hub push {shown} --repo-id {repo_id or 'ORG/NAME'}" + (" --dry-run" if dry_run else "")


def _publish() -> None:
    st.subheader("Publish a run")
    own = [run for run in list_runs() if run.test and not (run.path / SOURCE).is_file()]
    if not own:
        st.caption("No evaluated run of your own yet: train one on the Train page.")
        return
    left, right = st.columns(2)
    run = left.selectbox("Run", own, format_func=lambda r: r.name)
    repo = right.text_input("Target repo id", placeholder="ORG/NAME", key="push-repo")
    st.caption("Publishing needs your Hugging Face token, which this app never asks for: run these in a terminal "
               "where `huggingface-cli login` (or HF_TOKEN) holds it. The first prints the files and the model card "
               "and uploads nothing; the second uploads.")
    st.code(push_command(run.path, repo.strip()) + "\n" + push_command(run.path, repo.strip(), dry_run=False),
            language="bash")


@show_errors
def render() -> None:
    """The Hub page."""
    page_header("Hub", "Load a pretrained AnoViT or l2-CAE checkpoint from the Hugging Face Hub; it then appears "
                       "in Gallery, Heatmaps, Inspect and Attention. Publishing a run of yours: the command is below.")
    if not _hub_online():
        why = offline_reason()
        st.info(f"{why[0].upper()}{why[1:]}, so only repos already in the local cache can be loaded.")
    offered = suggestions()
    picked = st.selectbox("Curated and cached repos", [NO_CHOICE, *offered]) if offered else None
    repo = st.text_input("Repo id", value=offered.get(picked, ""), placeholder="ORG/NAME or ORG/NAME@revision")
    if st.button("Load", type="primary", disabled=not repo.strip()):
        _load(repo)
    _pulled()
    _publish()


def _pulled() -> None:
    pulled = pulled_runs()
    st.subheader("Loaded from the Hub")
    if not pulled:
        st.caption("None yet.")
        return
    st.dataframe(pulled_table(pulled), hide_index=True)
    for run, source in pulled:
        text = card_text(run.path)
        if text:
            with st.expander(f"Model card of {source.get('repo_id')}"):
                st.markdown(text)
