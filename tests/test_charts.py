"""Chart builders: right traces and models, units in every axis title, captions, ranks and correlations as analysed."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from efficiency.analysis import rankings as analysis
from efficiency.charts import compare as charts
from efficiency.charts import sweeps as sweep_charts


def comparison() -> pd.DataFrame:
    """Four models whose indicators disagree; "albert" estimated, FLOPs spanning > 100x."""
    return pd.DataFrame(
        {
            "model": ["bert-base", "bert-large", "albert", "tiny"],
            "params": [110e6, 335e6, 223e6, 4.4e6],
            "flops": [22e9, 79e9, 270e9, 0.1e9],
            "latency_ms": [45.0, 132.0, 410.0, 3.0],
            "throughput_per_s": [22.0, 7.6, 2.4, 300.0],
            "peak_memory_bytes": [0.5e9, 1.5e9, 1.1e9, 0.05e9],
            "measured": [True, True, False, True],
            "hardware": "cpu",
            "dtype": "float32",
            "batch_size": 1,
            "seq_len": 128,
        }
    )


def sweep() -> pd.DataFrame:
    lengths = [32, 128, 512, 2048]
    return pd.DataFrame(
        {
            "model": ["bert-base"] * 4 + ["gpt2"] * 4,
            "seq_len": lengths * 2,
            "params": [110e6] * 4 + [124e6] * 4,
            "flops": [0.7e9, 2.9e9, 12e9, 60e9, 0.8e9, 3.2e9, 13e9, 65e9],
            "latency_ms": [5.0, 12.0, 50.0, 260.0, 6.0, 13.0, 55.0, 280.0],
            "measured": [True] * 4 + [False] * 4,
        }
    )


def axis_titles(fig: go.Figure) -> tuple[list[str | None], list[str | None]]:
    """(x titles, y titles) of every axis the layout defines."""
    keys = fig.layout.to_plotly_json()
    x = [fig.layout[k].title.text for k in keys if k.startswith("xaxis")]
    y = [fig.layout[k].title.text for k in keys if k.startswith("yaxis")]
    return x, y


KINDS = ["parallel", "rank", "kendall", "spearman", "scatter", "relative", "sweep", "grouped"]


@functools.cache
def all_figures() -> dict[str, go.Figure]:
    """Built once: the tests only read them."""
    df = comparison()
    return {
        "parallel": charts.parallel_coordinates(df),
        "rank": charts.rank_chart(df),
        "kendall": charts.correlation_heatmap(df, "kendall"),
        "spearman": charts.correlation_heatmap(df, "spearman"),
        "scatter": charts.scatter(df, "params", "latency_ms", size="flops", color="peak_memory_bytes"),
        "relative": charts.relative_bars(df, "bert-base"),
        "sweep": sweep_charts.line_sweep(sweep(), "seq_len", ["params", "flops", "latency_ms"]),
        "grouped": sweep_charts.grouped_bar(
            pd.DataFrame(
                {
                    "model": ["a", "b", "a", "b"],
                    "hardware": ["cpu", "cpu", "gpu", "gpu"],
                    "latency_ms": [10.0, 20.0, 3.0, 1.0],
                    "measured": [True, True, False, False],
                }
            ),
            "model",
            "latency_ms",
            group="hardware",
        ),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_every_figure_has_title_subtitle_axis_titles_caption_and_readable_fonts(kind: str) -> None:
    fig = all_figures()[kind]
    assert fig.layout.title.text
    assert fig.layout.title.subtitle.text  # the setup behind the numbers
    x_titles, y_titles = axis_titles(fig)
    assert any(x_titles) and y_titles and all(y_titles)  # shared x axes of stacked panels: title at the bottom
    assert charts.caption(fig) and "\n" not in charts.caption(fig)
    assert fig.layout.font.size >= 14
    assert all(a.font.size is None or a.font.size >= 14 for a in fig.layout.annotations)


@pytest.mark.parametrize("kind", KINDS)
def test_presentation_mode_sets_large_fonts(kind: str) -> None:
    df = comparison()
    builders = {
        "parallel": lambda: charts.parallel_coordinates(df, presentation=True),
        "rank": lambda: charts.rank_chart(df, presentation=True),
        "kendall": lambda: charts.correlation_heatmap(df, presentation=True),
        "spearman": lambda: charts.correlation_heatmap(df, "spearman", presentation=True),
        "scatter": lambda: charts.scatter(df, "flops", "latency_ms", presentation=True),
        "relative": lambda: charts.relative_bars(df, "albert", presentation=True),
        "sweep": lambda: sweep_charts.line_sweep(sweep(), "seq_len", ["flops"], presentation=True),
        "grouped": lambda: sweep_charts.grouped_bar(df, "model", "latency_ms", presentation=True),
    }
    fig = builders[kind]()
    assert fig.layout.font.size >= 18
    assert all(a.font.size >= 18 for a in fig.layout.annotations)


def test_parallel_coordinates_one_line_per_model_units_on_axes_and_log_where_needed() -> None:
    fig = charts.parallel_coordinates(comparison())
    assert [t.name for t in fig.data] == ["bert-base", "bert-large", "albert (estimated)", "tiny"]
    ticktext = " ".join(fig.layout.xaxis.ticktext)
    for unit in ("params", "FLOPs", "ms", "items/s", "bytes"):
        assert unit in ticktext
    # FLOPs span 2700x, latency 137x, throughput 125x, params 76x, peak memory 30x: log where max/min > 10
    assert fig.layout.meta["log_axes"] == ["params", "flops", "latency_ms", "throughput_per_s", "peak_memory_bytes"]
    assert "FLOPs (log scale)" in ticktext.replace("<br>", " ")
    # every axis is labelled with round values (1-2-5 steps) from below the smallest to above the largest
    labels = {a.text for a in fig.layout.annotations}
    assert {"2 M params", "500 M params", "100 MFLOPs", "500 GFLOPs", "2 ms", "500 ms"} <= labels
    assert not labels & {"4.4 M params", "335 M params", "270 GFLOPs", "3 ms"}, "no label reads like a model's value"
    # up = more efficient: the cheapest model sits highest on every axis
    tiny = next(t for t in fig.data if t.name == "tiny")
    assert all(y == max(t.y[i] for t in fig.data) for i, y in enumerate(tiny.y))


def test_parallel_coordinates_marks_estimated_models() -> None:
    fig = charts.parallel_coordinates(comparison())
    albert = next(t for t in fig.data if t.name.startswith("albert"))
    assert albert.line.dash == "dash"
    assert list(albert.marker.symbol) == ["circle", "circle", "circle-open", "circle-open", "circle-open"]
    assert all(t.line.dash == "solid" for t in fig.data if t is not albert)


def test_rank_chart_reversed_axis_and_ranks_match_analysis() -> None:
    df = comparison()
    fig = charts.rank_chart(df)
    assert fig.layout.yaxis.autorange == "reversed"
    assert "Rank" in fig.layout.yaxis.title.text
    ranked = analysis.ranks(df)
    assert len(fig.data) == len(df)
    for trace, model in zip(fig.data, ranked.index):
        assert trace.name.startswith(model)
        assert list(trace.y) == ranked.loc[model].tolist()


def test_rank_chart_keeps_missing_values_as_gaps() -> None:
    df = comparison()
    df.loc[0, "latency_ms"] = np.nan
    fig = charts.rank_chart(df)
    assert fig.data[0].y[2] is None


@pytest.mark.parametrize("method", ["kendall", "spearman"])
def test_heatmap_values_equal_rank_correlations(method: str) -> None:
    df = comparison()
    fig = charts.correlation_heatmap(df, method)
    matrix = analysis.rank_correlations(df, method)
    heat = fig.data[0]
    assert np.array(heat.z, dtype=float) == pytest.approx(matrix.to_numpy())
    assert (heat.zmin, heat.zmax) == (-1, 1)
    assert list(heat.x) == [analysis.INDICATORS[c].label for c in matrix.columns]
    assert ("Kendall" if method == "kendall" else "Spearman") in fig.layout.title.text
    assert heat.text[0][1] == f"{matrix.iloc[0, 1]:.2f}"


def test_heatmap_caption_names_the_least_agreeing_pair() -> None:
    fig = charts.correlation_heatmap(comparison())
    matrix = analysis.rank_correlations(comparison())
    low = matrix.where(~np.eye(len(matrix), dtype=bool)).stack().idxmin()
    assert analysis.INDICATORS[low[0]].label in charts.caption(fig)
    assert f"{matrix.loc[low]:.2f}" in charts.caption(fig)


def test_scatter_log_axes_units_labels_and_estimated_marker() -> None:
    fig = charts.scatter(comparison(), "flops", "latency_ms")
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "FLOPs" in fig.layout.xaxis.title.text and "(ms)" in fig.layout.yaxis.title.text
    names = {t.name: t for t in fig.data}
    assert set(names) == {"measured", "estimated"}
    assert list(names["estimated"].text) == ["albert"]
    assert names["estimated"].marker.symbol == "diamond-open"
    assert sorted(m for t in fig.data for m in t.text) == sorted(comparison()["model"])
    assert any("270 GFLOPs" in h for t in fig.data for h in t.hovertext)


def test_byte_axes_are_binary_and_name_their_unit() -> None:
    """Bytes read in one binary unit per axis (1 GiB = 2^30 B), as the CLI, tables and hovers print them."""
    fig = charts.scatter(comparison(), "peak_memory_bytes", "latency_ms", color="peak_memory_bytes")
    assert fig.layout.xaxis.title.text == "Peak memory (GiB)"
    assert list(fig.layout.xaxis.ticktext) == ["0", "0.5", "1", "1.5", "2"]
    assert list(fig.layout.xaxis.tickvals) == [t * 2**30 for t in (0, 0.5, 1, 1.5, 2)]
    assert fig.data[0].marker.colorbar.title.text == "Peak memory (GiB)"
    assert any("1.4 GiB" in h for t in fig.data for h in t.hovertext)  # 1.5e9 bytes
    wide = comparison().assign(peak_memory_bytes=[2**20, 8 * 2**20, 2**30, 4 * 2**30])
    fig = charts.scatter(wide, "peak_memory_bytes", "latency_ms")
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.title.text == "Peak memory (GiB), log scale"
    assert list(fig.layout.xaxis.ticktext) == ["0.001", "0.01", "0.1", "1"]
    labels = {a.text for a in charts.parallel_coordinates(wide).layout.annotations}
    assert {"1 MiB", "10 MiB", "100 MiB", "1 GiB", "5 GiB"} <= labels
    bars = sweep_charts.grouped_bar(comparison(), "model", "peak_memory_bytes")
    assert bars.layout.yaxis.title.text == "Peak memory (GiB)" and bars.layout.yaxis.tickvals[0] == 0


def test_scatter_stays_linear_for_a_narrow_range_and_says_counted_for_static_values() -> None:
    df = comparison().iloc[:3]
    fig = charts.scatter(df, "params", "flops")
    assert fig.layout.xaxis.type == "linear" and fig.layout.yaxis.type == "linear"
    assert [t.name for t in fig.data] == ["counted"]  # params and FLOPs are counted, never "estimated"
    assert charts.scatter(df, "params", "flops", log=True).layout.xaxis.type == "log"


def test_relative_bars_reference_line_log_axis_and_values() -> None:
    df = comparison()
    fig = charts.relative_bars(df, "bert-base")
    relative = analysis.relative_to(df, "bert-base")
    assert fig.layout.yaxis.type == "log"
    assert len(fig.data) == len(df) - 1  # the reference is the 1x line
    assert any(shape.y0 == 1 and shape.y1 == 1 for shape in fig.layout.shapes)
    large = next(t for t in fig.data if t.name == "bert-large")
    heights = np.array(large.y, dtype=float) + large.base
    assert heights == pytest.approx(relative.loc["bert-large"].to_numpy())
    assert "inverted" in " ".join(fig.data[0].x)
    assert "bert-base" in fig.layout.title.text and "reference" in fig.layout.yaxis.title.text
    assert 1.0 in fig.layout.yaxis.tickvals, "the reference's 1x is labelled on the axis"


def test_scatter_labels_stay_inside_and_apart() -> None:
    df = pd.DataFrame(
        {"model": ["a", "b", "c", "top"], "params": [10e6, 10.5e6, 60e6, 90e6], "flops": [1e9, 1.05e9, 5e9, 9e9]}
    )
    fig = charts.scatter(df, "params", "flops")
    (trace,) = fig.data
    where = dict(zip(trace.text, trace.textposition))
    assert where["a"] != where["b"], "two points close together get labels on different sides"
    assert fig.layout.yaxis.range[1] > max(trace.y) and fig.layout.xaxis.range[1] > max(trace.x), "room for labels"
    assert trace.cliponaxis is False, "a label past the plot's edge is drawn, not cut"


def test_line_sweep_panels_log_axes_and_growth_caption() -> None:
    fig = sweep_charts.line_sweep(sweep(), "seq_len", ["params", "flops", "latency_ms"])
    assert len(fig.data) == 3 * 2  # 3 panels x 2 models
    assert fig.layout.xaxis3.type == "log" and "tokens" in fig.layout.xaxis3.title.text
    assert fig.layout.xaxis.type == fig.layout.xaxis2.type == "log", "every panel spaces x the same way"
    assert not fig.layout.xaxis.title.text, "only the bottom panel names the shared x axis"
    assert fig.layout.yaxis.type == "linear" and fig.layout.yaxis2.type == "log"
    assert "(params)" in fig.layout.yaxis.title.text and "(ms)" in fig.layout.yaxis3.title.text
    text = charts.caption(fig)
    assert "32 to 2048" in text and "FLOPs 86x" in text and "latency 52x" in text
    gpt2_latency = fig.data[5]
    assert list(gpt2_latency.marker.symbol) == ["circle-open"] * 4


def test_captions_come_from_the_numbers() -> None:
    df = comparison()
    before = charts.caption(charts.relative_bars(df, "bert-base"))
    assert before.startswith("tiny ranges from 0.0045x bert-base (FLOPs) to 0.1x (peak memory)")
    df.loc[df["model"] == "tiny", "flops"] = 1e9
    after = charts.caption(charts.relative_bars(df, "bert-base"))
    assert after.startswith("albert ranges from 2x bert-base (parameters) to 12x (FLOPs)")
    df.loc[df["model"] == "albert", "params"] = 55e6
    flipped = charts.caption(charts.relative_bars(df, "bert-base"))
    assert flipped == "albert is 0.5x bert-base by parameters but 12x by FLOPs."


def test_no_disagreement_captions_say_so() -> None:
    df = pd.DataFrame({"model": ["a", "b", "c"], "params": [1.0, 2.0, 3.0], "flops": [2.0, 4.0, 9.0]})
    assert charts.caption(charts.parallel_coordinates(df)).startswith("No lines cross")
    assert charts.caption(charts.rank_chart(df)).startswith("Flat lines")
    assert charts.caption(charts.correlation_heatmap(df)).startswith("Every pair")


def test_needs_log() -> None:
    assert charts.needs_log([1, 1000])
    assert not charts.needs_log([1, 50])
    assert not charts.needs_log([0, 1000])


def test_model_names_are_escaped_for_plotly():
    import pandas as pd

    from efficiency.charts.compare import rank_chart, relative_bars

    df = pd.DataFrame(
        {"model": ["<a href='x'>evil</a>", "plain"], "params": [1e6, 2e6], "flops": [4e9, 1e9], "measured": False}
    )
    for fig in (rank_chart(df), relative_bars(df, "plain"), relative_bars(df, "<a href='x'>evil</a>")):
        text = fig.to_json()
        assert "<a href" not in text
        assert "&lt;a href" in text


def test_scatter_draws_p10_p90_of_measured_times_as_error_bars():
    df = pd.DataFrame(
        {
            "model": ["a", "b", "c"],
            "params": [1e6, 2e6, 4e6],
            "latency_ms": [10.0, 12.0, 30.0],
            "latency_p10_ms": [9.0, 11.5, 25.0],
            "latency_p90_ms": [14.0, 12.5, 31.0],
            "measured": True,
        }
    )
    fig = charts.scatter(df, "params", "latency_ms")
    (trace,) = [t for t in fig.data if t.mode == "markers+text"]
    assert trace.error_x.visible is False  # counted: no spread
    assert trace.error_y.visible and list(trace.error_y.array) == pytest.approx([4.0, 0.5, 1.0])
    assert list(trace.error_y.arrayminus) == pytest.approx([1.0, 0.5, 5.0])
    static = charts.scatter(df.drop(columns=["latency_p10_ms", "latency_p90_ms"]), "params", "latency_ms")
    assert all(t.error_y.visible is False for t in static.data)
