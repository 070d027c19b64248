"""Plotly figures of latency across hardware: estimate (and measured) rows in, ``go.Figure`` out (no streamlit).

Same conventions as :mod:`efficiency.charts.compare`: a title, the setup as subtitle, axis titles with units, a
"what to notice" caption computed from the numbers in ``fig.layout.meta["caption"]`` (read it with
:func:`efficiency.charts.style.caption`), and a ``presentation`` flag for talks. Each latency is either an
*estimate* (roofline on datasheet figures) or *measured* (timed on real hardware), and every cell, point
and caption says which.

The input table has one row per model x hardware, as :func:`estimate_table` builds it from
:func:`efficiency.hardware.roofline.estimate_rows`: ``model`` (display name), ``hardware`` (chip id),
``estimated_latency_ms``, ``fits``, ``bound``, ``arithmetic_intensity``, ``attainable_flops_per_s`` and
the setup columns (``dtype``, ``batch_size``, ``seq_len``, ``image_size``); ``latency_ms`` and ``obtained``
("estimated" / "measured") let :func:`with_measured` add measured rows that the heatmap and ranks draw too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.rankings import format_ms
from efficiency.charts.style import BASE_FONT_PX, PRESENTATION_FONT_PX, escape_model_names, finish_figure, model_colors

ESTIMATED = "estimated"
MEASURED = "measured"
LATENCY = "estimated_latency_ms"
SETUP_FIELDS = ("dtype", "batch_size", "seq_len", "image_size")


# ---------------------------------------------------------------- table


def estimate_table(rows: Iterable[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Estimate rows (``Estimate.to_dict`` or error rows) -> one flat row per model x chip.

    ``model_id`` keeps the id; ``model`` becomes the display name from ``names`` where given. The workload
    dict is spread into the setup columns; error rows keep their ``error`` and NaN numbers.
    """
    records = []
    for row in rows:
        record = {k: v for k, v in row.items() if k != "workload"}
        workload = row.get("workload") or {}
        for name in SETUP_FIELDS:
            record.setdefault(name, workload.get(name))
        record["model_id"] = str(row.get("model"))
        record["model"] = (names or {}).get(record["model_id"], record["model_id"])
        record["estimated"] = True
        record["obtained"] = ESTIMATED
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in (LATENCY, "arithmetic_intensity", "attainable_flops_per_s", "peak_flops_per_s"):
        if column not in frame.columns:
            frame[column] = np.nan
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["latency_ms"] = frame[LATENCY]
    if "error" not in frame.columns:
        frame["error"] = None
    return frame


