"""The AnoViT explorer (`streamlit run app.py`): the page router. Home's logic is anovit.app.home;
every other page is a thin file under app_pages/ (listed once, in anovit.app.common.PAGES, each served at
its URL path, e.g. /Heatmaps). The folder is not named pages/: Streamlit would serve that one by itself,
with its own navigation, to a first visit by a page's URL."""

import streamlit as st

from anovit.app.common import PAGES
from anovit.app.home import render

home = st.Page(render, title="Home", icon=":material/home:", url_path="start", default=True)  # served at /


def _to_home() -> None:
    """/home: the default page lives at the root URL; send the visitor there."""
    st.switch_page(home)


pages = [home] + [st.Page(path, title=title, icon=icon, url_path=title) for path, title, icon in PAGES.values()]
st.navigation(pages + [st.Page(_to_home, title="Home", url_path="home", visibility="hidden")]).run()
