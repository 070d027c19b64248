"""Story charts: every value as a multiple of the model the step's sentence compares against, and the reading
back of what a chart draws, so a test can hold each sentence to its chart.

A :func:`relative_points` chart draws one lollipop per (series, category): a marker at the ratio and a stem
from the reference line at 1x, on a log axis whose ticks are labelled ratios ("0.5x", "1x", "2x"). The
reference is a series of its own, drawn as markers on the 1x line, so "the same" is never an empty bar. Timed
values also carry their p10-p90 range as whiskers. :func:`drawn_values` reads any story chart back into
``{(series, category): (value, low, high)}``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import Headline, check
from efficiency.charts.lifecycle import KIND as LIFECYCLE_KIND
from efficiency.charts.lifecycle import drawn_values as lifecycle_drawn
from efficiency.charts.style import PALETTE, PRESENTATION_FONT_PX, finish_figure, log_ticks_1_2_5

RELATIVE_KIND = "story-relative"
REFERENCE_COLOR = "#333333"
POINTS_COLUMNS = ("series", "category", "ratio", "low", "high", "estimated")
ON_THE_LINE = 0.05  # within 5% of 1x, a marker sits on the reference line


def _offsets(count: int) -> list[float]:
    """Horizontal slots of ``count`` series around each category's centre (the reference first)."""
    width = min(0.8, 0.16 * count)
    return [0.0] if count == 1 else list(np.linspace(-width / 2, width / 2, count))


def _ticks(values: pd.Series) -> list[float]:
    data = pd.concat([values.dropna(), pd.Series([1.0])])
    ticks = sorted({*log_ticks_1_2_5(data), 1.0})
    return ticks if len(ticks) >= 3 else sorted({*ticks, 0.5, 2.0})


