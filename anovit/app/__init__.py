"""Streamlit helpers shared by app.py and the pages (the pages stay thin: they call anovit)."""
