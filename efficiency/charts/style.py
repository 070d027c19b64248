"""The look every chart shares: fonts, palette, log axes with unit ticks, the "estimated" marking, titles
with the setup as subtitle, and the one-line caption kept in ``fig.layout.meta["caption"]``.

Axes in bytes are binary like every byte count the project prints: one unit per axis (KiB, MiB, GiB, ...)
named in its title, "Peak memory (GiB)", with ticks at round numbers of that unit.

Builders live in :mod:`efficiency.charts.compare` (comparisons), :mod:`efficiency.charts.sweeps` (experiments),
:mod:`efficiency.charts.hardware` and :mod:`efficiency.charts.roofline` (chips); this module holds what they share.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.rankings import INDICATORS, measured_mask, setup_line

BASE_FONT_PX = 14
PRESENTATION_FONT_PX = 18
LOG_RATIO = 100  # comparisons: log10 spacing once max/min exceeds this
COMPARE_LOG_RATIO = 10  # Compare's value axes: log once an indicator spans more than 10x (issue 18)
SCALES = ("auto", "linear", "log")  # the value-scale choice of a chart: auto (log past the ratio), always, never
SWEEP_LOG_RATIO = 10  # sweeps double their x; log spacing shows each doubling equally
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B", "#7F7F7F")
SETUP_AXIS_TITLES = {
    "seq_len": "Sequence length (tokens)",
    "batch_size": "Batch size (items)",
    "image_size": "Image (px)",
}


def escape_model_names(builder: Callable[..., go.Figure]) -> Callable[..., go.Figure]:
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


def scale_threshold(scale: str, ratio: float = COMPARE_LOG_RATIO) -> float:
    """The ``needs_log`` threshold of a value-scale choice: auto (log past ``ratio``), log (whenever the values
    allow: all positive), linear (never)."""
    if scale not in SCALES:
        raise ValueError(f"scale: {scale!r} is not one of {', '.join(SCALES)}")
    return {"auto": ratio, "log": 0.0, "linear": float("inf")}[scale]


def model_colors(names: Sequence[str]) -> dict[str, str]:
    """Same model, same colour, in every chart built from the same table."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def axis_title(column: str) -> str:
    return INDICATORS[column].axis_title if column in INDICATORS else SETUP_AXIS_TITLES.get(column, column.capitalize())


def log_ticks_1_2_5(data: pd.Series) -> list[float]:
    """1-2-5 ticks (decades only when crowded): plotly's own log minor labels are tiny digits."""
    low, high = np.floor(np.log10(data.min())), np.ceil(np.log10(data.max()))
    ticks = [m * 10.0**e for e in np.arange(low, high + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if data.min() / 1.5 <= t <= data.max() * 1.5]
    return ticks if len(ticks) <= 8 else [t for t in ticks if np.log10(t).is_integer()]


def is_bytes(column: str) -> bool:
    """An indicator counted in bytes: its axes and colour bars take binary units."""
    return column in INDICATORS and INDICATORS[column].unit == "bytes"


def scaled_title(column: str, data: pd.Series | Sequence[float]) -> tuple[float, str]:
    """(factor, title) of an axis or colour bar: bytes in one binary unit from the largest value, (2**30,
    "Peak memory (GiB)"); any other column as it is, (1, "Latency (ms)")."""
    if not is_bytes(column):
        return 1.0, axis_title(column)
    values = pd.Series(data, dtype=float).dropna()
    factor, unit = units.scale(values.abs().max() if len(values) else None, "B")
    return factor, f"{INDICATORS[column].label} ({unit})"


def linear_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering low..high, about ``count`` of them."""
    span = high - low or abs(high) or 1.0
    magnitude = 10.0 ** np.floor(np.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= span / count)
    first, last = np.floor(low / step) - 1, np.ceil(high / step) + 1  # one more each side: autorange pads
    return [float(round(k * step, 12)) for k in np.arange(first, last + 1)]


def _byte_axis(update: Callable, column: str, data: pd.Series, log: bool, from_zero: bool, **where: int) -> None:
    """Title in one binary unit, ticks at round numbers of it (plotly's own ticks would be decimal: 500M, 1G)."""
    factor, title = scaled_title(column, data)
    scaled = data / factor
    if log:
        ticks = log_ticks_1_2_5(scaled)
    else:
        ticks = [t for t in linear_ticks(min(0.0, scaled.min()) if from_zero else scaled.min(), scaled.max()) if t >= 0]
    update(title_text=title + (", log scale" if log else ""), **where)
    if len(ticks) >= 2:
        update(tickmode="array", tickvals=[t * factor for t in ticks], ticktext=[f"{t:g}" for t in ticks], **where)


def value_axis(
    fig: go.Figure, axis: str, column: str, data: pd.Series, threshold: float, from_zero: bool = False, **where: int
) -> bool:
    """Title with unit, log type when the range calls for it (said in the title); returns whether log.

    ``from_zero``: the axis starts at zero (bars), so its ticks must too."""
    log, data = needs_log(data, threshold), pd.Series(data, dtype=float).dropna()
    update = fig.update_xaxes if axis == "x" else fig.update_yaxes
    update(type="log" if log else "linear", exponentformat="SI", **where)
    if is_bytes(column) and len(data):
        _byte_axis(update, column, data, log, from_zero, **where)
        return log
    update(title_text=axis_title(column) + (", log scale" if log else ""), **where)
    if column in INDICATORS:
        ticks = log_ticks_1_2_5(data)
    else:
        ticks = sorted(data.unique()) if data.nunique() <= 12 else []
    if log and len(ticks) >= 3:
        text = [INDICATORS[column].format(t) if column in INDICATORS else f"{t:g}" for t in ticks]
        update(tickmode="array", tickvals=ticks, ticktext=text, **where)
    return log


def _round_values(column: str, low: float, high: float) -> list[float]:
    """Round values of a log axis around low..high: 1, 2 and 5 of each power of ten, or for bytes of each binary
    unit (1, 2, 5, 10, 20, 50, 100, 200, 500 MiB, 1 GiB ...), so that every label reads as a round number."""
    if is_bytes(column):
        values = [m * 10.0**e * 2.0**k for k in range(0, 70, 10) for e in range(3) for m in (1, 2, 5)]
    else:
        first, last = int(np.floor(np.log10(low))) - 1, int(np.ceil(np.log10(high))) + 1
        values = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5)]
    return sorted(values)


