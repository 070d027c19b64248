"""Ranks, correlations, flips, findings and verdicts, checked on small hand-made tables with known answers."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from efficiency.analysis import rankings as analysis
from efficiency.analysis.claims import check, table_drawn
from efficiency.analysis.findings import compare, findings, findings_claims, strongest
from efficiency.analysis.rankings import INDICATORS
from efficiency.analysis.table import export, safe_cell
from efficiency.results import Result


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
        ("peak_memory_bytes", 1.2 * 2**30, "1.2 GiB"),
        ("peak_memory_bytes", 1.2e9, "1.12 GiB"),  # binary units: 1 GiB = 2^30 bytes
        ("memory_traffic_bytes", 512 * 2**20, "512 MiB"),
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
    (text,) = findings(three_models())
    assert text.startswith("By parameters shared is 0.67x large (223 M vs 335 M params)")
    assert "by latency it is 3.2x (410 vs 130 ms, estimated)" in text
    assert "by throughput it runs at 0.31x the rate (2.4 vs 7.7 items/s, estimated)" in text


def test_findings_change_with_the_data() -> None:
    df = three_models()
    before = findings(df)
    df.loc[df["model"] == "shared", "latency_ms"] = 820.0
    after = findings(df)
    assert before != after
    assert "6.3x (820 vs 130 ms" in after[0]
    renamed = findings(df.assign(model=["s", "l", "albert"]))
    assert renamed[0].startswith("By parameters albert is 0.67x l")


def test_findings_say_plainly_when_nothing_disagrees() -> None:
    df = five_models()[["model", "params", "peak_memory_bytes"]]
    (text,) = findings(df)
    assert text.startswith("No indicator disagrees")
    assert "5 models" in text
    (text,) = findings(df.iloc[:1])
    assert text.startswith("Nothing to compare")


def test_findings_limit_and_order_by_strength() -> None:
    texts = findings(five_models(), max_items=2)
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


def test_verdict_names_the_disagreement_with_its_numbers() -> None:
    verdict = compare(three_models(), "model", "shared", "large", list(INDICATORS))
    assert verdict.a_better == ["params"] and verdict.b_better == ["latency_ms", "throughput_per_s"]
    assert verdict.equal == ["flops"] and verdict.disagrees
    assert verdict.sentence() == (
        "shared comes out ahead of large by parameters (223 M vs 335 M params, 1.5x), but large comes out ahead by "
        "latency (130 vs 410 ms, 3.2x) and throughput (7.7 vs 2.4 items/s, 3.2x), while the two are about the same "
        "by FLOPs (79 vs 79 GFLOPs): the indicators disagree."
    )
    facts = {(f.category, f.a, f.b, f.relation, f.stated) for f in verdict.facts()}
    assert ("params", "large", "shared", "higher", "1.5x") in facts  # the larger value first, the ratio as written
    assert ("flops", "shared", "large", "equal", "about the same") in facts
    agree = compare(three_models(), "model", "small", "large", list(INDICATORS))
    assert not agree.disagrees and agree.sentence().endswith(": the indicators agree in this run.")


def test_verdict_names_opposite_orders_as_disagreement() -> None:
    data = pd.DataFrame({"model": ["a", "b"], "params": [10e6, 30e6], "latency_ms": [50.0, 20.0]})
    verdict = compare(data, "model", "a", "b", ["params", "latency_ms"])
    assert verdict.a_better == ["params"] and verdict.b_better == ["latency_ms"] and verdict.disagrees
    assert "a comes out ahead of b by parameters" in verdict.sentence() and "but b comes out ahead by latency" in (
        verdict.sentence()
    )
    with pytest.raises(ValueError, match="not among"):
        compare(data, "model", "a", "missing", ["params"])


def test_verdict_treats_close_values_and_overlapping_timings_as_equal() -> None:
    close = pd.DataFrame({"model": ["a", "b"], "params": [100e6, 101e6], "flops": [1e9, 4e9]})
    verdict = compare(close, "model", "a", "b", ["params", "flops"])
    assert verdict.equal == ["params"] and verdict.disagrees  # equal by one, apart by another
    noisy = pd.DataFrame(
        {
            "model": ["a", "b"],
            "flops": [1e9, 1e9],
            "latency_ms": [10.0, 13.0],
            "latency_p10_ms": [8.0, 11.0],
            "latency_p90_ms": [14.0, 15.0],
        }
    )
    verdict = compare(noisy, "model", "a", "b", ["flops", "latency_ms"])
    assert verdict.equal == ["flops", "latency_ms"] and not verdict.disagrees


def test_strongest_picks_opposite_orders_and_none_when_all_agree() -> None:
    assert strongest(three_models(), "model", ["params", "peak_memory_bytes"]) is None
    best = strongest(three_models(), "model", ["params", "latency_ms"])
    assert best is not None and {best.a, best.b} == {"shared", "large"}


def test_setup_line_states_the_setup() -> None:
    assert analysis.setup_line(three_models()) == "cpu · float32 · batch 1 · seq 128"
    mixed = three_models().assign(batch_size=[1, 8, 1])
    assert "batch 1/8" in analysis.setup_line(mixed)


def test_export_neutralises_spreadsheet_formulas_and_keeps_numbers() -> None:
    """OWASP CSV injection: a text cell starting with = + - @ tab or CR is quoted with '; numbers stay numbers."""
    hostile = Result(
        model='=HYPERLINK("http://x","y")',
        name="+cmd|' /C calc'!A0",
        workload={"batch_size": 1, "seq_len": 8, "dtype": "float32"},
        params=-5,  # not a real count, but a negative number is a number, not a formula
        flops=22_000_000,
        error="@SUM(1+1)",
        notes=["-not a formula inside JSON text"],
    )
    plain = Result(model="bert-base-uncased", params=110_000_000, store_id=7, created_at="2025-01-01T00:00:00")
    text = export([hostile, plain], "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:5] == ["store_id", "created_at", "model", "name", "error"]
    assert rows[0]["model"] == '\'=HYPERLINK("http://x","y")'
    assert rows[0]["name"] == "'+cmd|' /C calc'!A0" and rows[0]["error"] == "'@SUM(1+1)"
    assert rows[0]["params"] == "-5" and rows[0]["flops"] == "22000000" and rows[0]["workload.seq_len"] == "8"
    assert rows[1]["model"] == "bert-base-uncased" and rows[1]["store_id"] == "7"
    assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row.values() if cell)
    assert safe_cell("\tx") == "'\tx" and safe_cell("\rx") == "'\rx" and safe_cell(-1.5) == -1.5


