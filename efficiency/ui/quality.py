"""Compare's "Quality vs cost" tab: quality against each cost indicator, the Pareto frontier in each panel.

Quality comes from the bundled, sourced figures (:mod:`efficiency.models.quality`) or from the visitor, who may
type a figure for any model in view: marked "given by the user" wherever it appears, never mixed up with a
published one, and kept with that model's stored results, so a later visit finds it. The tab offers the
benchmarks that at least two models in view share; a model without a figure on the picked benchmark is left off
the chart and named under it. An estimated-latency panel (roofline, on a picked chip) is drawn beside the
counted and measured ones and marked as estimated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from efficiency.charts.frontier import DEFAULT_PANELS, frontier_chart
from efficiency.hardware import get_hardware
from efficiency.models.quality import USER_SOURCE, Benchmark, benchmarks, figures_for
from efficiency.results import Result
from efficiency.specs import Workload
from efficiency.store.schema import StoreError
from efficiency.ui import common, runs

BENCH_KEY = "cmp_bench"
CHIP_KEY = "cmp_qchip"
USER_KEY = "cmp_quality_user"  # model id -> {benchmark id: value}, typed on this page
RESULTS_KEY = "cmp_results_in_view"  # the results the page drew (set by efficiency.ui.compare), with store ids
NO_CHIP = "none"
ESTIMATE_COLUMN = "estimated_latency_ms"


def figures_in_view(df: pd.DataFrame, user: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, tuple]]:
    """Benchmark -> model id -> (value, source) for the models in view: the bundled figures, and over them the
    visitor's own (source "given by the user")."""
    found: dict[str, dict[str, tuple]] = {}
    for model_id in dict.fromkeys(df["model_id"]):
        for figure in figures_for(model_id):
            found.setdefault(figure.benchmark, {})[model_id] = (figure.value, f"{figure.table}; {figure.source}")
        for benchmark, value in (user.get(model_id) or {}).items():
            found.setdefault(benchmark, {})[model_id] = (value, USER_SOURCE)
    return found


def shared_benchmarks(figures: Mapping[str, Mapping[str, tuple]]) -> list[str]:
    """Benchmarks at least two models in view carry, the most widely shared first."""
    shared = [b for b, by_model in figures.items() if len(by_model) >= 2]
    return sorted(shared, key=lambda b: (-len(figures[b]), b))


def stored_user_figures(results: Sequence[Result]) -> dict[str, dict[str, float]]:
    """The visitor's figures kept with the results in view (source "given by the user"), by model id."""
    found: dict[str, dict[str, float]] = {}
    for result in results:
        for figure in result.quality or []:
            if figure.get("source") == USER_SOURCE:
                found.setdefault(result.model, {})[str(figure["benchmark"])] = float(figure["value"])
    return found


def with_user_figure(quality: list[dict] | None, benchmark: str, value: float | None) -> list[dict]:
    """``quality`` with the user's figure on ``benchmark`` replaced by ``value`` (None: removed); published figures
    are kept as they are."""
    kept = [f for f in quality or [] if not (f.get("source") == USER_SOURCE and f.get("benchmark") == benchmark)]
    if value is None:
        return kept
    bench = benchmark_of(benchmark)
    return [*kept, {"benchmark": benchmark, "value": value, "unit": bench.unit, "source": USER_SOURCE}]


def keep_user_figure(model_id: str, benchmark: str, value: float | None) -> str | None:
    """Store the visitor's figure with every stored result of ``model_id`` in view; an error line, or None."""
    store = common.open_store()
    if store is None:
        return "not stored: no results store"
    for result in st.session_state.get(RESULTS_KEY) or []:
        if result.model == model_id and result.store_id is not None:
            try:
                store.set_quality(result.store_id, with_user_figure(result.quality, benchmark, value))
            except (StoreError, ValueError) as error:
                return f"not stored: {common.one_line(error)}"
    return None


def benchmark_of(benchmark: str) -> Benchmark:
    """A bundled benchmark, or a user's own name (higher is better, no unit)."""
    return benchmarks().get(benchmark) or Benchmark(benchmark, f"{benchmark} (given by the user)", "", True)


