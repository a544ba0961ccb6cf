"""The Home page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.home."""

from anovit.app.home import render

render()
