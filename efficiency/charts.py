"""Plotly figure builders: results DataFrame in, ``go.Figure`` out (no streamlit here).

Every figure carries a title, the setup as subtitle, axis titles with units, and a one-line
"what to notice" caption computed from the numbers in ``fig.layout.meta["caption"]`` (read it with
:func:`caption`). Estimated values are drawn open/dashed/hatched and say "estimated" in the legend.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from efficiency.analysis import (
    INDICATORS,
    format_ratio,
    measured_mask,
    rank_correlations,
    rank_flips,
    ranks,
    relative_to,
    setup_line,
    values,
)

BASE_FONT_PX = 14
PRESENTATION_FONT_PX = 18
LOG_RATIO = 100  # comparisons: log10 spacing once max/min exceeds this
SWEEP_LOG_RATIO = 10  # sweeps double their x; log spacing shows each doubling equally
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B", "#7F7F7F")
SETUP_AXIS_TITLES = {
    "seq_len": "Sequence length (tokens)",
    "batch_size": "Batch size (items)",
    "image_size": "Image (px)",
}


def _plotly_safe(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
    """Plotly renders HTML tags in text (``<a>``, ``<b>``): model names, which may come from a local
    folder's path, are escaped before any builder sees them."""

    @functools.wraps(builder)
    def wrapped(df: pd.DataFrame, *args, **kwargs) -> go.Figure:
        if "model" in df.columns:
            df = df.assign(model=df["model"].astype(str).map(html.escape))
        return builder(df, *args, **kwargs)

    return wrapped


def caption(fig: go.Figure) -> str:
    """The one-line "what to notice" the page renders under a chart."""
    meta = fig.layout.meta
    return meta.get("caption", "") if isinstance(meta, dict) else ""


def needs_log(series: pd.Series | Sequence[float], threshold: float = LOG_RATIO) -> bool:
    """Log spacing when all values are positive and span more than ``threshold``x."""
    data = pd.Series(series, dtype=float).dropna()
    return bool(len(data) >= 2 and (data > 0).all() and data.max() / data.min() > threshold)


