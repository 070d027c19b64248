"""One figure on a page: the figure, its caption, or this chart's error alone (one failing chart must not take
the page down). Every page and the run's progress draw through :func:`draw`; :mod:`efficiency.ui.views` lays
the comparison's figures out with it."""

from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go
import streamlit as st

from efficiency.charts import compare as charts
from efficiency.ui.common import escape_md, one_line

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def draw(title: str, build: Callable[[], go.Figure], key: str, file_name: str) -> None:
    """Build and show one figure with its caption; a failing builder is reported for this chart only (one
    failing must not take the page down). ``file_name``: the PNG download's name."""
    try:
        fig = build()
    except Exception as error:  # noqa: BLE001 - shown on the page, named by chart
        st.error(f"{escape_md(title)}: {escape_md(one_line(error))}")
        return
    image = {**PLOTLY_CONFIG["toImageButtonOptions"], "filename": file_name}
    st.plotly_chart(fig, theme=None, key=key, config={**PLOTLY_CONFIG, "toImageButtonOptions": image})
    st.caption(escape_md(charts.caption(fig)))
