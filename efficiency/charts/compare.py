"""Plotly figure builders: results DataFrame in, ``go.Figure`` out (no streamlit here).

Every figure carries a title, the setup as subtitle, axis titles with units, and a one-line
"what to notice" caption computed from the numbers in ``fig.layout.meta["caption"]`` (read it with
:func:`caption`). Estimated values are drawn open/dashed/hatched and say "estimated" in the legend.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.findings import SPREAD
from efficiency.analysis.rankings import (
    INDICATORS,
    rank_correlations,
    rank_flips,
    ranks,
    relative_to,
    values,
)
from efficiency.charts.style import (
    BASE_FONT_PX,
    COMPARE_LOG_RATIO,
    LOG_RATIO,
    PRESENTATION_FONT_PX,
    escape_model_names,
    estimated_models,
    finish_figure,
    is_bytes,
    log_ticks_1_2_5,
    model_colors,
    needs_log,
    padded_axis,
    place_labels,
    round_ticks,
    scale_threshold,
    scaled_title,
    value_axis,
)
from efficiency.charts.style import caption as caption  # re-exported: every figure's caption is read through here


def _axis_label(column: str, log: bool) -> str:
    """ "Parameters<br>(params)", with ", log scale" inside the brackets on a log axis."""
    title = INDICATORS[column].axis_title
    if log:
        title = title[:-1] + ", log scale)" if title.endswith(")") else title + " (log scale)"
    return title.replace(" (", "<br>(")


def _indicator_ticks(columns: Sequence[str], logs: Sequence[bool]) -> dict:
    text = [_axis_label(c, log) for c, log in zip(columns, logs)]
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


PARALLEL_HEIGHT_PX = 540
MIN_TICK_GAP = 0.09  # of an axis's height: closer round ticks are skipped (their labels would touch)


def _is_decade(column: str, value: float) -> bool:
    """1, 10, 100 ... of the axis's unit (bytes: of a binary unit, 1 MiB, 10 MiB, 100 MiB, 1 GiB)."""
    if is_bytes(column):
        value = value / 2.0 ** (10 * np.floor(np.log2(value) / 10))
    return abs(np.log10(value) - round(np.log10(value))) < 1e-9


def _axis_positions(series: pd.Series, column: str, log: bool) -> tuple[pd.Series, list[tuple[float, float]]]:
    """Map raw values to 0..1 (1 = most efficient) on an axis that runs between round values, and its ticks.

    The axis runs from the round value at or below the smallest to the one at or above the largest (1-2-5 steps
    on a log axis), so every tick label is a round number and none reads like a model's value; each model's own
    value is in its hover text. Returns (position per model, [(tick value, position)])."""
    lower_is_better = INDICATORS[column].lower_is_better
    data = series[series > 0] if log else series
    rounds = round_ticks(column, float(data.min()), float(data.max()), log)
    to_axis = np.log10 if log else (lambda v: v)
    low, high = to_axis(rounds[0]), to_axis(rounds[-1])

    def place(value: float) -> float:
        position = (to_axis(value) - low) / (high - low) if high > low else 0.5
        return 1 - position if lower_is_better else position

    ends, inner = [rounds[0], rounds[-1]], rounds[1:-1]
    decades = [v for v in inner if log and _is_decade(column, v)]
    ticks: list[tuple[float, float]] = []
    for value in [*ends, *decades, *inner]:  # ends first, then powers of ten, then the rest where room is left
        if all(abs(place(value) - spot) >= MIN_TICK_GAP for _, spot in ticks):
            ticks.append((value, place(value)))
    return series.map(lambda v: np.nan if pd.isna(v) or (log and v <= 0) else place(v)), sorted(ticks)


