"""Hardware chart builders on small hand-made tables: values, ranks, roofs, captions, titles and units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from efficiency.analysis.hardware import estimate_table, hardware_ranks, latency_flips
from efficiency.charts.compare import caption
from efficiency.charts.hardware import hardware_rank_chart, latency_heatmap
from efficiency.charts.roofline import measured_points, roof, roofline_plot
from efficiency.specs import HardwareSpec

FAST = HardwareSpec("fast-gpu", "Fast GPU", "gpu", {"float32": 100e12}, 2e12, 80 * 2**30)
SLOW = HardwareSpec("slow-edge", "Slow edge", "edge", {"float32": 100e9}, 10e9, 4 * 2**30)


def row(model: str, hw: HardwareSpec, ms: float, ai: float, fits: bool = True) -> dict:
    attainable = min(hw.peak_for("float32"), ai * hw.memory_bandwidth_bytes_per_s)
    return {
        "model": model,
        "hardware": hw.id,
        "estimated_latency_ms": ms,
        "bound": "compute" if ai > hw.peak_for("float32") / hw.memory_bandwidth_bytes_per_s else "memory",
        "fits": fits,
        "arithmetic_intensity": ai,
        "attainable_flops_per_s": attainable,
        "workload": {"batch_size": 1, "seq_len": 128, "dtype": "float32"},
        "estimated": True,
    }


@pytest.fixture
def table() -> pd.DataFrame:
    # "big" is faster on the GPU (compute-heavy, high AI); "small" is faster on the edge chip
    rows = [
        row("big", FAST, 0.5, 40.0),
        row("small", FAST, 1.5, 3.0),
        row("mid", FAST, 1.0, 10.0),
        row("big", SLOW, 80.0, 40.0, fits=False),
        row("small", SLOW, 18.0, 3.0),
        row("mid", SLOW, 30.0, 10.0),
    ]
    return estimate_table(rows, {"big": "Big <b>model</b>"})


def test_estimate_table_flattens_workload_and_names(table):
    assert list(table["model"].unique()) == ["Big <b>model</b>", "small", "mid"]
    assert (table["dtype"] == "float32").all() and (table["seq_len"] == 128).all()
    assert table["estimated"].all() and set(table["model_id"]) == {"big", "small", "mid"}


def test_heatmap_values_log_scale_and_does_not_fit(table):
    fig = latency_heatmap(table)
    (trace,) = fig.data
    assert list(trace.x) == ["fast-gpu", "slow-edge"]
    assert list(trace.y)[0] == "Big &lt;b&gt;model&lt;/b&gt;"  # names escaped for plotly
    np.testing.assert_allclose(np.array(trace.z, dtype=float), np.log10([[0.5, 80.0], [1.5, 18.0], [1.0, 30.0]]))
    assert trace.text[0][0] == "500 µs" and trace.text[0][1] == "80 ms<br>does not fit"
    assert "does not fit" not in trace.text[1][1]
    assert "ms" in trace.colorbar.title.text and "log" in trace.colorbar.title.text
    assert fig.layout.title.text and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    assert "160x" in caption(fig) and "do not fit" in caption(fig)


def test_ranks_per_chip_and_reversed_axis(table):
    ranked = hardware_ranks(table)
    assert ranked["fast-gpu"].to_dict() == {"Big <b>model</b>": 1, "small": 3, "mid": 2}
    assert ranked["slow-edge"].to_dict() == {"Big <b>model</b>": 3, "small": 1, "mid": 2}
    fig = hardware_rank_chart(table)
    assert fig.layout.yaxis.autorange == "reversed"
    assert "Rank" in fig.layout.yaxis.title.text and "Hardware" in fig.layout.xaxis.title.text
    by_name = {t.name: list(t.y) for t in fig.data}
    assert by_name["small (estimated)"] == [3.0, 1.0]
    assert all("estimated" in t.name for t in fig.data)


def test_rank_caption_names_the_strongest_flip(table):
    flips = latency_flips(table)
    assert len(flips) == 3  # every pair swaps between the two chips
    top = flips[0]
    assert (top["model_a"], top["model_b"], top["chip_a"], top["chip_b"]) == (
        "Big <b>model</b>",
        "small",
        "fast-gpu",
        "slow-edge",
    )
    text = caption(hardware_rank_chart(table))
    assert text.startswith("On fast-gpu, Big &lt;b&gt;model&lt;/b&gt; is faster than small (500 µs vs 1.5 ms)")
    assert "on slow-edge, small is faster (18 ms vs 80 ms)" in text


def test_rank_caption_without_flip():
    rows = [row("a", FAST, 1, 5), row("b", FAST, 2, 5), row("a", SLOW, 10, 5), row("b", SLOW, 20, 5)]
    df = estimate_table(rows)
    assert latency_flips(df) == []
    assert caption(hardware_rank_chart(df)).startswith("No lines cross")


def test_roof_is_min_of_peak_and_bandwidth_line():
    np.testing.assert_allclose(roof([1.0, 10.0, 50.0, 1000.0], 100e12, 2e12), [2e12, 20e12, 100e12, 100e12])


def test_roofline_plot_roofs_points_and_measured(table):
    measured = measured_points(
        [{"model": "small", "latency_ms": {"median": 20.0}}, {"model": "nowhere", "latency_ms": 1.0}],
        {"small": {"name": "small", "flops": 2e9, "arithmetic_intensity": 3.0}},
    )
    assert len(measured) == 1 and measured["achieved_flops_per_s"].iloc[0] == pytest.approx(1e11)
    fig = roofline_plot(table, [FAST, SLOW], measured, chip="slow-edge")
    roofs = {t.name.split(" roof")[0]: t for t in fig.data if " roof" in t.name}
    assert set(roofs) == {"Fast GPU", "Slow edge"}  # chips by name
    assert all("estimated from datasheet" in t.name for t in roofs.values())
    for hw in (FAST, SLOW):
        trace = roofs[hw.name]
        x = np.array(trace.x, dtype=float)
        np.testing.assert_allclose(
            np.array(trace.y, dtype=float), np.minimum(hw.peak_for("float32"), x * 2e12 if hw is FAST else x * 10e9)
        )
        assert hw.peak_for("float32") / hw.memory_bandwidth_bytes_per_s in set(x.round(9))  # ridge drawn exactly
    estimated = next(t for t in fig.data if t.name.startswith("estimated"))
    assert estimated.name == "estimated on Slow edge (open circles)"  # the chip by name, as in the title
    assert sorted(estimated.y) == sorted([min(100e9, ai * 10e9) for ai in (40.0, 3.0, 10.0)])
    point = next(t for t in fig.data if t.name.startswith("measured"))
    assert list(point.x) == [3.0] and point.marker.symbol == "diamond"
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "FLOPs/byte" in fig.layout.xaxis.title.text and "FLOP/s" in fig.layout.yaxis.title.text
    assert fig.layout.title.text == "Roofline: models on Slow edge, every chip's roof" and "Slow edge" in caption(fig)
    assert "compared with no roof" in caption(fig)  # no calibration of this machine given: no percentage


def test_presentation_flag_enlarges_fonts(table):
    assert latency_heatmap(table, presentation=True).layout.font.size > latency_heatmap(table).layout.font.size


def test_catalog_chips_are_named_not_given_by_id():
    from efficiency.hardware import get_hardware

    t4, pi = get_hardware("t4"), get_hardware("raspberry-pi-5")
    table = estimate_table(
        [
            row("big", t4, 1.0, 40.0),
            row("small", t4, 3.0, 3.0),
            row("big", pi, 90.0, 40.0),
            row("small", pi, 20.0, 3.0),
        ],
        {},
    )
    heat = latency_heatmap(table)
    assert list(heat.data[0].x) == [t4.name, pi.name]
    assert f"on {t4.name}" in caption(heat) and "t4" not in caption(heat).split()
    ranks = hardware_rank_chart(table)
    assert all(list(trace.x) == [t4.name, pi.name] for trace in ranks.data)
    assert f"On {t4.name}, big is faster than small" in caption(ranks)
