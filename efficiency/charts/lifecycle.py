"""The lifecycle chart: cumulative cost against the number of requests served, one line per model.

Left panel: counted FLOPs (one training, then one forward pass per request); right panel: the same in time on a
chip, estimated by the roofline model (never measured, and marked so). Both axes are log: requests from 1 to where
serving outweighs every training, ticks "1", "1k", "1M", "1B", "1T"; a marker and a sentence at every request
count where two models change places. Dashed lines: the same models retrained every K requests.

:func:`drawn_values` reads the figure back for the claim checker: per line ``(series, "training")`` (its value at
0 requests), ``(series, "per request")`` (its slope) and ``(series, f"{requests:g} requests")`` (every drawn
point); on the time panel the categories end in " (time)".
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from efficiency.analysis.lifecycle import (
    Lifecycle,
    count_words,
    flips,
    lines,
    long_duration,
    retrain_every,
    tick_label,
)
from efficiency.charts.style import PRESENTATION_FONT_PX, finish_figure, model_colors

KIND = "lifecycle"
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
SAMPLES = 61  # points per line, log-spaced; a straight line in R is a curve on log-log axes
SUFFIX = {"flops": "", "time": " (time)"}  # the category suffix of each panel in drawn values
YEAR_S = 365.25 * 86400
TIME_TICKS = [1.0, 60.0, 3600.0, 86400.0, 30 * 86400.0, *(YEAR_S * 10.0**k for k in range(0, 8))]


def request_range(models: list[Lifecycle], crossings: list[float]) -> float:
    """The right end of the x axis: a power of ten past every crossing and where requests cost 100x a training."""
    reach = [m.training / m.slope * 100 for m in models if m.slope > 0] + [10 * r for r in crossings] + [1e6]
    return 10.0 ** np.ceil(np.log10(max(reach)))


def grid(end: float, crossings: list[float]) -> np.ndarray:
    """Log-spaced request counts from 1 to ``end``, with each crossing drawn as a point of every line."""
    return np.unique(np.concatenate([np.logspace(0, np.log10(end), SAMPLES), crossings]))


def _ticks_flops(low: float, high: float) -> tuple[list[float], list[str]]:
    """Powers of ten as "10²¹" (Unicode superscripts, so the exponent is as large as the tick's text; an HTML
    <sup> shrinks it below what a room can read): SI prefixes stop at exa, far below a training's FLOPs."""
    first, last = int(np.floor(np.log10(low))), int(np.ceil(np.log10(high)))
    step = 1 if last - first <= 8 else 2
    values = [10.0**k for k in range(first, last + 1, step)]
    return values, [f"10{str(k).translate(SUPERSCRIPT)}" for k in range(first, last + 1, step)]


def _ticks_time(low: float, high: float) -> tuple[list[float], list[str]]:
    """Durations a person reads: 1 min, 1 h, 1 day, 1 year, 100 years (the first below, the last above)."""
    below = max((t for t in TIME_TICKS if t <= low), default=TIME_TICKS[0])
    above = min((t for t in TIME_TICKS if t >= high), default=TIME_TICKS[-1])
    values = [t for t in TIME_TICKS if below <= t <= above]
    return values, [long_duration(t) for t in values]


def _crossings(models: list[Lifecycle]) -> list[float]:
    """Request counts where two lines of the same scenario (trained once, or retrained) cross."""
    once = [m for m in models if m.retrain_every is None]
    return [r for group in (once, [m for m in models if m not in once]) for _, _, r in flips(group)]


def _series(model: Lifecycle) -> str:
    """A line's legend name, which the claim checker reads too: the model, and how often it is retrained."""
    if model.retrain_every is None:
        return model.name
    return f"{model.name}, retrained every {count_words(model.retrain_every)} requests"


def _add_lines(fig: go.Figure, models: list[Lifecycle], xs: np.ndarray, panel: str, col: int, colors: dict) -> None:
    unit = "FLOPs" if panel == "flops" else "s (estimated)"
    for model in models:
        retrained = model.retrain_every is not None
        name = _series(model)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=model.cost(xs),
                mode="lines",
                name=html.escape(name),
                legendgroup=html.escape(name),
                showlegend=col == 1,
                line={"color": colors[model.name], "width": 4, "dash": "dash" if retrained else "solid"},
                meta={"series": name, "panel": panel, "line": True},
                hovertemplate=f"{html.escape(name)}<br>%{{x:.3s}} requests: %{{y:.3s}} {unit}<extra></extra>",
            ),
            row=1,
            col=col,
        )


LABEL_SIDES = ("top left", "bottom right", "middle left", "middle right")