@escape_model_names
def parallel_coordinates(
    df: pd.DataFrame, indicators: Sequence[str] | None = None, presentation: bool = False, scale: str = "auto"
) -> go.Figure:
    """One vertical axis per indicator, one line per model; up = more efficient, so crossings are disagreements.

    Drawn as lines over per-axis normalised positions (not ``go.Parcoords``) so each model keeps a legend
    entry, hover text and a dashed line when estimated; each axis carries round-valued tick labels. ``scale``:
    "auto" spaces an axis by log10 where its values span more than ``COMPARE_LOG_RATIO`` (10x), "log" wherever
    its values are all positive, "linear" never.
    """
    raw = values(df, indicators)
    columns = list(raw.columns)
    logs = [needs_log(raw[c], scale_threshold(scale)) for c in columns]
    fig, placed, axis_ticks = go.Figure(), {}, {}
    for i, (column, log) in enumerate(zip(columns, logs)):
        placed[column], ticks = _axis_positions(raw[column], column, log)
        axis_ticks[column] = ticks
        fig.add_shape(type="line", x0=i, x1=i, y0=0, y1=1, line={"color": "#888", "width": 1}, layer="below")
        for value, spot in ticks:
            label = INDICATORS[column].format(value)
            fig.add_shape(type="line", x0=i - 0.04, x1=i, y0=spot, y1=spot, line={"color": "#888", "width": 1})
            fig.add_annotation(  # clear of the markers on the axis; over the lines, which show through
                x=i - 0.04,
                y=spot,
                text=label,
                showarrow=False,
                xanchor="right",
                xshift=-12,
                font_color="#555",
                bgcolor="rgba(255,255,255,0.75)",
            )
    estimated = estimated_models(df, columns)
    for model, color in model_colors(list(raw.index)).items():
        hover = [f"{model}<br>{INDICATORS[c].label}: {INDICATORS[c].format(raw.loc[model, c])}" for c in columns]
        ys = [placed[c][model] for c in columns]
        fig.add_trace(_model_line(model, color, bool(estimated[model]), columns, ys, hover))
    fig.update_xaxes(**_indicator_ticks(columns, logs), title_text="Cost indicator (unit under each axis)")
    fig.update_xaxes(range=[-0.7, len(columns) - 0.6], zeroline=False)
    fig.update_yaxes(range=[-0.08, 1.08], showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(title_text="↑ more efficient (each axis its own scale)")
    fig.update_layout(height=PARALLEL_HEIGHT_PX)
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
    if log_axes:
        text += f" Log scale (every ×10 takes the same height) on {', '.join(INDICATORS[c].label for c in log_axes)}."
    return finish_figure(
        fig,
        df,
        "Every cost indicator, one axis each",
        text,
        presentation,
        kind="parallel",
        columns=columns,
        log_axes=log_axes,
        ticks={c: [float(v) for v, _ in t] for c, t in axis_ticks.items()},
        tick_positions={c: [float(p) for _, p in t] for c, t in axis_ticks.items()},
    )


@escape_model_names
def rank_chart(df: pd.DataFrame, indicators: Sequence[str] | None = None, presentation: bool = False) -> go.Figure:
    """Bump chart of each model's rank per indicator: a flat line means the indicators agree on it."""
    ranked = ranks(df, indicators)
    columns = list(ranked.columns)
    estimated = estimated_models(df, columns)
    fig = go.Figure()
    for model, color in model_colors(list(ranked.index)).items():
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
    return finish_figure(fig, df, "Rank under each cost indicator", text, presentation, kind="rank")


@escape_model_names
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
    return finish_figure(fig, df, title, text, presentation, kind="heatmap", method=method)


SCATTER_HEIGHT_PX = 540
SCATTER_PLOT_WIDTH_PX = 820  # the narrowest plot area labels are placed for: 1280 px wide, a colour bar beside
SCATTER_PAD = (0.07, 0.12)  # of each axis's span, added at both ends: room for the labels of the outer points


def spread_bars(df: pd.DataFrame, column: str, models: Sequence[str]) -> dict:
    """p10-p90 of a measured time as error bars for ``models`` (rows of ``df`` by ``model``), or invisible where the
    frame holds no spread for ``column`` (counted indicators, static results)."""
    prefix = SPREAD.get(column)
    low, high = f"{prefix}_p10_ms", f"{prefix}_p90_ms"
    if prefix is None or low not in df.columns or high not in df.columns:
        return {"visible": False}
    rows = df.drop_duplicates("model").set_index(df.drop_duplicates("model")["model"].astype(str))
    values = pd.to_numeric(rows[column], errors="coerce")
    lows, highs = pd.to_numeric(rows[low], errors="coerce"), pd.to_numeric(rows[high], errors="coerce")
    if lows.reindex(models).isna().all():
        return {"visible": False}
    plus = (highs - values).reindex(models).fillna(0).clip(lower=0).tolist()
    minus = (values - lows).reindex(models).fillna(0).clip(lower=0).tolist()
    return {"type": "data", "array": plus, "arrayminus": minus, "visible": True, "thickness": 1.5, "color": "#555"}


@escape_model_names
def scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    size: str | None = None,
    color: str | None = None,
    log: bool | None = None,
    presentation: bool = False,
    log_ratio: float = LOG_RATIO,
) -> go.Figure:
    """Two indicators against each other, points labelled by model; off-trend points disagree.

    ``size`` is an indicator (area-true bubbles); ``color`` an indicator (colour scale) or any other
    column such as ``hardware`` (one legend group per value). ``log`` forces both axes; None = auto (an axis is
    log where its values span more than ``log_ratio``). Labels are placed off every marker and other label and
    inside the plot (:func:`~efficiency.charts.style.place_labels`), the axes padded to leave them room.
    """
    used = list(dict.fromkeys(c for c in (x, y, size, color) if c in INDICATORS))
    raw = values(df, used)
    if x not in raw.columns or y not in raw.columns:
        raise ValueError(f"scatter: {x!r} and {y!r} both need values; have {list(raw.columns)}")
    status = pd.Series(np.where(estimated_models(df, used), "estimated", "measured"), index=raw.index)
    if not any(INDICATORS[c].measurable for c in used):
        status[:] = "counted"
    keys, palette = status, model_colors(list(raw.index))
    if color and color not in INDICATORS:
        category = df.set_index(df["model"].astype(str))[color].astype(str)
        keys, palette = (
            category + " · " + status,
            {m: model_colors(list(dict.fromkeys(category)))[category[m]] for m in raw.index},
        )
    bubble = None
    if size:
        root = np.sqrt(raw[size])
        bubble = (14 + 30 * (root - root.min()) / (root.max() - root.min() or 1)).fillna(12)
    threshold = log_ratio if log is None else (0 if log else float("inf"))
    both = raw[[x, y]].dropna()
    (u, x_range), (v, y_range) = (
        padded_axis(both[x], needs_log(raw[x], threshold), SCATTER_PAD[0]),
        padded_axis(both[y], needs_log(raw[y], threshold), SCATTER_PAD[1]),
    )
    font = PRESENTATION_FONT_PX if presentation else BASE_FONT_PX
    plot_px = (SCATTER_PLOT_WIDTH_PX, SCATTER_HEIGHT_PX - (90 + 2 * font) - 80)  # finish_figure's margins
    radius = (16 if bubble is None else bubble[both.index]) / 2 + 1
    positions = place_labels(pd.DataFrame({"u": u, "v": v, "radius_px": radius}), plot_px, font)
    fig = go.Figure()
    several = len(pd.unique(keys)) > 1  # one kind of point ("measured"): a legend would tell nothing apart
    for key in pd.unique(keys):
        models = [m for m in raw.index if keys[m] == key and raw.loc[m, [x, y]].notna().all()]
        if not models:
            continue
        marker: dict = {"size": 16 if bubble is None else bubble[models].tolist(), "line": {"width": 2}}
        marker["color"] = [palette[m] for m in models]
        marker["symbol"] = "diamond-open" if key.endswith("estimated") else "circle"
        if color in INDICATORS:
            factor, scale_title = scaled_title(color, raw[color])
            shade = np.log10(raw[color] / factor) if needs_log(raw[color]) else raw[color] / factor
            scale_title += ", log10" if needs_log(raw[color]) else ""
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
                error_x=spread_bars(df, x, models),
                error_y=spread_bars(df, y, models),
                mode="markers+text",
                name=key,
                showlegend=several,
                text=models,
                textposition=[positions[m] for m in models],
                marker=marker,
                hovertext=hover,
                hoverinfo="text",
                cliponaxis=False,
            )
        )
    log_x = value_axis(fig, "x", x, raw[x], threshold)
    log_y = value_axis(fig, "y", y, raw[y], threshold)
    fig.update_xaxes(range=x_range)
    fig.update_yaxes(range=y_range)
    fig.update_layout(height=SCATTER_HEIGHT_PX)
    tau = rank_correlations(df, "kendall", [x, y]).loc[x, y]
    agreement = f"Kendall τ = {tau:.2f} (1 = same order); " if pd.notna(tau) else ""
    swaps = len(rank_flips(df, [x, y]))
    text = f"{INDICATORS[x].label} vs {INDICATORS[y].phrase}: {agreement}{swaps} model pair(s) swap order."
    title = f"{INDICATORS[y].label} vs {INDICATORS[x].phrase}" + (f" (size: {INDICATORS[size].phrase})" if size else "")
    return finish_figure(fig, df, title, text, presentation, kind="scatter", log_x=log_x, log_y=log_y)


