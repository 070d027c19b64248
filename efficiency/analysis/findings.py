"""What the numbers say in words: "what disagrees" findings over many models, and the verdict on two.

Both read raw indicator values (counts, bytes, ms) and write each number through the formatters of
:data:`~efficiency.analysis.rankings.INDICATORS`, so every sentence can be checked against the table it came from.
A :class:`Verdict` is the one answer to "do these two models swap order across indicators?": the dashboard,
the experiments and the story all ask it through :func:`compare` or :func:`strongest`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from efficiency import units
from efficiency.analysis.rankings import INDICATORS, cost_ratio, measured_mask, pair_text, rank_flips, values
from efficiency.results import implementation_label

# Two values closer than this are "about equal" for a verdict: counts are exact, so 2% is a real
# difference of design; measured times also need their p10-p90 ranges apart (see ``_noise_overlap``).
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
SPREAD = {"latency_ms": "latency", "training_step_ms": "training_step"}
NO_FLIP_START = "No indicator disagrees"  # how ``findings`` starts when no pair of rows swaps order


# ---- findings: the most striking disagreements among many models ----------------------------------


def _clause(indicator: str, a_value: float, b_value: float, estimated: bool, other: str = "") -> str:
    """ "is 3.1x B (410 vs 132 ms)" or, for higher-is-better, "runs at 0.4x the rate of B (...)"."""
    ratio = units.ratio(a_value / b_value)
    if INDICATORS[indicator].lower_is_better:
        head = f"is {ratio}" + (f" {other}" if other else "")
    else:
        head = f"runs at {ratio} the rate" + (f" of {other}" if other else "")
    note = ", estimated" if estimated else ""
    return f"{head} ({pair_text(indicator, a_value, b_value)}{note})"


def _sentence(raw: pd.DataFrame, a: str, b: str, x: str, ys: list[str], measured: pd.Series) -> str:
    """ "By X, A is r1 x B (...); by Y it is r2 x (...)." from the raw values of one model pair."""

    def estimated(indicator: str) -> bool:
        return INDICATORS[indicator].measurable and not (measured[a] and measured[b])

    text = f"By {INDICATORS[x].phrase} {a} " + _clause(x, raw.loc[a, x], raw.loc[b, x], estimated(x), b)
    for y in ys:
        text += f"; by {INDICATORS[y].phrase} it " + _clause(y, raw.loc[a, y], raw.loc[b, y], estimated(y))
    return text + "."


def findings(
    df: pd.DataFrame, max_items: int = 5, indicators: Sequence[str] | None = None, max_clauses: int = 3
) -> list[str]:
    """The most striking disagreements as plain sentences: one per model pair, strongest pair first.

    Each sentence leads with the indicator that favours model A most, then lists (strongest first, at
    most ``max_clauses``) the indicators under which A is the costlier one.
    """
    raw = values(df, indicators)
    comparable = [c for c in raw.columns if raw[c].notna().sum() >= 2]
    if len(raw) < 2 or len(comparable) < 2:
        return ["Nothing to compare yet: disagreement needs at least two models with at least two indicators each."]
    flips = rank_flips(df, comparable)
    if not flips:
        labels = ", ".join(INDICATORS[c].phrase for c in comparable)
        return [f"{NO_FLIP_START}: {labels} all rank these {len(raw)} models in the same order."]
    measured = measured_mask(df)
    sentences, seen_pairs = [], set()
    for flip in flips:
        a, b, x = flip["model_a"], flip["model_b"], flip["indicator_x"]
        if frozenset((a, b)) in seen_pairs:
            continue
        seen_pairs.add(frozenset((a, b)))
        costs = {c: cost_ratio(c, raw.loc[a, c], raw.loc[b, c]) for c in comparable}
        ys = sorted((c for c, cost in costs.items() if cost > 1), key=lambda c: costs[c], reverse=True)
        sentences.append(_sentence(raw, a, b, x, ys[:max_clauses], measured))
        if len(sentences) == max_items:
            break
    return sentences


# ---- the verdict on two models ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How two rows compare under each indicator, with "about equal" allowed (tolerance and noise)."""

    a: str
    b: str
    a_better: list[str]
    b_better: list[str]
    equal: list[str]
    details: dict[str, str]
    strength: float = 0.0  # spread of log cost ratios across indicators: how strongly they disagree

    @property
    def disagrees(self) -> bool:
        """Opposite orders, or one indicator calling them equal while another tells them clearly apart."""
        return bool(self.a_better and self.b_better) or bool(self.equal and (self.a_better or self.b_better))

    def line(self) -> str:
        """ "parameters (...) ranked A < B; latency (...) ranked B < A: disagreement"."""

        def names(columns: list[str]) -> str:
            return ", ".join(f"{INDICATORS[c].phrase} {self.details[c]}" for c in columns)

        parts = []
        if self.a_better:
            parts.append(f"{names(self.a_better)} ranked {self.a} < {self.b}")
        if self.b_better:
            parts.append(f"{names(self.b_better)} ranked {self.b} < {self.a}")
        if self.equal:
            parts.append(f"{names(self.equal)} about equal")
        if not parts:
            return f"not shown in this run: no indicator has values for both {self.a} and {self.b}"
        outcome = "disagreement" if self.disagrees else "no disagreement in this run"
        return f"{'; '.join(parts)}: {outcome}"


