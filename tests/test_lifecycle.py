"""Lifecycle cost (#15 item 7): training once against serving many requests.

The arithmetic is checked on numbers made by hand (a known crossing, lines that never cross, the retraining
knob); the training-token figures against their schema and the catalog; the experiment on its quick setup
(static counts, seconds); and the Story step's sentence against the chart under it, with planted errors caught.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from efficiency.analysis.lifecycle import (
    Lifecycle,
    cheaper,
    count_words,
    flip,
    flips,
    lines,
    long_duration,
    per_token,
    retrain_every,
    tick_label,
    training_seconds,
)
from efficiency.charts.lifecycle import drawn_values
from efficiency.charts.story import contradictions
from efficiency.experiments import EXPERIMENTS, get_experiment, result_from_dict
from efficiency.experiments.bundled import load_bundled
from efficiency.experiments.lifecycle import LIFECYCLE
from efficiency.experiments.story import STEPS, slide
from efficiency.models.catalog import find
from efficiency.models.training_tokens import TOKENS_FILE, USER_SOURCE, load_training_tokens, tokens_for, user_tokens

STEP_TITLE = "Lifecycle: train once, serve many"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ---- the arithmetic, on numbers made by hand -------------------------------------------------------------


def test_a_known_crossing_is_found_exactly_and_the_order_changes_there():
    big = Lifecycle("big", training=100.0, per_request=1.0)  # costly to train, cheap to serve
    small = Lifecycle("small", training=10.0, per_request=4.0)
    assert flip(big, small) == flip(small, big) == 30.0  # 100 + 30 x 1 = 10 + 30 x 4 = 130
    assert big.cost(30.0) == small.cost(30.0) == 130.0
    assert cheaper(big, small, 29.0) == "small" and cheaper(big, small, 31.0) == "big"
    assert cheaper(big, small, 30.0) is None
    (a, b, requests), *_ = flips([small, big])
    assert (a.name, b.name, requests) == ("big", "small", 30.0), "a: costlier at the start, cheaper after"


def test_lines_that_never_cross_give_none():
    dominated = Lifecycle("dominated", training=100.0, per_request=4.0)
    better = Lifecycle("better", training=10.0, per_request=1.0)
    assert flip(dominated, better) is None  # their lines would meet at R = -30: never, for requests served
    assert flip(Lifecycle("p", 10.0, 2.0), Lifecycle("q", 50.0, 2.0)) is None, "parallel lines"
    assert flip(Lifecycle("p", 10.0, 2.0), Lifecycle("q", 10.0, 3.0)) is None, "level at 0, apart after"
    assert flips([dominated, better]) == []


def test_retraining_adds_a_share_of_each_training_to_every_request():
    retrained = Lifecycle("big", training=100.0, per_request=1.0, retrain_every=10.0)
    assert retrained.slope == 11.0
    assert float(retrained.trainings(20.0)) == 3.0 and float(retrained.cost(20.0)) == 3 * 100 + 20 * 1
    assert float(Lifecycle("once", 100.0, 1.0).trainings(1e12)) == 1.0
    small = Lifecycle("small", training=10.0, per_request=4.0)
    assert flip(retrained, small) is None, "retrained every 10 requests it never catches up"
    rarely = dataclasses.replace(retrained, retrain_every=1000.0)  # slope 1.1: the crossing moves later
    assert flip(rarely, small) == pytest.approx(90 / 2.9)
    for every in (10.0, 1000.0):  # the amortised count equals the staircase 1 + floor(R / K) at multiples of K
        line = dataclasses.replace(retrained, retrain_every=every)
        assert float(line.trainings(3 * every)) == 1 + math.floor(3 * every / every)


def test_a_line_refuses_costs_it_cannot_have():
    with pytest.raises(ValueError, match="per_request"):
        Lifecycle("m", 1.0, -1.0)
    with pytest.raises(ValueError, match="retrain_every"):
        Lifecycle("m", 1.0, 1.0, retrain_every=0.0)
    with pytest.raises(ValueError, match="at least one token"):
        per_token(1e9, 0)


def test_training_time_scales_the_estimated_forward_by_the_counted_flops():
    # one step: 10 ms forward, training 3x the forward's FLOPs -> 30 ms per 1000 tokens -> 30 s per 1e6 tokens
    assert training_seconds(10.0, 1e12, 3e12, 1000, 1e6) == pytest.approx(30.0)
    assert per_token(6e12, 2048) == pytest.approx(6e12 / 2048)


def test_words_and_ticks_carry_their_units():
    assert count_words(1.83137e10) == "18.3 B" and count_words(406e9) == "406 B" and count_words(850) == "850"
    assert [tick_label(10.0**k) for k in (0, 3, 6, 9, 12)] == ["1", "1k", "1M", "1B", "1T"]
    assert long_duration(5) == "5 s" and long_duration(90) == "1.5 min" and long_duration(3600) == "1 h"
    assert long_duration(86400) == "1 day" and long_duration(2 * 86400) == "2 days"
    assert long_duration(2 * 365.25 * 86400) == "2 years"


def test_a_table_becomes_lines_in_flops_and_in_seconds():
    data = pd.DataFrame(
        {
            "model": ["a", "b"],
            "training_run_flops": [1e22, 2e21],
            "flops": [4e11, 1e12],
            "training_time_s": [3e7, 3e6],
            "request_time_ms": [7.0, 3.5],
            "retrain_every_requests": [1e10, 1e10],
        }
    )
    a, b = lines(data, "flops")
    assert (a.training, a.per_request, a.retrain_every) == (1e22, 4e11, None)
    assert flip(a, b) == pytest.approx((2e21 - 1e22) / (4e11 - 1e12))
    seconds = lines(data, "time")
    assert seconds[0].per_request == pytest.approx(7e-3), "ms per request become seconds"
    assert [m.retrain_every for m in lines(data, "flops", retrained=True)] == [1e10, 1e10]
    assert lines(data.drop(columns="retrain_every_requests"), "flops", retrained=True) == []


# ---- the published training tokens -------------------------------------------------------------------------


def test_every_training_token_figure_is_sourced_and_names_a_catalog_model():
    raw = json.loads(TOKENS_FILE.read_text(encoding="utf-8"))["figures"]
    assert len(raw) == len(load_training_tokens()) >= 4
    ids = [entry["model"] for entry in raw]
    assert len(ids) == len(set(ids)), "one figure per model"
    for entry in raw:
        assert entry["source"].startswith("https://"), entry
        assert entry["where"].strip() and entry["unit"] == "tokens", entry
        assert isinstance(entry["value"], int) and entry["value"] >= 1e9, entry
        spec = find(entry["model"])
        assert spec is not None and spec.id == entry["model"], f"{entry['model']} is not a catalog id"
    assert tokens_for("pythia-410m").value == 299_892_736_000, "the README's exact count, found by alias"
    assert tokens_for("HuggingFaceTB/SmolLM2-360M").value == 4e12
    assert tokens_for("gpt2") is None, "no published figure: none is made up"


def test_a_user_figure_is_marked_and_must_be_a_positive_count():
    figure = user_tokens("gpt2", 1e10)
    assert figure.given_by_user and figure.source == USER_SOURCE and figure.value == 1e10
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="positive"):
            user_tokens("gpt2", bad)


def test_the_default_models_all_have_a_published_figure():
    assert all(tokens_for(model) is not None for model in LIFECYCLE.setup()["models"])


# ---- the experiment (quick: static counts of two decoders at a few tokens) --------------------------------


@pytest.fixture(scope="module")
def quick():
    return get_experiment("lifecycle").run(quick=True)


def test_the_experiment_is_registered_after_the_others():
    assert list(EXPERIMENTS)[-1] == "lifecycle" and EXPERIMENTS["lifecycle"] is LIFECYCLE
    assert LIFECYCLE.setup(quick=True) != LIFECYCLE.setup()


def test_the_quick_run_counts_estimates_and_says_which_is_which(quick):
    data, sources = quick.data, quick.sources
    assert sources["flops"] == "counted" and sources["params"] == "counted"
    assert sources["request_time_ms"] == sources["training_time_s"] == "estimated"
    assert sources["training_tokens"] == "setup" and sources["training_run_flops"] == "derived"
    assert not data["measured"].any() and "latency_ms" not in data.columns, "nothing here is timed"
    expected = data["training_flops_per_token"] * data["training_tokens"]
    assert np.allclose(data["training_run_flops"], expected, rtol=1e-12)
    assert set(data["training_tokens_source"]) <= {f.source for f in load_training_tokens()}
    assert "not counted" in quick.notice and "roofline, not measured" in quick.notice
    if quick.shows_effect:
        assert "disagree" in quick.verdict and quick.contradictions() == []
    again = result_from_dict(LIFECYCLE, json.loads(json.dumps(quick.to_dict())))
    assert again.verdict == quick.verdict and again.notice == quick.notice


def test_a_user_set_token_count_replaces_the_published_one(quick):
    setup = {**LIFECYCLE.setup(quick=True), "training_tokens": {"EleutherAI/pythia-1b": 1e14}}
    data, _ = LIFECYCLE.collect(setup, lambda fraction, message: None)
    row = data.set_index("model_id").loc["EleutherAI/pythia-1b"]
    assert row["training_tokens"] == 1e14 and row["training_tokens_source"] == USER_SOURCE
    assert flips(lines(data, "flops")) == [], "Pythia-1B trained on 100T tokens: SmolLM2 never catches up"
    step = next(s for s in STEPS if s.title == STEP_TITLE)
    shown = slide(step, dataclasses.replace(quick, data=data))
    assert not shown.headline.shown and shown.headline.text.startswith("The expected effect did not appear")
    assert shown.headline.facts and contradictions(shown.headline, shown.figure) == []
    with pytest.raises(ValueError, match="no published training-token count"):
        LIFECYCLE.collect({**setup, "models": ["gpt2"]}, lambda fraction, message: None)


# ---- the Story step against its chart ------------------------------------------------------------------------


def _bundled_slide():
    step = next(s for s in STEPS if s.title == STEP_TITLE)
    return slide(step, load_bundled(step.experiment))


def test_the_bundled_step_states_the_flip_its_chart_draws():
    shown = _bundled_slide()  # its switch time is measured in Chromium by tests/test_story_presenter.py
    headline, figure = shown.headline, shown.figure
    assert headline.shown and contradictions(headline, figure) == []
    crossing = figure.layout.meta["flips"]["flops"][0]
    assert f"at {count_words(crossing)} requests" in headline.text
    assert any(f.category == f"{crossing:g} requests" and f.relation == "equal" for f in headline.facts)
    assert "estimated" in headline.text and "estimated" in figure.layout.annotations[1].text


def test_the_chart_draws_the_table_s_numbers_exactly():
    result = load_bundled("lifecycle")
    drawn = drawn_values(result.figure)
    for row in result.data.itertuples():
        assert drawn[(row.model, "training")][0] == pytest.approx(row.training_run_flops, rel=1e-9)
        assert drawn[(row.model, "per request")][0] == pytest.approx(row.flops, rel=1e-9)
        assert drawn[(row.model, "per request (time)")][0] == pytest.approx(row.request_time_ms / 1e3, rel=1e-9)
    ticks = list(result.figure.layout.xaxis.ticktext)
    assert ticks[:5] == ["1", "1k", "1M", "1B", "1T"] and result.figure.layout.yaxis.type == "log"


def test_a_crossing_the_chart_does_not_draw_is_caught():
    """A wrong ratio, direction or word is caught like every step's (tests/test_story_presenter.py); here also a
    tie claimed at a request count where no line crosses."""
    shown = _bundled_slide()
    moved = next(f for f in shown.headline.facts if f.relation == "equal")
    elsewhere = dataclasses.replace(moved, category="1.23457e+09 requests")  # a crossing the chart does not draw
    assert contradictions(dataclasses.replace(shown.headline, facts=(elsewhere,)), shown.figure)


def test_the_numbers_table_labels_every_lifecycle_column_with_a_unit():
    from efficiency.ui.experiment_numbers import numbers_table

    shown, _ = numbers_table(load_bundled("lifecycle").data)
    assert not [c for c in shown.columns if "_" in c], "raw column names"
    assert "Time per request, estimated (ms)" in shown.columns and "Training time, estimated (s)" in shown.columns


# ---- the pages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["pages/3_Experiments.py", "pages/4_Story.py"])
def test_the_pages_render_the_bundled_lifecycle_run(page, tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / page), default_timeout=90)
    if page.endswith("Story.py"):
        at.query_params["step"] = str(next(n for n, s in enumerate(STEPS, start=1) if s.title == STEP_TITLE))
    else:
        at.query_params["experiment"] = "lifecycle"
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert len(specs) == 1 and specs[0]["layout"]["meta"]["kind"] == "lifecycle"
    if not page.endswith("Story.py"):  # on the Story the headline above is the slide's title
        assert "Train once, serve many" in specs[0]["layout"]["title"]["text"]


# ---- the two knobs a person sets: training tokens and retraining (CLI and page) ------------------------------


def test_the_cli_sets_the_knobs_and_refuses_an_unknown_one(capsys):
    from efficiency.cli.args import Parser
    from efficiency.cli.teaching import register

    parser = Parser(prog="python -m efficiency")
    commands = register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))

    def cli(argv: list[str]) -> int:
        args = parser.parse_args(argv)
        return commands[args.command](args)

    given = '{"EleutherAI/pythia-1b": 1e14}'
    argv = ["experiment", "run", "lifecycle", "--quick", "--json", "--set", f"training_tokens={given}"]
    assert cli([*argv, "--set", "retrain_every_requests=1000000"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["setup"]["retrain_every_requests"] == 1_000_000
    rows = dict(zip(record["data"]["model_id"], record["data"]["training_tokens_source"], strict=True))
    assert rows["EleutherAI/pythia-1b"] == USER_SOURCE and set(record["data"]["retrain_every_requests"]) == {1e6}
    assert cli(["experiment", "run", "lifecycle", "--quick", "--set", "retrain_every=5"]) == 1
    assert "unknown setting(s) retrain_every; known:" in capsys.readouterr().err
    assert cli(["experiment", "run", "lifecycle", "--quick", "--set", "request_tokens=abc"]) == 1
    assert "is not a JSON value" in capsys.readouterr().err


def test_the_page_offers_the_knobs_prefilled_with_the_published_figures(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages/3_Experiments.py"), default_timeout=90)
    at.query_params["experiment"] = "lifecycle"
    at.run()
    assert not at.exception and not at.error
    inputs = {n.label: n for n in at.number_input}
    assert inputs["Retrain every (requests; 0: never)"].value == 1e10
    assert inputs["Training tokens of SmolLM2-360M"].value == tokens_for("HuggingFaceTB/SmolLM2-360M").value
    from efficiency.ui.experiment_numbers import knob_inputs

    assert knob_inputs(LIFECYCLE, quick=False) == {}  # nothing changed: the setup as published


def test_a_retrain_of_zero_means_trained_once(quick):
    setup = LIFECYCLE.with_overrides(LIFECYCLE.setup(quick=True), {"retrain_every_requests": 0})
    data, _ = LIFECYCLE.collect(setup, lambda fraction, message: None)
    assert data["retrain_every_requests"].isna().all() and retrain_every(data) is None