def _add_flips(fig: go.Figure, models: list[Lifecycle], panel: str, col: int, size: int) -> list[float]:
    """A marker at each crossing of two lines of one scenario (trained once, or retrained), with a sentence for
    the trained-once ones (the retrained ones say it on hover); returns the request counts."""
    found: list[float] = []
    scenarios = [[m for m in models if m.retrain_every is None], [m for m in models if m.retrain_every is not None]]
    for retrained, group in enumerate(scenarios):
        for index, (a, b, requests) in enumerate(flips(group)):
            words = f"{html.escape(a.name)} becomes cheaper than {html.escape(b.name)}"
            when = f"after {count_words(requests)} requests" + (" (both retrained)" if retrained else "")
            fig.add_trace(
                go.Scatter(
                    x=[requests],
                    y=[float(a.cost(requests))],
                    mode="markers" if retrained else "markers+text",
                    text=[f"{html.escape(a.name)} cheaper than {html.escape(b.name)}<br>{when}"],
                    textposition=LABEL_SIDES[index % len(LABEL_SIDES)],
                    textfont={"size": size},
                    marker={"size": 16, "color": "#111111", "symbol": "x-open" if retrained else "x"},
                    showlegend=False,
                    meta={"flip": [_series(a), _series(b)], "panel": panel, "requests": requests},
                    hovertemplate=f"{words} {when}<extra></extra>",
                    cliponaxis=False,
                ),
                row=1,
                col=col,
            )
            found.append(requests)
    return found


def lifecycle_chart(data: pd.DataFrame, presentation: bool = False) -> go.Figure:
    """Cumulative counted FLOPs and estimated chip time against requests served, one line per model."""
    size = PRESENTATION_FONT_PX if presentation else 14
    chip = str(data["hardware"].iloc[0])
    tokens = int(data["seq_len"].iloc[0])
    every = retrain_every(data)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.16,  # room for the right panel's duration ticks and axis title
        subplot_titles=("Counted FLOPs", f"Time on {html.escape(chip)} (estimated)"),
    )
    colors = model_colors([str(m) for m in data["model"]])
    panels = {panel: lines(data, panel) + lines(data, panel, retrained=True) for panel in ("flops", "time")}
    crossings = {panel: _crossings(models) for panel, models in panels.items()}
    end = request_range(panels["flops"] + panels["time"], crossings["flops"] + crossings["time"])
    flip_points: dict[str, list[float]] = {}
    for col, (panel, models) in enumerate(panels.items(), start=1):
        xs = grid(end, crossings[panel])
        _add_lines(fig, models, xs, panel, col, colors)
        flip_points[panel] = _add_flips(fig, models, panel, col, size)
        costs = np.concatenate([m.cost(xs) for m in models])
        ticks, labels = (_ticks_flops if panel == "flops" else _ticks_time)(float(costs.min()), float(costs.max()))
        title = "Cumulative compute (FLOPs, log)" if panel == "flops" else "Cumulative time (estimated, log)"
        span = [np.log10(min(ticks[0], costs.min())) - 0.1, np.log10(max(ticks[-1], costs.max())) + 0.1]
        fig.update_yaxes(
            type="log", tickmode="array", tickvals=ticks, ticktext=labels, range=span, title_text=title, row=1, col=col
        )
    decades = range(0, int(np.log10(end)) + 1, 3)
    fig.update_xaxes(
        type="log",
        tickmode="array",
        tickvals=[10.0**k for k in decades],
        ticktext=[tick_label(10.0**k) for k in decades],
        title_text="Requests served (log)",
    )
    retrained = f" Dashed: retrained every {count_words(every)} requests." if every else ""
    caption = (
        f"Each line: one training (the cost at the left end) plus one forward pass over a {tokens}-token prompt per "
        f"request served (generation not counted).{retrained} Right: the same work in time on {chip}, estimated by "
        "the roofline model, not measured. x: a crossing, where the cheaper model changes."
    )
    title = "Train once, serve many: cumulative cost against requests served"
    finish_figure(fig, data, html.escape(title), caption, presentation, kind=KIND, flips=flip_points)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "x": 0})
    fig.update_annotations(font_size=size)
    return fig


def drawn_values(figure: go.Figure) -> dict[tuple[str, str], tuple[float, float, float]]:
    """What a lifecycle chart draws, per line: its cost at 0 requests ("training"), what each request adds
    ("per request") and every drawn point (f"{requests:g} requests"); " (time)" ends the time panel's categories.

    A line is straight in requests, so two of its drawn points give its value at 0 and its slope exactly."""
    out: dict[tuple[str, str], tuple[float, float, float]] = {}
    for trace in (t for t in figure.data if isinstance(t.meta, dict) and t.meta.get("line")):
        xs, ys = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
        series, suffix = trace.meta["series"], SUFFIX[trace.meta["panel"]]
        slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
        out[(series, f"training{suffix}")] = (float(ys[0] - slope * xs[0]), np.nan, np.nan)
        out[(series, f"per request{suffix}")] = (float(slope), np.nan, np.nan)
        for x, y in zip(xs, ys):
            out[(series, f"{x:g} requests{suffix}")] = (float(y), np.nan, np.nan)
    return out


__all__ = ["KIND", "drawn_values", "lifecycle_chart"]
