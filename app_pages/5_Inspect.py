"""The Inspect page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.inspection."""

from anovit.app.inspection import render

render()
