"""Quality against each cost indicator as small multiples sharing the quality axis, the Pareto frontier in each.

The frontier rules (direction, ties, missing costs) are :mod:`efficiency.analysis.frontier`'s; this module only
draws them. Each panel says whether its cost is counted, measured or estimated; a cost axis is logarithmic when
its values span more than 10x; two costs the app calls "about equal" (its tolerance, or measured times whose
p10-p90 ranges overlap, drawn as whiskers) count as equal for the frontier; labels are placed off every point and
inside the panel; the caption (in ``fig.layout.meta``, shown under the chart by the page) names the models that
join or leave the frontier between panels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from efficiency.analysis.findings import SPREAD, compare
from efficiency.analysis.frontier import change_sentence, frontier_changes, pareto_frontier
from efficiency.analysis.rankings import INDICATORS, measured_mask
from efficiency.charts.style import (
    BASE_FONT_PX,
    PALETTE,
    PRESENTATION_FONT_PX,
    axis_title,
    escape_model_names,
    needs_log,
    padded_axis,
    place_labels,
    value_axis,
)

FRONTIER_KIND = "frontier"  # meta["kind"]: what efficiency.charts.story.drawn_values reads back
FRONTIER_LOG_RATIO = 10  # the rule: log cost axes where the range spans more than 10x
HEIGHT_PX, PRESENTATION_HEIGHT_PX = 460, 560
PLOT_WIDTH_PX = 900  # the narrowest width all panels share: Compare at 1280 px
PAD = (0.1, 0.12)  # of each axis's span, at both ends: room for the outer points' labels
MAX_TICKS = 3
DEFAULT_PANELS = ("params", "flops", "memory_traffic_bytes", "latency_ms", "peak_memory_bytes")


def panel_kind(df: pd.DataFrame, column: str) -> str:
    """ "counted" for static indicators; for measurable ones "measured" when every row with a value was
    measured here, else "estimated" (a row without the flag counts as estimated)."""
    if column not in INDICATORS or not INDICATORS[column].measurable:
        return "counted"
    flags = measured_mask(df)
    has_value = pd.to_numeric(df[column], errors="coerce").notna().to_numpy()
    return "measured" if bool(flags[has_value].all()) else "estimated"


@escape_model_names
def frontier_chart(
    df: pd.DataFrame,
    quality: str = "quality",
    panels: Sequence[str] | None = None,
    higher_is_better: bool = True,
    quality_title: str = "Quality",
    kinds: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    presentation: bool = False,
) -> go.Figure:
    """One panel per cost column of ``df`` (``model``, ``quality`` and cost columns, one row per model).

    ``kinds`` overrides a panel's marking ("counted", "measured", "estimated"), e.g. for a column of roofline
    estimates; ``labels`` names a column that is not an indicator (its panel title and its phrase in the caption).
    The frontiers and their changes are in ``fig.layout.meta`` with the caption."""
    if quality not in df.columns or "model" not in df.columns:
        raise ValueError(f"frontier chart: needs the columns 'model' and {quality!r}")
    wanted = [c for c in (panels or DEFAULT_PANELS) if c in df.columns]
    columns = [c for c in wanted if pd.to_numeric(df[c], errors="coerce").notna().any()]
    if not columns:
        raise ValueError(f"frontier chart: none of the cost columns {list(panels or DEFAULT_PANELS)} has a value")
    scores = dict(zip(df["model"], pd.to_numeric(df[quality], errors="coerce"), strict=True))
    kind_of = {c: (kinds or {}).get(c) or panel_kind(df, c) for c in columns}
    names = {c: (labels or {}).get(c) or (INDICATORS[c].label if c in INDICATORS else axis_title(c)) for c in columns}
    titles = [f"{names[c]} ({kind_of[c]})" for c in columns]
    fig = make_subplots(rows=1, cols=len(columns), shared_yaxes=True, subplot_titles=titles, horizontal_spacing=0.07)
    found = []
    font = PRESENTATION_FONT_PX if presentation else BASE_FONT_PX
    height = PRESENTATION_HEIGHT_PX if presentation else HEIGHT_PX
    plot_px = (max(120.0, PLOT_WIDTH_PX / len(columns) - 40), height - 200.0)  # the narrowest a panel is drawn
    qualities = pd.to_numeric(df[quality], errors="coerce")
    v_all, y_range = padded_axis(qualities.dropna(), False, PAD[1])
    for index, column in enumerate(columns, start=1):
        costs = dict(zip(df["model"], pd.to_numeric(df[column], errors="coerce"), strict=True))
        frontier = pareto_frontier(costs, scores, higher_is_better, column, about_equal(df, column))
        found.append(frontier)
        shown = df[df["model"].isin(frontier.compared)]
        low, high = spread_of(shown, column)
        log = needs_log(pd.to_numeric(shown[column], errors="coerce"), FRONTIER_LOG_RATIO)
        u, x_range = padded_axis(pd.to_numeric(shown[column], errors="coerce"), log, PAD[0])
        points = pd.DataFrame({"u": u.to_numpy(), "v": v_all[shown.index].to_numpy(), "radius_px": 6.0})
        positions = place_labels(points.set_axis(list(shown["model"])), plot_px, font)
        fig.add_trace(
            go.Scatter(
                x=shown[column],
                y=shown[quality],
                mode="markers+text",
                text=shown["model"],
                textposition=[positions[m] for m in shown["model"]],
                cliponaxis=False,
                marker={"color": [PALETTE[0] if m in frontier.models else "#9A9A9A" for m in shown["model"]]},
                error_x=_whiskers(shown[column], low, high),
                customdata=list(zip(low, high, strict=True)),
                meta={"panel": column},
                name=f"models ({column})",
                showlegend=False,
            ),
            row=1,
            col=index,
        )
        fig.add_trace(
            go.Scatter(
                x=[costs[m] for m in frontier.models],
                y=[scores[m] for m in frontier.models],
                mode="lines",
                line={"color": PALETTE[1], "shape": "hv" if higher_is_better else "vh"},
                name="Pareto frontier",
                legendgroup="frontier",
                showlegend=index == 1,
                meta={"indicator": column, "models": list(frontier.models)},
            ),
            row=1,
            col=index,
        )
        value_axis(fig, "x", column, shown[column], FRONTIER_LOG_RATIO, row=1, col=index)
        fig.update_xaxes(range=x_range, tickangle=0, row=1, col=index)
        if column not in INDICATORS:
            fig.update_xaxes(title_text=names[column], row=1, col=index)
        _thin_ticks(fig, index)
    direction = "higher is better" if higher_is_better else "lower is better"
    fig.update_yaxes(range=y_range)
    fig.update_yaxes(title_text=f"{quality_title} ({direction})", row=1, col=1)
    changes = frontier_changes(found)
    phrases = {c: (labels or {}).get(c) or (INDICATORS[c].phrase if c in INDICATORS else c) for c in columns}
    text = " ".join(change_sentence(change, phrases) for change in changes) or "One cost indicator: nothing to compare."
    fig.update_layout(
        meta={
            "kind": FRONTIER_KIND,
            "panels": columns,
            "caption": text,
            "frontiers": {f.indicator: list(f.models) for f in found},
            "kinds": kind_of,
            "changes": [
                {"from": c.before, "to": c.after, "joined": list(c.joined), "left": list(c.left)} for c in changes
            ],
        },
        height=height,
        font={"size": font},
        margin={"b": 70, "l": 70, "r": 30},
    )
    fig.update_annotations(font_size=font)  # the panel titles: plotly sets their own size otherwise
    return fig


def about_equal(df: pd.DataFrame, column: str) -> Callable[[str, str], bool] | None:
    """The app's "about equal" rule for two models' costs under ``column`` (its tolerance, or measured times whose
    p10-p90 ranges overlap: :func:`efficiency.analysis.findings.compare`), so a frontier never rests on a
    difference the app's sentences call a tie; None for a column that is not an indicator (only equal values)."""
    if column not in INDICATORS:
        return None
    rows = df[df[column].notna()].reset_index(drop=True)

    def same(a: str, b: str) -> bool:
        return column in compare(rows, "model", a, b, [column]).equal

    return same


