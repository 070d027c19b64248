"""A comparison, drawn: setup line, "what disagrees" callouts, the table with units, and the five charts.

Figures come from :mod:`efficiency.charts`; this module only lays them out with their captions, the
chart options (kept in session state and the URL) and the HTML export of every chart on the page.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from efficiency import analysis, charts
from efficiency.analysis import INDICATORS
from efficiency.ui.common import escape_md, one_line, setup_text
from efficiency.ui.state import METHODS, chart_choice

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
# column -> (table label, unit after the SI prefix, help)
TABLE_UNITS = {
    "params": ("Parameters", " params", "Total parameter count"),
    "params_active": ("Active parameters", " params", "Parameters used per token (sparse MoE: top-k experts)"),
    "flops": ("FLOPs", "FLOPs", "Forward FLOPs for one batch at this setup (1 multiply-add = 2 FLOPs)"),
    "training_flops": ("Training FLOPs", "FLOPs", "Forward + backward FLOPs for one batch, counted"),
    "memory_traffic_bytes": ("Memory traffic", "B", "Bytes read and written by the ops of one forward pass"),
    "latency_ms": ("Latency", "ms", "Median forward latency, measured"),
    "throughput_per_s": ("Throughput", "items/s", "Items per second at this batch size, measured"),
    "peak_memory_bytes": ("Peak memory", "B", "Peak memory above the baseline, measured"),
    "training_step_ms": ("Training step", "ms", "Median forward + backward + optimizer step, measured"),
}


def render_setup(df: pd.DataFrame) -> None:
    st.caption(escape_md(setup_text(df)))


def render_findings(df: pd.DataFrame, indicators: Sequence[str], limit: int = 3) -> None:
    """The most striking disagreements, as sentences computed from the numbers in view."""
    st.subheader("What disagrees")
    try:
        sentences = analysis.findings(df, max_items=limit, indicators=indicators)
    except ValueError as error:
        st.error(f"Findings unavailable: {escape_md(one_line(error))}")
        return
    for sentence in sentences:
        st.info(escape_md(sentence), icon=":material/compare_arrows:")


def _scale(values: pd.Series, unit: str) -> tuple[float, str]:
    """One SI prefix per column (from its median) so the column stays numeric and sortable."""
    data = values.dropna()
    if unit == "ms" or data.empty:
        return 1.0, unit
    middle = float(data.median())
    factor, prefix = next(((f, p) for f, p in _PREFIXES if middle >= f), (1.0, ""))
    return factor, f"{prefix}{unit}"


def _decimals(largest: float) -> int:
    return 2 if largest < 10 else 1 if largest < 1000 else 0


def render_table(df: pd.DataFrame, indicators: Sequence[str]) -> None:
    """Raw values scaled per column, each column with its unit; "How obtained" marks measured vs counted."""
    shown = pd.DataFrame({"Model": df["model"], "How obtained": df["obtained"]})
    config: dict[str, Any] = {
        "Model": st.column_config.TextColumn("Model", pinned=True),
        "How obtained": st.column_config.TextColumn(
            "How obtained", help="measured on this hardware, or counted statically (no hardware involved)"
        ),
    }
    for column in indicators:
        label, unit, help_text = TABLE_UNITS[column]
        factor, scaled_unit = _scale(df[column], unit)
        values = df[column] / factor
        largest = float(values.abs().max()) if values.notna().any() else 0.0
        shown[label] = values
        space = "" if scaled_unit.startswith(" ") else " "
        fmt = f"%.{_decimals(largest)}f{space}{scaled_unit}"
        config[label] = st.column_config.NumberColumn(label, help=f"{help_text} ({scaled_unit.strip()})", format=fmt)
    st.dataframe(shown, hide_index=True, column_config=config, width="stretch", placeholder="n/a")


def _chart(title: str, build: Callable[[], go.Figure], key: str, figures: list[tuple[go.Figure, str]]) -> None:
    """Draw one figure with its caption below; a failing builder is reported for this chart only."""
    try:
        fig = build()
    except Exception as error:  # noqa: BLE001 - one chart failing must not take the others down
        st.error(f"{escape_md(title)}: {escape_md(one_line(error))}")
        return
    config = {**PLOTLY_CONFIG, "toImageButtonOptions": {**PLOTLY_CONFIG["toImageButtonOptions"], "filename": key}}
    st.plotly_chart(fig, theme=None, key=f"chart_{key}", config=config)
    text = charts.caption(fig)
    st.caption(escape_md(text))
    figures.append((fig, text))


def render_charts(df: pd.DataFrame, indicators: Sequence[str]) -> list[tuple[go.Figure, str]]:
    """The five comparison charts, each followed by its caption; returns (figure, caption) for the export."""
    figures: list[tuple[go.Figure, str]] = []
    columns = list(indicators)
    _chart("Parallel coordinates", lambda: charts.parallel_coordinates(df, columns), "parallel", figures)
    _chart("Rank chart", lambda: charts.rank_chart(df, columns), "ranks", figures)

    chart_choice("cmp_method", METHODS, "kendall")
    st.radio(
        "Rank correlation",
        METHODS,
        key="cmp_method",
        horizontal=True,
        format_func=lambda m: "Kendall τ" if m == "kendall" else "Spearman ρ",
    )
    if len(df) >= 3:
        method = st.session_state["cmp_method"]
        _chart("Correlation heatmap", lambda: charts.correlation_heatmap(df, method, columns), "correlation", figures)
    else:
        st.caption("The rank-correlation heatmap needs at least 3 models with results.")

    x_default = "params" if "params" in columns else columns[0]
    y_default = next((c for c in ("latency_ms", "flops") if c in columns and c != x_default), columns[-1])
    pick_x, pick_y, pick_size, pick_color = st.columns(4)
    chart_choice("cmp_x", columns, x_default)
    chart_choice("cmp_y", columns, y_default)
    chart_choice("cmp_size", ["none", *columns], "none")
    chart_choice("cmp_color", ["none", *columns], "none")
    x = pick_x.selectbox("Scatter: x axis", columns, key="cmp_x", format_func=_pretty)
    y = pick_y.selectbox("Scatter: y axis", columns, key="cmp_y", format_func=_pretty)
    size = pick_size.selectbox("Marker size", ["none", *columns], key="cmp_size", format_func=_pretty)
    color = pick_color.selectbox("Marker colour", ["none", *columns], key="cmp_color", format_func=_pretty)
    if x == y:
        st.caption("Pick two different indicators for the scatter.")
    else:
        size_col, color_col = (None if size == "none" else size), (None if color == "none" else color)
        _chart("Scatter", lambda: charts.scatter(df, x, y, size=size_col, color=color_col), "scatter", figures)

    models = list(df["model"])
    if len(models) >= 2:
        chart_choice("cmp_ref", models, models[0])
        reference = st.columns(4)[0].selectbox("Reference model (1x)", models, key="cmp_ref")
        _chart("Relative bars", lambda: charts.relative_bars(df, reference, columns), "relative", figures)
    return figures


def _pretty(option: str) -> str:
    return "none" if option == "none" else INDICATORS[option].axis_title


def charts_html(title: str, setup: str, figures: Sequence[tuple[go.Figure, str]]) -> str:
    """Every chart of the page in one self-contained HTML file (plotly.js embedded: opens offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title></head>",
        "<body style='font-family:sans-serif;max-width:1200px;margin:2em auto'>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(setup)}</p>",
    ]
    for index, (fig, text) in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=index == 0, config=PLOTLY_CONFIG))
        parts.append(f"<p><em>{html.escape(text)}</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def export_button(title: str, setup: str, figures: Sequence[tuple[go.Figure, str]], file_name: str) -> None:
    """Built only when clicked (the file embeds plotly.js, ~4 MB)."""
    frozen = list(figures)
    st.download_button(
        "Export charts as HTML",
        data=lambda: charts_html(title, setup, frozen),
        file_name=file_name,
        mime="text/html",
        on_click="ignore",
        icon=":material/download:",
        disabled=not frozen,
    )