@escape_model_names
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
    estimated = estimated_models(df, columns)
    fig = go.Figure()
    for model, color in model_colors(list(relative.index)).items():
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
                customdata=[units.ratio(v) if pd.notna(v) else "n/a" for v in row],
                hovertemplate=f"{model}<br>%{{x}}: %{{customdata}} {reference}<extra></extra>",
            )
        )
    fig.add_hline(y=1, line={"color": "#333", "width": 2})
    ticks = sorted({*log_ticks_1_2_5(pd.concat([relative.stack(), pd.Series([1.0])])), 1.0})
    fig.update_layout(barmode="group")
    ticktext = ["<b>1x = ref.</b>" if t == 1 else units.ratio(t) for t in ticks]
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
            f"{m} is {units.ratio(others.loc[m, low])} {reference} by {INDICATORS[low].phrase} "
            f"but {units.ratio(others.loc[m, high])} by {INDICATORS[high].phrase}."
            if len(straddle)
            else f"{m} ranges from {units.ratio(others.loc[m, low])} {reference} ({INDICATORS[low].phrase}) to "
            f"{units.ratio(others.loc[m, high])} ({INDICATORS[high].phrase}): the gap depends on the indicator."
        )
    title = f"Cost relative to {reference}"
    return finish_figure(fig, df, title, text, presentation, kind="relative", reference=reference)


