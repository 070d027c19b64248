"""The roofline chart: each model at its arithmetic intensity under every picked chip's roof, with the points
measured on this machine drawn apart. Conventions as in :mod:`efficiency.charts.hardware`; the table it reads is
built by :mod:`efficiency.analysis.hardware`."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.hardware import ESTIMATED, MEASURED, drawable_rows, unique_order
from efficiency.charts.hardware import setup_rows
from efficiency.charts.style import escape_model_names, finish_figure, label_positions, model_colors
from efficiency.specs import HardwareSpec

ROOF_POINTS = 60


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

    ``rows``: dicts with ``model`` (id), ``latency_ms`` (a number or ``{"median": ...}``); ``profiles``: per
    model id, ``flops`` (forward FLOPs), ``arithmetic_intensity`` and ``name``. Rows without both are skipped.
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
            }
        )
    return pd.DataFrame.from_records(
        records,
        columns=["model", "model_id", "arithmetic_intensity", "achieved_flops_per_s", "latency_ms", "hardware"],
    )


@escape_model_names
def roofline_plot(
    df: pd.DataFrame,
    hardware_list: Sequence[HardwareSpec],
    measured: pd.DataFrame | None = None,
    chip: str | None = None,
    presentation: bool = False,
) -> go.Figure:
    """Log-log roofline: each chip's roof ``min(peak, AI x bandwidth)``; each model a point at its arithmetic
    intensity and the attainable FLOP/s on ``chip`` (default: the first chip); measured points (achieved
    FLOP/s = forward FLOPs / measured latency) drawn as filled diamonds labelled "measured"."""
    if not hardware_list:
        raise ValueError("roofline_plot: no hardware to draw roofs for")
    chips = {hw.id: hw for hw in hardware_list}
    chip = chip if chip in chips else hardware_list[0].id
    dtypes = [d for d in df.get("dtype", pd.Series(dtype=object)).dropna().unique()]
    dtype = str(dtypes[0]) if dtypes else "float32"
    data = drawable_rows(df)
    points = data[data["hardware"] == chip].drop_duplicates("model").sort_values("arithmetic_intensity")
    if measured is not None and len(measured):
        measured = measured.assign(model=measured["model"].astype(str).map(html.escape))
    intensities = list(data["arithmetic_intensity"]) + (
        list(measured["arithmetic_intensity"]) if measured is not None else []
    )
    low, high = _roof_range(intensities, hardware_list, dtype)
    fig = go.Figure()
    roof_colors = ("#555555", "#9A8C98", "#7FA7C9", "#C9A27F", "#8FBF9F", "#B39DDB", "#BDBDBD")
    chip_colors = {
        hw.id: roof_colors[i % len(roof_colors)] for i, hw in enumerate(h for h in hardware_list if h.id != chip)
    }
    chip_colors[chip] = "#000000"
    for hw in hardware_list:
        peak, bandwidth = hw.peak_for(dtype), hw.memory_bandwidth_bytes_per_s
        ridge = peak / bandwidth
        xs = np.unique(np.concatenate([np.geomspace(low, high, ROOF_POINTS), [ridge] if low < ridge < high else []]))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=roof(xs, peak, bandwidth),
                mode="lines",
                name=f"{hw.id} roof",
                line={
                    "color": chip_colors[hw.id],
                    "width": 4 if hw.id == chip else 2,
                    "dash": "solid" if hw.id == chip else "dot",
                },
                opacity=1.0 if hw.id == chip else 0.55,
                hovertemplate=f"{html.escape(hw.id)}: %{{y:.3s}}FLOP/s at %{{x:.3g}} FLOPs/byte<extra></extra>",
            )
        )
    palette = model_colors(unique_order(df["model"]))
    if len(points):
        positions = label_positions(points["arithmetic_intensity"], points["attainable_flops_per_s"], True, True)
        fig.add_trace(
            go.Scatter(
                x=points["arithmetic_intensity"],
                y=points["attainable_flops_per_s"],
                mode="markers+text",
                name=f"{ESTIMATED} on {chip}",
                text=points["model"],
                textposition=[positions[i] for i in points.index],
                marker={
                    "size": 16,
                    "symbol": "circle-open",
                    "line": {"width": 3},
                    "color": [palette.get(m, "#000") for m in points["model"]],
                },
                hovertemplate="%{text}: %{x:.3g} FLOPs/byte, %{y:.3s}FLOP/s attainable (estimated)<extra></extra>",
            )
        )
    if measured is not None and len(measured):
        fig.add_trace(
            go.Scatter(
                x=measured["arithmetic_intensity"],
                y=measured["achieved_flops_per_s"],
                mode="markers+text",
                name=f"{MEASURED} ({', '.join(unique_order(measured['hardware']))})",
                text=measured["model"],
                textposition="middle left",
                marker={
                    "size": 15,
                    "symbol": "diamond",
                    "color": [palette.get(m, "#000") for m in measured["model"]],
                    "line": {"width": 1, "color": "#000"},
                },
                hovertemplate="%{text}: %{x:.3g} FLOPs/byte, %{y:.3s}FLOP/s achieved (measured)<extra></extra>",
            )
        )
    fig.update_xaxes(
        type="log", range=[math.log10(low), math.log10(high)], title_text="Arithmetic intensity (FLOPs/byte), log scale"
    )
    fig.update_yaxes(type="log", exponentformat="SI", title_text="Attainable FLOP/s (FLOP/s), log scale")
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}, height=620)
    hw = chips[chip]
    ridge = hw.peak_for(dtype) / hw.memory_bandwidth_bytes_per_s
    if len(points):
        below = int((points["arithmetic_intensity"] < ridge).sum())
        caption = (
            f"On {chip} (ridge at {ridge:.3g} FLOPs/byte, {dtype}) {below} of {len(points)} models sit left of the "
            f"ridge: memory-bound, so FLOPs do not predict their speed there."
        )
    else:
        caption = f"No model has an estimate on {chip}; the roofs show each chip's peak and bandwidth at {dtype}."
    if measured is not None and len(measured):
        share = []
        for row in measured.itertuples():
            match = points[points["model"] == row.model]
            if len(match):
                share.append(row.achieved_flops_per_s / float(match["attainable_flops_per_s"].iloc[0]))
        if share:
            caption += f" Measured points reach {np.median(share):.0%} of the estimated attainable FLOP/s (median)."
    return finish_figure(
        fig,
        setup_rows(df),
        f"Roofline: models on {chip}, every chip's roof",
        caption,
        presentation,
        kind="hw_roofline",
        chip=chip,
    )
