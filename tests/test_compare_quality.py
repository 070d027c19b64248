"""Compare's "Quality vs cost" tab: the benchmarks models in view share, the Pareto frontier per cost, the
visitor's own figures marked as theirs, and an estimated-latency panel marked as estimated."""

from __future__ import annotations

import pandas as pd
import pytest

from efficiency.counters import static as static_counters
from efficiency.models.quality import USER_SOURCE
from efficiency.results import Result, results_frame
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import common, quality, views
from tests.test_pages import app, figures, no_problems

MNLI = ["albert-base-v2", "electra-small-discriminator"]  # both with a published MNLI-m dev figure
WITHOUT = "gpt2"  # no MNLI figure


@pytest.fixture(scope="module")
def profiles() -> list[Result]:
    return [static_counters.profile_static(m, Workload()).to_result() for m in [*MNLI, WITHOUT]]


def stored(profiles: list[Result]) -> None:
    store = ResultStore()
    for profile in profiles:
        assert common.save_static(store, profile) is None


def open_quality_tab(at):
    at.session_state[views.CHART_TAB_KEY] = views.QUALITY_TAB
    at.run()
    no_problems(at)
    return at


def test_the_tab_draws_the_frontier_of_a_shared_benchmark_and_names_the_model_left_out(data_dir, profiles):
    stored(profiles)
    at = open_quality_tab(app(models=[*MNLI, WITHOUT], run="static"))
    assert at.selectbox(key=quality.BENCH_KEY).value == "mnli-m-dev"
    (fig,) = figures(at)
    meta = fig["layout"]["meta"]
    assert set(meta["frontiers"]) == {"params", "flops", "memory_traffic_bytes"}  # static: no measured panel
    assert set(meta["kinds"].values()) == {"counted"}
    drawn = {name for trace in fig["data"] if trace.get("text") for name in trace["text"]}
    assert drawn == {"ALBERT-base v2", "ELECTRA-small discriminator"}
    shown = [c.value.replace("\\", "") for c in at.caption]
    assert any("Without a MNLI" in text and "GPT-2 (124M)" in text for text in shown), shown


def test_a_visitors_figure_puts_a_model_on_the_chart_marked_as_theirs(data_dir, profiles):
    stored(profiles)
    at = app(models=["electra-small-discriminator", WITHOUT], run="static")
    at = open_quality_tab(at)
    assert not figures(at) and any("at least two models" in i.value for i in at.info)
    at.session_state[quality.USER_KEY] = {"gpt2": {"mnli-m-dev": 80.0}}
    at.selectbox(key=quality.BENCH_KEY).set_value("mnli-m-dev").run()
    no_problems(at)
    (fig,) = figures(at)
    assert "Quality given by the user: GPT-2 (124M)." in fig["layout"]["meta"]["caption"]


def test_figures_in_view_prefer_the_visitors_own_and_offer_only_shared_benchmarks(profiles):
    df = results_frame(profiles)
    figures_found = quality.figures_in_view(df, {"albert-base-v2": {"mnli-m-dev": 99.0}, "gpt2": {"mine": 1.0}})
    assert figures_found["mnli-m-dev"]["albert-base-v2"] == (99.0, USER_SOURCE)
    assert "http" in figures_found["mnli-m-dev"]["electra-small-discriminator"][1]  # published: with its source
    shared = quality.shared_benchmarks(figures_found)
    assert shared[0] == "mnli-m-dev" and "mine" not in shared  # one model only: nothing to compare
    assert quality.benchmark_of("mine").higher_is_better and "given by the user" in quality.benchmark_of("mine").name


def test_an_estimate_panel_is_marked_estimated_and_named_by_its_chip(profiles):
    df = results_frame(profiles)
    found = quality.figures_in_view(df, {})
    table = quality.quality_frame(df, found, "mnli-m-dev", {"albert-base-v2": 2.0, "electra-small-discriminator": 1.0})
    fig = quality.quality_figure(table, "mnli-m-dev", "NVIDIA T4")
    assert fig.layout.meta["kinds"][quality.ESTIMATE_COLUMN] == "estimated"
    assert fig.layout.meta["frontiers"][quality.ESTIMATE_COLUMN] == ["ELECTRA-small discriminator", "ALBERT-base v2"]
    assert any(a.text == "Latency on NVIDIA T4, roofline (estimated)" for a in fig.layout.annotations)
    assert isinstance(table, pd.DataFrame) and set(table["model_id"]) == set(MNLI)


def test_the_benchmark_and_the_estimate_chip_are_kept_in_the_link(data_dir, profiles):
    stored(profiles)
    at = open_quality_tab(app(models=[*MNLI, WITHOUT], run="static"))
    assert at.query_params["bench"] == "mnli-m-dev" and at.query_params["qchip"] == quality.NO_CHIP
    again = app(models=[*MNLI, WITHOUT], run="static", chart=views.QUALITY_TAB, bench="mnli-m-dev", qchip="nope")
    no_problems(again)
    assert again.selectbox(key=quality.CHIP_KEY).value == quality.NO_CHIP  # an unknown chip falls back, unsaid
    assert figures(again), "the link opens the Quality vs cost tab with its chart"


def test_a_figure_kept_with_the_stored_results_is_found_by_a_later_visit(data_dir, profiles):
    stored(profiles)
    store = ResultStore()
    (row,) = store.list(model=WITHOUT)
    figure = quality.with_user_figure(row.quality, "mnli-m-dev", 80.0)
    assert store.set_quality(row.store_id, figure) and not store.set_quality(10**9, figure)
    (kept,) = store.list(model=WITHOUT)
    assert kept.quality == [{"benchmark": "mnli-m-dev", "value": 80.0, "unit": "%", "source": USER_SOURCE}]
    assert kept.flops == row.flops  # nothing else changes
    at = open_quality_tab(app(models=["electra-small-discriminator", WITHOUT], run="static"))
    (fig,) = figures(at)
    assert "Quality given by the user: GPT-2 (124M)." in fig["layout"]["meta"]["caption"]
    assert at.session_state[quality.USER_KEY][WITHOUT] == {"mnli-m-dev": 80.0}


def test_a_users_figure_replaces_only_their_own_on_that_benchmark():
    published = {"benchmark": "mnli-m-dev", "value": 84.6, "unit": "%", "source": "https://example.org"}
    mine = quality.with_user_figure([published], "mnli-m-dev", 90.0)
    assert mine[0] == published and mine[1]["value"] == 90.0 and mine[1]["source"] == USER_SOURCE
    again = quality.with_user_figure(mine, "mnli-m-dev", 91.0)
    assert [f["value"] for f in again] == [84.6, 91.0]
    assert quality.with_user_figure(again, "mnli-m-dev", None) == [published]