def round_ticks(column: str, low: float, high: float, log: bool) -> list[float]:
    """Round tick values that cover low..high, ends included: the largest round value at or below ``low``, the
    smallest at or above ``high``, and every round value between (log: 1-2-5 steps, bytes in binary units;
    linear: multiples of one step of 1, 2, 2.5 or 5 times a power of ten, of the axis's binary unit for bytes)."""
    if log:
        values = _round_values(column, low, high)
        below = max((v for v in values if v <= low * (1 + 1e-9)), default=values[0])
        above = min((v for v in values if v >= high * (1 - 1e-9)), default=values[-1])
        return [v for v in values if below <= v <= above]
    factor = scaled_title(column, [low, high])[0] if is_bytes(column) else 1.0
    low, high = low / factor, high / factor
    span = high - low or abs(high) or 1.0
    magnitude = 10.0 ** np.floor(np.log10(span / 4))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= span / 4)
    first, last = np.floor(low / step + 1e-9), np.ceil(high / step - 1e-9)
    if first == last:
        first, last = first - 1, last + 1
    return [float(round(k * step, 12)) * factor for k in np.arange(first, last + 1)]


def decade_ticks(column: str, low: float, high: float) -> list[float]:
    """Round values between low and high for a log axis: powers of ten, or for bytes 1, 10 and 100 of each
    binary unit (1 MiB, 10 MiB, 100 MiB, 1 GiB), so their labels read as round numbers."""
    if is_bytes(column):
        steps = [m * 2.0**e for e in range(0, 70, 10) for m in (1, 10, 100)]
    else:
        steps = [10.0**k for k in range(int(np.ceil(np.log10(low))), int(np.floor(np.log10(high))) + 1)]
    return [v for v in steps if low <= v <= high]


