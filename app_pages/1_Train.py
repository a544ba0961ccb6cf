"""The Train page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.training."""

from anovit.app.training import render

render()
