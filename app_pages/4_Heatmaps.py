"""The Heatmaps page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.heatmaps."""

from anovit.app.heatmaps import render

render()