def _colors(names: Sequence[str]) -> dict[str, str]:
    """Same model, same colour, in every chart built from the same table."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _axis_label(column: str) -> str:
    return INDICATORS[column].axis_title if column in INDICATORS else SETUP_AXIS_TITLES.get(column, column.capitalize())


def _log_ticks(data: pd.Series) -> list[float]:
    """1-2-5 ticks (decades only when crowded): plotly's own log minor labels are tiny digits."""
    low, high = np.floor(np.log10(data.min())), np.ceil(np.log10(data.max()))
    ticks = [m * 10.0**e for e in np.arange(low, high + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if data.min() / 1.5 <= t <= data.max() * 1.5]
    return ticks if len(ticks) <= 8 else [t for t in ticks if np.log10(t).is_integer()]


def _value_axis(fig: go.Figure, axis: str, column: str, data: pd.Series, threshold: float, **where: int) -> bool:
    """Title with unit, log type when the range calls for it (said in the title); returns whether log."""
    log, data = needs_log(data, threshold), pd.Series(data, dtype=float).dropna()
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(type="log" if log else "linear", exponentformat="SI", **where)
    update(title_text=_axis_label(column) + (", log scale" if log else ""), **where)
    ticks = (sorted(data.unique()) if data.nunique() <= 12 else []) if column not in INDICATORS else _log_ticks(data)
    if log and len(ticks) >= 3:
        text = [INDICATORS[column].format(t) if column in INDICATORS else f"{t:g}" for t in ticks]
        update(tickmode="array", tickvals=ticks, ticktext=text, **where)
    return log


def _label_positions(xs: pd.Series, ys: pd.Series, log_x: bool, log_y: bool, near: float = 0.08) -> dict:
    """A text position per point, so labels stay inside the plot and off each other.

    On axes scaled to 0..1 (log10 where the axis is log): a point near the top edge is labelled below, near
    the right edge to the left; a point close to one already placed takes the next free side."""

    def unit(values: pd.Series, log: bool) -> pd.Series:
        values = np.log10(values.astype(float)) if log else values.astype(float)
        span = values.max() - values.min()
        return (values - values.min()) / span if span > 0 else values * 0 + 0.5

    ux, uy = unit(xs, log_x), unit(ys, log_y)
    placed: dict = {}
    for name in sorted(xs.index, key=lambda m: (-uy[m], ux[m])):  # top to bottom
        vertical = "bottom" if uy[name] > 0.85 else "top"
        horizontal = "left" if ux[name] > 0.85 else ("right" if ux[name] < 0.15 else "center")
        choices = [f"{vertical} {horizontal}", "bottom right" if vertical == "top" else "top right", "middle left"]
        crowd = [m for m in placed if abs(ux[m] - ux[name]) < near and abs(uy[m] - uy[name]) < near]
        taken = {placed[m] for m in crowd}
        placed[name] = next((c for c in choices if c not in taken), choices[len(crowd) % len(choices)])
    return placed


def _estimated(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Per model: True when a shown measurable indicator (latency, ...) was estimated, not measured."""
    return ~measured_mask(df) & any(INDICATORS[c].measurable for c in columns if c in INDICATORS)


def _estimated_rows(data: pd.DataFrame, column: str) -> np.ndarray:
    """Per row of a sweep (a model may repeat): True where ``column`` is measurable and not measured here."""
    measured = [bool(v) if pd.notna(v) else False for v in data.get("measured", pd.Series(None, index=data.index))]
    return ~np.array(measured, dtype=bool) & INDICATORS[column].measurable


def _finish(fig: go.Figure, df: pd.DataFrame, title: str, text: str, presentation: bool, **meta: object) -> go.Figure:
    """Shared look: readable fonts (>= 14 px, 18 px for talks), setup as subtitle, caption in meta."""
    size = PRESENTATION_FONT_PX if presentation else BASE_FONT_PX
    fig.update_layout(
        template="plotly_white",
        font={"size": size},
        title={"text": title, "subtitle": {"text": setup_line(df)}, "font": {"size": size + 6}},
        hoverlabel={"font": {"size": size}},
        margin={"t": 90 + 2 * size, "l": 80, "b": 80, "r": fig.layout.margin.r or 40},
        meta={"caption": text, **meta},
    )
    fig.update_annotations(font_size=size)
    return fig


def _indicator_ticks(columns: Sequence[str], logs: Sequence[bool]) -> dict:
    text = [INDICATORS[c].axis_title.replace(" (", "<br>(") + (" log" if log else "") for c, log in zip(columns, logs)]
    return {"tickmode": "array", "tickvals": list(range(len(columns))), "ticktext": text, "showgrid": False}


def _model_line(
    model: str, color: str, est: bool, columns: Sequence[str], ys: list, hover: list[str], **extra
) -> go.Scatter:
    """One model across the indicator axes; dashed with open markers where its values are estimated."""
    symbols = ["circle-open" if est and INDICATORS[c].measurable else "circle" for c in columns]
    trace = go.Scatter(
        x=list(range(len(columns))),
        y=ys,
        name=f"{model} (estimated)" if est else model,
        mode="lines+markers",
        line={"color": color, "width": 4, "dash": "dash" if est else "solid"},
        marker={"size": 13, "symbol": symbols, "line": {"width": 2, "color": color}},
        hovertext=hover,
        hoverinfo="text",
    )
    return trace.update(**extra)


def _axis_positions(series: pd.Series, log: bool, lower_is_better: bool) -> tuple[pd.Series, list[tuple[float, float]]]:
    """Map raw values to 0..1 (1 = most efficient) and pick a few real-valued ticks for that axis."""
    transformed = np.log10(series.where(series > 0)) if log else series
    low, high = transformed.min(), transformed.max()

    def place(value: float) -> float:
        t = np.log10(value) if log else value
        position = (t - low) / (high - low) if high > low else 0.5
        return 1 - position if lower_is_better else position

    candidates = [series.min(), series.max()]
    if log:
        candidates += [10.0**k for k in range(int(np.ceil(low)), int(np.floor(high)) + 1)]
    elif high > low:
        candidates.append((series.min() + series.max()) / 2)
    ticks: list[tuple[float, float]] = []
    for value in dict.fromkeys(candidates):
        if all(abs(place(value) - spot) > 0.09 for _, spot in ticks):
            ticks.append((value, place(value)))
    return series.map(lambda v: np.nan if pd.isna(v) or (log and v <= 0) else place(v)), ticks


@_plotly_safe
def parallel_coordinates(
    df: pd.DataFrame, indicators: Sequence[str] | None = None, presentation: bool = False
) -> go.Figure:
    """One vertical axis per indicator, one line per model; up = more efficient, so crossings are disagreements.

    Drawn as lines over per-axis normalised positions (not ``go.Parcoords``) so each model keeps a legend
    entry, hover text and a dashed line when estimated; each axis carries real-valued tick labels.
    """
    raw = values(df, indicators)
    columns = list(raw.columns)
    logs = [needs_log(raw[c]) for c in columns]
    fig, placed = go.Figure(), {}
    for i, (column, log) in enumerate(zip(columns, logs)):
        placed[column], ticks = _axis_positions(raw[column], log, INDICATORS[column].lower_is_better)
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line={"color": "#888", "width": 1}, layer="below")
        for value, spot in ticks:
            label = INDICATORS[column].format(value)
            fig.add_annotation(x=i, y=spot, text=label, showarrow=False, xanchor="right", xshift=-10, bgcolor="white")
    estimated = _estimated(df, columns)
    for model, color in _colors(list(raw.index)).items():
        hover = [f"{model}<br>{INDICATORS[c].label}: {INDICATORS[c].format(raw.loc[model, c])}" for c in columns]
        ys = [placed[c][model] for c in columns]
        fig.add_trace(_model_line(model, color, bool(estimated[model]), columns, ys, hover))
    fig.update_xaxes(**_indicator_ticks(columns, logs), title_text="Cost indicator (unit under each axis)")
    fig.update_xaxes(range=[-0.7, len(columns) - 0.6], zeroline=False)
    fig.update_yaxes(range=[-0.08, 1.08], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(title_text="↑ more efficient (each axis its own scale)")
    swapped = {frozenset((f["model_a"], f["model_b"])) for f in rank_flips(df, indicators)}
    pairs = len(raw) * (len(raw) - 1) // 2
    text = (
        f"Crossing lines are disagreements: {len(swapped)} of {pairs} model pairs swap order between indicators."
        if swapped
        else f"No lines cross: every indicator orders these {len(raw)} models the same way."
        if pairs
        else "One model: add another to see whether the indicators agree."
    )
    log_axes = [c for c, log in zip(columns, logs) if log]
    return _finish(
        fig, df, "Every cost indicator, one axis each", text, presentation, kind="parallel", log_axes=log_axes
    )


@_plotly_safe
def rank_chart(df: pd.DataFrame, indicators: Sequence[str] | None = None, presentation: bool = False) -> go.Figure:
    """Bump chart of each model's rank per indicator: a flat line means the indicators agree on it."""
    ranked = ranks(df, indicators)
    columns = list(ranked.columns)
    estimated = _estimated(df, columns)
    fig = go.Figure()
    for model, color in _colors(list(ranked.index)).items():
        row = ranked.loc[model]
        last = max((i for i, c in enumerate(columns) if pd.notna(row[c])), default=0)
        ys = [None if pd.isna(row[c]) else float(row[c]) for c in columns]
        hover = [f"{model}<br>{INDICATORS[c].label}: rank {row[c]:g}" for c in columns]
        name = f"{model} (estimated)" if estimated[model] else model
        labels = [name if i == last else "" for i in range(len(columns))]
        extra = {"mode": "lines+markers+text", "text": labels, "textposition": "middle right", "cliponaxis": False}
        extra["textfont"] = {"color": color}
        fig.add_trace(_model_line(model, color, bool(estimated[model]), columns, ys, hover, **extra))
    fig.update_xaxes(**_indicator_ticks(columns, [False] * len(columns)), title_text="Cost indicator (unit)")
    fig.update_xaxes(range=[-0.4, len(columns) - 0.2], zeroline=False)
    fig.update_yaxes(autorange="reversed", dtick=1, title_text=f"Rank (1 = most efficient, of {len(ranked)})")
    spread = (ranked.max(axis=1) - ranked.min(axis=1)).fillna(0)
    text = "Flat lines: every indicator gives these models the same order."
    if spread.max() > 0:
        mover = spread.idxmax()
        best, worst = ranked.loc[mover].idxmin(), ranked.loc[mover].idxmax()
        text = (
            f"{mover} moves most: rank {ranked.loc[mover, best]:g} by {INDICATORS[best].phrase}, "
            f"rank {ranked.loc[mover, worst]:g} by {INDICATORS[worst].phrase}; crossing lines are disagreements."
        )
    # lines are labelled at their right end instead of a legend: room for the longest label
    longest = max(len(f"{m} (estimated)" if estimated[m] else m) for m in ranked.index)
    fig.update_layout(
        showlegend=False, margin_r=30 + 0.6 * longest * (PRESENTATION_FONT_PX if presentation else BASE_FONT_PX)
    )
    return _finish(fig, df, "Rank under each cost indicator", text, presentation, kind="rank")


@_plotly_safe
def correlation_heatmap(
    df: pd.DataFrame, method: str = "kendall", indicators: Sequence[str] | None = None, presentation: bool = False
) -> go.Figure:
    """How much each pair of indicators agrees on the order of the models (1 same, -1 reversed)."""
    matrix = rank_correlations(df, method, indicators)
    symbol, name = ("τ", "Kendall τ") if method == "kendall" else ("ρ", "Spearman ρ")
    labels = [INDICATORS[c].label for c in matrix.columns]
    z = matrix.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isnan(z), None, z).tolist(),
            x=labels,
            y=labels,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            text=[["n/a" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z],
            texttemplate="%{text}",
            textfont={"size": PRESENTATION_FONT_PX if presentation else BASE_FONT_PX},
            colorbar={"title": {"text": f"{symbol} (unitless)"}},
            hovertemplate=f"%{{y}} vs %{{x}}: {symbol} = %{{text}}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Cost indicator (ranked)")
    fig.update_yaxes(title_text="Cost indicator (ranked)", autorange="reversed")
    off_diagonal = matrix.where(~np.eye(len(matrix), dtype=bool)).stack().dropna()
    if off_diagonal.empty:
        text = "Too few models to correlate: need at least 3 with values for both indicators."
    elif off_diagonal.min() >= 1:
        text = f"Every pair at {symbol} = 1: all indicators order these models the same way."
    else:
        a, b = off_diagonal.idxmin()
        text = (
            f"Least agreement: {INDICATORS[a].label} vs {INDICATORS[b].phrase} ({symbol} = {off_diagonal.min():.2f}); "
            "1 = same order, -1 = reversed."
        )
    title = f"{name} between indicator rankings ({len(values(df, indicators))} models)"
    return _finish(fig, df, title, text, presentation, kind="heatmap", method=method)


@_plotly_safe
def scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    size: str | None = None,
    color: str | None = None,
    log: bool | None = None,
    presentation: bool = False,
) -> go.Figure:
    """Two indicators against each other, points labelled by model; off-trend points disagree.

    ``size`` is an indicator (area-true bubbles); ``color`` an indicator (colour scale) or any other
    column such as ``hardware`` (one legend group per value). ``log`` forces both axes; None = auto.
    """
    used = list(dict.fromkeys(c for c in (x, y, size, color) if c in INDICATORS))
    raw = values(df, used)
    if x not in raw.columns or y not in raw.columns:
        raise ValueError(f"scatter: {x!r} and {y!r} both need values; have {list(raw.columns)}")
    status = pd.Series(np.where(_estimated(df, used), "estimated", "measured"), index=raw.index)
    if not any(INDICATORS[c].measurable for c in used):
        status[:] = "counted"
    keys, palette = status, _colors(list(raw.index))
    if color and color not in INDICATORS:
        category = df.set_index(df["model"].astype(str))[color].astype(str)
        keys, palette = (
            category + " · " + status,
            {m: _colors(list(dict.fromkeys(category)))[category[m]] for m in raw.index},
        )
    bubble = None
    if size:
        root = np.sqrt(raw[size])
        bubble = (14 + 30 * (root - root.min()) / (root.max() - root.min() or 1)).fillna(12)
    threshold = LOG_RATIO if log is None else (0 if log else float("inf"))
    both = raw[[x, y]].dropna()
    positions = _label_positions(both[x], both[y], needs_log(raw[x], threshold), needs_log(raw[y], threshold))
    fig = go.Figure()
    for key in pd.unique(keys):
        models = [m for m in raw.index if keys[m] == key and raw.loc[m, [x, y]].notna().all()]
        if not models:
            continue
        marker: dict = {"size": 16 if bubble is None else bubble[models].tolist(), "line": {"width": 2}}
        marker["color"] = [palette[m] for m in models]
        marker["symbol"] = "diamond-open" if key.endswith("estimated") else "circle"
        if color in INDICATORS:
            shade = np.log10(raw[color]) if needs_log(raw[color]) else raw[color]
            scale_title = INDICATORS[color].axis_title + (", log10" if needs_log(raw[color]) else "")
            marker.update(color=shade[models].tolist(), colorscale="Viridis", cmin=shade.min(), cmax=shade.max())
            marker["colorbar"] = {"title": {"text": scale_title}}
        hover = [
            "<br>".join(
                [f"<b>{m}</b>", *(f"{INDICATORS[c].label}: {INDICATORS[c].format(raw.loc[m, c])}" for c in used)]
            )
            + f"<br>{status[m]}"
            for m in models
        ]
        fig.add_trace(
            go.Scatter(
                x=raw.loc[models, x].tolist(),
                y=raw.loc[models, y].tolist(),
                mode="markers+text",
                name=key,
                text=models,
                textposition=[positions[m] for m in models],
                marker=marker,
                hovertext=hover,
                hoverinfo="text",
            )
        )
    log_x = _value_axis(fig, "x", x, raw[x], threshold)
    log_y = _value_axis(fig, "y", y, raw[y], threshold)
    tau = rank_correlations(df, "kendall", [x, y]).loc[x, y]
    agreement = f"Kendall τ = {tau:.2f} (1 = same order); " if pd.notna(tau) else ""
    swaps = len(rank_flips(df, [x, y]))
    text = f"{INDICATORS[x].label} vs {INDICATORS[y].phrase}: {agreement}{swaps} model pair(s) swap order."
    title = f"{INDICATORS[y].label} vs {INDICATORS[x].phrase}" + (f" (size: {INDICATORS[size].phrase})" if size else "")
    return _finish(fig, df, title, text, presentation, kind="scatter", log_x=log_x, log_y=log_y)


