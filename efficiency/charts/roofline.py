"""The roofline chart: each model at its arithmetic intensity under every picked chip's roof, with the points
measured on this machine drawn apart and compared only with this machine's own roof, as calibrated here at the
thread count they ran with (never with another chip's datasheet roof). Conventions as in
:mod:`efficiency.charts.hardware`; the table it reads is built by :mod:`efficiency.analysis.hardware`.

Model names are annotations placed by :func:`label_layout` so that no label covers a point or another label and
none leaves the plot area; one label per model (its estimated and measured points share its colour and its x)."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.hardware import ESTIMATED, MEASURED, drawable_rows, unique_order
from efficiency.charts.hardware import setup_rows
from efficiency.charts.style import (
    BASE_FONT_PX,
    CHAR_WIDTH_EM,
    PRESENTATION_FONT_PX,
    escape_model_names,
    finish_figure,
    model_colors,
)
from efficiency.hardware import cpu_assumption
from efficiency.specs import HardwareSpec

ROOF_POINTS = 60
HEIGHT_PX = 620
# The smallest plot area (width, height in px) the roofline is drawn at on a 1280 px wide page: labels are placed
# for it, and a larger plot only spreads the points further apart (label offsets are in px, so they still fit).
PLOT_PX = (820.0, 320.0)
ESTIMATED_RADIUS_PX, MEASURED_RADIUS_PX = 9.0, 8.5
LABEL_DISTANCES_PX = (13.0, 24.0, 40.0, 64.0, 96.0, 136.0)  # the first clears a marker (radius 9 px)
# (dx, dy, xanchor, yanchor) per direction, y up; the label's anchor sits at the point + distance x (dx, dy).
LABEL_DIRECTIONS = (
    (1.0, 0.0, "left", "middle"),
    (-1.0, 0.0, "right", "middle"),
    (0.0, 1.0, "center", "bottom"),
    (0.0, -1.0, "center", "top"),
    (0.7, 0.7, "left", "bottom"),
    (-0.7, 0.7, "right", "bottom"),
    (0.7, -0.7, "left", "top"),
    (-0.7, -0.7, "right", "top"),
)


def roof(intensity: Sequence[float] | np.ndarray, peak: float, bandwidth: float) -> np.ndarray:
    """Attainable FLOP/s at each arithmetic intensity: ``min(peak, AI x bandwidth)``."""
    return np.minimum(peak, np.asarray(intensity, dtype=float) * bandwidth)


def _roof_range(points: Iterable[float], hardware_list: Sequence[HardwareSpec], dtype: str) -> tuple[float, float]:
    """From below the smallest point/ridge to above the largest, in whole decades."""
    values = [v for v in points if v and v > 0 and math.isfinite(v)]
    values += [hw.peak_for(dtype) / hw.memory_bandwidth_bytes_per_s for hw in hardware_list]
    low = 10.0 ** math.floor(math.log10(min(values) / 2))
    high = 10.0 ** math.ceil(math.log10(max(values) * 2))
    return low, high


def measured_points(rows: Iterable[Mapping[str, Any]], profiles: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Measured latencies -> roofline points: achieved FLOP/s = forward FLOPs / measured latency.

    ``rows``: dicts with ``model`` (id), ``latency_ms`` (a number or ``{"median": ...}``) and ``threads`` (what
    the run used, if known); ``profiles``: per model id, ``flops`` (forward FLOPs), ``arithmetic_intensity`` and
    ``name``. Rows without both are skipped.
    """
    records = []
    for row in rows:
        model = str(row.get("model"))
        latency = row.get("latency_ms")
        latency = latency.get("median") if isinstance(latency, dict) else latency
        facts = profiles.get(model)
        if facts is None or not isinstance(latency, (int, float)) or isinstance(latency, bool) or latency <= 0:
            continue
        flops, intensity = facts.get("flops"), facts.get("arithmetic_intensity")
        if not flops or not intensity:
            continue
        records.append(
            {
                "model": facts.get("name") or model,
                "model_id": model,
                "arithmetic_intensity": float(intensity),
                "achieved_flops_per_s": float(flops) / (float(latency) / 1e3),
                "latency_ms": float(latency),
                "hardware": row.get("hardware", "local-cpu"),
                "threads": row.get("threads"),
            }
        )
    columns = ["model", "model_id", "arithmetic_intensity", "achieved_flops_per_s", "latency_ms", "hardware"]
    return pd.DataFrame.from_records(records, columns=[*columns, "threads"])