def quality_frame(
    df: pd.DataFrame, figures: Mapping[str, Mapping[str, tuple]], benchmark: str, estimates: Mapping[str, float]
) -> pd.DataFrame:
    """The rows in view that carry a figure on ``benchmark``: their costs, ``quality`` and ``quality_source``, and
    ``estimated_latency_ms`` where an estimate was made."""
    scores = figures.get(benchmark, {})
    table = df[df["model_id"].isin(scores)].copy()
    table["quality"] = [scores[m][0] for m in table["model_id"]]
    table["quality_source"] = [scores[m][1] for m in table["model_id"]]
    if estimates:
        table[ESTIMATE_COLUMN] = [estimates.get(m, math.nan) for m in table["model_id"]]
    return table


def quality_figure(table: pd.DataFrame, benchmark: str, chip_name: str | None) -> go.Figure:
    """The small multiples: counted and measured costs of the view, and the estimate on ``chip_name`` if any."""
    bench = benchmark_of(benchmark)
    panels = [*DEFAULT_PANELS] + ([ESTIMATE_COLUMN] if ESTIMATE_COLUMN in table.columns else [])
    kinds = {ESTIMATE_COLUMN: "estimated"} if ESTIMATE_COLUMN in table.columns else None
    unit = f", {bench.unit}" if bench.unit else ""
    fig = frontier_chart(
        table,
        panels=panels,
        higher_is_better=bench.higher_is_better,
        quality_title=f"{bench.name}{unit}",
        kinds=kinds,
        labels={ESTIMATE_COLUMN: f"Latency on {chip_name or 'a chip'}, roofline"},
    )
    users = sorted(table.loc[table["quality_source"] == USER_SOURCE, "model"])
    if users:
        caption = fig.layout.meta["caption"] + f" Quality given by the user: {', '.join(users)}."
        fig.update_layout(meta={**fig.layout.meta, "caption": caption})
    fig.update_layout(height=460, title={"text": f"{bench.name} against each cost: the Pareto frontier per cost"})
    return fig


def estimated_latencies(df: pd.DataFrame, chip_id: str) -> tuple[dict[str, float], str | None]:
    """Roofline latency (ms) of each model in view on one chip, from the Hardware page's cached traces (traced in a
    worker), and the chip's name; a model that cannot be estimated is shown as an error and left out."""
    from efficiency.hardware.roofline import estimate_rows  # lazy: imports torch; the tab draws first

    chip = get_hardware(chip_id)
    out: dict[str, float] = {}
    for row in df.drop_duplicates("model_id").itertuples():
        fields = {k: v for k, v in {"batch_size": row.batch_size, "dtype": row.dtype}.items() if pd.notna(v)}
        fields |= {k: int(getattr(row, k)) for k in ("seq_len", "image_size") if pd.notna(getattr(row, k))}
        try:
            profile = runs.cached_trace(row.model_id, tuple(sorted({**Workload().to_dict(), **fields}.items())))
        except Exception as error:  # noqa: BLE001 - this model's estimate fails; the others go on
            common.show_error(row.model, common.one_line(error), row.model_id)
            continue
        (estimate,) = estimate_rows(profile, [chip])
        if estimate.get("error"):
            common.show_error(f"{row.model} on {chip.name}", estimate["error"], row.model_id)
        else:
            out[row.model_id] = float(estimate["estimated_latency_ms"])
    return out, chip.name


