"""The AnoViT explorer (`streamlit run app.py`): the page router. Home's logic is anovit.app.home;
every other page is a thin file under pages/ (listed once, in anovit.app.common.PAGES)."""

import streamlit as st

from anovit.app.common import PAGES
from anovit.app.home import render

home = st.Page(render, title="Home", icon=":material/home:", url_path="home", default=True)
st.navigation([home] + [st.Page(path, title=title, icon=icon) for path, title, icon in PAGES.values()]).run()
