"""Streamlit-only helpers shared by the pages; the only part of ``efficiency`` that imports streamlit."""
