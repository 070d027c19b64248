"""Claims: what a generated sentence states about data, typed, so it can be held to the chart it sits on.

Every sentence the app writes about numbers (Story headlines, experiment verdicts, Compare's "what disagrees")
states comparisons between two rows under one category: a :class:`Fact` (``a`` against ``b``, the raw values
it rests on, the relation and the words that state it). A :class:`Headline` is one sentence with its facts and,
optionally, a claim that an order held across categories. :func:`check` holds them to the values a chart draws
(``{(series, category): (value, p10, p90)}``, as :func:`efficiency.charts.story.drawn_values` reads them from a
figure) and lists every contradiction: a wrong ratio or direction, a ranking of values drawn as equal (within
the indicator's tolerance or overlapping p10-p90), an "about the same" the chart draws apart, an order that did
not hold, or stated words missing from the sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from efficiency import units
from efficiency.analysis.rankings import INDICATORS

Drawn = dict[tuple[str, str], tuple[float, float, float]]

# Two values closer than this are "about equal" for a verdict: counts are exact, so 2% is a real
# difference of design; measured times also need their p10-p90 ranges apart (see ``drawn_tie``).
TOLERANCE = {
    "params": 0.02,
    "params_active": 0.02,
    "flops": 0.05,
    "training_flops": 0.05,
    "memory_traffic_bytes": 0.05,
    "latency_ms": 0.10,
    "throughput_per_s": 0.10,
    "training_step_ms": 0.10,
    "peak_memory_bytes": 0.10,
}
SPREAD = {"latency_ms": "latency", "training_step_ms": "training_step"}  # indicator -> prefix of its p10/p90 columns
EXACT = ("same", "the same")  # equalities stated without "about": the values must be identical
ROW_NAMES = ("model", "point", "label")  # the columns a sentence names a row by


@dataclass(frozen=True)
class Fact:
    """One comparison a sentence states: series ``a`` against ``b`` under a chart category (an indicator, or a
    chip for the hardware step), with the raw values it rests on and the words that state it."""

    category: str
    indicator: str  # whose tolerance decides "about equal"
    a: str
    b: str
    a_value: float
    b_value: float
    relation: str  # a's value against b's: "lower", "higher" or "equal" (tolerance and p10-p90 overlap)
    stated: str  # the words in the sentence: "15x", "0.54x", "about the same", "the same", "same"


@dataclass(frozen=True)
class Headline:
    """A step's sentence and every claim it makes: pairwise facts, and "the order held" over categories."""

    text: str
    facts: tuple[Fact, ...] = ()
    same_order: tuple[tuple[str, str], ...] = ()  # (category, indicator): every series ordered alike under these
    shown: bool = True  # False: the sentence says the expected effect did not appear


def drawn_tie(indicator: str, a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """Two drawn values the chart shows as equal: within the indicator's tolerance, or p10-p90 ranges overlapping."""
    ratio = a[0] / b[0]
    if max(ratio, 1 / ratio) - 1 <= TOLERANCE.get(indicator, 0.05):
        return True
    ranges = [a[1:], b[1:]]
    if any(math.isnan(v) for pair in ranges for v in pair):
        return False
    return ranges[0][0] <= ranges[1][1] and ranges[1][0] <= ranges[0][1]


def fact_problems(fact: Fact, text: str, drawn: Drawn) -> list[str]:
    where = f"{fact.a} vs {fact.b} ({fact.category})"
    if (fact.a, fact.category) not in drawn or (fact.b, fact.category) not in drawn:
        return [f"{where}: the chart does not draw both"]
    a, b = drawn[(fact.a, fact.category)], drawn[(fact.b, fact.category)]
    shown = a[0] / b[0]
    problems = []
    if not math.isclose(shown, fact.a_value / fact.b_value, rel_tol=1e-6):
        problems.append(
            f"{where}: the sentence rests on {units.times(fact.a_value / fact.b_value)}, the chart "
            f"draws {units.times(shown)}"
        )
    tie = drawn_tie(fact.indicator, a, b)
    if fact.relation == "equal":
        if not tie:
            problems.append(f"{where}: the sentence says equal, the chart draws {units.times(shown)} apart")
        if fact.stated not in (*EXACT, "about the same") or (fact.stated in EXACT and shown != 1):
            problems.append(f"{where}: an equality stated as {fact.stated!r}")
    else:
        if tie:
            problems.append(f"{where}: the sentence ranks two values the chart draws as equal ({units.times(shown)})")
        if (shown < 1) != (fact.relation == "lower"):
            problems.append(f"{where}: the sentence says {fact.relation}, the chart draws {units.times(shown)}")
        if fact.stated != units.times(shown):
            problems.append(f"{where}: the sentence says {fact.stated}, the chart draws {units.times(shown)}")
    if fact.stated not in text:
        problems.append(f"{where}: {fact.stated!r} is not in the sentence")
    return problems


def order_problems(categories: tuple[tuple[str, str], ...], drawn: Drawn) -> list[str]:
    """ "The order held": no two series drawn in a clear order under one category and in the other order, or
    as equal, under another."""
    series = list(dict.fromkeys(s for s, _ in drawn))
    problems = []
    for (x, ix), (y, iy) in combinations(categories, 2):
        for s, t in combinations(series, 2):
            if not all(k in drawn for k in ((s, x), (t, x), (s, y), (t, y))):
                continue
            tie_x, tie_y = drawn_tie(ix, drawn[(s, x)], drawn[(t, x)]), drawn_tie(iy, drawn[(s, y)], drawn[(t, y)])
            up_x, up_y = drawn[(s, x)][0] > drawn[(t, x)][0], drawn[(s, y)][0] > drawn[(t, y)][0]
            if tie_x != tie_y or (not tie_x and up_x != up_y):
                problems.append(
                    f"{s} and {t}: the sentence says the order held, the chart orders them differently by {x} and {y}"
                )
    return problems


def check(headline: Headline, drawn: Drawn) -> list[str]:
    """Every way ``headline`` disagrees with the ``drawn`` values (empty: the sentence is true to them)."""
    problems = [p for fact in headline.facts for p in fact_problems(fact, headline.text, drawn)]
    return problems + order_problems(headline.same_order, drawn)


def table_drawn(
    data: pd.DataFrame, category: str | None = None, value: str = "latency_ms", names: tuple[str, ...] = ROW_NAMES
) -> Drawn:
    """The values a chart drawn from ``data`` shows: ``(row name, indicator) -> (value, p10, p90)`` for every
    indicator column (a row is named by each of its ``names`` columns), or, with ``category`` (e.g. "hardware",
    "implementation"), ``(row name, that column's value) -> ...`` of the ``value`` column.

    A key two rows give different values is left out: a sentence cannot rest on an ambiguous value."""
    columns = [value] if category else [c for c in data.columns if c in INDICATORS]
    out: Drawn = {}
    clashes: set[tuple[str, str]] = set()
    for _, row in data.iterrows():
        for column in columns:
            number = row.get(column)
            if number is None or pd.isna(number):
                continue
            prefix = SPREAD.get(column)
            low, high = (row.get(f"{prefix}_p{p}_ms", math.nan) if prefix else math.nan for p in (10, 90))
            entry = (float(number), *(math.nan if pd.isna(v) else float(v) for v in (low, high)))
            for name in (row[n] for n in names if n in data.columns and pd.notna(row[n])):
                key = (str(name), str(row[category]) if category else column)
                if key in out and out[key][0] != entry[0]:
                    clashes.add(key)
                out[key] = entry
    return {k: v for k, v in out.items() if k not in clashes}