def _user_editor(df: pd.DataFrame, benchmark: str, figures: Mapping[str, Mapping[str, tuple]]) -> None:
    """A table of the models in view with their figure on ``benchmark`` and a column for the visitor's own."""
    user: dict[str, dict[str, float]] = st.session_state.setdefault(USER_KEY, {})
    bench = benchmark_of(benchmark)
    rows = []
    for model_id, name in dict(zip(df["model_id"], df["model"], strict=False)).items():
        value, source = figures.get(benchmark, {}).get(model_id, (None, ""))
        rows.append(
            {
                "Model": name,
                "Figure": None if source == USER_SOURCE else value,
                "Source": "" if source == USER_SOURCE else source,
                "Your figure": (user.get(model_id) or {}).get(benchmark),
            }
        )
    unit = f" ({bench.unit})" if bench.unit else ""
    edited = st.data_editor(
        pd.DataFrame(rows),
        key=f"cmp_quality_editor_{benchmark}",
        hide_index=True,
        width="stretch",
        disabled=["Model", "Figure", "Source"],
        column_config={
            "Figure": st.column_config.NumberColumn(f"Published figure{unit}", help="From the bundled figures"),
            "Your figure": st.column_config.NumberColumn(
                f"Your figure{unit}", help="Marked 'given by the user'; replaces the published one on the chart"
            ),
        },
    )
    for model_id, value in zip(dict.fromkeys(df["model_id"]), edited["Your figure"], strict=False):
        mine = user.setdefault(model_id, {})
        wanted = None if value is None or pd.isna(value) or not math.isfinite(float(value)) else float(value)
        if mine.get(benchmark) == wanted:
            continue
        if wanted is None:
            mine.pop(benchmark, None)
        else:
            mine[benchmark] = wanted
        problem = keep_user_figure(model_id, benchmark, wanted)
        if problem:
            st.warning(f"Your figure for {common.escape_md(common.display_name(model_id))}: {problem}")


def render_quality_tab(df: pd.DataFrame, chips: list[Any]) -> go.Figure | None:
    """The tab's controls, chart and caption; returns the figure drawn (None: nothing to draw, said why)."""
    if USER_KEY not in st.session_state:  # a new visit: the figures kept with the results in view
        st.session_state[USER_KEY] = stored_user_figures(st.session_state.get(RESULTS_KEY) or [])
    figures = figures_in_view(df, st.session_state[USER_KEY])
    shared = shared_benchmarks(figures)
    offered = shared or sorted(benchmarks())
    if st.session_state.get(BENCH_KEY) not in offered:
        st.session_state[BENCH_KEY] = offered[0]
    pick_bench, pick_chip = st.columns([3, 2])
    pick_bench.selectbox(
        "Quality benchmark",
        offered,
        key=BENCH_KEY,
        format_func=lambda b: benchmark_of(b).name,
        help="Benchmarks at least two models in view have a figure for (published, or yours below)",
    )
    chip_ids = [NO_CHIP, *(hw.id for hw in chips)]
    names = {hw.id: hw.name for hw in chips}
    if st.session_state.get(CHIP_KEY) not in chip_ids:
        st.session_state[CHIP_KEY] = NO_CHIP
    pick_chip.selectbox(
        "Estimated latency on",
        chip_ids,
        key=CHIP_KEY,
        format_func=lambda c: "no estimate" if c == NO_CHIP else names[c],
        help="Adds a panel of roofline estimates (not measured) on this chip",
    )
    benchmark = st.session_state[BENCH_KEY]
    with st.expander("Quality figures: published, and your own", expanded=not shared):
        _user_editor(df, benchmark, figures)
    figures = figures_in_view(df, st.session_state[USER_KEY])
    if len(figures.get(benchmark, {})) < 2:
        st.info(
            f"Quality vs cost needs a {benchmark_of(benchmark).name} figure for at least two models in view: "
            "add yours in the table above.",
            icon=":material/info:",
        )
        return None
    chip = st.session_state[CHIP_KEY]
    estimates, chip_name = estimated_latencies(df, chip) if chip != NO_CHIP else ({}, None)
    table = quality_frame(df, figures, benchmark, estimates)
    try:
        fig = quality_figure(table, benchmark, chip_name)
    except ValueError as error:
        st.error(f"Quality vs cost: {common.escape_md(common.one_line(error))}")
        return None
    st.plotly_chart(fig, theme=None, key="chart_quality")
    left_out = sorted(set(df["model"]) - set(table["model"]))
    caption = fig.layout.meta["caption"]
    if left_out:
        caption += f" Without a {benchmark_of(benchmark).name} figure (not drawn): {', '.join(left_out)}."
    st.caption(common.escape_md(caption))
    return fig