def label_box(
    x_px: float, y_px: float, distance: float, direction: tuple, text: str, font_px: float
) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) in px, y up, of a label whose anchor sits ``distance`` px from its point in
    ``direction`` (one of :data:`LABEL_DIRECTIONS`)."""
    dx, dy, xanchor, yanchor = direction
    width, height = CHAR_WIDTH_EM * font_px * max(len(text), 1) + 4, 1.3 * font_px + 2
    ax, ay = x_px + dx * distance, y_px + dy * distance
    left = {"left": ax, "right": ax - width, "center": ax - width / 2}[xanchor]
    bottom = {"bottom": ay, "top": ay - height, "middle": ay - height / 2}[yanchor]
    return left, bottom, left + width, bottom + height


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def label_layout(
    labels: Mapping[str, tuple[float, float]],
    markers: Sequence[tuple[float, float, float]],
    font_px: float,
    plot_px: tuple[float, float] = PLOT_PX,
) -> dict[str, tuple[float, tuple]]:
    """A place for each label: (distance in px, direction) from its point, such that no label covers a marker or
    another label and none leaves the plot area, the nearest such place first (crowded labels choose first).

    ``labels``: text -> its point in px (y up, 0..``plot_px``); ``markers``: every drawn point as (x, y, radius)
    in px, labelled or not. Where no place is free, the one that covers least (a leader line joins it)."""
    width, height = plot_px
    area = (0.0, 0.0, width, height)
    marker_boxes = [(x - r - 1, y - r - 1, x + r + 1, y + r + 1) for x, y, r in markers]

    def crowd(name: str) -> int:
        x, y = labels[name]
        return sum(1 for mx, my, _ in markers if abs(mx - x) < 8 * font_px and abs(my - y) < 3 * font_px)

    placed: dict[str, tuple[float, tuple]] = {}
    taken: list[tuple[float, ...]] = []
    for name in sorted(labels, key=lambda n: (-crowd(n), -labels[n][1], labels[n][0])):
        x, y = labels[name]
        best: tuple | None = None
        for distance in LABEL_DISTANCES_PX:
            for direction in LABEL_DIRECTIONS:
                box = label_box(x, y, distance, direction, name, font_px)
                size = (box[2] - box[0]) * (box[3] - box[1])
                cost = 10 * sum(_overlap(box, other) for other in [*marker_boxes, *taken]) + size - _overlap(box, area)
                if best is None or cost < best[0]:
                    best = (cost, distance, direction, box)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, distance, direction, box = best
        placed[name] = (distance, direction)
        taken.append(box)
    return placed


def _unit(value: float, low: float, high: float) -> float:
    """Where ``value`` sits on a log axis from ``low`` to ``high``, 0..1."""
    return (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))


def _threads(count: int) -> str:
    return f"{count} thread" + ("" if count == 1 else "s")


def _roof_name(hw: HardwareSpec, measured_roof: bool, roof_threads: int | None) -> str:
    """The legend entry of a roof: this machine as calibrated with the measured points' threads, another
    calibration here (its name states its threads), or a datasheet estimate (a CPU's with the cores it counts)."""
    if measured_roof:
        threads = f" with {_threads(roof_threads)}" if roof_threads else ""
        return f"this machine's roof: measured here{threads} (calibrated)"
    if hw.measured_here:
        return f"{hw.name} roof: peaks measured here"
    facts = cpu_assumption(hw)  # catalog facts only: no file of this machine is read while drawing
    cores = f", all {facts.cores} cores at peak" if facts and facts.cores else ""
    return f"{hw.name} roof: estimated from datasheet{cores}"


@escape_model_names
def roofline_plot(
    df: pd.DataFrame,
    hardware_list: Sequence[HardwareSpec],
    measured: pd.DataFrame | None = None,
    chip: str | None = None,
    presentation: bool = False,
    *,
    measured_roof: HardwareSpec | None = None,
    roof_threads: int | None = None,
) -> go.Figure:
    """Log-log roofline: each picked chip's roof ``min(peak, AI x bandwidth)``, drawn dotted as an estimate; each
    model an open circle at its arithmetic intensity and the attainable FLOP/s on ``chip`` (default: the first
    chip); measured points (achieved FLOP/s = forward FLOPs / measured latency) filled diamonds, compared with
    ``measured_roof`` only: this machine as calibrated with ``roof_threads`` threads, the thread count the
    points ran with (drawn solid). Without it the measured points are drawn and compared with no roof."""
    if not hardware_list and measured_roof is None:
        raise ValueError("roofline_plot: no hardware to draw roofs for")
    chips = {hw.id: hw for hw in hardware_list}
    chip = chip if chip in chips else (hardware_list[0].id if hardware_list else None)
    dtypes = [d for d in df.get("dtype", pd.Series(dtype=object)).dropna().unique()]
    dtype = str(dtypes[0]) if dtypes else "float32"
    data = drawable_rows(df) if len(df) else df
    points = (
        data[data["hardware"] == chip].drop_duplicates("model").sort_values("arithmetic_intensity")
        if chip and len(data)
        else pd.DataFrame(columns=["model", "arithmetic_intensity", "attainable_flops_per_s"])
    )
    measured = measured if measured is not None else measured_points([], {})
    measured = measured.assign(model=measured["model"].astype(str).map(html.escape))
    compared = measured[measured["threads"] == roof_threads] if measured_roof is not None else measured.iloc[0:0]
    roofs = [hw for hw in hardware_list if hw != measured_roof] + ([measured_roof] if measured_roof else [])
    intensities = list(points["arithmetic_intensity"]) + list(measured["arithmetic_intensity"])
    low, high = _roof_range(intensities, roofs, dtype)
    ys = [roof([low], hw.peak_for(dtype), hw.memory_bandwidth_bytes_per_s)[0] for hw in roofs]
    ys += list(points["attainable_flops_per_s"]) + list(measured["achieved_flops_per_s"])
    y_low, y_high = min(ys) / 2.5, max(hw.peak_for(dtype) for hw in roofs) * 2.5  # room for labels
    fig = go.Figure()
    roof_colors = ("#555555", "#9A8C98", "#7FA7C9", "#C9A27F", "#8FBF9F", "#B39DDB", "#BDBDBD")
    for index, hw in enumerate(roofs):
        peak, bandwidth = hw.peak_for(dtype), hw.memory_bandwidth_bytes_per_s
        ridge = peak / bandwidth
        xs = np.unique(np.concatenate([np.geomspace(low, high, ROOF_POINTS), [ridge] if low < ridge < high else []]))
        is_measured, is_chip = hw is measured_roof, hw.id == chip
        name = _roof_name(hw, is_measured, roof_threads)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=roof(xs, peak, bandwidth),
                mode="lines",
                name=name,
                line={
                    "color": "#000000" if is_measured or is_chip else roof_colors[index % len(roof_colors)],
                    "width": 4 if is_measured else (3 if is_chip else 2),
                    "dash": "solid" if is_measured else ("dash" if is_chip else "dot"),
                },
                opacity=1.0 if is_measured or is_chip else 0.55,
                hovertemplate=f"{html.escape(name)}: %{{y:.3s}}FLOP/s at %{{x:.3g}} FLOPs/byte<extra></extra>",
            )
        )
    palette = model_colors(unique_order([*(df["model"] if "model" in df.columns else []), *measured["model"]]))
    if len(points):
        fig.add_trace(
            go.Scatter(
                x=points["arithmetic_intensity"],
                y=points["attainable_flops_per_s"],
                mode="markers",
                name=f"{ESTIMATED} on {chips[chip].name if chip in chips else chip} (open circles)",  # by name
                text=points["model"],
                marker={
                    "size": 2 * ESTIMATED_RADIUS_PX,
                    "symbol": "circle-open",
                    "line": {"width": 3},
                    "color": [palette.get(m, "#000") for m in points["model"]],
                },
                hovertemplate="%{text}: %{x:.3g} FLOPs/byte, %{y:.3s}FLOP/s attainable (estimated)<extra></extra>",
            )
        )
    if len(measured):
        threads = sorted({int(t) for t in measured["threads"].dropna()})
        where = f"this machine, {' or '.join(map(str, threads))} thread{'' if threads == [1] else 's'}"
        fig.add_trace(
            go.Scatter(
                x=measured["arithmetic_intensity"],
                y=measured["achieved_flops_per_s"],
                mode="markers",
                name=f"{MEASURED} ({where if threads else 'this machine'}; diamonds)",
                text=measured["model"],
                marker={
                    "size": 2 * MEASURED_RADIUS_PX,
                    "symbol": "diamond",
                    "color": [palette.get(m, "#000") for m in measured["model"]],
                    "line": {"width": 1, "color": "#000"},
                },
                hovertemplate="%{text}: %{x:.3g} FLOPs/byte, %{y:.3s}FLOP/s achieved (measured)<extra></extra>",
            )
        )
    _label_points(fig, points, measured, (low, high), (y_low, y_high), presentation)
    fig.update_xaxes(
        type="log", range=[math.log10(low), math.log10(high)], title_text="Arithmetic intensity (FLOPs/byte), log scale"
    )
    fig.update_yaxes(
        type="log",
        range=[math.log10(y_low), math.log10(y_high)],
        exponentformat="SI",
        title_text="FLOP/s (attainable, or achieved when measured), log scale",
    )
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}, height=HEIGHT_PX)
    caption = _caption(points, chips.get(chip), measured, compared, measured_roof, roof_threads, dtype)
    if any(not hw.measured_here for hw in roofs):
        caption += " Roofs drawn from datasheet figures (dotted, dashed) are estimates, not measurements."
    on = chips[chip].name if chip in chips else chip
    title = f"Roofline: models on {on}, every chip's roof" if chip else "Roofline: measured on this machine"
    return finish_figure(fig, setup_rows(df), title, caption, presentation, kind="hw_roofline", chip=chip)