def estimated_models(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Per model: True when a shown measurable indicator (latency, ...) was estimated, not measured."""
    return ~measured_mask(df) & any(INDICATORS[c].measurable for c in columns if c in INDICATORS)


def estimated_rows(data: pd.DataFrame, column: str) -> np.ndarray:
    """Per row of a sweep (a model may repeat): True where ``column`` is measurable and not measured here."""
    measured = [bool(v) if pd.notna(v) else False for v in data.get("measured", pd.Series(None, index=data.index))]
    return ~np.array(measured, dtype=bool) & INDICATORS[column].measurable


def finish_figure(
    fig: go.Figure, df: pd.DataFrame, title: str, text: str, presentation: bool, **meta: object
) -> go.Figure:
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


def padded_axis(data: pd.Series, log: bool, pad: float) -> tuple[pd.Series, list[float]]:
    """Each value's place on an axis padded by ``pad`` of its span at both ends (0..1), and that axis's range (in
    log10 units on a log axis, as plotly wants it)."""
    spaced = np.log10(data.astype(float)) if log else data.astype(float)
    low, high = float(spaced.min()), float(spaced.max())
    span = high - low or (1.0 if log else abs(high) or 1.0)
    start, end = low - pad * span, high + pad * span
    return (spaced - start) / (end - start), [start, end]


def label_positions(
    xs: pd.Series, ys: pd.Series, log_x: bool, log_y: bool, near_x: float = 0.2, near_y: float = 0.15
) -> dict:
    """A text position per point, so labels stay inside the plot and off each other.

    On axes scaled to 0..1 (log10 where the axis is log): a point near the top edge is labelled below, near
    the right edge to the left; a point close to one already placed (labels are wider than tall, hence the
    wider ``near_x``) takes the next free side."""

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
        crowd = [m for m in placed if abs(ux[m] - ux[name]) < near_x and abs(uy[m] - uy[name]) < near_y]
        taken = {placed[m] for m in crowd}
        placed[name] = next((c for c in choices if c not in taken), choices[len(crowd) % len(choices)])
    return placed


# Where plotly puts a point's text for each ``textposition``: the side (-1, 0, 1) horizontally and vertically.
TEXT_SIDES = {
    "top center": (0, 1),
    "bottom center": (0, -1),
    "middle right": (1, 0),
    "middle left": (-1, 0),
    "top right": (1, 1),
    "top left": (-1, 1),
    "bottom right": (1, -1),
    "bottom left": (-1, -1),
}
CHAR_WIDTH_EM = 0.62  # a generous average glyph width of the charts' sans-serif font, in font sizes


def label_box(
    x_px: float, y_px: float, radius_px: float, text: str, side: str, font_px: float
) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a point's text in px (y up), as plotly places it beside a marker of
    ``radius_px``: offset by about the radius past the marker's edge on the side named."""
    width, height = CHAR_WIDTH_EM * font_px * max(len(text), 1), 1.25 * font_px
    h, v = TEXT_SIDES[side]
    gap = radius_px / 0.8 + 2  # plotly's offset from the marker's centre
    left = x_px - width / 2 if h == 0 else (x_px + gap if h > 0 else x_px - gap - width)
    bottom = y_px - height / 2 if v == 0 else (y_px + gap if v > 0 else y_px - gap - height)
    return left, bottom, left + width, bottom + height


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(points: pd.DataFrame, plot_px: tuple[float, float], font_px: float = BASE_FONT_PX) -> dict[str, str]:
    """A ``textposition`` per point such that no label covers a marker or another label and none leaves the plot.

    ``points``: index = label text, columns ``u`` and ``v`` (the point's place on its axes' ranges, 0..1, log10
    already applied where an axis is log) and ``radius_px``. ``plot_px``: the plot area's (width, height), the
    smallest it is drawn at (a wider plot only spreads the points further apart). Crowded points choose first; each
    takes the free side it prefers (above, below, right, left, then the corners); where no side is free, the one
    that covers least."""
    width, height = plot_px
    xs, ys = points["u"] * width, points["v"] * height
    markers = {
        name: (xs[name] - r, ys[name] - r, xs[name] + r, ys[name] + r) for name, r in points["radius_px"].items()
    }
    reach = CHAR_WIDTH_EM * font_px * 12

    def crowd(name: str) -> int:
        return int((((xs - xs[name]).abs() < reach) & ((ys - ys[name]).abs() < 3 * font_px)).sum())

    placed: dict[str, tuple[float, ...]] = {}
    chosen: dict[str, str] = {}
    for name in sorted(points.index, key=lambda n: (-crowd(n), -ys[n], xs[n])):
        radius = float(points.loc[name, "radius_px"])
        boxes = {side: label_box(xs[name], ys[name], radius, str(name), side, font_px) for side in TEXT_SIDES}
        costs = [
            (_label_cost(boxes[side], [*markers.values(), *placed.values()], plot_px), rank, side)
            for rank, side in enumerate(TEXT_SIDES)
        ]
        chosen[name] = min(costs)[2]
        placed[name] = boxes[chosen[name]]
    return chosen


def _label_cost(box: tuple[float, ...], taken: Sequence[tuple[float, ...]], plot_px: tuple[float, float]) -> float:
    """How bad a label's box is: what it covers of markers and placed labels (weighted: never wanted), and how
    much of it leaves the plot area (it would be cut or crowd the axis)."""
    covered = sum(_overlap(box, other) for other in taken)
    outside = (box[2] - box[0]) * (box[3] - box[1]) - _overlap(box, (0.0, 0.0, *plot_px))
    return covered * 10 + outside