@_plotly_safe
def relative_bars(
    df: pd.DataFrame, reference: str, indicators: Sequence[str] | None = None, presentation: bool = False
) -> go.Figure:
    """Each model's cost as a multiple of a reference model, bars growing up (costlier) or down from 1x."""
    reference = html.escape(reference)  # the names in ``df`` were escaped by the decorator
    relative = relative_to(df, reference, indicators)
    columns = list(relative.columns)
    inverted = relative.attrs["inverted"]
    labels = [
        f"{INDICATORS[c].label}<br>({'inverted: ref ÷ model' if c in inverted else INDICATORS[c].unit})"
        for c in columns
    ]
    estimated = _estimated(df, columns)
    fig = go.Figure()
    for model, color in _colors(list(relative.index)).items():
        if model == reference:
            continue
        row = relative.loc[model]
        est = [bool(estimated[model]) and INDICATORS[c].measurable for c in columns]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[None if pd.isna(v) else float(v) - 1 for v in row],
                base=1,
                name=f"{model} (hatched: estimated)" if any(est) else model,
                marker={"color": color, "pattern": {"shape": ["/" if e else "" for e in est]}},
                customdata=[format_ratio(v) if pd.notna(v) else "n/a" for v in row],
                hovertemplate=f"{model}<br>%{{x}}: %{{customdata}} {reference}<extra></extra>",
            )
        )
    fig.add_hline(y=1, line={"color": "#333", "width": 2})
    ticks = sorted({*_log_ticks(pd.concat([relative.stack(), pd.Series([1.0])])), 1.0})
    fig.update_layout(barmode="group")
    ticktext = ["<b>1x = ref.</b>" if t == 1 else format_ratio(t) for t in ticks]
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=ticktext)
    fig.update_yaxes(title_text="× the reference's cost (log scale)")
    fig.update_xaxes(title_text="Cost indicator (unit)")
    others = relative.drop(index=reference)
    spread = (np.log(others.max(axis=1)) - np.log(others.min(axis=1))).dropna()
    straddle = spread[(others.min(axis=1) < 1) & (others.max(axis=1) > 1)]  # cheaper by one, costlier by another
    text = f"No model's cost ratio to {reference} changes between indicators."
    if not spread.empty and spread.max() > 0:
        m = (straddle if len(straddle) else spread).idxmax()
        low, high = others.loc[m].idxmin(), others.loc[m].idxmax()
        text = (
            f"{m} is {format_ratio(others.loc[m, low])} {reference} by {INDICATORS[low].phrase} "
            f"but {format_ratio(others.loc[m, high])} by {INDICATORS[high].phrase}."
            if len(straddle)
            else f"{m} ranges from {format_ratio(others.loc[m, low])} {reference} ({INDICATORS[low].phrase}) to "
            f"{format_ratio(others.loc[m, high])} ({INDICATORS[high].phrase}): the gap depends on the indicator."
        )
    return _finish(fig, df, f"Cost relative to {reference}", text, presentation, kind="relative", reference=reference)