def test_export_json_is_each_results_dict_and_other_formats_are_refused() -> None:
    result = Result(model='=HYPERLINK("http://x","y")', params=3)
    (row,) = json.loads(export([result], "json"))
    assert row == json.loads(json.dumps(result.to_dict()))  # JSON is not run by spreadsheets: kept as is
    with pytest.raises(ValueError, match="accepted are csv, json"):
        export([result], "xml")


# ---- Compare's "what disagrees" as typed claims (#15 item 1) -----------------------------------------------


@pytest.mark.parametrize("name", ["cnn-vs-transformer", "parameter-sharing", "training-vs-inference", "hardware"])
def test_what_disagrees_on_bundled_tables_holds_against_the_table(name) -> None:
    """The sentences Compare would write over each bundled run's table, each fact checked against that table."""
    from efficiency.experiments.bundled import load_bundled

    data = load_bundled(name).data
    if "hardware" in data.columns:  # one row per model, as Compare shows one machine at a time
        data = data[data["measured"].astype(bool)]
    claims = findings_claims(data.reset_index(drop=True))
    assert claims, name
    for claim in claims:
        assert claim.facts and check(claim, table_drawn(data)) == [], claim.text
    assert [c.text for c in claims] == findings(data.reset_index(drop=True))


def test_what_disagrees_never_ranks_latencies_inside_each_others_p10_p90() -> None:
    """1.2x apart in median latency, beyond the 10% tolerance, but the timed ranges overlap: not a disagreement."""
    data = pd.DataFrame(
        {
            "model": ["a", "b"],
            "params": [10e6, 30e6],
            "latency_ms": [60.0, 50.0],
            "latency_p10_ms": [40.0, 45.0],
            "latency_p90_ms": [70.0, 65.0],
            "measured": [True, True],
        }
    )
    assert findings_claims(data) == []
    assert findings(data)[0].startswith("No indicator disagrees")
    apart = data.assign(latency_p10_ms=[58.0, 48.0], latency_p90_ms=[62.0, 52.0])
    (claim,) = findings_claims(apart)
    assert claim.text.startswith("By parameters a is 0.33x b") and check(claim, table_drawn(apart)) == []
    planted = dataclasses.replace(claim, facts=(dataclasses.replace(claim.facts[1], relation="lower"),))
    assert check(planted, table_drawn(apart)), "a direction the table contradicts is caught"
    assert check(planted, table_drawn(data)), "and a ranking inside overlapping ranges"