def spread_of(df: pd.DataFrame, column: str) -> tuple[list[float], list[float]]:
    """Each row's p10 and p90 under ``column`` where the frame holds them (measured times), else NaN."""
    prefix = SPREAD.get(column)
    low, high = f"{prefix}_p10_ms", f"{prefix}_p90_ms"
    if prefix is None or low not in df.columns or high not in df.columns:
        return [math.nan] * len(df), [math.nan] * len(df)
    return [float(v) for v in pd.to_numeric(df[low])], [float(v) for v in pd.to_numeric(df[high])]


def _whiskers(values: pd.Series, low: list[float], high: list[float]) -> dict:
    """p10-p90 as horizontal error bars on a measured cost (none where no spread is known)."""
    if all(math.isnan(v) for v in low):
        return {"visible": False}
    plus = [h - v if not math.isnan(h) else 0.0 for v, h in zip(values, high, strict=True)]
    minus = [v - lo if not math.isnan(lo) else 0.0 for v, lo in zip(values, low, strict=True)]
    return {"type": "data", "array": plus, "arrayminus": minus, "visible": True, "color": "#666", "thickness": 1.5}


def _thin_ticks(fig: go.Figure, index: int) -> None:
    """At most three labelled ticks on a panel's log axis, without the unit word the title already gives: a narrow
    panel cannot hold a 1-2-5 row of "20 M params" without tilting or overlapping its neighbour's labels."""
    axis = fig.layout["xaxis" if index == 1 else f"xaxis{index}"]
    values, texts = axis.tickvals, axis.ticktext
    if values is None:
        return
    step = math.ceil(len(values) / MAX_TICKS)
    short = [text.removesuffix(" params").removesuffix("FLOPs").strip() for text in texts]  # the unit: in the title
    fig.update_xaxes(tickvals=list(values)[::step], ticktext=short[::step], row=1, col=index)
