"""The Attention page of the AnoViT explorer (`streamlit run app.py`); its logic is anovit.app.attention_explorer."""

from anovit.app.attention_explorer import render

render()
