"""Plotly figure builders: DataFrame in, Figure out; no streamlit."""