def _model_bars(
    values: dict[str, float], picked: Sequence[str], column: str, text: list[str], hover: list[str]
) -> go.Figure:
    """One horizontal bar per model of ``values`` (display name -> value), in the order picked and in the colour each
    has in the comparison's charts; the value axis as every chart's (``column``'s unit, log where the values span
    more than 10x), each bar labelled with ``text`` and hovered with ``hover``."""
    names = [name for name in picked if name in values]
    data = pd.Series([float(values[name]) for name in names], index=names)
    colors = model_colors(list(picked))
    fig = go.Figure(
        go.Bar(
            x=data.to_list(),
            y=[html.escape(name) for name in names],
            orientation="h",
            marker={"color": [colors[name] for name in names]},
            text=text,
            textposition="outside",
            cliponaxis=False,
            customdata=hover,
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
    if len(data):
        value_axis(fig, "x", column, data, COMPARE_LOG_RATIO, from_zero=True)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        template="plotly_white",
        font={"size": BASE_FONT_PX},
        height=150 + 36 * len(names),
        margin={"t": 60, "l": 160, "r": 90, "b": 60},
        showlegend=False,
    )
    return fig


def counted_so_far(flops: dict[str, int], picked: Sequence[str]) -> go.Figure:
    """While a long static run counts: each model counted so far (``flops``: display name -> torch's forward FLOPs,
    in any order) as one bar (:func:`_model_bars`). A progress display: the comparison's charts follow the run."""
    names = [name for name in picked if name in flops]
    text = [units.flops(flops[name]) for name in names]
    fig = _model_bars(flops, picked, "flops", text, [f"{value} per forward pass" for value in text])
    fig.update_layout(
        title={"text": f"Counted so far: {len(names)} of {len(picked)} models, forward FLOPs (torch's count)"},
        height=150 + 36 * len(picked),  # room for every model picked: the chart does not grow as counts come back
        meta={
            "caption": "One forward pass of each model counted so far; every chart of the comparison follows "
            "once all are counted."
        },
    )
    return fig


def published_params(params: dict[str, float], picked: Sequence[str], sources: dict[str, str]) -> go.Figure:
    """Before a run: the parameter count each picked model's paper, model card or reference implementation states
    (``params``: display name -> the published figure, ``sources``: display name -> where it is stated), one bar
    each (:func:`_model_bars`), marked as published, not counted."""
    names = [name for name in picked if name in params]
    text = [units.params(params[name]) for name in names]
    hover = [
        f"{value} as published ({html.escape(sources.get(name, 'source not recorded'))})"
        for name, value in zip(names, text, strict=True)
    ]
    fig = _model_bars(params, picked, "params", text, hover)
    log = fig.layout.xaxis.type == "log"
    fig.update_xaxes(title_text="Parameters as published (params)" + (", log scale" if log else ""))
    fig.update_layout(
        title={"text": "Parameters as published for each model (not counted here)"},
        meta={
            "caption": "The one number usually quoted for a model, as its paper, model card or reference "
            "implementation states it (rounded as the source rounds it; hover for the source). Run counts "
            "parameters, FLOPs and memory traffic from each model's configuration and shows where those indicators "
            "disagree."
        },
    )
    return fig
