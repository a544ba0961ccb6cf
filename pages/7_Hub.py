"""Hub: load a published AnoViT / l2-CAE checkpoint from the Hugging Face Hub (or the local cache) into
checkpoints/, where Gallery, Heatmaps and Inspect find it. The logic lives in anovit.hub."""

import pandas as pd
import streamlit as st

from anovit.app.common import page_header, page_link
from anovit.errors import AnovitError
from anovit.hub import cached_repos, card_text, curated_models, pull, pulled_runs
from anovit.models import MODEL_LABELS
from anovit.network import hub_offline_forced, hub_reachable


@st.cache_data(ttl=30, show_spinner=False)
def _hub_online() -> bool:
    return hub_reachable()


page_header("Hub", "Load a pretrained AnoViT or l2-CAE checkpoint from the Hugging Face Hub; it then appears "
                   "in Gallery, Heatmaps and Inspect.")
if not _hub_online():
    why = "HF_HUB_OFFLINE is set" if hub_offline_forced() else "The Hugging Face Hub cannot be reached"
    st.info(f"{why}, so only repos already in the local cache can be loaded.")

try:
    suggestions = {f"{m.title} — {m.repo_id}": m.repo_id for m in curated_models()}
except AnovitError as err:
    st.error(str(err))
    suggestions = {}
suggestions |= {f"{repo} (in the local cache)": repo for repo in cached_repos()}
picked = st.selectbox("Curated and cached repos", ["(type a repo id below)", *suggestions]) if suggestions else None
repo = st.text_input("Repo id", value=suggestions.get(picked, ""), placeholder="ORG/NAME or ORG/NAME@revision")

if st.button("Load", type="primary", disabled=not repo.strip()):
    bar = st.progress(0.0, text="Starting…")
    try:
        dest = pull(repo, progress=lambda fraction, message: bar.progress(fraction, text=message))
    except (AnovitError, OSError) as err:
        bar.empty()
        st.error(str(err))
    else:
        st.success(f"{repo.strip()} is ready as checkpoint {dest.name}: pick it on these pages.")
        for page in ("gallery", "heatmaps", "inspect"):
            page_link(page)

pulled = pulled_runs()
st.subheader("Loaded from the Hub")
if not pulled:
    st.caption("None yet.")
else:
    st.dataframe(pd.DataFrame([{
        "checkpoint": run.name, "model": MODEL_LABELS.get(run.model_type, run.model_type), "repo": source.get("repo_id"),
        "revision": source.get("revision") or "main", "commit": str(source.get("commit", ""))[:10],
        "image AUROC": run.test.get("image_auroc"), "pixel AUROC": run.test.get("pixel_auroc"),
    } for run, source in pulled]), hide_index=True)
    for run, source in pulled:
        text = card_text(run.path)
        if text:
            with st.expander(f"Model card of {source.get('repo_id')}"):
                st.markdown(text)
