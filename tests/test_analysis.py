"""Ranks, correlations, flips and findings, checked on small hand-made tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from efficiency.analysis import rankings as analysis
from efficiency.analysis.rankings import INDICATORS


def three_models() -> pd.DataFrame:
    """ "small" is cheapest everywhere; "shared" has fewer parameters than "large" but is slower (the flip)."""
    return pd.DataFrame(
        {
            "model": ["small", "large", "shared"],
            "params": [110e6, 335e6, 223e6],
            "flops": [22e9, 79e9, 79e9],
            "latency_ms": [40.0, 130.0, 410.0],
            "throughput_per_s": [25.0, 7.7, 2.4],
            "peak_memory_bytes": [0.5e9, np.nan, 1.1e9],
            "measured": [True, True, False],
            "hardware": "cpu",
            "dtype": "float32",
            "batch_size": 1,
            "seq_len": 128,
        }
    )


def test_registry_covers_every_indicator_with_label_unit_direction_and_formatter() -> None:
    expected = {
        "params": "params",
        "params_active": "params",
        "flops": "FLOPs",
        "training_flops": "FLOPs",
        "memory_traffic_bytes": "bytes",
        "latency_ms": "ms",
        "throughput_per_s": "items/s",
        "peak_memory_bytes": "bytes",
        "training_step_ms": "ms",
    }
    assert {c: ind.unit for c, ind in INDICATORS.items()} == expected
    assert [c for c, ind in INDICATORS.items() if not ind.lower_is_better] == ["throughput_per_s"]
    assert all(ind.label for ind in INDICATORS.values())


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("params", 110e6, "110 M params"),
        ("flops", 22.3e9, "22.3 GFLOPs"),
        ("peak_memory_bytes", 1.2e9, "1.2 GB"),
        ("latency_ms", 12.4, "12.4 ms"),
        ("latency_ms", 4100, "4.1 s"),
        ("latency_ms", 0.85, "850 µs"),
        ("throughput_per_s", 81, "81 items/s"),
        ("throughput_per_s", 12_400, "12.4 k items/s"),
        ("params", float("nan"), "n/a"),
    ],
)
def test_formatters_print_human_units(column: str, value: float, text: str) -> None:
    assert INDICATORS[column].format(value) == text


def test_format_ratio_never_rounds_a_real_difference_to_one() -> None:
    assert analysis.format_ratio(3.1061) == "3.1x"
    assert analysis.format_ratio(0.6657) == "0.67x"
    assert analysis.format_ratio(0.996) == "0.996x"
    assert analysis.format_ratio(250.4) == "250x"


def test_ranks_put_the_cheapest_first_and_respect_throughput_direction() -> None:
    ranked = analysis.ranks(three_models())
    assert list(ranked.index) == ["small", "large", "shared"]
    assert ranked["params"].tolist() == [1.0, 3.0, 2.0]
    assert ranked["latency_ms"].tolist() == [1.0, 2.0, 3.0]
    # highest throughput is rank 1
    assert ranked["throughput_per_s"].tolist() == [1.0, 2.0, 3.0]


def test_ranks_average_ties_and_keep_nan() -> None:
    ranked = analysis.ranks(three_models())
    assert ranked["flops"].tolist() == [1.0, 2.5, 2.5]
    assert math.isnan(ranked.loc["large", "peak_memory_bytes"])
    assert ranked["peak_memory_bytes"].dropna().tolist() == [1.0, 2.0]


def test_ranks_skip_absent_and_all_missing_columns() -> None:
    df = three_models().assign(training_flops=np.nan)
    assert "training_flops" not in analysis.ranks(df).columns
    assert list(analysis.ranks(df, ["latency_ms", "params"]).columns) == ["latency_ms", "params"]


def test_bad_tables_raise_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="model"):
        analysis.ranks(pd.DataFrame({"params": [1, 2]}))
    with pytest.raises(ValueError, match="more than once"):
        analysis.ranks(pd.DataFrame({"model": ["a", "a"], "params": [1, 2]}))
    with pytest.raises(ValueError, match="params"):
        analysis.ranks(pd.DataFrame({"model": ["a", "b"], "params": [1, -2]}))
    with pytest.raises(ValueError, match="unknown"):
        analysis.ranks(three_models(), ["parameters"])


def five_models() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": list("abcde"),
            "params": [1.0, 2.0, 3.0, 4.0, 5.0],
            "flops": [10.0, 30.0, 20.0, 50.0, 40.0],
            "latency_ms": [5.0, 4.0, 3.0, 2.0, 1.0],
            "throughput_per_s": [1.0, 2.0, 3.0, 4.0, 5.0],
            "peak_memory_bytes": [2.0, 4.0, 6.0, 8.0, 10.0],
        }
    )


@pytest.mark.parametrize("method", ["kendall", "spearman"])
def test_correlations_equal_scipy(method: str) -> None:
    df = five_models()
    matrix = analysis.rank_correlations(df, method)
    scipy_fn = stats.kendalltau if method == "kendall" else stats.spearmanr
    assert matrix.loc["params", "flops"] == pytest.approx(scipy_fn(df["params"], df["flops"]).statistic)
    assert matrix.loc["flops", "latency_ms"] == pytest.approx(scipy_fn(df["flops"], df["latency_ms"]).statistic)
    # throughput is higher-is-better: its efficiency order is the order of -throughput
    expected = scipy_fn(df["flops"], -df["throughput_per_s"]).statistic
    assert matrix.loc["flops", "throughput_per_s"] == pytest.approx(expected)
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)


@pytest.mark.parametrize("method", ["kendall", "spearman"])
def test_correlations_are_one_for_the_same_order_and_minus_one_for_reversed(method: str) -> None:
    matrix = analysis.rank_correlations(five_models(), method)
    assert matrix.loc["params", "peak_memory_bytes"] == pytest.approx(1.0)
    assert matrix.loc["params", "latency_ms"] == pytest.approx(-1.0)
    # 1..5 items/s: the most throughput is the best, so it agrees with latency 5..1 ms
    assert matrix.loc["throughput_per_s", "latency_ms"] == pytest.approx(1.0)
    assert np.diag(matrix.to_numpy()) == pytest.approx(np.ones(len(matrix)))


def test_correlations_need_three_models_with_both_values() -> None:
    matrix = analysis.rank_correlations(three_models())
    # peak memory is missing for "large": only two models have both
    assert math.isnan(matrix.loc["params", "peak_memory_bytes"])
    assert not math.isnan(matrix.loc["params", "latency_ms"])
    with pytest.raises(ValueError, match="method"):
        analysis.rank_correlations(three_models(), "pearson")


def test_rank_flips_find_the_planted_flip_and_nothing_else() -> None:
    df = pd.DataFrame(
        {
            "model": ["x", "y", "z"],
            "params": [1.0, 2.0, 10.0],
            "flops": [1.0, 2.0, 10.0],
            "latency_ms": [3.0, 2.0, 10.0],  # x is cheaper than y by params/FLOPs, slower by latency
        }
    )
    flips = analysis.rank_flips(df)
    assert [(f["model_a"], f["model_b"], f["indicator_x"], f["indicator_y"]) for f in flips] == [
        ("x", "y", "params", "latency_ms"),
        ("x", "y", "flops", "latency_ms"),
    ]
    first = flips[0]
    assert first["ratio_x"] == pytest.approx(0.5)
    assert first["ratio_y"] == pytest.approx(1.5)
    assert first["strength"] == pytest.approx(math.log10(1.5 / 0.5))


def test_rank_flips_respect_throughput_direction() -> None:
    # fewer params and more throughput: no disagreement, although the raw numbers move oppositely
    df = pd.DataFrame({"model": ["a", "b"], "params": [1.0, 2.0], "throughput_per_s": [20.0, 10.0]})
    assert analysis.rank_flips(df) == []
    df["throughput_per_s"] = [10.0, 20.0]
    (flip,) = analysis.rank_flips(df)
    assert (flip["model_a"], flip["indicator_y"], flip["ratio_y"]) == ("a", "throughput_per_s", 0.5)


def test_findings_quote_the_numbers_of_the_data() -> None:
    (text,) = analysis.findings(three_models())
    assert text.startswith("By parameters shared is 0.67x large (223 M vs 335 M params)")
    assert "by latency it is 3.2x (410 vs 130 ms, estimated)" in text
    assert "by throughput it runs at 0.31x the rate (2.4 vs 7.7 items/s, estimated)" in text


def test_findings_change_with_the_data() -> None:
    df = three_models()
    before = analysis.findings(df)
    df.loc[df["model"] == "shared", "latency_ms"] = 820.0
    after = analysis.findings(df)
    assert before != after
    assert "6.3x (820 vs 130 ms" in after[0]
    renamed = analysis.findings(df.assign(model=["s", "l", "albert"]))
    assert renamed[0].startswith("By parameters albert is 0.67x l")


def test_findings_say_plainly_when_nothing_disagrees() -> None:
    df = five_models()[["model", "params", "peak_memory_bytes"]]
    (text,) = analysis.findings(df)
    assert text.startswith("No indicator disagrees")
    assert "5 models" in text
    (text,) = analysis.findings(df.iloc[:1])
    assert text.startswith("Nothing to compare")


def test_findings_limit_and_order_by_strength() -> None:
    texts = analysis.findings(five_models(), max_items=2)
    assert len(texts) == 2
    # params 1..5 against latency 5..1: a vs e is a 5x / 0.2x disagreement, the strongest
    assert texts[0].startswith("By parameters a is 0.2x e")


def test_relative_to_gives_one_for_the_reference_and_inverts_throughput() -> None:
    relative = analysis.relative_to(three_models(), "large")
    assert relative.loc["large"].dropna().tolist() == [1.0] * len(relative.loc["large"].dropna())
    assert relative.loc["shared", "latency_ms"] == pytest.approx(410 / 130)
    assert relative.loc["shared", "throughput_per_s"] == pytest.approx(7.7 / 2.4)
    assert relative.attrs["inverted"] == ["throughput_per_s"]
    assert relative["peak_memory_bytes"].isna().all()  # the reference has no value
    with pytest.raises(ValueError, match="reference_model"):
        analysis.relative_to(three_models(), "missing")


def test_verdict_names_the_disagreement() -> None:
    df = three_models()
    result = analysis.verdict(df, "shared", "large")
    assert result.disagrees
    assert str(result) == (
        "parameters ranked shared < large; latency, throughput ranked large < shared; FLOPs tied: disagreement"
    )
    agree = analysis.verdict(df, "small", "large")
    assert not agree.disagrees
    assert str(agree).endswith(": no disagreement")


def test_setup_line_states_the_setup() -> None:
    assert analysis.setup_line(three_models()) == "cpu · float32 · batch 1 · seq 128"
    mixed = three_models().assign(batch_size=[1, 8, 1])
    assert "batch 1/8" in analysis.setup_line(mixed)