def _noise_overlap(data: pd.DataFrame, a: int, b: int, column: str) -> bool:
    """True when two measured times' p10-p90 ranges overlap: the run cannot tell them apart."""
    prefix = SPREAD.get(column)
    low, high = f"{prefix}_p10_ms", f"{prefix}_p90_ms"
    if prefix is None or low not in data.columns or high not in data.columns:
        return False
    ranges = [(data.loc[i, low], data.loc[i, high]) for i in (a, b)]
    if any(pd.isna(x) for pair in ranges for x in pair):
        return False
    return ranges[0][0] <= ranges[1][1] and ranges[1][0] <= ranges[0][1]


def compare(data: pd.DataFrame, label: str, a: str, b: str, indicators: Sequence[str]) -> Verdict:
    """Compare rows ``a`` and ``b`` (matched on column ``label``) under each indicator with values for both."""
    rows = {str(v): i for i, v in zip(data.index, data[label])}
    missing = [x for x in (a, b) if x not in rows]
    if missing:
        raise ValueError(f"compare: {missing} not among {list(rows)}")
    ia, ib = rows[a], rows[b]
    a_better, b_better, equal, details = [], [], [], {}
    logs = []
    for column in indicators:
        if column not in data.columns:
            continue
        va, vb = data.loc[ia, column], data.loc[ib, column]
        if pd.isna(va) or pd.isna(vb) or va <= 0 or vb <= 0:
            continue
        cost = va / vb if INDICATORS[column].lower_is_better else vb / va  # > 1: a costs more
        if max(cost, 1 / cost) - 1 <= TOLERANCE.get(column, 0.05) or _noise_overlap(data, ia, ib, column):
            equal.append(column)
            details[column] = f"({pair_text(column, va, vb)})"
            logs.append(0.0)
            continue
        first, second = (vb, va) if cost > 1 else (va, vb)  # in the order the line ranks them
        details[column] = f"({pair_text(column, first, second)}, {units.times(max(va, vb) / min(va, vb))})"
        (b_better if cost > 1 else a_better).append(column)
        logs.append(math.log(cost))
    return Verdict(a, b, a_better, b_better, equal, details, max(logs) - min(logs) if logs else 0.0)


