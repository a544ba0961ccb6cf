"""Streamlit helpers shared by app.py and the pages (the pages stay thin: they call anovit).

Layer 9 (docs/architecture.md): may import every layer below; the pages import it.
"""
