"""The Story's quality-against-cost step: which models are "the most efficient for their accuracy" depends on the
cost indicator (the paper's strongest picture).

It draws the vision models of a run (the CNN-vs-transformer experiment's, bundled or live) against their
published ImageNet-1k top-1 (:mod:`efficiency.models.quality`, every figure with its source), one panel per cost
with its Pareto frontier (:func:`efficiency.charts.frontier.frontier_chart`). The headline is read from the
frontiers the chart draws; a model joins or leaves the measured-latency frontier only when its latency differs
from the models that decide its place beyond their p10-p90 spreads, and the sentence says so plainly when no frontier
changed.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.frontier import FrontierChange, frontier_change, pareto_frontier
from efficiency.analysis.rankings import INDICATORS
from efficiency.charts.frontier import frontier_chart
from efficiency.charts.story import Headline
from efficiency.experiments import ExperimentResult
from efficiency.models.quality import benchmarks, figure_for

BENCHMARK = "imagenet-1k-top1"
PANELS = ("params", "flops", "latency_ms")
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


def _spread(table: pd.DataFrame, model: str) -> tuple[float, float]:
    row = table.loc[table["model"] == model].iloc[0]
    low, high = row.get("latency_p10_ms"), row.get("latency_p90_ms")
    median = float(row["latency_ms"])
    return (float(low) if pd.notna(low) else median, float(high) if pd.notna(high) else median)


def _overlap(table: pd.DataFrame, a: str, b: str) -> bool:
    (a_low, a_high), (b_low, b_high) = _spread(table, a), _spread(table, b)
    return not (a_high < b_low or b_high < a_low)


def _clear_of_noise(table: pd.DataFrame, scores: dict[str, float], change: FrontierChange) -> bool:
    """Whether the latency frontier's changes hold beyond the measurements' spread: no better-scoring model whose
    p10-p90 latency overlaps a joining model's (about equal latency would dominate it), and a model that leaves is
    beaten by one clearly faster (p10-p90 apart) that scores at least as well."""
    latency = dict(zip(table["model"], table["latency_ms"], strict=True))
    for joined in change.joined:
        if any(scores[m] > scores[joined] and _overlap(table, m, joined) for m in latency if m != joined):
            return False
    for left in change.left:
        beaters = [m for m in latency if m != left and scores[m] >= scores[left] and latency[m] <= latency[left]]
        if not any(_spread(table, m)[1] < _spread(table, left)[0] for m in beaters):
            return False
    return True


def quality_frontier(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    """The step: small multiples of top-1 against parameters, FLOPs and measured latency, and one sentence naming
    the models that join or leave the frontier between counted and measured costs."""
    table, sources = quality_table(result.data)
    if len(table) < 2:
        raise ValueError(f"the {result.name} run has fewer than two models with a published {BENCHMARK} figure")
    panels = [p for p in PANELS if p in table.columns and table[p].notna().any()]
    figure = frontier_chart(table, panels=panels, quality_title="ImageNet-1k top-1 (%)", presentation=presentation)
    scores = dict(zip(table["model"], table["quality"], strict=True))
    found = {p: pareto_frontier(dict(zip(table["model"], table[p], strict=True)), scores, True, p) for p in panels}
    first = found[panels[0]]
    last = found[panels[-1]]
    change = frontier_change(first, last)
    name = benchmarks()[BENCHMARK].name
    on_first = ", ".join(first.models)
    kinds = figure.layout.meta["kinds"]
    cost_first, cost_last = (
        f"{'measured ' if kinds[p] == 'measured' else ''}{INDICATORS[p].phrase}" for p in (panels[0], panels[-1])
    )
    noisy = last.indicator == "latency_ms" and not _clear_of_noise(table, scores, change)
    if not change.changed or noisy:
        why = " (some latencies on it are within each other's p10-p90 spread)" if noisy and change.changed else ""
        text = (
            f"{NOT_SHOWN}: the models with the best {name} for their cost are the same by {cost_first} and by "
            f"{cost_last}{why}: {on_first}."
        )
        return Headline(text, shown=False), figure
    parts = []
    if change.joined:
        verb = "joins" if len(change.joined) == 1 else "join"
        parts.append(f"{' and '.join(change.joined)} {verb} it")
    if change.left:
        verb = "leaves" if len(change.left) == 1 else "leave"
        parts.append(f"{' and '.join(change.left)} {verb}")
    text = (
        f"The 'most efficient for its accuracy' depends on the cost: by {cost_first} the {name} frontier is "
        f"{on_first}; by {cost_last} {' and '.join(parts)}."
    )
    figure.update_layout(meta={**figure.layout.meta, "sources": sources})
    return Headline(text), figure
