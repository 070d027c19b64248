"""The one number formatter: every unit the CLI, pages, charts and reports print, checked on known values."""

from __future__ import annotations

import math

import pytest

from efficiency import units


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (512 * 2**20, "512 MiB"),
        (1.2 * 2**30, "1.2 GiB"),
        (1.2e9, "1.12 GiB"),  # a decimal gigabyte is not a GiB
        (1.27 * 2**40, "1.27 TiB"),
        (1500 * 2**50, "1.46 EiB"),
        (2048, "2 KiB"),
        (512, "512 B"),
        (0, "0 B"),
    ],
)
def test_bytes_are_binary_and_labelled_so(value: float, text: str) -> None:
    assert units.nbytes(value) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (units.flops(22.3e9), "22.3 GFLOPs"),
        (units.flops(2.2e18), "2.2 EFLOPs"),
        (units.flops_per_s(1.98e15), "1.98 PFLOP/s"),
        (units.si(3.35e12, "B/s"), "3.35 TB/s"),  # bandwidth stays decimal, as datasheets give it
        (units.count(110e6, "params"), "110 M params"),
        (units.count(12_400, "items/s"), "12.4 k items/s"),
        (units.count(81, "items/s"), "81 items/s"),
        (units.params(1.2e9), "1.2 B params"),
        (units.params(110e6), "110 M params"),
        (units.duration(0.85), "850 µs"),
        (units.duration(4100), "4.1 s"),
        (units.duration(0.85), "850 µs"),
        (units.duration(12.4), "12.4 ms"),
        (units.duration(4100), "4.1 s"),
        (units.percent(0.031), "+3.1%"),
    ],
)
def test_counts_flops_rates_and_durations(text: str, expected: str) -> None:
    assert text == expected


def test_three_significant_digits_never_become_an_exponent() -> None:
    assert units.significant(999.6) == "1000"
    assert units.significant(123456) == "123456"
    assert units.significant(22.34) == "22.3"
    assert units.flops(999.6e9) == "1000 GFLOPs"


def test_ratios_never_round_a_real_difference_to_one() -> None:
    assert units.ratio(3.1061) == "3.1x"
    assert units.ratio(0.6657) == "0.67x"
    assert units.ratio(0.996) == "0.996x"
    assert units.ratio(250.4) == "250x"
    assert units.times(0.996) == "1.00x" and units.times(3.4) == "3.4x"


@pytest.mark.parametrize("missing", [None, math.nan, math.inf, "text"])
def test_missing_values_print_as_n_a(missing: object) -> None:
    for formatter in (units.nbytes, units.flops, units.duration, units.ratio, units.times, units.params):
        assert formatter(missing) == "n/a"  # type: ignore[arg-type]


def test_scale_gives_one_unit_for_a_column_or_axis() -> None:
    assert units.scale(1.5e9, "B") == (2**30, "GiB")
    assert units.scale(3e6, "bytes") == (2**20, "MiB")
    assert units.scale(100, "B") == (1.0, "B")
    assert units.scale(22e9, "FLOPs") == (1e9, "GFLOPs")
    assert units.scale(110e6, " params") == (1e6, "M params")
    assert units.scale(1234.0, "ms") == (1.0, "ms")
    assert units.scale(None, "B") == (1.0, "B")
