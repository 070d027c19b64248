"""Pareto frontiers of quality against cost, one per cost indicator, and how they change between indicators.

The paper's strongest picture: which models are "the most efficient for their quality" depends on the cost
indicator. The rules, stated once here and nowhere else:

- lower cost is better; quality is better when higher, or when lower for a "lower is better" benchmark
  (perplexity): ``higher_is_better=False`` flips the quality direction, never the cost's;
- model A dominates model B when A costs no more and scores no worse, and is strictly better on one of the two;
  a chart may say that two different costs count as equal (its "about equal" rule), and then A dominates B when
  it scores better;
- the frontier is every model that no other model dominates. Ties: two models with equal cost and equal quality
  do not dominate each other, so both are on the frontier (or both off it); equal cost with unequal quality
  leaves only the better one on;
- a model without a finite cost for an indicator (or without a finite quality) is left out of that indicator's
  frontier and listed as ``missing``; negative costs are refused;
- between two indicators a model *joins* when it is on the second frontier but not the first and *leaves* when
  the reverse; only models with a cost under both indicators are compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Frontier:
    """The Pareto frontier under one cost indicator: the models on it (cheapest first) and those without a cost."""

    indicator: str
    models: tuple[str, ...]
    compared: tuple[str, ...]
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class FrontierChange:
    """What changes from the frontier under one indicator to the frontier under another."""

    before: str
    after: str
    joined: tuple[str, ...]
    left: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.joined or self.left)


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def dominates(
    a: tuple[float, float], b: tuple[float, float], higher_is_better: bool = True, same_cost: bool = False
) -> bool:
    """Whether (cost, quality) ``a`` dominates ``b``: no costlier, no worse, strictly better on one. ``same_cost``:
    the two costs count as equal (e.g. measured latencies within their spread), whatever their values."""
    cost_a, quality_a = a
    cost_b, quality_b = b
    if not higher_is_better:
        quality_a, quality_b = -quality_a, -quality_b
    if same_cost:
        return quality_a > quality_b
    return cost_a <= cost_b and quality_a >= quality_b and (cost_a < cost_b or quality_a > quality_b)


def pareto_frontier(
    costs: Mapping[str, float | None],
    quality: Mapping[str, float | None],
    higher_is_better: bool = True,
    indicator: str = "cost",
    same_cost: Callable[[str, str], bool] | None = None,
) -> Frontier:
    """The models of ``quality`` that no other model dominates under ``costs`` (see the module's rules).

    ``same_cost(a, b)``: whether two models' costs count as equal although their values differ (a chart passes the
    app's "about equal" rule, so its frontier never rests on a difference its sentences call a tie); None: only
    equal values are."""
    points: dict[str, tuple[float, float]] = {}
    missing = []
    for model, score in quality.items():
        cost, value = _finite(costs.get(model)), _finite(score)
        if cost is None or value is None:
            missing.append(model)
            continue
        if cost < 0:
            raise ValueError(f"{indicator}: negative cost {cost} for {model!r}")
        points[model] = (cost, value)

    def beaten(model: str) -> bool:
        return any(
            dominates(points[other], points[model], higher_is_better, bool(same_cost and same_cost(other, model)))
            for other in points
            if other != model
        )

    on = [m for m in points if not beaten(m)]
    sign = 1.0 if higher_is_better else -1.0
    on.sort(key=lambda m: (points[m][0], -sign * points[m][1], m))
    return Frontier(indicator, tuple(on), tuple(points), tuple(missing))


def frontiers(
    costs: Mapping[str, Mapping[str, float | None]],
    quality: Mapping[str, float | None],
    higher_is_better: bool = True,
) -> list[Frontier]:
    """One frontier per cost indicator, in the order of ``costs`` (indicator -> model -> cost)."""
    return [pareto_frontier(by_model, quality, higher_is_better, indicator) for indicator, by_model in costs.items()]


def frontier_change(before: Frontier, after: Frontier) -> FrontierChange:
    """Models that join or leave the frontier from ``before`` to ``after``, among models costed under both."""
    both = set(before.compared) & set(after.compared)
    joined = tuple(m for m in after.models if m in both and m not in before.models)
    left = tuple(m for m in before.models if m in both and m not in after.models)
    return FrontierChange(before.indicator, after.indicator, joined, left)


def frontier_changes(panels: Sequence[Frontier]) -> list[FrontierChange]:
    """The change between each indicator and the next, in order."""
    return [frontier_change(a, b) for a, b in zip(panels, panels[1:], strict=False)]


def change_sentence(change: FrontierChange, labels: Mapping[str, str] | None = None) -> str:
    """ "From parameters to FLOPs: X joins; Y leaves." (or "... the frontier is the same")."""
    name = (labels or {}).get
    head = f"From {name(change.before, change.before)} to {name(change.after, change.after)}"
    if not change.changed:
        return f"{head}: the frontier is the same."
    parts = []
    if change.joined:
        parts.append(f"{', '.join(change.joined)} join{'s' if len(change.joined) == 1 else ''}")
    if change.left:
        parts.append(f"{', '.join(change.left)} leave{'s' if len(change.left) == 1 else ''}")
    return f"{head}: {'; '.join(parts)}."