def with_measured(estimates: pd.DataFrame, measured: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The estimate table with measured rows first: one per model x measured hardware.

    Each measured row: ``model_id``, ``model`` (display name), ``hardware`` (its column, e.g. "test-a
    (measured)"), ``latency_ms`` (a number or ``{"median": ...}``), ``how`` (where and on what it was
    measured) and ``workload``. Its ``estimated_latency_ms`` stays empty: no number changes kind.
    """
    records = []
    for row in measured:
        latency = row.get("latency_ms")
        latency = latency.get("median") if isinstance(latency, Mapping) else latency
        workload = row.get("workload") or {}
        records.append(
            {
                "model_id": str(row.get("model_id")),
                "model": str(row.get("model") or row.get("model_id")),
                "hardware": str(row.get("hardware")),
                "latency_ms": pd.to_numeric(latency, errors="coerce"),
                "how": row.get("how"),
                "obtained": MEASURED,
                "estimated": False,
                "error": None,
                **{name: workload.get(name) for name in SETUP_FIELDS},
            }
        )
    if not records:
        return estimates
    if estimates.empty:
        return pd.DataFrame.from_records(records)
    return pd.concat([pd.DataFrame.from_records(records), estimates], ignore_index=True)


def _latency(df: pd.DataFrame) -> pd.Series:
    """Each row's latency in ms, estimated or measured (tables built before ``latency_ms`` have estimates only)."""
    return pd.to_numeric(df["latency_ms"] if "latency_ms" in df.columns else df[LATENCY], errors="coerce")


def drawable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable latency (error rows are reported by the page, not drawn)."""
    data = df[_latency(df) > 0].assign(latency_ms=_latency(df))
    if "error" in data.columns:
        data = data[data["error"].isna()]
    return data


def _obtained(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(model, hardware) -> "measured" / "estimated"; a table without ``obtained`` is all estimates."""
    if "obtained" not in df.columns:
        return {}
    return {(str(r.model), str(r.hardware)): str(r.obtained) for r in df.itertuples() if isinstance(r.obtained, str)}


def _kinds(df: pd.DataFrame) -> set[str]:
    """Which kinds of latency the drawable rows hold."""
    data = drawable_rows(df)
    return set(data["obtained"]) if "obtained" in data.columns and len(data) else {ESTIMATED}


def setup_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The subtitle source: every chip is on an axis already, so the setup line leaves hardware out."""
    return df.drop(columns=["hardware"], errors="ignore")


def unique_order(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def latency_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Models (rows, input order) x hardware (columns, input order) of latency in ms, estimated or measured."""
    data = drawable_rows(df)
    matrix = data.pivot_table(index="model", columns="hardware", values="latency_ms", aggfunc="first")
    return matrix.reindex(index=unique_order(data["model"]), columns=unique_order(data["hardware"]))


def hardware_ranks(df: pd.DataFrame) -> pd.DataFrame:
    """Rank of each model (rows) on each hardware (columns) by latency; 1 = fastest."""
    return latency_matrix(df).rank(axis=0, method="min")


def latency_flips(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every (model pair, hardware pair) whose order by latency reverses, most striking first.

    Each flip: ``model_a`` faster than ``model_b`` on ``chip_a`` and slower on ``chip_b``, with the four
    latencies and ``how`` ("estimated", "measured" or "measured and estimated"); "striking" = the product of
    the two speed ratios.
    """
    matrix = latency_matrix(df)
    obtained = _obtained(df)
    flips = []
    for a, b in combinations(matrix.index, 2):
        for chip_1, chip_2 in combinations(matrix.columns, 2):
            a1, b1, a2, b2 = (matrix.loc[m, c] for m, c in ((a, chip_1), (b, chip_1), (a, chip_2), (b, chip_2)))
            if any(pd.isna(v) for v in (a1, b1, a2, b2)) or (a1 - b1) * (a2 - b2) >= 0:
                continue
            fast, slow = (a, b) if a1 < b1 else (b, a)
            lat = {(a, chip_1): a1, (b, chip_1): b1, (a, chip_2): a2, (b, chip_2): b2}
            flips.append(
                {
                    "model_a": fast,
                    "model_b": slow,
                    "chip_a": chip_1,
                    "chip_b": chip_2,
                    "a_on_chip_a_ms": lat[(fast, chip_1)],
                    "b_on_chip_a_ms": lat[(slow, chip_1)],
                    "a_on_chip_b_ms": lat[(fast, chip_2)],
                    "b_on_chip_b_ms": lat[(slow, chip_2)],
                    "strength": (lat[(slow, chip_1)] / lat[(fast, chip_1)])
                    * (lat[(fast, chip_2)] / lat[(slow, chip_2)]),
                    "how": _how({obtained.get(cell, ESTIMATED) for cell in lat}),
                }
            )
    return sorted(flips, key=lambda flip: -flip["strength"])


def _how(kinds: set[str]) -> str:
    return " and ".join(sorted(kinds, reverse=True)) if kinds else ESTIMATED  # "measured and estimated"


def describe_latency_flip(flip: Mapping[str, Any]) -> str:
    """ "On h100-sxm A is faster than B (0.56 ms vs 1.53 ms); on raspberry-pi-5 B is faster (18.5 ms vs 76.2 ms),
    estimated." """
    return (
        f"On {flip['chip_a']} {flip['model_a']} is faster than {flip['model_b']} "
        f"({format_ms(flip['a_on_chip_a_ms'])} vs {format_ms(flip['b_on_chip_a_ms'])}); "
        f"on {flip['chip_b']} {flip['model_b']} is faster "
        f"({format_ms(flip['b_on_chip_b_ms'])} vs {format_ms(flip['a_on_chip_b_ms'])}), {flip.get('how', ESTIMATED)}."
    )


def _font(presentation: bool) -> int:
    return PRESENTATION_FONT_PX if presentation else BASE_FONT_PX


# ---------------------------------------------------------------- heatmap


def _fits_lookup(df: pd.DataFrame) -> dict[tuple[str, str], bool]:
    if "fits" not in df.columns:
        return {}
    return {(str(r.model), str(r.hardware)): bool(r.fits) for r in df.itertuples() if pd.notna(r.fits)}


def _cell_texts(df: pd.DataFrame, matrix: pd.DataFrame) -> tuple[list[list[str]], list[list[str]]]:
    """Each cell's text (its value; "measured" under a measured one; "does not fit") and its hover line."""
    fits, obtained = _fits_lookup(df), _obtained(df)
    text, hover = [], []
    for model in matrix.index:
        line, hover_line = [], []
        for chip in matrix.columns:
            value = matrix.loc[model, chip]
            how = obtained.get((model, chip), ESTIMATED)
            label = "n/a" if pd.isna(value) else format_ms(value)
            hover_line.append(f"{label} ({how})" if pd.notna(value) else label)
            if how == MEASURED and pd.notna(value):
                label += f"<br>{MEASURED}"
            if not fits.get((model, chip), True):
                label += "<br>does not fit"
                hover_line[-1] += ", does not fit in its memory"
            line.append(label)
        text.append(line)
        hover.append(hover_line)
    return text, hover


@escape_model_names
def latency_heatmap(df: pd.DataFrame, presentation: bool = False) -> go.Figure:
    """Models x hardware, latency in ms on a log colour scale, each cell annotated with its value; a measured
    cell says "measured" (the others are estimates); a cell whose model does not fit in the chip's memory
    says "does not fit"."""
    matrix = latency_matrix(df)
    if matrix.empty:
        raise ValueError("latency_heatmap: no latencies to draw")
    fits, kinds = _fits_lookup(df), _kinds(df)
    z = matrix.to_numpy(dtype=float)
    logs = np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.nan)
    text, hover = _cell_texts(df, matrix)
    finite = logs[np.isfinite(logs)]
    low, high = float(np.floor(finite.min())), float(np.ceil(finite.max()))
    high = high if high > low else low + 1
    ticks = [e for e in np.arange(low, high + 1)]
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isnan(logs), None, logs).tolist(),
            x=list(matrix.columns),
            y=list(matrix.index),
            zmin=low,
            zmax=high,
            colorscale="Viridis",
            reversescale=True,
            text=text,
            texttemplate="%{text}",
            textfont={"size": _font(presentation)},
            customdata=hover,
            colorbar={
                "title": {
                    "text": f"{'Estimated l' if kinds == {ESTIMATED} else 'L'}atency (ms), log scale",
                    "side": "right",
                },
                "tickvals": ticks,
                "ticktext": [format_ms(10.0**e) for e in ticks],
            },
            hovertemplate="%{y} on %{x}: %{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    measured_only = kinds == {MEASURED}
    fig.update_xaxes(title_text="Hardware" if MEASURED in kinds else "Hardware (chip id)", side="bottom")
    fig.update_yaxes(title_text="Model", autorange="reversed")
    fig.update_layout(height=max(360, 140 + 48 * len(matrix)))
    if kinds == {ESTIMATED}:
        title = "Estimated latency per model and chip (roofline)"
    else:
        title = "Measured latency per model and hardware" + ("" if measured_only else ", and estimated (roofline)")
    return finish_figure(
        fig, setup_rows(df), title, _heatmap_caption(df, matrix, fits), presentation, kind="hw_heatmap"
    )


