"""The Results page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.results."""

from anovit.app.results import render

render()