def _numeric(df: pd.DataFrame, x: str | None, ys: Sequence[str]) -> pd.DataFrame:
    """Sweeps repeat a model once per point, so they skip the one-row-per-model check of analysis."""
    unknown = [y for y in ys if y not in INDICATORS]
    missing = [c for c in [x, *ys] if c and c not in df.columns]
    if unknown or missing:
        raise ValueError(f"sweep: unknown indicators {unknown}, missing columns {missing}; have {list(df.columns)}")
    return df.assign(**{c: pd.to_numeric(df[c]).astype(float) for c in [x, *ys] if c})


@_plotly_safe
def line_sweep(
    df: pd.DataFrame,
    x: str,
    ys: Sequence[str],
    group: str = "model",
    title: str | None = None,
    text: str | None = None,
    presentation: bool = False,
) -> go.Figure:
    """One panel per indicator over a swept setting (sequence length, batch size, ...), one line per group.

    Panels, not one shared axis, because the indicators have different units. ``text`` overrides the
    generated caption (experiments write their own from the same numbers).
    """
    data = _numeric(df, x, ys).sort_values(x)
    keys = data[group].astype(str) if group in data.columns else pd.Series("all", index=data.index)
    colors = _colors(list(dict.fromkeys(keys)))
    fig = make_subplots(rows=len(ys), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    growth, flagged = [], {n for n in colors if any(_estimated_rows(data[keys == n], y).any() for y in ys)}
    for row, y in enumerate(ys, start=1):
        for name, color in colors.items():
            part = data[keys == name]
            est = _estimated_rows(part, y)
            fig.add_trace(
                go.Scatter(
                    x=part[x],
                    y=part[y],
                    name=name + (" (open: estimated)" if name in flagged else ""),
                    legendgroup=name,
                    showlegend=row == 1,
                    mode="lines+markers",
                    line={"color": color, "width": 3},
                    marker={"size": 10, "symbol": np.where(est, "circle-open", "circle").tolist()},
                    hovertext=[f"{name}<br>{x} {u:g}: {INDICATORS[y].format(v)}" for u, v in zip(part[x], part[y])],
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
        _value_axis(fig, "y", y, data[y], SWEEP_LOG_RATIO, row=row, col=1)
        first = data[keys == next(iter(colors))].dropna(subset=[y])
        if len(first) >= 2 and first[y].iloc[0] > 0:
            growth.append(f"{INDICATORS[y].phrase} {format_ratio(first[y].iloc[-1] / first[y].iloc[0])}")
    for row in range(1, len(ys) + 1):  # shared x: every panel needs the same type and ticks, the last its title
        log_x = _value_axis(fig, "x", x, data[x], SWEEP_LOG_RATIO, row=row, col=1)
        if row < len(ys):
            fig.update_xaxes(title_text=None, row=row, col=1)
    span = f"{_axis_label(x).split(' (')[0].lower()} {data[x].min():g} to {data[x].max():g}"
    text = text or (f"From {span}: " + ", ".join(growth) + "." if growth else f"Swept {span}.")
    title = title or f"{', '.join(INDICATORS[y].label for y in ys)} vs {_axis_label(x).split(' (')[0].lower()}"
    fig.update_layout(height=260 * len(ys) + 160)
    return _finish(fig, df, title, text, presentation, kind="sweep", log_x=log_x)


@_plotly_safe
def grouped_bar(
    df: pd.DataFrame, x: str, y: str, group: str | None = None, title: str | None = None, presentation: bool = False
) -> go.Figure:
    """One indicator per category (e.g. model), bars grouped by a setup (e.g. hardware): does the order hold?"""
    data = _numeric(df, None, [y])
    keys = data[group].astype(str) if group else pd.Series(INDICATORS[y].label, index=data.index)
    fig, best = go.Figure(), {}
    for name, color in _colors(list(dict.fromkeys(keys))).items():
        part = data[keys == name]
        est = _estimated_rows(part, y)
        fig.add_trace(
            go.Bar(
                x=part[x].astype(str),
                y=part[y],
                name=name + (" (hatched: estimated)" if est.any() else ""),
                marker={"color": color, "pattern": {"shape": np.where(est, "/", "").tolist()}},
                hovertext=[f"{c}: {INDICATORS[y].format(v)}" for c, v in zip(part[x], part[y])],
                hoverinfo="text",
            )
        )
        order = part.dropna(subset=[y]).sort_values(y, ascending=INDICATORS[y].lower_is_better)
        best[name] = str(order[x].iloc[0]) if len(order) else "n/a"
    fig.update_layout(barmode="group")
    _value_axis(fig, "y", y, data[y], LOG_RATIO)
    fig.update_xaxes(title_text=_axis_label(x))
    winners = ", ".join(f"{b} on {n}" if group else b for n, b in best.items())
    changes = group and len(set(best.values())) > 1
    text = f"The best by {INDICATORS[y].phrase} {'changes with ' + group if changes else 'is'}: {winners}."
    return _finish(fig, df, title or f"{INDICATORS[y].label} by {x}", text, presentation, kind="grouped_bar")