def _label_points(
    fig: go.Figure,
    points: pd.DataFrame,
    measured: pd.DataFrame,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    presentation: bool,
) -> None:
    """One label per model, at its estimated point (else its measured one), as an annotation placed by
    :func:`label_layout`; every point of the chart is an obstacle."""
    width, height = PLOT_PX
    font = PRESENTATION_FONT_PX if presentation else BASE_FONT_PX

    def px(x: float, y: float) -> tuple[float, float]:
        return _unit(x, *x_range) * width, _unit(y, *y_range) * height

    at: dict[str, tuple[float, float]] = {}
    for row in points.itertuples():
        at.setdefault(str(row.model), (row.arithmetic_intensity, row.attainable_flops_per_s))
    for row in measured.itertuples():
        at.setdefault(str(row.model), (row.arithmetic_intensity, row.achieved_flops_per_s))
    markers = [
        (*px(r.arithmetic_intensity, r.attainable_flops_per_s), ESTIMATED_RADIUS_PX) for r in points.itertuples()
    ]
    markers += [
        (*px(r.arithmetic_intensity, r.achieved_flops_per_s), MEASURED_RADIUS_PX) for r in measured.itertuples()
    ]
    layout = label_layout({name: px(*xy) for name, xy in at.items()}, markers, font)
    for name, (distance, (dx, dy, xanchor, yanchor)) in layout.items():
        x, y = at[name]
        far = distance > LABEL_DISTANCES_PX[0]
        fig.add_annotation(
            x=math.log10(x),
            y=math.log10(y),
            text=name,
            showarrow=True,
            arrowhead=0,
            arrowwidth=1 if far else 0.1,
            arrowcolor="#777777" if far else "rgba(0,0,0,0)",
            ax=dx * distance,
            ay=-dy * distance,
            xanchor=xanchor,
            yanchor=yanchor,
            font={"size": font},
            bgcolor="rgba(255,255,255,0.75)",
        )


