"""A comparison, drawn: setup line, "what disagrees" callouts, the table with units, and the five charts.

Figures come from :mod:`efficiency.charts.compare`; this module only lays them out with their captions, the
chart options (kept in session state and the URL) and the HTML export of every chart on the page. Every page
draws a figure through :func:`efficiency.ui.figure.draw` (the figure, its caption, or this chart's error alone).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from efficiency import units
from efficiency.analysis.findings import NO_FLIP_START, findings, implementation_findings
from efficiency.analysis.rankings import INDICATORS
from efficiency.analysis.table import NOISE_COLUMN, SPREAD_COLUMN
from efficiency.charts import compare as charts
from efficiency.charts.style import COMPARE_LOG_RATIO, SCALES
from efficiency.hardware import load_catalog
from efficiency.results import DEFAULT_IMPLEMENTATION, implementation_label
from efficiency.ui import quality
from efficiency.ui.common import escape_md, one_line, setup_text
from efficiency.ui.figure import PLOTLY_CONFIG, draw
from efficiency.ui.state import METHODS, chart_choice

# column -> (table label, unit after the prefix (bytes: binary, KiB ... GiB), help)
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


SPREAD_LABEL = "Latency p10–p90"
NOISE_LABEL = "Noise"
SCALE_LABELS = {"auto": f"Auto (log past {COMPARE_LOG_RATIO}×)", "linear": "Linear", "log": "Log"}


STATIC_LEAD = "Setup: no hardware: static counts · "  # how common.setup_text starts for static counts only


def setup_sentence(df: pd.DataFrame, kind: str = "static", where: str = "") -> str:
    """The setup line, true to the mode chosen: a measured view whose models are not all measured yet says so,
    and which numbers are static counts meanwhile (never "no hardware" alone when Measured was chosen); the
    implementation when it is not the default (several: each row's name carries its own)."""
    text = setup_text(df) + implementation_part(df)
    if kind != "measured" or df["measured"].all():
        return text
    if not df["measured"].any():
        return f"Setup: Measured chosen ({where}), not run yet: static counts (no hardware) until Run · " + (
            text.removeprefix(STATIC_LEAD)
        )
    counted = ", ".join(df.loc[~df["measured"], "model"])
    measured_part = text.removeprefix("Setup: ")
    return f"Setup: Measured chosen ({where}); static counts only (not measured yet): {counted} · {measured_part}"


def implementation_part(df: pd.DataFrame) -> str:
    """ " · implementation: torch.compile" for a view of one implementation other than the default; " · one row per
    model and implementation" for several; "" for the default alone (the setup as it read before the axis)."""
    codes = list(dict.fromkeys(df["implementation"].dropna())) if "implementation" in df.columns else []
    if len(codes) > 1:
        return f" · one row per model and implementation ({', '.join(implementation_label(c) for c in codes)})"
    if codes and codes[0] != DEFAULT_IMPLEMENTATION:
        return f" · implementation: {implementation_label(codes[0])}"
    return ""


def render_setup(df: pd.DataFrame, kind: str = "static", where: str = "") -> None:
    st.caption(escape_md(setup_sentence(df, kind, where)))


def render_noise_note(df: pd.DataFrame) -> None:
    """One line when a measured number in view is marked noisy: which models, and that Run measures them again."""
    noisy = df.loc[df.get(NOISE_COLUMN, pd.Series("", index=df.index)).fillna("") != "", "model"]
    if len(noisy):
        st.warning(
            f"Noisy measurement: {escape_md(', '.join(noisy))} (see the Noise column of the Table tab). Press **Run** "
            "to measure again: a run never reuses a noisy stored result.",
            icon=":material/warning:",
        )


def render_findings(df: pd.DataFrame, indicators: Sequence[str], limit: int = 3) -> None:
    """The most striking disagreements, as sentences computed from the numbers in view, in one callout (one
    line each: the first chart stays in the first screen); first, a model whose implementations differ in measured
    speed beyond their spread (the same model, the same FLOPs, different code)."""
    try:
        code = implementation_findings(df, max_items=2)
        sentences = code + [
            sentence  # a model's own rows disagree: "no indicator disagrees" (across rows' ranks) would read false
            for sentence in findings(df, max_items=limit, indicators=indicators)
            if not (code and sentence.startswith(NO_FLIP_START))
        ]
    except ValueError as error:
        st.error(f"Findings unavailable: {escape_md(one_line(error))}")
        return
    if sentences:
        st.info("\n".join(f"- {escape_md(sentence)}" for sentence in sentences), icon=":material/compare_arrows:")


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
        data = df[column].dropna()  # one unit per column, from its median: the column stays numeric and sortable
        factor, scaled_unit = units.scale(float(data.median()) if len(data) else None, unit)
        values = df[column] / factor
        largest = float(values.abs().max()) if values.notna().any() else 0.0
        shown[label] = values
        space = "" if scaled_unit.startswith(" ") else " "
        fmt = f"%.{_decimals(largest)}f{space}{scaled_unit}"
        config[label] = st.column_config.NumberColumn(label, help=f"{help_text} ({scaled_unit.strip()})", format=fmt)
        if column == "latency_ms" and df.get(SPREAD_COLUMN, pd.Series(dtype=str)).fillna("").any():
            shown[SPREAD_LABEL] = df[SPREAD_COLUMN]
            config[SPREAD_LABEL] = st.column_config.TextColumn(
                SPREAD_LABEL, help="The fastest tenth and the slowest tenth of the timed repeats (10th-90th percentile)"
            )
    if df.get(NOISE_COLUMN, pd.Series(dtype=str)).fillna("").any():  # only when some result is noisy
        shown.insert(2, NOISE_LABEL, df[NOISE_COLUMN])
        config[NOISE_LABEL] = st.column_config.TextColumn(
            NOISE_LABEL, help="Measured under load or with a wide spread (p90/p10): why, in the cell", width="large"
        )
    st.dataframe(shown, hide_index=True, column_config=config, width="stretch", placeholder="n/a")


# tab label -> figure name (file name of the PNG and of the figure in the HTML export); after them, the tab of
# the table (every number with its unit). One tab is drawn at a time: the browser renders one chart (or the
# table), so the first chart shows sooner, and a talk shows one big chart at a time.
CHART_TABS = {
    "Ranks": "ranks",
    "All indicators": "parallel",
    "Rank correlation": "correlation",
    "Scatter": "scatter",
    "Relative to a model": "relative",
}
TABLE_TAB = "Table"
QUALITY_TAB = "Quality vs cost"  # its own controls and figures (efficiency.ui.quality)
TABS = [*CHART_TABS, QUALITY_TAB, TABLE_TAB]
CHART_TAB_KEY = "cmp_chart"
_OPTION_KEYS = ("cmp_method", "cmp_x", "cmp_y", "cmp_size", "cmp_color", "cmp_ref", "cmp_scale")


def chart_options(df: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """Every chart option in effect (session state checked against the data in view, else its default)."""
    models = list(df["model"])
    x_default = "params" if "params" in columns else columns[0]
    y_default = next((c for c in ("latency_ms", "flops") if c in columns and c != x_default), columns[-1])
    wanted = {
        "cmp_method": (METHODS, "kendall"),
        "cmp_x": (columns, x_default),
        "cmp_y": (columns, y_default),
        "cmp_size": (["none", *columns], "none"),
        "cmp_color": (["none", *columns], "none"),
        "cmp_ref": (models, models[0] if models else None),
        "cmp_scale": (SCALES, "auto"),
    }
    for key, (options, default) in wanted.items():
        chart_choice(key, options, default)
    return {key: st.session_state[key] for key in wanted}


def figure_builders(df: pd.DataFrame, columns: Sequence[str], options: dict[str, Any]) -> dict[str, Callable | str]:
    """Figure name -> a builder, or the sentence that says why that chart cannot be drawn for this data."""
    x, y = options["cmp_x"], options["cmp_y"]
    size = None if options["cmp_size"] == "none" else options["cmp_size"]
    color = None if options["cmp_color"] == "none" else options["cmp_color"]
    scale = options["cmp_scale"]
    log = {"auto": None, "log": True, "linear": False}[scale]
    return {
        "ranks": lambda: charts.rank_chart(df, columns),
        "parallel": lambda: charts.parallel_coordinates(df, columns, scale=scale),
        "correlation": (
            (lambda: charts.correlation_heatmap(df, options["cmp_method"], columns))
            if len(df) >= 3
            else "The rank-correlation heatmap needs at least 3 models with results."
        ),
        "scatter": (
            (lambda: charts.scatter(df, x, y, size=size, color=color, log=log, log_ratio=COMPARE_LOG_RATIO))
            if x != y
            else "Pick two different indicators for the scatter."
        ),
        "relative": (
            (lambda: charts.relative_bars(df, options["cmp_ref"], columns))
            if len(df) >= 2
            else "Bars relative to a reference model need at least 2 models with results."
        ),
    }


def _chart_controls(name: str, df: pd.DataFrame, columns: Sequence[str]) -> None:
    """The options of the chart in the open tab (their values were checked by ``chart_options``)."""
    if name == "correlation" and len(df) >= 3:
        st.radio(
            "Rank correlation",
            METHODS,
            key="cmp_method",
            horizontal=True,
            format_func=lambda m: "Kendall τ" if m == "kendall" else "Spearman ρ",
        )
    elif name == "parallel":
        _scale_control(st.container())
    elif name == "scatter":
        pick_x, pick_y, pick_size, pick_color, pick_scale = st.columns([2, 2, 2, 2, 3])
        pick_x.selectbox("x axis", columns, key="cmp_x", format_func=_pretty)
        pick_y.selectbox("y axis", columns, key="cmp_y", format_func=_pretty)
        pick_size.selectbox("Marker size", ["none", *columns], key="cmp_size", format_func=_pretty)
        pick_color.selectbox("Marker colour", ["none", *columns], key="cmp_color", format_func=_pretty)
        _scale_control(pick_scale)
    elif name == "relative" and len(df) >= 2:
        st.columns(4)[0].selectbox("Reference model (1x)", list(df["model"]), key="cmp_ref")


def _scale_control(where: Any) -> None:
    """Linear or log value axes (auto: log where an indicator spans more than 10x); kept in the link as ``scale``."""
    where.radio(
        "Value scale",
        SCALES,
        key="cmp_scale",
        horizontal=True,
        format_func=SCALE_LABELS.get,
        help="Log spacing shows order across sizes: every ×10 takes the same room, so small models do not merge "
        f"at one end. Auto uses it on an axis whose values span more than {COMPARE_LOG_RATIO}×.",
    )


def render_charts(df: pd.DataFrame, indicators: Sequence[str]) -> Callable[[], list[tuple[go.Figure, str]]]:
    """The comparison charts and the table as tabs; only the open tab's figure (or the table) is built and sent.

    Returns a function that builds every chart with the options in effect (for the HTML export, which runs
    only when its button is pressed)."""
    columns = list(indicators)
    for key in (CHART_TAB_KEY, *_OPTION_KEYS):  # keep options of charts in closed tabs (Streamlit drops the
        if key in st.session_state:  # state of widgets not drawn in a run unless the script set it)
            st.session_state[key] = st.session_state[key]
    options = chart_options(df, columns)
    chart_choice(CHART_TAB_KEY, TABS, TABS[0])
    tabs = st.tabs(TABS, key=CHART_TAB_KEY, on_change="rerun")
    builders = figure_builders(df, columns, options)
    for label, tab in zip(TABS, tabs):
        if not tab.open:
            continue
        with tab:
            if label == TABLE_TAB:
                render_table(df, indicators)
                st.caption('Every value with its unit, one unit per column; "How obtained" says measured or counted.')
                continue
            if label == QUALITY_TAB:
                quality.render_quality_tab(df, list(load_catalog()))
                continue
            name = CHART_TABS[label]
            _chart_controls(name, df, columns)
            build = builders[name]
            if isinstance(build, str):
                st.caption(build)
            else:
                draw(label, build, f"chart_{name}", name)

    def every_figure() -> list[tuple[go.Figure | None, str]]:
        figures: list[tuple[go.Figure | None, str]] = []
        for label, name in CHART_TABS.items():
            build = builders[name]
            if isinstance(build, str):
                continue
            try:
                fig = build()
            except Exception as error:  # noqa: BLE001 - the export says which chart failed and why
                figures.append((None, f"{label}: not drawn ({one_line(error)})"))
                continue
            figures.append((fig, charts.caption(fig)))
        return figures

    return every_figure


def _pretty(option: str) -> str:
    return "none" if option == "none" else INDICATORS[option].axis_title


def charts_html(title: str, setup: str, figures: Sequence[tuple[go.Figure | None, str]]) -> str:
    """Every chart of the page in one self-contained HTML file (plotly.js embedded: opens offline)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title></head>",
        "<body style='font-family:sans-serif;max-width:1200px;margin:2em auto'>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(setup)}</p>",
    ]
    plotly_js_included = False
    for fig, text in figures:
        if fig is not None:
            parts.append(fig.to_html(full_html=False, include_plotlyjs=not plotly_js_included, config=PLOTLY_CONFIG))
            plotly_js_included = True
        parts.append(f"<p><em>{html.escape(text)}</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def export_button(
    title: str, setup: str, figures: Callable[[], Sequence[tuple[go.Figure | None, str]]], file_name: str
) -> None:
    """Every chart, built only when clicked (the file embeds plotly.js, ~4 MB)."""
    st.download_button(
        "Export charts as HTML",
        data=lambda: charts_html(title, setup, figures()),
        file_name=file_name,
        mime="text/html",
        on_click="ignore",
        icon=":material/download:",
    )
