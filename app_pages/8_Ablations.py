"""The Ablations page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.ablations."""

from anovit.app.ablations import render

render()
