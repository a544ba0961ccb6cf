"""The Hub page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.hub_page."""

from anovit.app.hub_page import render

render()
