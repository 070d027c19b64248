"""The bundled quality figures: every entry names a catalog model, a source URL, the table or section and the
evaluation setup, and holds a value its unit allows; the loader and the user's own figures."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

from efficiency.models.catalog import list_models
from efficiency.models.quality import (
    QUALITY_FILE,
    USER_SOURCE,
    benchmarks,
    figure_for,
    figures_for,
    load_quality,
    parse_user_figure,
)

RAW = json.loads(QUALITY_FILE.read_text(encoding="utf-8"))
PLAUSIBLE = {"%": (0.0, 100.0), "perplexity": (1.0, 10_000.0)}
REQUIRED = ("model", "benchmark", "value", "unit", "higher_is_better", "source", "table", "setup", "checkpoint")


@pytest.mark.parametrize("entry", RAW["figures"], ids=lambda e: f"{e['model']}:{e['benchmark']}")
def test_every_figure_is_sourced_and_plausible(entry):
    catalog_ids = {spec.id for spec in list_models()}
    assert entry["model"] in catalog_ids, "model id must be a catalog id"
    for key in REQUIRED:
        assert key in entry, key
    for key in ("source", "table", "setup", "checkpoint"):
        assert isinstance(entry[key], str) and entry[key].strip(), f"{key} is empty"
    url = urlparse(entry["source"])
    assert url.scheme == "https" and url.netloc, "source must be an https URL"
    benchmark = RAW["benchmarks"][entry["benchmark"]]
    assert (entry["unit"], entry["higher_is_better"]) == (benchmark["unit"], benchmark["higher_is_better"])
    low, high = PLAUSIBLE[entry["unit"]]
    assert isinstance(entry["value"], (int, float)) and low <= entry["value"] <= high


def test_benchmarks_state_unit_direction_and_what_they_measure():
    for key, benchmark in RAW["benchmarks"].items():
        assert benchmark["unit"] in PLAUSIBLE, key
        assert isinstance(benchmark["higher_is_better"], bool)
        assert benchmark["name"].strip() and benchmark["description"].strip()
    assert benchmarks()["lambada-zero-shot-ppl"].higher_is_better is False


def test_at_least_thirty_catalog_models_have_a_figure_and_none_is_duplicated():
    pairs = [(f.model, f.benchmark) for f in load_quality()]
    assert len(pairs) == len(set(pairs))
    assert len({f.model for f in load_quality()}) >= 30


def test_figures_resolve_aliases_and_hub_ids():
    assert figure_for("resnet-50", "imagenet-1k-top1") is figure_for("microsoft/resnet-50", "imagenet-1k-top1")
    assert [f.benchmark for f in figures_for("openai-community/gpt2")] == [
        "lambada-zero-shot-acc",
        "lambada-zero-shot-ppl",
    ]
    assert figures_for("not-a-model") == []
    assert figure_for("bert-base-uncased", "imagenet-1k-top1") is None


def test_a_user_figure_is_marked_and_keeps_a_bundled_benchmarks_direction():
    figure = parse_user_figure("lambada-zero-shot-ppl=12.5")
    assert (figure.value, figure.unit, figure.higher_is_better, figure.source) == (
        12.5,
        "perplexity",
        False,
        USER_SOURCE,
    )
    assert figure.given_by_user
    own = parse_user_figure("my-eval = 0.7")
    assert (own.benchmark, own.value, own.higher_is_better, own.unit) == ("my-eval", 0.7, True, "")
    assert "higher is better" in own.setup
    assert own.to_dict() == {"benchmark": "my-eval", "value": 0.7, "unit": "", "source": USER_SOURCE}


@pytest.mark.parametrize("text", ["imagenet-1k-top1", "=3", "x=", "x=abc", "x=nan", "x=inf"])
def test_a_malformed_user_figure_is_refused(text):
    with pytest.raises(ValueError, match="--quality"):
        parse_user_figure(text)