def _caption(
    points: pd.DataFrame,
    hw: HardwareSpec | None,
    measured: pd.DataFrame,
    compared: pd.DataFrame,
    measured_roof: HardwareSpec | None,
    roof_threads: int | None,
    dtype: str,
) -> str:
    """What to notice, from the numbers drawn: where the estimated points sit against their chip's ridge, and how
    close the measured points come to this machine's own calibrated roof (never another chip's)."""
    sentences = []
    if hw is not None and len(points):
        ridge = hw.peak_for(dtype) / hw.memory_bandwidth_bytes_per_s
        below = int((points["arithmetic_intensity"] < ridge).sum())
        sentences.append(
            f"Estimated on {hw.name} (ridge at {ridge:.3g} FLOPs/byte, {dtype}): {below} of {len(points)} models sit "
            "left of the ridge, memory-bound there, so FLOPs do not predict their speed."
        )
    elif hw is not None:
        sentences.append(f"No model has an estimate on {hw.name}; the roofs show each chip's peak and bandwidth.")
    if len(compared) and measured_roof is not None:
        peak, bandwidth = measured_roof.peak_for(dtype), measured_roof.memory_bandwidth_bytes_per_s
        share = compared["achieved_flops_per_s"] / roof(compared["arithmetic_intensity"], peak, bandwidth)
        sentences.append(
            f"Measured here with {_threads(roof_threads)}, the models reach "
            f"{float(np.median(share)):.0%} (median) of this machine's roof calibrated with the same threads "
            f"({units.flops_per_s(peak)} peak at {dtype}, {units.rate(bandwidth, 'B/s')} copy bandwidth)."
        )
    if len(measured) > len(compared):
        threads = sorted({int(t) for t in measured.loc[~measured.index.isin(compared.index), "threads"].dropna()})
        counts = " or ".join(map(str, threads)) or "an unknown number of"
        sentences.append(
            f"{len(measured) - len(compared)} measured point(s) ran with {counts} thread(s), and this machine has no "
            "calibration at that thread count: they are drawn but compared with no roof (calibrate to compare)."
        )
    return " ".join(sentences)
