"""The Gallery page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.gallery."""

from anovit.app.gallery import render

render()
