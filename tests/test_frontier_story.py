"""The Story's quality-vs-cost step: its sentence names the frontiers its chart draws, and it claims no change of
frontier that the measurements' spread could undo."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from efficiency.experiments.bundled import load_bundled
from efficiency.experiments.frontier_story import NOT_SHOWN, quality_frontier
from efficiency.experiments.story import STEPS, slide

BUNDLED = "cnn-vs-transformer"


@pytest.fixture(scope="module")
def bundled():
    return load_bundled(BUNDLED)


def test_the_bundled_run_shows_a_model_joining_the_frontier_by_measured_latency(bundled):
    headline, figure = quality_frontier(bundled, presentation=False)
    frontiers = figure.layout.meta["frontiers"]
    assert headline.shown and frontiers["params"] != frontiers["latency_ms"]
    joined = [m for m in frontiers["latency_ms"] if m not in frontiers["params"]]
    assert joined and all(m in headline.text for m in joined)
    assert ", ".join(frontiers["params"]) in headline.text  # the parameter frontier, as drawn
    assert "by measured latency" in headline.text and figure.layout.meta["kinds"]["latency_ms"] == "measured"
    assert all("http" in source for source in figure.layout.meta["sources"])  # every figure quoted with its source


def test_the_step_is_in_the_story_and_says_where_its_numbers_come_from(bundled):
    (step,) = [s for s in STEPS if s.title == "Quality vs cost"]
    shown = slide(step, bundled)
    assert shown.headline.text.startswith("The 'most efficient for its accuracy' depends on the cost")
    assert "not on this machine" in shown.provenance


def _with(result, data: pd.DataFrame):
    return dataclasses.replace(result, data=data)


def test_a_latency_inside_the_spread_of_a_better_model_is_not_claimed(bundled):
    data = bundled.data.copy()
    deit = data["model"] == "DeiT-Tiny"
    effnet = data.loc[data["model"] == "EfficientNet-B0"].iloc[0]
    # DeiT-Tiny a little faster than EfficientNet-B0, but with spreads that overlap: about equal latency
    data.loc[deit, ["latency_ms", "latency_p10_ms", "latency_p90_ms"]] = [
        effnet["latency_ms"] * 0.98,
        effnet["latency_p10_ms"] * 0.9,
        effnet["latency_p90_ms"],
    ]
    headline, _ = quality_frontier(_with(bundled, data), presentation=False)
    assert not headline.shown and headline.text.startswith(NOT_SHOWN) and "p10-p90" in headline.text


def test_no_change_of_frontier_is_said_plainly(bundled):
    data = bundled.data.copy()
    data = data[data["model"] != "DeiT-Tiny"]  # the only model that joins by latency
    headline, figure = quality_frontier(_with(bundled, data), presentation=False)
    assert not headline.shown and headline.text.startswith(NOT_SHOWN)
    assert figure.layout.meta["frontiers"]["params"] == figure.layout.meta["frontiers"]["latency_ms"]
