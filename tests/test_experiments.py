"""Named experiments (quick setups), their verdicts, the bundled results and the story steps.

Quick runs measure tiny models in-process (one timed call), so their timings are noise; the tests check
structure, sources and that every sentence is built from the run's own numbers, not what the numbers say.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pandas as pd
import pytest

from efficiency.analysis.findings import compare
from efficiency.analysis.rankings import INDICATORS
from efficiency.charts.compare import caption
from efficiency.cli.args import Parser
from efficiency.cli.teaching import register
from efficiency.counters.params import count_params
from efficiency.experiments import EXPERIMENTS, SOURCES, get_experiment, result_from_dict, run_experiment
from efficiency.experiments.base import silent, verdict_analysis
from efficiency.experiments.bundled import BUNDLE_FILE, bundled_machine, bundled_names, load_bundle, load_bundled
from efficiency.experiments.measure import measure
from efficiency.experiments.story import STEPS, clamp_step, step_figure, takeaway
from efficiency.experiments.sweeps import DEPTH_VS_WIDTH, shape_specs
from efficiency.models.loading import build_model
from efficiency.specs import Workload

NAMES = {
    "sequence-length",
    "batch-size",
    "depth-vs-width",
    "parameter-sharing",
    "sparse-moe",
    "token-count",
    "cnn-vs-transformer",
    "training-vs-inference",
    "implementation",
    "hardware",
    "paper-transformers",
    "paper-vit-scaling",
    "lifecycle",
}
# Columns each quick run must hold, beyond the setup columns every run has.
EXPECTED = {
    "sequence-length": {"seq_len", "params", "flops", "attention_flops", "attention_share_pct", "latency_ms"},
    "batch-size": {"batch_size", "flops", "latency_ms", "throughput_per_s", "latency_per_item_ms"},
    "depth-vs-width": {"layers", "hidden_size", "params", "flops", "latency_ms"},
    "parameter-sharing": {"params", "params_as_used", "flops", "latency_ms"},
    "sparse-moe": {"params", "params_active", "flops", "experts"},
    "token-count": {"image_size", "patch_size", "tokens", "params", "flops", "latency_ms"},
    "cnn-vs-transformer": {"params", "flops", "memory_traffic_bytes", "latency_ms"},
    "training-vs-inference": {"flops", "training_flops", "latency_ms", "training_step_ms"},
    "implementation": {"implementation", "params", "flops", "int8_ops", "latency_ms", "preparation_s"},
    "hardware": {"hardware", "hardware_id", "measured", "latency_ms", "bound"},
    "paper-transformers": {"params", "params_as_used", "params_active", "flops", "latency_ms"},
    "paper-vit-scaling": {"layers", "hidden_size", "scaled", "params", "flops", "latency_ms"},
    "lifecycle": {"params", "flops", "training_tokens", "training_run_flops", "request_time_ms", "training_time_s"},
}
SETUP = {"model", "model_id", "hardware", "dtype", "batch_size", "measured"}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def quick_results():
    """Each quick run once for the whole module (a few seconds each)."""
    return {}


def _quick(name: str, cache: dict):
    if name not in cache:
        cache[name] = run_experiment(name, quick=True)
    return cache[name]


def _formatted_values(data: pd.DataFrame) -> set[str]:
    """Every indicator value of the table as the notices print it, with and without its unit."""
    texts = set()
    for column in INDICATORS:
        if column in data.columns:
            for value in data[column].dropna():
                text = INDICATORS[column].format(value)
                texts.update({text, text.rpartition(" ")[0]} - {""})
    return texts


def test_all_nine_experiments_are_registered():
    assert set(EXPERIMENTS) == NAMES
    for experiment in EXPERIMENTS.values():
        assert experiment.title and experiment.description and experiment.setup()
        assert experiment.setup(quick=True) != experiment.setup()


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(ValueError, match="depth-vs-width"):
        get_experiment("no-such-experiment")


@pytest.mark.parametrize("name", sorted(NAMES))
def test_quick_run_has_numbers_sources_figure_notice_and_verdict(name, quick_results):
    result = _quick(name, quick_results)
    data = result.data
    assert isinstance(data, pd.DataFrame) and len(data) >= 2
    assert EXPECTED[name] | SETUP <= set(data.columns)
    assert set(result.sources) == set(data.columns)
    assert set(result.sources.values()) <= set(SOURCES)
    assert result.sources["flops"] == "counted"
    if "latency_ms" in data.columns:
        assert result.sources["latency_ms"] in {"measured", "per-row"}
        assert data["latency_ms"].notna().any()
    figure = result.figure
    assert figure.layout.title.text and caption(figure)
    assert result.chart(presentation=True).layout.font.size >= 16
    assert result.notice and any(text in result.notice for text in _formatted_values(data)), result.notice
    assert result.verdict
    if result.shows_effect:
        assert "disagree" in result.verdict
    else:
        assert result.verdict.startswith("Not shown in this run")
    assert result.machine["cpu_model"] and result.machine["torch"] and result.elapsed_s > 0


@pytest.mark.parametrize("name", ["depth-vs-width", "sparse-moe", "hardware"])
def test_result_survives_json_and_is_explained_the_same_way(name, quick_results):
    result = _quick(name, quick_results)
    record = json.loads(json.dumps(result.to_dict()))
    again = result_from_dict(get_experiment(name), record)
    assert again.bundled and again.notice == result.notice and again.verdict == result.verdict
    pd.testing.assert_frame_equal(again.data, result.data, check_dtype=False)


def test_sparse_moe_is_static_and_says_so(quick_results):
    result = _quick("sparse-moe", quick_results)
    assert "latency_ms" not in result.data.columns
    assert "latency not measured" in result.notice
    switch = result.data.set_index("model_id").loc["google/switch-base-8"]
    assert switch.params > 2 * switch.params_active


def test_hardware_marks_estimated_rows(quick_results):
    data = _quick("hardware", quick_results).data
    assert data["measured"].sum() == 2  # one measured row per model, the chips estimated
    assert set(data.loc[~data["measured"].astype(bool), "hardware_id"]) == {"a100-80gb", "raspberry-pi-5"}
    assert data.loc[data["measured"].astype(bool), "bound"].isna().all()


def test_depth_vs_width_default_shapes_hold_equal_parameters_within_2_percent():
    setup = DEPTH_VS_WIDTH.setup()
    specs = shape_specs(setup["base"], setup["shapes"], setup["embedding_size"])
    totals = [count_params(build_model(spec, device="meta"), spec).total for spec in specs]
    assert len(totals) >= 2
    assert max(totals) / min(totals) - 1 <= 0.02
    depths = [spec.config["num_hidden_layers"] for spec in specs]
    assert max(depths) >= 8 * min(depths)  # deep-narrow and shallow-wide, not two similar shapes


def test_depth_vs_width_refuses_shapes_of_unequal_size():
    setup = {**DEPTH_VS_WIDTH.setup(quick=True), "shapes": [[2, 64, 2], [2, 128, 4]], "measure": False}
    with pytest.raises(ValueError, match="limit 2%"):
        DEPTH_VS_WIDTH.collect(setup, silent)


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame({"model": ["a", "b"], **columns})


def test_no_disagreement_is_said_honestly():
    analysis = verdict_analysis("", None, "they agree")
    assert analysis.verdict == "Not shown in this run: they agree." and not analysis.shows_effect
    assert analysis.claims == ()


def test_verdict_warns_when_timings_rest_on_one_sample():
    data = _table(params=[10e6, 30e6], latency_ms=[50.0, 20.0], latency_samples=[1, 5])
    analysis = verdict_analysis("", compare(data, "model", "a", "b", ["params", "latency_ms"]), "", data)
    assert analysis.shows_effect and "noisy" in analysis.verdict


def test_isolated_measurement_runs_in_a_worker_and_reads_peak_memory():
    (spec,) = shape_specs("electra-small-discriminator", [[1, 32, 2]], 16)
    setup = {"threads": 1, "repeats": 1, "warmup": 1, "min_time_s": 0.0, "isolated": True, "timeout_s": 120}
    (points,) = measure([(spec, [Workload(seq_len=8), Workload(seq_len=16)])], setup, silent)
    assert [p["workload"]["seq_len"] for p in points] == [8, 16]
    assert all(p["latency_ms"]["median"] > 0 and p["peak_memory_bytes"] >= 0 for p in points)


def _cli(argv: list[str]) -> int:
    parser = Parser(prog="python -m efficiency")
    commands = register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    args = parser.parse_args(argv)
    return commands[args.command](args)


def test_cli_lists_and_runs_experiments(capsys):
    assert _cli(["experiment", "list", "--json"]) == 0
    assert {row["name"] for row in json.loads(capsys.readouterr().out)} == NAMES
    assert _cli(["experiment", "run", "depth-vs-width", "--quick", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["name"] == "depth-vs-width" and record["verdict"] and record["sources"]["latency_ms"] == "measured"
    assert _cli(["experiment", "run", "depth-vs-width", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "What to notice:" in out and "Verdict:" in out
    with pytest.raises(ValueError, match="unknown"):
        _cli(["experiment", "run", "nope"])


# ---- bundled results and the story ------------------------------------------------------------------


def test_bundle_names_its_machine_and_holds_every_experiment():
    assert BUNDLE_FILE.stat().st_size < 2_000_000
    machine = bundled_machine()
    for key in ("cpu_model", "physical_cores", "logical_cores", "threads", "torch", "transformers", "date"):
        assert machine.get(key), key
    assert set(bundled_names()) == NAMES
    assert not any(record["quick"] for record in load_bundle()["experiments"].values())


@pytest.mark.parametrize("name", sorted(NAMES))
def test_bundled_result_loads_with_its_machine_and_verdict(name):
    result = load_bundled(name)
    assert result.bundled and not result.quick
    assert result.machine["cpu_model"] and result.machine_label.startswith(result.machine["cpu_model"])
    assert result.notice and result.verdict and caption(result.figure)
    assert result.elapsed_s < 120, f"{name}: the default run took {result.elapsed_s:.0f} s"


def test_story_steps_reference_bundled_experiments_and_say_something_numeric():
    assert 6 <= len(STEPS) <= 14
    names = set(bundled_names())
    for step in STEPS:
        assert step.experiment in names
        result = load_bundled(step.experiment)
        sentence = takeaway(step, result)
        assert sentence and re.search(r"\d", sentence), step.title
        assert step_figure(step, result).layout.font.size >= 16


def test_story_step_numbers_from_urls_are_clamped():
    assert clamp_step("3") == 3
    assert clamp_step("0") == 1
    assert clamp_step("99") == len(STEPS)
    assert clamp_step("abc") == 1


# ---- every verdict true to the values its chart is drawn from (#15 item 1) ----------------------------------


def _checked(result) -> None:
    """The verdict is the claims' own sentence, states at least one fact when it shows the effect, and holds."""
    assert result.claims.text == result.verdict
    if result.shows_effect:
        assert result.claims.facts, f"{result.name}: a verdict that shows the effect states no checkable fact"
    assert result.contradictions() == [], (result.name, result.verdict)


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_bundled_verdict_holds_against_its_table(name):
    _checked(load_bundled(name))


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_fresh_verdict_holds_against_its_table(name, quick_results):
    _checked(_quick(name, quick_results))


