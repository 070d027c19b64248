"""Experiment charts: indicators swept over a setting, and one indicator per category grouped by a setup."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from efficiency import units
from efficiency.analysis.rankings import INDICATORS
from efficiency.charts.style import (
    LOG_RATIO,
    SWEEP_LOG_RATIO,
    axis_title,
    escape_model_names,
    estimated_rows,
    finish_figure,
    model_colors,
    value_axis,
)


def _numeric(df: pd.DataFrame, x: str | None, ys: Sequence[str]) -> pd.DataFrame:
    """Sweeps repeat a model once per point, so they skip the one-row-per-model check of analysis."""
    unknown = [y for y in ys if y not in INDICATORS]
    missing = [c for c in [x, *ys] if c and c not in df.columns]
    if unknown or missing:
        raise ValueError(f"sweep: unknown indicators {unknown}, missing columns {missing}; have {list(df.columns)}")
    return df.assign(**{c: pd.to_numeric(df[c]).astype(float) for c in [x, *ys] if c})


def _point_names(part: pd.DataFrame, series: str, group: str) -> list[str]:
    """Who each point is, for its hover: the series, or (one unnamed series) each row's model."""
    if group not in part.columns and "model" in part.columns:
        return [str(m) for m in part["model"]]
    return [series] * len(part)


@escape_model_names
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
    generated caption (experiments write their own from the same numbers). Without a ``group`` column the
    points are one series, drawn without a legend.
    """
    data = _numeric(df, x, ys).sort_values(x)
    keys = data[group].astype(str) if group in data.columns else pd.Series("all", index=data.index)
    colors = model_colors(list(dict.fromkeys(keys)))
    fig = make_subplots(rows=len(ys), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    growth, flagged = [], {n for n in colors if any(estimated_rows(data[keys == n], y).any() for y in ys)}
    for row, y in enumerate(ys, start=1):
        for name, color in colors.items():
            part = data[keys == name]
            est = estimated_rows(part, y)
            fig.add_trace(
                go.Scatter(
                    x=part[x],
                    y=part[y],
                    name=name + (" (open: estimated)" if name in flagged else ""),
                    legendgroup=name,
                    showlegend=row == 1 and group in data.columns,  # one unnamed series: nothing to tell apart
                    mode="lines+markers",
                    line={"color": color, "width": 3},
                    marker={"size": 10, "symbol": np.where(est, "circle-open", "circle").tolist()},
                    hovertext=[
                        f"{who}<br>{axis_title(x)} {u:g}: {INDICATORS[y].format(v)}"
                        for who, u, v in zip(_point_names(part, name, group), part[x], part[y])
                    ],
                    hoverinfo="text",
                ),
                row=row,
                col=1,
            )
        value_axis(fig, "y", y, data[y], SWEEP_LOG_RATIO, row=row, col=1)
        first = data[keys == next(iter(colors))].dropna(subset=[y])
        if len(first) >= 2 and first[y].iloc[0] > 0:
            growth.append(f"{INDICATORS[y].phrase} {units.ratio(first[y].iloc[-1] / first[y].iloc[0])}")
    for row in range(1, len(ys) + 1):  # shared x: every panel needs the same type and ticks, the last its title
        log_x = value_axis(fig, "x", x, data[x], SWEEP_LOG_RATIO, row=row, col=1)
        if row < len(ys):
            fig.update_xaxes(title_text=None, row=row, col=1)
    span = f"{axis_title(x).split(' (')[0].lower()} {data[x].min():g} to {data[x].max():g}"
    text = text or (f"From {span}: " + ", ".join(growth) + "." if growth else f"Swept {span}.")
    title = title or f"{', '.join(INDICATORS[y].label for y in ys)} vs {axis_title(x).split(' (')[0].lower()}"
    fig.update_layout(height=260 * len(ys) + 160)
    return finish_figure(fig, df, title, text, presentation, kind="sweep", log_x=log_x)


@escape_model_names
def grouped_bar(
    df: pd.DataFrame, x: str, y: str, group: str | None = None, title: str | None = None, presentation: bool = False
) -> go.Figure:
    """One indicator per category (e.g. model), bars grouped by a setup (e.g. hardware): does the order hold?"""
    data = _numeric(df, None, [y])
    keys = data[group].astype(str) if group else pd.Series(INDICATORS[y].label, index=data.index)
    fig, best = go.Figure(), {}
    for name, color in model_colors(list(dict.fromkeys(keys))).items():
        part = data[keys == name]
        est = estimated_rows(part, y)
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
    value_axis(fig, "y", y, data[y], LOG_RATIO, from_zero=True)
    fig.update_xaxes(title_text=axis_title(x))
    winners = ", ".join(f"{b} on {n}" if group else b for n, b in best.items())
    changes = group and len(set(best.values())) > 1
    text = f"The best by {INDICATORS[y].phrase} {'changes with ' + group if changes else 'is'}: {winners}."
    return finish_figure(fig, df, title or f"{INDICATORS[y].label} by {x}", text, presentation, kind="grouped_bar")