def relative_points(
    points: pd.DataFrame,
    reference: str,
    categories: dict[str, str],
    setup: pd.DataFrame,
    title: str,
    caption: str,
    presentation: bool = True,
) -> go.Figure:
    """Lollipops of ``points`` (columns ``POINTS_COLUMNS``; ``ratio`` = the series' value / the reference's in
    that category, ``low``/``high`` its p10-p90 range or NaN) against ``reference`` at 1x.

    ``categories`` maps each category key to its axis label, in order; ``setup`` is the table the values came
    from (for the subtitle). Series keep the order they first appear in ``points``.
    """
    missing = [c for c in POINTS_COLUMNS if c not in points.columns]
    if missing:
        raise ValueError(f"relative_points: missing columns {missing}")
    keys = list(categories)
    series = list(dict.fromkeys(points["series"].astype(str)))
    if reference not in series:
        raise ValueError(f"relative_points: the reference {reference!r} is not among {series}")
    order = [reference] + [s for s in series if s != reference]
    slots = dict(zip(order, _offsets(len(order))))
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(s for s in order if s != reference)}
    colors[reference] = REFERENCE_COLOR
    size = PRESENTATION_FONT_PX if presentation else 14
    fig, stems = go.Figure(), []
    crowded = len(order) > 4  # many markers on the 1x line: their labels would overlap; the line says "same"
    for name in order:
        part = points[points["series"].astype(str) == name].set_index("category").reindex(keys)
        part = part[part["ratio"].notna()]
        xs = [keys.index(k) + slots[name] for k in part.index]
        estimated = part["estimated"].fillna(False).astype(bool).tolist()
        if name != reference:
            stem = {"type": "line", "layer": "below", "line": {"color": colors[name], "width": 7}}
            stems += [{**stem, "x0": x, "x1": x, "y0": 1, "y1": y} for x, y in zip(xs, part["ratio"])]
        is_reference = name == reference
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=part["ratio"].tolist(),
                name=html.escape(f"{name} = 1x (reference)" if is_reference else name),
                mode="markers" if is_reference else "markers+text",
                text=["" if crowded and abs(v - 1) <= ON_THE_LINE else units.times(v) for v in part["ratio"]],
                textposition=["top center" if v >= 1 else "bottom center" for v in part["ratio"]],
                textfont={"size": size, "color": colors[name]},
                cliponaxis=False,
                marker={
                    "size": 22 if not is_reference else 20,
                    "color": colors[name],
                    "symbol": [("diamond" if is_reference else "circle") + ("-open" if e else "") for e in estimated],
                    "line": {"width": 3, "color": colors[name]},
                },
                customdata=list(part.index),
                meta={"series": name, "reference": is_reference},
                hovertext=[f"{html.escape(name)}: {units.times(v)} {html.escape(reference)}" for v in part["ratio"]],
                hoverinfo="text",
            )
        )
        timed = part[part["low"].notna() & part["high"].notna()]
        if len(timed):  # a trace of its own: plotly draws a cap even for a missing error value
            fig.add_trace(
                go.Scatter(
                    x=[keys.index(k) + slots[name] for k in timed.index],
                    y=timed["ratio"].tolist(),
                    mode="markers",
                    marker={"size": 1, "opacity": 0},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": (timed["high"] - timed["ratio"]).tolist(),
                        "arrayminus": (timed["ratio"] - timed["low"]).tolist(),
                        "color": "#111111",
                        "thickness": 2,
                        "width": 10,
                    },
                    customdata=list(timed.index),
                    meta={"series": name, "whiskers": True},
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    fig.update_layout(shapes=stems)  # at once: one add_shape per stem re-validates all the others
    fig.add_hline(y=1, line={"color": REFERENCE_COLOR, "width": 3})
    every = pd.concat([points["ratio"], points["low"], points["high"]])
    ticks = _ticks(every)
    low, high = min(ticks[0], every.min()), max(ticks[-1], every.max())
    fig.update_yaxes(
        type="log",
        tickmode="array",
        tickvals=ticks,
        ticktext=[units.ratio(t) for t in ticks],
        range=[np.log10(low) - 0.3, np.log10(high) + 0.25],  # room for the labels under and over the ends
        title_text=f"× {reference} (log scale)",
    )
    fig.update_xaxes(
        tickmode="array",
        tickvals=list(range(len(keys))),
        ticktext=[categories[k] for k in keys],  # labels written by the story, not user input
        range=[-0.6, len(keys) - 0.4],
        showgrid=False,
        zeroline=False,
    )
    if points["estimated"].fillna(False).astype(bool).any() and "estimated" not in caption:
        caption += " Open markers: estimated, not measured."
    return finish_figure(fig, setup, title, caption, presentation, kind=RELATIVE_KIND, reference=reference)


def drawn_values(figure: go.Figure) -> dict[tuple[str, str], tuple[float, float, float]]:
    """What a story chart draws, read back from its traces: ``(series, category) -> (value, low, high)``.

    Relative charts give ratios to the reference (its own points are 1); frontier charts each model's cost per
    panel, keyed ``(model, panel's indicator)``; line sweeps give the raw value per
    panel, keyed ``(f"{x:g}", panel's indicator)`` via ``meta["panels"]``. ``low``/``high`` are NaN where no
    range is drawn."""
    meta = figure.layout.meta if isinstance(figure.layout.meta, dict) else {}
    out: dict[tuple[str, str], tuple[float, float, float]] = {}
    if meta.get("kind") == LIFECYCLE_KIND:  # efficiency.charts.lifecycle: per line, training, per request, points
        return lifecycle_drawn(figure)
    if meta.get("kind") == "frontier":  # efficiency.charts.frontier: each model's cost per panel, with its p10-p90
        for trace in (t for t in figure.data if isinstance(t.meta, dict) and "panel" in t.meta):
            for name, x, (low, high) in zip(trace.text, trace.x, trace.customdata):
                out[(html.unescape(str(name)), trace.meta["panel"])] = (float(x), float(low), float(high))
        return out
    if meta.get("kind") == RELATIVE_KIND:
        ranges = {}
        for trace in (t for t in figure.data if t.meta.get("whiskers")):
            for category, y, plus, minus in zip(
                trace.customdata, trace.y, trace.error_y.array, trace.error_y.arrayminus
            ):
                ranges[(trace.meta["series"], str(category))] = (float(y - minus), float(y + plus))
        for trace in (t for t in figure.data if not t.meta.get("whiskers")):
            for category, y in zip(trace.customdata, trace.y):
                key = (trace.meta["series"], str(category))
                out[key] = (float(y), *ranges.get(key, (np.nan, np.nan)))
        return out
    panels: Sequence[str] = meta.get("panels") or ()
    if not panels:
        raise ValueError(f"drawn_values: a figure of kind {meta.get('kind')!r} without panels cannot be read")
    for trace in figure.data:
        axis = trace.yaxis or "y"
        panel = panels[int(axis[1:] or 1) - 1]
        for x, y in zip(trace.x, trace.y):
            out[(f"{x:g}", panel)] = (float(y), np.nan, np.nan)
    return out


def contradictions(headline: Headline, figure: go.Figure) -> list[str]:
    """Every way ``headline`` disagrees with what ``figure`` draws (empty: the sentence is true to its chart)."""
    return check(headline, drawn_values(figure))
