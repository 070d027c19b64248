"""Pareto frontiers on hand-made data (known frontiers, ties, a lower-is-better metric, missing costs), the
small-multiples chart built from hand-made data, and the ``frontier`` / ``profile --quality`` commands offline."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from efficiency.analysis.frontier import (
    change_sentence,
    dominates,
    frontier_change,
    frontier_changes,
    frontiers,
    pareto_frontier,
)
from efficiency.charts.frontier import frontier_chart
from efficiency.cli.main import main
from efficiency.models.quality import USER_SOURCE, figure_for

QUALITY = {"A": 70.0, "B": 75.0, "C": 74.0, "D": 75.0, "E": 80.0}
COSTS = {
    "params": {"A": 1.0, "B": 2.0, "C": 3.0, "D": 2.0, "E": 4.0},
    "flops": {"A": 10.0, "B": 1.0, "C": 2.0, "D": 5.0, "E": 3.0},
}


def test_known_frontiers_with_a_tie_kept_on_both_sides():
    by_params, by_flops = frontiers(COSTS, QUALITY)
    assert by_params.models == ("A", "B", "D", "E")  # B and D tie (cost 2, quality 75): both on; C is beaten by B
    assert by_flops.models == ("B", "E")
    change = frontier_change(by_params, by_flops)
    assert (change.joined, change.left) == ((), ("A", "D"))
    assert change_sentence(change) == "From params to flops: A, D leave."


def test_equal_cost_keeps_only_the_better_model_and_equal_points_do_not_dominate():
    assert pareto_frontier({"P": 1, "Q": 1}, {"P": 50, "Q": 60}).models == ("Q",)
    assert not dominates((1, 5), (1, 5))
    assert dominates((1, 5), (2, 5)) and dominates((1, 6), (1, 5)) and not dominates((1, 4), (2, 5))


def test_lower_is_better_quality_flips_only_the_quality_direction():
    ppl = {"X": 30.0, "Y": 20.0, "Z": 25.0, "W": 20.0}
    cost = {"X": 1.0, "Y": 2.0, "Z": 3.0, "W": 2.0}
    assert pareto_frontier(cost, ppl, higher_is_better=False).models == ("X", "W", "Y")
    assert pareto_frontier(cost, ppl, higher_is_better=True).models == ("X",)  # read the other way: X wins outright


def test_missing_costs_are_listed_and_never_count_as_joining_or_leaving():
    before = pareto_frontier({"A": 1, "B": 2}, {"A": 1, "B": 2, "C": 3}, indicator="params")
    after = pareto_frontier({"A": 1, "B": 2, "C": 0.5}, {"A": 1, "B": 2, "C": 3}, indicator="latency")
    assert before.missing == ("C",) and before.models == ("A", "B")
    assert after.models == ("C",)
    change = frontier_change(before, after)
    assert (change.joined, change.left) == ((), ("A", "B"))
    assert pareto_frontier({"A": math.nan}, {"A": 1}).missing == ("A",)
    with pytest.raises(ValueError, match="negative cost"):
        pareto_frontier({"A": -1}, {"A": 1})


def test_changes_between_consecutive_indicators_in_order():
    three = frontiers({**COSTS, "latency": {"A": 1.0, "B": 9.0, "C": 9.0, "D": 9.0, "E": 9.0}}, QUALITY)
    changes = frontier_changes(three)
    assert [(c.before, c.after) for c in changes] == [("params", "flops"), ("flops", "latency")]
    assert (changes[1].joined, changes[1].left) == (("A",), ("B",))


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["A", "B", "C"],
            "quality": [70.0, 75.0, 80.0],
            "params": [1e6, 5e6, 1e8],  # spans 100x: log axis
            "flops": [3e9, 1e9, 2e9],  # spans 3x: linear axis
            "latency_ms": [2.0, 4.0, 8.0],
            "measured": [True, True, True],
        }
    )


def test_chart_draws_each_frontier_marks_panels_and_names_changes_in_the_caption():
    fig = frontier_chart(_frame(), quality_title="ImageNet top-1 (%)")
    titles = [a.text for a in fig.layout.annotations if a.text and a.text.endswith(")")]
    assert titles[:3] == ["Parameters (counted)", "FLOPs (counted)", "Latency (measured)"]
    lines = [t for t in fig.data if t.name == "Pareto frontier"]
    assert [t.meta["models"] for t in lines] == [["A", "B", "C"], ["B", "C"], ["A", "B", "C"]]
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "linear"
    assert fig.layout.yaxis.title.text == "ImageNet top-1 (%) (higher is better)"
    caption = fig.layout.meta["caption"]
    assert "From parameters to FLOPs: A leaves." in caption and "From FLOPs to latency: A joins." in caption


def test_chart_labels_sit_off_the_points_inside_panels_with_short_ticks():
    crowded = _frame().assign(params=[1e6, 1.1e6, 1e8], quality=[70.0, 70.2, 80.0])  # A and B nearly coincide
    fig = frontier_chart(crowded, labels={"flops": "Work"})
    points = [t for t in fig.data if t.mode == "markers+text"]
    assert all(t.cliponaxis is False and len(set(t.textposition)) >= 2 for t in points[:1])  # A and B apart
    assert not any("From parameters" in (a.text or "") for a in fig.layout.annotations)  # caption: under the chart
    assert all(not text.endswith(("params", "FLOPs")) for text in fig.layout.xaxis.ticktext)  # unit: in the title
    assert fig.layout.annotations[1].text == "Work (counted)"
    low, high = fig.layout.yaxis.range
    assert low < 70.0 and high > 80.0  # room above and below the outer points for their labels


def test_chart_marks_estimated_panels_and_lower_is_better_quality():
    frame = _frame().assign(measured=[True, False, True])
    fig = frontier_chart(frame, panels=["params", "latency_ms"], higher_is_better=False)
    assert fig.layout.meta["kinds"] == {"params": "counted", "latency_ms": "estimated"}
    assert fig.layout.meta["frontiers"]["params"] == ["A"]
    over = frontier_chart(frame, panels=["params", "latency_ms"], kinds={"latency_ms": "measured"})
    assert over.layout.meta["kinds"]["latency_ms"] == "measured"
    with pytest.raises(ValueError, match="has a value"):
        frontier_chart(frame, panels=["training_flops"])


VISION = ["resnet-18", "mobilenet-v2", "deit-tiny"]


def test_cli_frontier_prints_static_frontiers_and_says_latency_is_not_measured(data_dir, capsys):
    status = main(["frontier", *VISION, "bert-base", "--quality", "imagenet-1k-top1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [f["indicator"] for f in report["frontiers"]] == ["params", "flops", "memory_traffic_bytes"]
    by = {f["indicator"]: f["models"] for f in report["frontiers"]}
    # mobilenet-v2 (3.5 M, 0.30 GMACs, 71.8) and deit-tiny (5.7 M, 1.26 GMACs, 72.2) beat resnet-18 (69.75) on both
    assert by["params"] == by["flops"] == ["google/mobilenet_v2_1.0_224", "facebook/deit-tiny-patch16-224"]
    assert report["without_quality"] == ["bert-base-uncased"]
    assert report["not_measured"]["latency_ms"].startswith("not measured")
    assert report["quality"]["microsoft/resnet-18"]["value"] == figure_for("resnet-18", "imagenet-1k-top1").value
    assert "equal cost and equal quality" in report["rules"]


def test_cli_frontier_refuses_an_unknown_benchmark(capsys):
    assert main(["frontier", "resnet-18", "--quality", "top-1"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_profile_json_carries_bundled_and_user_figures(data_dir, capsys):
    status = main(["profile", "resnet-18", "--quality", "imagenet-1k-top1=70.1", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert status == 0
    bundled = figure_for("resnet-18", "imagenet-1k-top1")
    assert row["quality"] == [
        {"benchmark": "imagenet-1k-top1", "value": bundled.value, "unit": "%", "source": bundled.source},
        {"benchmark": "imagenet-1k-top1", "value": 70.1, "unit": "%", "source": USER_SOURCE},
    ]


def test_profile_quality_needs_one_model_and_a_model_without_figures_has_no_key(data_dir, capsys):
    assert main(["profile", "resnet-18", "deit-tiny", "--quality", "x=1"]) == 2
    assert "exactly one MODEL" in capsys.readouterr().err
    assert main(["profile", "resnet-18", "--quality", "x=abc"]) == 2
    capsys.readouterr()
    assert main(["profile", "bert-base", "--json"]) == 0
    assert "quality" not in json.loads(capsys.readouterr().out)[0]
