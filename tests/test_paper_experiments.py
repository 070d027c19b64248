"""The paper's own experiments (paper-transformers, paper-vit-scaling) and plain words on the Experiments page.

Configurations are checked against what is published (ViT-B/16, BERT-base, T5-base, Switch-Base-8) and
against what the experiments claim of them (same shape, shared weights, equal parameters); the analysis is
checked on hand-made tables; the story steps' headlines against the charts they stand beside; and the
Experiments page must show display names, readable verdicts and labelled columns, never internal ids.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from efficiency.analysis.findings import compare
from efficiency.charts.story import contradictions
from efficiency.counters.params import count_params
from efficiency.experiments import get_experiment
from efficiency.experiments.base import verdict_analysis
from efficiency.experiments.bundled import load_bundled
from efficiency.experiments.paper import (
    NOT_READ,
    PAPER_SAYS,
    PAPER_TRANSFORMERS,
    PAPER_VIT_SCALING,
    UT_BASE,
    UT_MATCHED,
    transformer_specs,
    vit_specs,
)
from efficiency.experiments.story import STEPS, slide
from efficiency.experiments.sweeps import DEPTH_VS_WIDTH, shape_specs
from efficiency.models.loading import build_model, resolve
from efficiency.ui.experiment_numbers import column_label, numbers_table, sources_table

ROOT = Path(__file__).resolve().parent.parent
PAPER_NAMES = ("paper-transformers", "paper-vit-scaling")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))


def total_params(spec) -> int:
    return count_params(build_model(spec, device="meta"), spec).total


# ---- configurations ----------------------------------------------------------------------------------------


def test_vit_shapes_start_from_the_published_vit_base_and_pair_depth_with_width_at_equal_parameters():
    setup = PAPER_VIT_SCALING.setup()
    base = resolve(setup["base"])
    # Dosovitskiy et al. 2021 Table 1, ViT-Base: 12 layers, hidden 768, MLP 3072, 12 heads, 86M parameters
    assert (base.config["num_hidden_layers"], base.config["hidden_size"]) == (12, 768)
    assert (base.config["intermediate_size"], base.config["num_attention_heads"]) == (3072, 12)
    specs = {(s.config["num_hidden_layers"], s.config["hidden_size"]): s for s in vit_specs(base.id, setup["shapes"])}
    reference = specs[tuple(setup["reference"])]
    assert total_params(reference) == base.published["params"], "the reference is ViT-B/16 itself"
    for spec in specs.values():
        assert spec.config["intermediate_size"] == 4 * spec.config["hidden_size"]
        assert spec.config["hidden_size"] % spec.config["num_attention_heads"] == 0
    deep, wide = total_params(specs[(24, 768)]), total_params(specs[(12, 1088)])
    assert abs(deep / wide - 1) < 0.01, "24 x 768 and 12 x 1088: the depth-or-width pair at equal parameters"


def test_universal_transformers_are_bert_base_with_one_shared_layer_and_its_parameter_matched_widening():
    setup = PAPER_TRANSFORMERS.setup()
    specs = {s.display_name: s for s in transformer_specs(setup)}
    bert, ut, matched = specs["BERT-base (uncased)"], specs[UT_BASE], specs[UT_MATCHED]
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size"):
        assert ut.config[key] == bert.config[key], key
    assert ut.config["num_hidden_groups"] == 1 and ut.config["embedding_size"] == ut.config["hidden_size"]
    bert_total, ut_total, matched_total = total_params(bert), total_params(ut), total_params(matched)
    assert ut_total < bert_total / 3, "one layer's weights stored instead of twelve"
    assert abs(matched_total / bert_total - 1) <= 0.02, "parameter-matched within 2%"
    assert matched.config["hidden_size"] // matched.config["num_attention_heads"] == 64


def test_the_switch_transformer_is_t5_base_with_eight_experts():
    t5, switch = resolve("t5-base"), resolve("google/switch-base-8")
    for key in ("d_model", "d_ff", "num_heads", "num_layers"):
        assert switch.config[key] == t5.config[key], key
    assert switch.config["num_experts"] == 8
    setup = PAPER_TRANSFORMERS.setup()
    assert setup["models"] == ["bert-base-uncased"], "timed: the dense encoder (and the shared-layer copies)"
    assert setup["counted_only"] == ["t5-base", "google/switch-base-8"], "counted: random routing is no timing"


def test_what_the_paper_says_is_cited_with_its_page_and_the_missing_numbers_are_admitted():
    for said in PAPER_SAYS.values():
        assert re.match(r"p\. \d+, \w", said.where) and "2110.12894" in said.cited()
    for experiment in (PAPER_TRANSFORMERS, PAPER_VIT_SCALING):
        text = experiment.description
        assert "2110.12894" in text and "could not be read, so none is shown" in text
    assert "64 TPU-v3" in PAPER_VIT_SCALING.description, "where the paper measured, where the paper says it"
    assert "could not be read" in NOT_READ


# ---- analysis on hand-made numbers ---------------------------------------------------------------------------


def transformers_table(ut_latency: tuple[float, float, float]) -> pd.DataFrame:
    """BERT-base-like, a shared-layer copy (same FLOPs), a Switch-like model (same FLOPs as its dense twin)."""
    return pd.DataFrame(
        {
            "model": ["dense", "shared", "t5", "switch"],
            "params": [110e6, 32e6, 223e6, 619e6],
            "params_as_used": [110e6, 110e6, 223e6, 619e6],
            "params_active": [110e6, 32e6, 223e6, 223e6],
            "flops": [11.0e9, 11.1e9, 29.0e9, 29.0e9],
            "latency_ms": [100.0, ut_latency[0], None, None],
            "latency_p10_ms": [95.0, ut_latency[1], None, None],
            "latency_p90_ms": [105.0, ut_latency[2], None, None],
            "latency_samples": [5, 5, None, None],
            "measured": [True, True, False, False],
        }
    )


def test_transformers_analysis_names_sharing_and_experts_and_finds_the_disagreement():
    analysis = PAPER_TRANSFORMERS.analyse(transformers_table((101.0, 96.0, 106.0)))
    assert "shared stores 32 M params but runs 110 M params per token" in analysis.notice
    assert "switch stores 619 M params, of which a token passes through 223 M params" in analysis.notice
    assert "Counted, not timed: t5, switch" in analysis.notice
    assert NOT_READ in analysis.notice and "p. 8" in analysis.notice
    assert analysis.shows_effect and analysis.verdict.endswith("the indicators disagree.")


def test_transformers_analysis_says_so_when_every_indicator_agrees():
    agree = pd.DataFrame(
        {
            "model": ["small", "big"],
            "params": [10e6, 100e6],
            "params_as_used": [10e6, 100e6],
            "params_active": [10e6, 100e6],
            "flops": [1e9, 10e9],
            "latency_ms": [10.0, 100.0],
            "measured": [True, True],
        }
    )
    analysis = PAPER_TRANSFORMERS.analyse(agree)
    assert not analysis.shows_effect and analysis.verdict.startswith("Not shown in this run:")


def vit_table(deep_latency: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["6 x 768", "12 x 768", "24 x 768", "12 x 384", "12 x 1088"],
            "layers": [6, 12, 24, 12, 12],
            "hidden_size": [768, 768, 768, 384, 1088],
            "scaled": ["depth", "reference", "depth", "width", "width"],
            "params": [44e6, 86.6e6, 171.6e6, 22e6, 172.8e6],
            "flops": [17.7e9, 35.1e9, 70.0e9, 9.2e9, 69.5e9],
            "latency_ms": [50.0, 100.0, deep_latency, 30.0, 200.0],
            "measured": [True] * 5,
        }
    )


def test_vit_analysis_walks_depth_and_width_from_the_reference():
    analysis = PAPER_VIT_SCALING.analyse(vit_table(200.0))
    assert "Scaling depth: from 6 x 768 to 24 x 768" in analysis.notice
    assert "Scaling width: from 12 x 384 to 12 x 1088" in analysis.notice
    assert "64 TPU-v3" in analysis.notice and NOT_READ in analysis.notice
    assert not analysis.shows_effect, "latency followed FLOPs: nothing to show"
    slow_deep = PAPER_VIT_SCALING.analyse(vit_table(300.0))
    assert slow_deep.shows_effect and "24 x 768" in slow_deep.verdict and "12 x 1088" in slow_deep.verdict


# ---- bundled runs and story steps -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_bundled_run_is_a_default_run_under_two_minutes(name):
    result = load_bundled(name)
    assert not result.quick and result.elapsed_s < 120
    default = {k: v for k, v in get_experiment(name).setup().items() if k != "threads"}
    assert {k: v for k, v in result.setup.items() if k != "threads"} == default, "regenerate: the setup changed"
    assert result.data["params"].notna().all() and result.data["flops"].notna().all()


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_story_step_headline_is_true_to_its_chart(name):
    step = next(s for s in STEPS if s.experiment == name)
    shown = slide(step, load_bundled(name))
    assert contradictions(shown.headline, shown.figure) == [], shown.headline.text
    if shown.headline.facts:
        assert shown.figure.layout.meta["reference"] == shown.headline.facts[0].b
    assert "2110.12894" in shown.notes and NOT_READ in shown.notes, "the notes say what the paper did and did not give"
    if name == "paper-vit-scaling":
        assert "64 TPU-v3" in shown.notes


# ---- plain words (item 8) -------------------------------------------------------------------------------------


def test_verdict_is_one_readable_sentence():
    data = pd.DataFrame(
        {"model": ["ALBERT", "BERT"], "params": [12e6, 110e6], "flops": [11e9, 11e9], "latency_ms": [150.0, 100.0]}
    )
    analysis = verdict_analysis("", compare(data, "model", "ALBERT", "BERT", ["params", "flops", "latency_ms"]), "")
    line, shown = analysis.verdict, analysis.shows_effect
    assert shown and re.findall(r"\.(?:\s|$)", line) == ["."], "one sentence, one full stop"
    assert line.startswith("ALBERT comes out ahead of BERT by parameters (12 M vs 110 M params, 9.2x)")
    assert "but BERT comes out ahead by latency (100 vs 150 ms, 1.5x)" in line
    assert "while the two are about the same by FLOPs" in line and line.endswith(": the indicators disagree.")
    assert "ranked" not in line and "<" not in line


def test_verdict_sentence_of_a_tie_alone_names_both_models():
    data = pd.DataFrame({"model": ["a", "b"], "params": [10e6, 10e6]})
    sentence = compare(data, "model", "a", "b", ["params"]).sentence()
    assert sentence.startswith("a and b are about the same by parameters") and sentence.endswith("agree in this run.")


def test_numbers_table_labels_every_column_with_its_unit_and_hides_internal_ids():
    result = load_bundled("depth-vs-width")
    shown, config = numbers_table(result.data)
    assert "model_id" not in result.data.columns or not set(result.data["model_id"]) & set(shown.to_numpy().ravel())
    assert not [c for c in shown.columns if "_" in c], "raw column names"
    assert column_label("latency_ms", result.data["latency_ms"]) == "Latency (ms)"
    assert column_label("params", result.data["params"]).startswith("Parameters (M")
    assert column_label("peak_memory_bytes", pd.Series([3 * 2**20])) == "Peak memory (MiB)"
    label = column_label("params", result.data["params"])
    assert shown[label].max() < 1000 and config[label]
    vit = load_bundled("paper-vit-scaling")
    assert "Setup" not in numbers_table(vit.data)[0].columns, "a column repeating the model's name is left out"
    assert "Setup" not in set(sources_table(vit.data, vit.sources)["Column"])


def test_depth_vs_width_chart_has_no_legend_for_its_one_series():
    figure = load_bundled("depth-vs-width").figure
    assert not [t.name for t in figure.data if t.showlegend is not False], "one series: nothing to tell apart"


def test_progress_names_models_as_the_page_does():
    messages = []
    setup = DEPTH_VS_WIDTH.setup(quick=True)
    DEPTH_VS_WIDTH.collect(setup, lambda fraction, message: messages.append(message))
    ids = {s.id for s in shape_specs(setup["base"], setup["shapes"], setup["embedding_size"])}
    assert any(m.startswith("measuring ") for m in messages)
    assert not [m for m in messages if any(i in m for i in ids)], messages


def _rendered_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "success", "warning", "info") for e in getattr(at, kind)]
    for frame in at.dataframe:
        parts += [str(c) for c in frame.value.columns] + [str(v) for v in frame.value.to_numpy().ravel()]
    parts += [chart.proto.spec for chart in at.get("plotly_chart")]
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["depth-vs-width", *PAPER_NAMES])
def test_experiments_page_shows_display_names_not_internal_ids(name):
    at = AppTest.from_file(str(ROOT / "pages/3_Experiments.py"), default_timeout=90)
    at.query_params["experiment"] = name
    at.run()
    assert not at.exception and not at.error
    result = load_bundled(name)
    custom = set(result.data["model_id"]) - {resolve(m).id for m in result.setup.get("models", [])}
    text = _rendered_text(at)
    assert custom and not [i for i in custom if i in text], "an internal id on the page"
    assert all(m in text for m in result.data["model"])
    verdict = (at.success or at.warning)[0].value
    assert verdict.startswith("**Verdict:**") and verdict.endswith(".")
    assert " < " not in verdict and ": disagreement" not in verdict, 'the old "ranked A < B" form'
    columns = [str(c) for frame in at.dataframe for c in frame.value.columns]
    assert "Latency (ms)" in columns and not [c for c in columns if "_" in c]
    assert json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]


@pytest.mark.parametrize(("slower", "shown"), [(1.0, None), (1.4, True)])
def test_vit_step_compares_the_deepest_with_the_widest_and_says_when_they_did_not_come_apart(slower, shown):
    """The bundled run with the deepest ViT's timings scaled: 1.4x slower is a finding, 1.0x is whatever the bundle
    holds (here: inside the tolerance, "did not appear"); either way the sentence is true to its chart."""
    bundled = load_bundled("paper-vit-scaling")
    data = bundled.data.copy()
    deepest = data["layers"].idxmax()
    for column in ("latency_ms", "latency_p10_ms", "latency_p90_ms"):
        data.loc[deepest, column] *= slower
    result = PAPER_VIT_SCALING.result(data, bundled.sources, bundled.setup, bundled.machine, 1.0, bundled=True)
    shown_slide = slide(next(s for s in STEPS if s.experiment == "paper-vit-scaling"), result)
    headline = shown_slide.headline
    assert contradictions(headline, shown_slide.figure) == [], headline.text
    assert shown_slide.figure.layout.meta["reference"] == "ViT 12 layers x 1088 wide"
    assert "ViT 24 layers x 768 wide" in headline.text and "ViT 12 layers x 1088 wide" in headline.text
    latency = next(f for f in headline.facts if f.indicator == "latency_ms")
    if shown:
        assert headline.shown and latency.relation == "higher"
        assert f"{latency.stated} the latency of ViT 12 layers x 1088 wide" in headline.text
    else:
        assert headline.shown == (latency.relation != "equal")
        assert headline.text.startswith("The expected effect did not appear") != headline.shown