@pytest.mark.parametrize("number", range(1, len(STEPS) + 1))
def test_every_story_headline_of_a_fresh_run_holds_against_its_chart(number, quick_results):
    """Measured here, now (quick setups): each step's sentence against the figure drawn from the same run."""
    from efficiency.charts.story import contradictions
    from efficiency.experiments.story import slide

    step = STEPS[number - 1]
    shown = slide(step, _quick(step.experiment, quick_results))
    assert contradictions(shown.headline, shown.figure) == [], shown.headline.text
    assert "live" in shown.provenance and "on this machine" in shown.provenance, shown.provenance


def _planted(result, **changes):

    first = result.claims.facts[0]
    wrong = dataclasses.replace(first, **changes)
    return dataclasses.replace(
        result, claims=dataclasses.replace(result.claims, facts=(wrong, *result.claims.facts[1:]))
    )


@pytest.mark.parametrize("name", sorted(n for n in NAMES if load_bundled(n).claims.facts))
def test_a_planted_contradiction_in_any_verdict_is_caught(name):
    """A wrong ratio, the opposite direction, a tie where the table tells them apart (or a ranking where it
    cannot), and a ratio in the words that the table does not give: each is caught."""

    result = load_bundled(name)
    first = result.claims.facts[0]
    assert _planted(result, a_value=first.a_value * 3).contradictions()
    flipped = "higher" if first.relation in ("lower", "equal") else "lower"
    assert _planted(result, relation=flipped, stated="0.5x").contradictions()
    if first.relation == "equal":
        assert _planted(result, relation="higher", stated="1x").contradictions()
    else:
        assert _planted(result, relation="equal", stated="about the same").contradictions()
    words = result.verdict.replace(first.stated, "7.7x" if first.stated != "7.7x" else "8.8x")
    assert dataclasses.replace(result, claims=dataclasses.replace(result.claims, text=words)).contradictions()
