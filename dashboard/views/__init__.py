"""The dashboard's pages, one module per screen (run by Streamlit from `app.py`'s navigation)."""
