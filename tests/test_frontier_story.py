"""The Story's quality-vs-cost step: its sentence names the frontiers its chart draws, and it claims no change of
frontier that the measurements' spread could undo."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from efficiency.charts.story import contradictions
from efficiency.experiments.bundled import load_bundled
from efficiency.experiments.frontier_story import NOT_SHOWN, quality_frontier
from efficiency.experiments.story import STEPS, slide

BUNDLED = "cnn-vs-transformer"


@pytest.fixture(scope="module")
def bundled():
    return load_bundled(BUNDLED)


def test_the_bundled_run_names_who_joins_and_leaves_and_calls_a_close_latency_a_tie(bundled):
    headline, figure = quality_frontier(bundled, presentation=False)
    frontiers = figure.layout.meta["frontiers"]
    assert headline.shown and frontiers["params"] != frontiers["memory_traffic_bytes"]
    joined = [m for m in frontiers["memory_traffic_bytes"] if m not in frontiers["params"]]
    left = [m for m in frontiers["params"] if m not in frontiers["memory_traffic_bytes"]]
    assert joined == ["DeiT-Tiny"] and left == ["MobileNetV2 1.0 (224)"]
    assert "DeiT-Tiny joins the frontier (0.43x EfficientNet-B0's)" in headline.text
    # DeiT-Tiny is 5% faster than EfficientNet-B0: inside the 10% latency tolerance, so no frontier rests on it
    assert frontiers["latency_ms"] == frontiers["params"]
    said = "by measured latency DeiT-Tiny and EfficientNet-B0 take about the same time, so it stays as by parameters"
    assert said in headline.text  # the latency frontier did not differ here, and the sentence says so
    assert contradictions(headline, figure) == []
    assert all("http" in source for source in figure.layout.meta["sources"])  # every figure quoted with its source


def test_the_step_is_in_the_story_and_says_where_its_numbers_come_from(bundled):
    (step,) = [s for s in STEPS if s.title == "Quality vs cost"]
    shown = slide(step, bundled)
    assert shown.headline.text.startswith("The ImageNet-1k top-1 accuracy frontier moves with the cost")
    assert "not on this machine" in shown.provenance


def _with(result, data: pd.DataFrame):
    return dataclasses.replace(result, data=data)


def _latency(data: pd.DataFrame, model: str, median: float, low: float, high: float) -> pd.DataFrame:
    data = data.copy()
    data.loc[data["model"] == model, ["latency_ms", "latency_p10_ms", "latency_p90_ms"]] = [median, low, high]
    return data


def test_a_clearly_faster_model_joins_by_latency_and_one_inside_the_spread_does_not(bundled):
    faster = _latency(bundled.data, "DeiT-Tiny", 20.0, 19.5, 20.5)  # clearly faster than EfficientNet-B0's 37.7 ms
    headline, figure = quality_frontier(_with(bundled, faster), presentation=False)
    assert "DeiT-Tiny" in figure.layout.meta["frontiers"]["latency_ms"]
    assert "by measured latency DeiT-Tiny joins the frontier (0.53x EfficientNet-B0's)" in headline.text
    assert contradictions(headline, figure) == []
    # 20% faster, beyond the tolerance, but with p10-p90 ranges that overlap EfficientNet-B0's: about equal
    overlapping = _latency(bundled.data, "DeiT-Tiny", 30.0, 29.0, 38.0)
    headline, figure = quality_frontier(_with(bundled, overlapping), presentation=False)
    assert "DeiT-Tiny" not in figure.layout.meta["frontiers"]["latency_ms"]
    assert "DeiT-Tiny and EfficientNet-B0 take about the same time" in headline.text
    assert contradictions(headline, figure) == []


def test_no_change_of_frontier_is_said_plainly(bundled):
    data = bundled.data[~bundled.data["model"].isin(["DeiT-Tiny", "MobileNetV2 1.0 (224)"])]
    headline, figure = quality_frontier(_with(bundled, data), presentation=False)
    assert not headline.shown and headline.text.startswith(NOT_SHOWN)
    frontiers = figure.layout.meta["frontiers"]
    assert frontiers["params"] == frontiers["memory_traffic_bytes"] == frontiers["latency_ms"]
