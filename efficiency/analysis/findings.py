"""What the numbers say in words: "what disagrees" findings over many models, and the verdict on two.

Both read raw indicator values (counts, bytes, ms) and write each number through the formatters of
:data:`~efficiency.analysis.rankings.INDICATORS`, so every sentence can be checked against the table it came from.
A :class:`Verdict` is the one answer to "do these two models swap order across indicators?": the dashboard,
the experiments and the story all ask it through :func:`compare` or :func:`strongest`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd

from efficiency import units
from efficiency.analysis.claims import SPREAD, TOLERANCE, Fact, Headline
from efficiency.analysis.rankings import INDICATORS, cost_ratio, measured_mask, pair_text, rank_flips, values
from efficiency.results import implementation_label

NO_FLIP_START = "No indicator disagrees"  # how ``findings`` starts when no pair of rows swaps order


# ---- findings: the most striking disagreements among many models ----------------------------------


def _clause(indicator: str, a_value: float, b_value: float, estimated: bool, other: str = "") -> str:
    """ "is 3.1x B (410 vs 132 ms)" or, for higher-is-better, "runs at 0.4x the rate of B (...)"."""
    ratio = units.times(a_value / b_value)
    if INDICATORS[indicator].lower_is_better:
        head = f"is {ratio}" + (f" {other}" if other else "")
    else:
        head = f"runs at {ratio} the rate" + (f" of {other}" if other else "")
    note = ", estimated" if estimated else ""
    return f"{head} ({pair_text(indicator, a_value, b_value)}{note})"


def _claim(raw: pd.DataFrame, a: str, b: str, x: str, ys: list[str], measured: pd.Series) -> Headline:
    """ "By X, A is r1 x B (...); by Y it is r2 x (...)." from the raw values of one model pair, with its facts."""

    def estimated(indicator: str) -> bool:
        return INDICATORS[indicator].measurable and not (measured[a] and measured[b])

    def fact(column: str) -> Fact:
        va, vb = float(raw.loc[a, column]), float(raw.loc[b, column])
        return Fact(column, column, a, b, va, vb, "lower" if va < vb else "higher", units.times(va / vb))

    text = f"By {INDICATORS[x].phrase} {a} " + _clause(x, raw.loc[a, x], raw.loc[b, x], estimated(x), b)
    for y in ys:
        text += f"; by {INDICATORS[y].phrase} it " + _clause(y, raw.loc[a, y], raw.loc[b, y], estimated(y))
    return Headline(text + ".", tuple(fact(c) for c in (x, *ys)))


def findings_claims(
    df: pd.DataFrame, max_items: int = 5, indicators: Sequence[str] | None = None, max_clauses: int = 3
) -> list[Headline]:
    """The most striking disagreements as typed claims: one per model pair, strongest pair first; empty when
    no pair of rows is ordered clearly opposite ways (see :func:`findings` for the words then).

    A pair counts only when :func:`compare` tells it apart both ways (beyond each indicator's tolerance, and
    for measured times beyond their p10-p90 ranges): a difference inside the noise is "about equal", never a
    ranking. Each sentence leads with the indicator that favours model A most, then lists (strongest first, at
    most ``max_clauses``) the indicators under which A is clearly the costlier one.
    """
    raw = values(df, indicators)
    comparable = [c for c in raw.columns if raw[c].notna().sum() >= 2]
    if len(raw) < 2 or len(comparable) < 2:
        return []
    measured = measured_mask(df)
    table = df.assign(model=df["model"].astype(str)).reset_index(drop=True)
    claims, seen_pairs = [], set()
    for flip in rank_flips(df, comparable):
        a, b = flip["model_a"], flip["model_b"]
        if frozenset((a, b)) in seen_pairs:
            continue
        seen_pairs.add(frozenset((a, b)))
        verdict = compare(table, "model", a, b, comparable)
        if not (verdict.a_better and verdict.b_better):
            continue
        costs = {c: cost_ratio(c, raw.loc[a, c], raw.loc[b, c]) for c in comparable}
        x = min(verdict.a_better, key=lambda c: costs[c])
        ys = sorted(verdict.b_better, key=lambda c: costs[c], reverse=True)
        claims.append(_claim(raw, a, b, x, ys[:max_clauses], measured))
        if len(claims) == max_items:
            break
    return claims


def findings(
    df: pd.DataFrame, max_items: int = 5, indicators: Sequence[str] | None = None, max_clauses: int = 3
) -> list[str]:
    """:func:`findings_claims` in words; when none, one sentence saying why (too little to compare, or every
    indicator ranks the models alike once differences inside tolerance or noise count as equal)."""
    raw = values(df, indicators)
    comparable = [c for c in raw.columns if raw[c].notna().sum() >= 2]
    if len(raw) < 2 or len(comparable) < 2:
        return ["Nothing to compare yet: disagreement needs at least two models with at least two indicators each."]
    claims = findings_claims(df, max_items, indicators, max_clauses)
    if claims:
        return [claim.text for claim in claims]
    labels = ", ".join(INDICATORS[c].phrase for c in comparable)
    return [
        f"{NO_FLIP_START}: {labels} all rank these {len(raw)} models in the same order, counting differences "
        "within tolerance or the p10-p90 range as equal."
    ]


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
    values: dict[str, tuple[float, float]] = field(default_factory=dict)  # indicator -> (a's value, b's value)

    @property
    def disagrees(self) -> bool:
        """Opposite orders, or one indicator calling them equal while another tells them clearly apart."""
        return bool(self.a_better and self.b_better) or bool(self.equal and (self.a_better or self.b_better))

    def facts(self) -> tuple[Fact, ...]:
        """Each comparison :meth:`sentence` states, typed: the row with the larger value first and the ratio as
        the sentence words it ("3.1x"), or "about the same" for indicators that cannot tell the two apart."""
        out = []
        for column in self.details:
            va, vb = self.values[column]
            if column in self.equal:
                out.append(Fact(column, column, self.a, self.b, va, vb, "equal", "about the same"))
                continue
            (big, vbig), (small, vsmall) = ((self.a, va), (self.b, vb)) if va >= vb else ((self.b, vb), (self.a, va))
            out.append(Fact(column, column, big, small, vbig, vsmall, "higher", units.times(vbig / vsmall)))
        return tuple(out)

    def sentence(self, note: str = "") -> str:
        """The verdict as one plain sentence: "A comes out ahead of B by parameters (...), but B comes out ahead
        by latency (...), while the two are about the same by FLOPs (...): the indicators disagree." ``note``
        goes before the full stop."""

        def names(columns: list[str]) -> str:
            items = [f"{INDICATORS[c].phrase} {self.details[c]}" for c in columns]
            return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

        clauses = []
        if self.a_better:
            clauses.append(f"{self.a} comes out ahead of {self.b} by {names(self.a_better)}")
        if self.b_better:
            lead, other = (f"but {self.b}", "") if clauses else (self.b, f" of {self.a}")
            clauses.append(f"{lead} comes out ahead{other} by {names(self.b_better)}")
        if self.equal:
            pair = "the two" if clauses else f"{self.a} and {self.b}"
            clauses.append(f"{'while ' if clauses else ''}{pair} are about the same by {names(self.equal)}")
        if not clauses:
            return f"Not shown in this run: no indicator has values for both {self.a} and {self.b}{note}."
        outcome = "the indicators disagree" if self.disagrees else "the indicators agree in this run"
        return ", ".join(clauses) + f": {outcome}{note}."


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
    a_better, b_better, equal, details, compared = [], [], [], {}, {}
    logs = []
    for column in indicators:
        if column not in data.columns:
            continue
        va, vb = data.loc[ia, column], data.loc[ib, column]
        if pd.isna(va) or pd.isna(vb) or va <= 0 or vb <= 0:
            continue
        compared[column] = (float(va), float(vb))
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
    return Verdict(a, b, a_better, b_better, equal, details, max(logs) - min(logs) if logs else 0.0, compared)


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


def implementation_claim(fast: pd.Series, slow: pd.Series, speedup: float) -> Headline:
    """ "BERT-base (uncased): same FLOPs (22.4 GFLOPs), 2.4x faster under torch.compile than under SDPA
    (12.0 vs 29.0 ms, measured)." with its facts (the rows are named by their ``model`` labels). Int8 work is
    not FLOPs, so a row with it says so instead of "same FLOPs"."""
    fast_label, slow_label = implementation_label(fast["implementation"]), implementation_label(slow["implementation"])
    name = str(fast["model"]).removesuffix(f" ({fast_label})")
    latency = f"({pair_text('latency_ms', fast['latency_ms'], slow['latency_ms'])}, measured)"
    stated = units.times(speedup)
    faster = f"{stated} faster under {fast_label} than under {slow_label} {latency}"
    timed = Fact(
        "latency_ms", "latency_ms", str(slow["model"]), str(fast["model"]), float(slow["latency_ms"]),
        float(fast["latency_ms"]), "higher", stated,
    )  # fmt: skip
    if "int8" in (fast["implementation"], slow["implementation"]):
        text = f"{name}: {faster}; int8 runs the linear layers as int8 operations, counted apart from FLOPs."
        return Headline(text, (timed,))
    same = pd.notna(fast["flops"]) and fast["flops"] == slow["flops"]
    flops_text = INDICATORS["flops"].format(fast["flops"]) if same else pair_text("flops", fast["flops"], slow["flops"])
    facts = (timed,)
    if same:
        facts += (
            Fact(
                "flops", "flops", str(fast["model"]), str(slow["model"]), *[float(fast["flops"])] * 2, "equal", "same"
            ),
        )
    flops = f"same FLOPs ({flops_text})" if same else f"FLOPs {flops_text}"
    return Headline(f"{name}: {flops}, {faster}.", facts)


def implementation_claims(df: pd.DataFrame, max_items: int = 3) -> list[Headline]:
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
    return [implementation_claim(*pair) for pair in found[:max_items]]


def implementation_findings(df: pd.DataFrame, max_items: int = 3) -> list[str]:
    """:func:`implementation_claims` in words (Compare's "what disagrees")."""
    return [claim.text for claim in implementation_claims(df, max_items)]
