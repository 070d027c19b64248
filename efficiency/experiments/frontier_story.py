"""The Story's quality-against-cost step: which models are "the most efficient for their accuracy" depends on the
cost indicator (the paper's strongest picture).

It draws the vision models of a run (the CNN-vs-transformer experiment's, bundled or live) against their
published ImageNet-1k top-1 (:mod:`efficiency.models.quality`, every figure with its source), one panel per cost
with its Pareto frontier (:func:`efficiency.charts.frontier.frontier_chart`, which counts costs the app calls
"about equal" as equal). The headline is read from the frontiers the chart draws: each model that joins or
leaves against the model that decides it, as a ratio the chart draws (a typed :class:`Fact`, checked by
:func:`efficiency.charts.story.contradictions`); a measured latency too close to call is "about the same"; and
it says plainly when no frontier changed.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import Fact, Headline
from efficiency.analysis.findings import compare
from efficiency.analysis.rankings import INDICATORS
from efficiency.charts.frontier import about_equal, frontier_chart
from efficiency.experiments import ExperimentResult
from efficiency.models.quality import benchmarks, figure_for

BENCHMARK = "imagenet-1k-top1"
PANELS = ("params", "flops", "memory_traffic_bytes", "latency_ms")
NOT_SHOWN = "The expected effect did not appear in this run"


def quality_table(data: pd.DataFrame, benchmark: str = BENCHMARK) -> tuple[pd.DataFrame, list[str]]:
    """The run's rows with a published figure on ``benchmark`` (``quality`` column), and the sources quoted."""
    rows, sources = [], []
    for row in data.to_dict("records"):
        figure = figure_for(str(row.get("model_id") or row["model"]), benchmark)
        if figure is None:
            continue
        rows.append({**row, "quality": figure.value})
        sources.append(f"{row['model']}: {figure.value:g} {figure.unit} ({figure.table}; {figure.source})")
    return pd.DataFrame.from_records(rows), sources


def _fact(table: pd.DataFrame, column: str, a: str, b: str) -> Fact:
    """``a`` against ``b`` under ``column``, as the chart draws it: a ratio, or "about the same" by the app's rule."""
    values = dict(zip(table["model"], table[column], strict=True))
    tie = column in compare(table.reset_index(drop=True), "model", a, b, [column]).equal
    ratio = values[a] / values[b]
    relation = "equal" if tie else "lower" if ratio < 1 else "higher"
    return Fact(
        column,
        column,
        a,
        b,
        float(values[a]),
        float(values[b]),
        relation,
        "about the same" if tie else units.times(ratio),
    )


def _beaten_by(table: pd.DataFrame, column: str, model: str, scores: dict[str, float]) -> str | None:
    """The best-scoring model that keeps ``model`` off the frontier under ``column``: at least as good, and
    cheaper or about as cheap (the chart's rule)."""
    same = about_equal(table, column)
    costs = dict(zip(table["model"], table[column], strict=True))
    beaters = [
        other
        for other in costs
        if other != model
        and scores[other] >= scores[model]
        and (costs[other] <= costs[model] or (same is not None and same(other, model)))
        and (scores[other] > scores[model] or costs[other] < costs[model])
    ]
    return max(beaters, key=lambda m: (scores[m], -costs[m]), default=None)


def _tie_that_held(table: pd.DataFrame, column: str, frontier: list[str], scores: dict[str, float]) -> Fact | None:
    """A model off the frontier only because its cost is about that of a better model although lower: the case a
    sentence must call a tie, not a ranking."""
    costs = dict(zip(table["model"], table[column], strict=True))
    for model in (m for m in costs if m not in frontier):
        better = _beaten_by(table, column, model, scores)
        if better is not None and costs[better] > costs[model]:
            return _fact(table, column, model, better)
    return None


def quality_frontier(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    """The step: small multiples of top-1 against parameters, FLOPs, memory traffic and measured latency; the
    sentence names each model that joins or leaves the frontier against the one that decides it (a ratio the chart
    draws), and a latency too close to call as "about the same"."""
    table, sources = quality_table(result.data)
    if len(table) < 2:
        raise ValueError(f"the {result.name} run has fewer than two models with a published {BENCHMARK} figure")
    panels = [p for p in PANELS if p in table.columns and table[p].notna().any()]
    figure = frontier_chart(table, panels=panels, quality_title="ImageNet-1k top-1 (%)", presentation=presentation)
    figure.update_layout(meta={**figure.layout.meta, "sources": sources})
    meta = figure.layout.meta
    frontiers, kinds = meta["frontiers"], meta["kinds"]
    scores = dict(zip(table["model"], table["quality"], strict=True))
    base = panels[0]

    def phrase(column: str) -> str:
        return f"{'measured ' if kinds[column] == 'measured' else ''}{INDICATORS[column].phrase}"

    facts: list[Fact] = []
    clauses: list[str] = []
    for column in panels[1:]:
        joined = [m for m in frontiers[column] if m not in frontiers[base]]
        left = [m for m in frontiers[base] if m not in frontiers[column]]
        parts = []
        for model in joined:
            keeper = _beaten_by(table, base, model, scores)
            if keeper is not None:
                fact = _fact(table, column, model, keeper)
                facts.append(fact)
                parts.append(f"{model} joins the frontier ({fact.stated} {keeper}'s)")
        for model in left:
            beater = _beaten_by(table, column, model, scores)
            if beater is not None:
                fact = _fact(table, column, beater, model)
                facts.append(fact)
                if fact.relation == "equal":  # a tie with a better-scoring model takes it off
                    parts.append(f"{model} leaves ({fact.stated} as {beater}, which scores higher)")
                else:
                    parts.append(f"{model} leaves ({beater} has {fact.stated} its)")
        if parts:
            clauses.append(f"by {phrase(column)} " + " and ".join(parts))
        elif kinds[column] == "measured":
            tie = _tie_that_held(table, column, frontiers[column], scores)
            if tie is not None:
                facts.append(tie)
                clauses.append(
                    f"by {phrase(column)} {tie.a} and {tie.b} take {tie.stated} time, so it stays as by {phrase(base)}"
                )
    name = benchmarks()[BENCHMARK].name
    changed = [c for c in clauses if " joins " in c or " leaves " in c]
    if not changed:
        on = ", ".join(frontiers[base])
        text = f"{NOT_SHOWN}: the models with the best {name} for their cost are the same by every cost here: {on}."
        return Headline(text, tuple(facts), shown=False), figure
    text = f"The {name} frontier moves with the cost: " + "; ".join(clauses) + "."
    return Headline(text, tuple(facts)), figure
