"""Plotly figures of latency across hardware: estimate (and measured) rows in, ``go.Figure`` out (no streamlit).

Same conventions as :mod:`efficiency.charts.compare`: a title, the setup as subtitle, axis titles with units, a
"what to notice" caption computed from the numbers in ``fig.layout.meta["caption"]`` (read it with
:func:`efficiency.charts.style.caption`), and a ``presentation`` flag for talks. Each latency is either an
*estimate* (roofline on datasheet figures) or *measured* (timed on real hardware), and every cell, point
and caption says which. The input table, its ranks and flips come from :mod:`efficiency.analysis.hardware`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.hardware import (
    ESTIMATED,
    MEASURED,
    chip_name,
    cpu_figures_note,
    describe_latency_flip,
    drawable_rows,
    hardware_ranks,
    how_text,
    latency_flips,
    latency_matrix,
    obtained_by_cell,
)
from efficiency.charts.style import BASE_FONT_PX, PRESENTATION_FONT_PX, escape_model_names, finish_figure, model_colors


def _kinds(df: pd.DataFrame) -> set[str]:
    """Which kinds of latency the drawable rows hold."""
    data = drawable_rows(df)
    return set(data["obtained"]) if "obtained" in data.columns and len(data) else {ESTIMATED}


def setup_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The subtitle source: every chip is on an axis already, so the setup line leaves hardware out."""
    return df.drop(columns=["hardware"], errors="ignore")


def _font(presentation: bool) -> int:
    return PRESENTATION_FONT_PX if presentation else BASE_FONT_PX


# ---------------------------------------------------------------- heatmap


def _fits_lookup(df: pd.DataFrame) -> dict[tuple[str, str], bool]:
    if "fits" not in df.columns:
        return {}
    return {(str(r.model), str(r.hardware)): bool(r.fits) for r in df.itertuples() if pd.notna(r.fits)}


def _cell_texts(df: pd.DataFrame, matrix: pd.DataFrame) -> tuple[list[list[str]], list[list[str]]]:
    """Each cell's text (its value; "measured" under a measured one; "does not fit") and its hover line."""
    fits, obtained = _fits_lookup(df), obtained_by_cell(df)
    text, hover = [], []
    for model in matrix.index:
        line, hover_line = [], []
        for chip in matrix.columns:
            value = matrix.loc[model, chip]
            how = obtained.get((model, chip), ESTIMATED)
            label = "n/a" if pd.isna(value) else units.duration(value)
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
            x=[chip_name(c) for c in matrix.columns],
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
                "ticktext": [units.duration(10.0**e) for e in ticks],
            },
            hovertemplate="%{y} on %{x}: %{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    measured_only = kinds == {MEASURED}
    fig.update_xaxes(title_text="Hardware", side="bottom")
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
    fastest_chip = chip_name(matrix.min(axis=0).idxmin())
    slowest_chip = chip_name(matrix.max(axis=0).idxmax())
    spread = matrix.max().max() / matrix.min().min()
    unfit = sum(1 for ok in fits.values() if not ok)
    obtained = obtained_by_cell(df)
    cells = [(m, c) for m in matrix.index for c in matrix.columns if pd.notna(matrix.loc[m, c])]
    measured = sum(1 for cell in cells if obtained.get(cell) == MEASURED)
    kind = "Estimated latencies" if not measured else "Latencies"
    caption = (
        f"{kind} span {spread:.0f}x, from {units.duration(matrix.min().min())} on {fastest_chip} "
        f"to {units.duration(matrix.max().max())} on {slowest_chip}."
    )
    if measured == len(cells):
        caption += f" All {measured} cells measured."
    elif measured:
        caption += f" {measured} of {len(cells)} cells measured, the others estimated (roofline)."
    if unfit:
        caption += f" {unfit} model x chip pair{'s' if unfit > 1 else ''} do not fit in memory."
    note = cpu_figures_note(df)
    return f"{caption} {note}" if note else caption


# ---------------------------------------------------------------- ranks across chips


@escape_model_names
def hardware_rank_chart(df: pd.DataFrame, presentation: bool = False) -> go.Figure:
    """Bump chart: x = hardware, y = each model's rank by latency on it (1 at top); crossing lines are
    rankings that flip from one hardware to another. Estimated points are open circles, measured ones filled."""
    ranked = hardware_ranks(df)
    if ranked.empty:
        raise ValueError("hardware_rank_chart: no latencies to rank")
    matrix, obtained, kinds = latency_matrix(df), obtained_by_cell(df), _kinds(df)
    chips = list(ranked.columns)
    fig = go.Figure()
    for model, color in model_colors(list(ranked.index)).items():
        row = ranked.loc[model]
        ys = [None if pd.isna(row[c]) else float(row[c]) for c in chips]
        last = max((i for i, c in enumerate(chips) if pd.notna(row[c])), default=0)
        how = [obtained.get((model, c), ESTIMATED) for c in chips]
        hover = [
            f"{model}<br>{chip_name(c)}: rank {row[c]:g}, {units.duration(matrix.loc[model, c])} ({h})"
            if pd.notna(row[c])
            else f"{model}<br>{chip_name(c)}: n/a"
            for c, h in zip(chips, how)
        ]
        fig.add_trace(
            go.Scatter(
                x=[chip_name(c) for c in chips],
                y=ys,
                name=f"{model} ({how_text({h for h, y in zip(how, ys) if y is not None})})",
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
    x_title = "Hardware" if kinds == {ESTIMATED} else "Hardware (filled: measured, open: estimated)"
    fig.update_xaxes(title_text=x_title, type="category", range=[-0.3, len(chips) - 0.7], showgrid=False)
    fig.update_yaxes(autorange="reversed", dtick=1, title_text=f"Rank (1 = fastest of {len(ranked)})")
    flips = latency_flips(df)
    if flips:
        caption = describe_latency_flip(flips[0]) + " Crossing lines are rankings that flip between hardware."
    elif len(chips) < 2:
        caption = "One hardware: pick another to see whether the ranking holds across hardware."
    else:
        caption = f"No lines cross: every hardware orders these {len(ranked)} models the same way ({how_text(kinds)})."
    longest = max(len(str(m)) for m in ranked.index)
    fig.update_layout(showlegend=False, margin_r=30 + 0.6 * longest * _font(presentation))
    fig.update_layout(height=max(380, 160 + 50 * len(ranked)))
    title = "Rank by estimated latency on each chip"
    if kinds != {ESTIMATED}:
        title = f"Rank by latency on each hardware ({how_text(kinds)})"
    return finish_figure(fig, setup_rows(df), title, caption, presentation, kind="hw_rank", flips=len(flips))