def strongest(data: pd.DataFrame, label: str, indicators: Sequence[str], needs: Sequence[str] = ()) -> Verdict | None:
    """The most telling disagreeing pair of rows (see ``_rank``); ``needs``: one of these indicators must take
    part in the disagreement (e.g. a measured one). None when no pair disagrees."""
    best: Verdict | None = None
    for a, b in combinations([str(v) for v in data[label]], 2):
        verdict = compare(data, label, a, b, indicators)
        if not verdict.disagrees:
            continue
        if needs and not set(needs) & set(verdict.a_better + verdict.b_better + verdict.equal):
            continue
        if best is None or _rank(verdict) > _rank(best):
            best = verdict
    return best


def _rank(verdict: Verdict) -> tuple[bool, float]:
    """Opposite orders beat "equal by one, apart by another"; then the wider spread of cost ratios wins."""
    return bool(verdict.a_better and verdict.b_better), verdict.strength


# ---- the implementation axis: one model, the same arithmetic, different code ------------------------


def _implementation_pair(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series, float] | None:
    """(faster row, slower row, latency ratio) of one model's rows whose measured latencies differ most beyond
    the tolerance and their p10-p90 spreads; None when every pair is about equal (or nothing was measured)."""
    timed = rows[rows["measured"].astype(bool) & rows["latency_ms"].notna()]
    best = None
    for a, b in combinations(list(timed.index), 2):
        verdict = compare(timed, "model", str(timed.loc[a, "model"]), str(timed.loc[b, "model"]), ["latency_ms"])
        if "latency_ms" in verdict.equal or "latency_ms" not in verdict.details:
            continue
        fast, slow = (a, b) if timed.loc[a, "latency_ms"] < timed.loc[b, "latency_ms"] else (b, a)
        speedup = float(timed.loc[slow, "latency_ms"] / timed.loc[fast, "latency_ms"])
        if best is None or speedup > best[2]:
            best = (timed.loc[fast], timed.loc[slow], speedup)
    return best


def implementation_sentence(fast: pd.Series, slow: pd.Series, speedup: float) -> str:
    """ "BERT-base (uncased): same FLOPs (22.4 GFLOPs), 2.4x faster under torch.compile than under SDPA
    (12.0 vs 29.0 ms, measured)." Int8 work is not FLOPs, so a row with it says so instead of "same FLOPs"."""
    fast_label, slow_label = implementation_label(fast["implementation"]), implementation_label(slow["implementation"])
    name = str(fast["model"]).removesuffix(f" ({fast_label})")
    latency = f"({pair_text('latency_ms', fast['latency_ms'], slow['latency_ms'])}, measured)"
    faster = f"{units.times(speedup)} faster under {fast_label} than under {slow_label} {latency}"
    if "int8" in (fast["implementation"], slow["implementation"]):
        return f"{name}: {faster}; int8 runs the linear layers as int8 operations, counted apart from FLOPs."
    same = pd.notna(fast["flops"]) and fast["flops"] == slow["flops"]
    flops_text = INDICATORS["flops"].format(fast["flops"]) if same else pair_text("flops", fast["flops"], slow["flops"])
    flops = f"same FLOPs ({flops_text})" if same else f"FLOPs {flops_text}"
    return f"{name}: {flops}, {faster}."


def implementation_findings(df: pd.DataFrame, max_items: int = 3) -> list[str]:
    """For each model shown under several implementations, the pair of its rows whose measured latencies differ
    most (beyond 10% and their p10-p90 spreads): the same model, different code, different speed. Largest first."""
    needed = {"model", "model_id", "implementation", "measured", "latency_ms", "flops"}
    if not needed <= set(df.columns):
        return []
    found = []
    for _, rows in df.reset_index(drop=True).groupby("model_id", sort=False):
        if rows["implementation"].nunique() < 2:
            continue
        pair = _implementation_pair(rows)
        if pair is not None:
            found.append(pair)
    found.sort(key=lambda pair: pair[2], reverse=True)
    return [implementation_sentence(*pair) for pair in found[:max_items]]