def _heatmap_caption(df: pd.DataFrame, matrix: pd.DataFrame, fits: dict[tuple[str, str], bool]) -> str:
    fastest_chip = matrix.min(axis=0).idxmin()
    slowest_chip = matrix.max(axis=0).idxmax()
    spread = matrix.max().max() / matrix.min().min()
    unfit = sum(1 for ok in fits.values() if not ok)
    obtained = _obtained(df)
    cells = [(m, c) for m in matrix.index for c in matrix.columns if pd.notna(matrix.loc[m, c])]
    measured = sum(1 for cell in cells if obtained.get(cell) == MEASURED)
    kind = "Estimated latencies" if not measured else "Latencies"
    caption = (
        f"{kind} span {spread:.0f}x, from {format_ms(matrix.min().min())} on {fastest_chip} "
        f"to {format_ms(matrix.max().max())} on {slowest_chip}."
    )
    if measured == len(cells):
        caption += f" All {measured} cells measured."
    elif measured:
        caption += f" {measured} of {len(cells)} cells measured, the others estimated (roofline)."
    if unfit:
        caption += f" {unfit} model x chip pair{'s' if unfit > 1 else ''} do not fit in memory."
    return caption


# ---------------------------------------------------------------- ranks across chips


@escape_model_names
def hardware_rank_chart(df: pd.DataFrame, presentation: bool = False) -> go.Figure:
    """Bump chart: x = hardware, y = each model's rank by latency on it (1 at top); crossing lines are
    rankings that flip from one hardware to another. Estimated points are open circles, measured ones filled."""
    ranked = hardware_ranks(df)
    if ranked.empty:
        raise ValueError("hardware_rank_chart: no latencies to rank")
    matrix, obtained, kinds = latency_matrix(df), _obtained(df), _kinds(df)
    chips = list(ranked.columns)
    fig = go.Figure()
    for model, color in model_colors(list(ranked.index)).items():
        row = ranked.loc[model]
        ys = [None if pd.isna(row[c]) else float(row[c]) for c in chips]
        last = max((i for i, c in enumerate(chips) if pd.notna(row[c])), default=0)
        how = [obtained.get((model, c), ESTIMATED) for c in chips]
        hover = [
            f"{model}<br>{c}: rank {row[c]:g}, {format_ms(matrix.loc[model, c])} ({h})"
            if pd.notna(row[c])
            else f"{model}<br>{c}: n/a"
            for c, h in zip(chips, how)
        ]
        fig.add_trace(
            go.Scatter(
                x=chips,
                y=ys,
                name=f"{model} ({_how({h for h, y in zip(how, ys) if y is not None})})",
                mode="lines+markers+text",
                line={"color": color, "width": 4, "dash": "solid" if kinds == {MEASURED} else "dash"},
                marker={
                    "size": 13,
                    "symbol": ["circle" if h == MEASURED else "circle-open" for h in how],
                    "line": {"width": 3, "color": color},
                    "color": color,
                },
                text=[model if i == last else "" for i in range(len(chips))],
                textposition="middle right",
                textfont={"color": color},
                cliponaxis=False,
                hovertext=hover,
                hoverinfo="text",
            )
        )
    x_title = "Hardware (chip id)" if kinds == {ESTIMATED} else "Hardware (filled: measured, open: estimated)"
    fig.update_xaxes(title_text=x_title, type="category", range=[-0.3, len(chips) - 0.7], showgrid=False)
    fig.update_yaxes(autorange="reversed", dtick=1, title_text=f"Rank (1 = fastest of {len(ranked)})")
    flips = latency_flips(df)
    if flips:
        caption = describe_latency_flip(flips[0]) + " Crossing lines are rankings that flip between hardware."
    elif len(chips) < 2:
        caption = "One hardware: pick another to see whether the ranking holds across hardware."
    else:
        caption = f"No lines cross: every hardware orders these {len(ranked)} models the same way ({_how(kinds)})."
    longest = max(len(str(m)) for m in ranked.index)
    fig.update_layout(showlegend=False, margin_r=30 + 0.6 * longest * _font(presentation))
    fig.update_layout(height=max(380, 160 + 50 * len(ranked)))
    title = "Rank by estimated latency on each chip"
    if kinds != {ESTIMATED}:
        title = f"Rank by latency on each hardware ({_how(kinds)})"
    return finish_figure(fig, setup_rows(df), title, caption, presentation, kind="hw_rank", flips=len(flips))
