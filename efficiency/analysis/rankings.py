"""Ranks, rank correlations, rank flips and "what disagrees" findings over cost indicators.

The efficiency misnomer (Dehghani et al., ICLR 2022) is that cost indicators rank models differently.
Everything here works on a DataFrame with one row per model and raw values (counts, bytes, ms);
numbers become text only through the formatters of :data:`INDICATORS`, at the edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

SETUP_COLUMNS = ("hardware", "dtype", "batch_size", "seq_len", "image_size")
_SI_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _significant(value: float) -> str:
    """Three significant digits without trailing zeros: 22.3, 110, 1.2, 81."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _si(value: float, unit: str, space: bool) -> str:
    """Scale by an SI prefix so people read "22.3 GFLOPs" instead of 22300000000."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    for factor, prefix in _SI_PREFIXES:
        if abs(value) >= factor:
            return f"{_significant(value / factor)} {prefix}{' ' if space else ''}{unit}"
    return f"{_significant(value)} {unit}"


def format_count(value: float, unit: str) -> str:
    """Counts with a spaced unit word: "110 M params", "12.4 k items/s"."""
    return _si(value, unit, space=True)


def format_flops(value: float) -> str:
    """FLOPs (1 multiply-add = 2 FLOPs): "22.3 GFLOPs"."""
    return _si(value, "FLOPs", space=False)


def format_bytes(value: float) -> str:
    """Decimal bytes (1 GB = 1e9 B), matching the raw byte counts we store: "1.2 GB"."""
    return _si(value, "B", space=False)


def format_ms(value: float) -> str:
    """Durations given in ms: "12.4 ms", "850 µs", "4.1 s"."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    if abs(value) >= 1000:
        return f"{_significant(value / 1000)} s"
    if 0 < abs(value) < 1:
        return f"{_significant(value * 1000)} µs"
    return f"{_significant(value)} ms"


def format_ratio(ratio: float) -> str:
    """A ratio short enough for a sentence, with enough digits that it never reads as "1x"."""
    if ratio is None or not math.isfinite(ratio):
        return "n/a"
    if ratio >= 100:
        return f"{ratio:.0f}x"
    digits = 3 if abs(ratio - 1) < 0.05 else 2
    return f"{ratio:.{digits}g}x"


@dataclass(frozen=True)
class Indicator:
    """One cost indicator: how to label it, which direction is better, how to print a value."""

    column: str
    label: str
    unit: str
    lower_is_better: bool
    formatter: Callable[[float], str]
    measurable: bool = False  # True: the row's `measured` flag says measured here or estimated

    def format(self, value: float) -> str:
        if value is None or pd.isna(value):
            return "n/a"
        return self.formatter(float(value))

    @property
    def axis_title(self) -> str:
        """ "Latency (ms)"; just "FLOPs" where the label already is the unit."""
        return self.label if self.label == self.unit else f"{self.label} ({self.unit})"

    @property
    def phrase(self) -> str:
        """Label for use mid-sentence ("by parameters", "by FLOPs")."""
        return self.label if self.label.startswith("FLOP") else self.label[0].lower() + self.label[1:]


INDICATORS: dict[str, Indicator] = {
    ind.column: ind
    for ind in (
        Indicator("params", "Parameters", "params", True, lambda v: format_count(v, "params")),
        Indicator("params_active", "Active parameters", "params", True, lambda v: format_count(v, "params")),
        Indicator("flops", "FLOPs", "FLOPs", True, format_flops),
        Indicator("training_flops", "Training FLOPs", "FLOPs", True, format_flops),
        Indicator("memory_traffic_bytes", "Memory traffic", "bytes", True, format_bytes),
        Indicator("latency_ms", "Latency", "ms", True, format_ms, measurable=True),
        Indicator("throughput_per_s", "Throughput", "items/s", False, lambda v: format_count(v, "items/s"), True),
        Indicator("peak_memory_bytes", "Peak memory", "bytes", True, format_bytes, measurable=True),
        Indicator("training_step_ms", "Training step", "ms", True, format_ms, measurable=True),
    )
}


def _check(df: pd.DataFrame) -> None:
    if "model" not in df.columns:
        raise ValueError("results table: needs a 'model' column naming each row's model")
    duplicated = df["model"][df["model"].duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"model: {duplicated} appear more than once; keep one row per model (one setup)")


def available_indicators(df: pd.DataFrame, indicators: Sequence[str] | None = None) -> list[str]:
    """Indicator columns present with at least one value, in registry order (or the order asked)."""
    wanted = list(INDICATORS) if indicators is None else list(indicators)
    unknown = [c for c in wanted if c not in INDICATORS]
    if unknown:
        raise ValueError(f"indicators: unknown {unknown}; known: {', '.join(INDICATORS)}")
    return [c for c in wanted if c in df.columns and pd.to_numeric(df[c], errors="coerce").notna().any()]


def values(df: pd.DataFrame, indicators: Sequence[str] | None = None) -> pd.DataFrame:
    """Raw indicator values as floats indexed by model; the common input of every analysis."""
    _check(df)
    columns = available_indicators(df, indicators)
    out = pd.DataFrame(index=pd.Index(df["model"].astype(str), name="model"))
    for column in columns:
        try:
            numeric = pd.to_numeric(df[column]).astype(float)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{column}: holds a non-numeric value ({error})") from error
        if (numeric < 0).any():
            raise ValueError(f"{column}: negative value for {df['model'][numeric < 0].tolist()}")
        out[column] = numeric.to_numpy()
    return out


def measured_mask(df: pd.DataFrame) -> pd.Series:
    """True where the row's measurable indicators were measured here; missing flag counts as estimated."""
    _check(df)
    flags = df["measured"] if "measured" in df.columns else pd.Series([None] * len(df), index=df.index)
    return pd.Series(
        [bool(v) if not pd.isna(v) else False for v in flags],
        index=pd.Index(df["model"].astype(str), name="model"),
        name="measured",
    )


def ranks(df: pd.DataFrame, indicators: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank 1 = most efficient under each indicator (throughput: highest); ties averaged, NaN kept."""
    raw = values(df, indicators)
    return pd.DataFrame(
        {c: raw[c].rank(method="average", ascending=INDICATORS[c].lower_is_better) for c in raw.columns},
        index=raw.index,
    )


def _correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """scipy's tau-b / rho over models present in both; NaN when under 3 or an order is all ties."""
    both = ~(np.isnan(x) | np.isnan(y))
    x, y = x[both], y[both]
    if len(x) < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return float("nan")
    if method == "kendall":
        return float(stats.kendalltau(x, y).statistic)
    return float(stats.spearmanr(x, y).statistic)


def rank_correlations(
    df: pd.DataFrame, method: str = "kendall", indicators: Sequence[str] | None = None
) -> pd.DataFrame:
    """Indicator x indicator agreement of the efficiency orders: 1 = same order, -1 = reversed."""
    if method not in ("kendall", "spearman"):
        raise ValueError(f"method: {method!r} is not 'kendall' or 'spearman'")
    ranked = ranks(df, indicators)
    columns = list(ranked.columns)
    matrix = pd.DataFrame(np.nan, index=pd.Index(columns), columns=pd.Index(columns), dtype=float)
    for a in columns:
        for b in columns:
            matrix.loc[a, b] = _correlation(ranked[a].to_numpy(), ranked[b].to_numpy(), method)
    return matrix


def _cost_ratio(indicator: str, value_a: float, value_b: float) -> float:
    """How many times costlier A is than B: < 1 means A is better, whichever direction is better."""
    if value_a <= 0 or value_b <= 0:
        return float("nan")
    ratio = value_a / value_b
    return ratio if INDICATORS[indicator].lower_is_better else 1 / ratio


def rank_flips(df: pd.DataFrame, indicators: Sequence[str] | None = None) -> list[dict]:
    """Every (model pair, indicator pair) whose order reverses, most striking first.

    Model A is the one better under indicator x (the earlier one in registry order) and worse under y.
    ``ratio_*`` are raw value ratios A/B; ``strength`` is log10 of how far the two cost ratios disagree.
    """
    raw = values(df, indicators)
    models, columns, table = list(raw.index), list(raw.columns), raw.to_numpy()
    flips: list[dict] = []
    for i, j in combinations(range(len(models)), 2):
        for p, q in combinations(range(len(columns)), 2):
            x, y = columns[p], columns[q]
            cost_x = _cost_ratio(x, table[i, p], table[j, p])
            cost_y = _cost_ratio(y, table[i, q], table[j, q])
            if not (math.isfinite(cost_x) and math.isfinite(cost_y)) or (cost_x - 1) * (cost_y - 1) >= 0:
                continue
            a, b = (i, j) if cost_x < 1 else (j, i)
            flips.append(
                {
                    "model_a": models[a],
                    "model_b": models[b],
                    "indicator_x": x,
                    "indicator_y": y,
                    "value_a_x": float(table[a, p]),
                    "value_b_x": float(table[b, p]),
                    "value_a_y": float(table[a, q]),
                    "value_b_y": float(table[b, q]),
                    "ratio_x": float(table[a, p] / table[b, p]),
                    "ratio_y": float(table[a, q] / table[b, q]),
                    "strength": abs(math.log10(cost_y / cost_x)),
                }
            )
    return sorted(flips, key=lambda f: f["strength"], reverse=True)


def _pair_of_values(ind: Indicator, a_value: float, b_value: float) -> str:
    """ "223 M vs 335 M params": the unit once when both sides share it, both units otherwise."""
    a_text, b_text = ind.format(a_value), ind.format(b_value)
    a_head, _, a_unit = a_text.rpartition(" ")
    if a_head and a_unit == b_text.rpartition(" ")[2]:
        return f"{a_head} vs {b_text}"
    return f"{a_text} vs {b_text}"


def _clause(indicator: str, a_value: float, b_value: float, estimated: bool, other: str = "") -> str:
    """ "is 3.1x B (410 vs 132 ms)" or, for higher-is-better, "runs at 0.4x the rate of B (...)"."""
    ind = INDICATORS[indicator]
    ratio = format_ratio(a_value / b_value)
    if ind.lower_is_better:
        head = f"is {ratio}" + (f" {other}" if other else "")
    else:
        head = f"runs at {ratio} the rate" + (f" of {other}" if other else "")
    note = ", estimated" if estimated else ""
    return f"{head} ({_pair_of_values(ind, a_value, b_value)}{note})"


def _sentence(raw: pd.DataFrame, a: str, b: str, x: str, ys: list[str], measured: pd.Series | None) -> str:
    """ "By X, A is r1 x B (...); by Y it is r2 x (...)." from the raw values of one model pair."""

    def estimated(indicator: str) -> bool:
        if measured is None or not INDICATORS[indicator].measurable:
            return False
        return not (measured[a] and measured[b])

    text = f"By {INDICATORS[x].phrase} {a} " + _clause(x, raw.loc[a, x], raw.loc[b, x], estimated(x), b)
    for y in ys:
        text += f"; by {INDICATORS[y].phrase} it " + _clause(y, raw.loc[a, y], raw.loc[b, y], estimated(y))
    return text + "."


def describe_flip(flip: dict, measured: pd.Series | None = None) -> str:
    """One sentence, built only from the flip's numbers, saying which two indicators disagree."""
    a, b, x, y = flip["model_a"], flip["model_b"], flip["indicator_x"], flip["indicator_y"]
    raw = pd.DataFrame(
        {x: [flip["value_a_x"], flip["value_b_x"]], y: [flip["value_a_y"], flip["value_b_y"]]}, index=[a, b]
    )
    return _sentence(raw, a, b, x, [y], measured)


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
        return [f"No indicator disagrees: {labels} all rank these {len(raw)} models in the same order."]
    measured = measured_mask(df)
    sentences, seen_pairs = [], set()
    for flip in flips:
        a, b, x = flip["model_a"], flip["model_b"], flip["indicator_x"]
        if frozenset((a, b)) in seen_pairs:
            continue
        seen_pairs.add(frozenset((a, b)))
        costs = {c: _cost_ratio(c, raw.loc[a, c], raw.loc[b, c]) for c in comparable}
        ys = sorted((c for c, cost in costs.items() if cost > 1), key=lambda c: costs[c], reverse=True)
        sentences.append(_sentence(raw, a, b, x, ys[:max_clauses], measured))
        if len(sentences) == max_items:
            break
    return sentences


def relative_to(df: pd.DataFrame, reference_model: str, indicators: Sequence[str] | None = None) -> pd.DataFrame:
    """Each model's cost as a multiple of the reference's: 1.0 = same, > 1 = costlier.

    Throughput is inverted (reference / model) so that > 1 means slower everywhere; the inverted
    columns are listed in ``result.attrs["inverted"]`` for labels.
    """
    raw = values(df, indicators)
    if reference_model not in raw.index:
        raise ValueError(f"reference_model: {reference_model!r} is not among {list(raw.index)}")
    out = pd.DataFrame(index=raw.index)
    for column in raw.columns:
        reference = raw.loc[reference_model, column]
        series = raw[column].where(raw[column] > 0)
        if pd.isna(reference) or reference <= 0:
            out[column] = np.nan
        elif INDICATORS[column].lower_is_better:
            out[column] = series / reference
        else:
            out[column] = reference / series
    out.attrs["inverted"] = [c for c in raw.columns if not INDICATORS[c].lower_is_better]
    out.attrs["reference"] = reference_model
    return out


@dataclass(frozen=True)
class Verdict:
    """Whether two models swap order across indicators; ``str()`` gives the line experiments print."""

    a: str
    b: str
    a_better: list[str] = field(default_factory=list)
    b_better: list[str] = field(default_factory=list)
    ties: list[str] = field(default_factory=list)

    @property
    def disagrees(self) -> bool:
        return bool(self.a_better and self.b_better)

    def __str__(self) -> str:
        def names(columns: list[str]) -> str:
            return ", ".join(INDICATORS[c].phrase for c in columns)

        parts = []
        if self.a_better:
            parts.append(f"{names(self.a_better)} ranked {self.a} < {self.b}")
        if self.b_better:
            parts.append(f"{names(self.b_better)} ranked {self.b} < {self.a}")
        if self.ties:
            parts.append(f"{names(self.ties)} tied")
        if not parts:
            return f"no disagreement: no indicator has values for both {self.a} and {self.b}"
        return f"{'; '.join(parts)}: {'disagreement' if self.disagrees else 'no disagreement'}"


def verdict(df: pd.DataFrame, a: str, b: str, indicators: Sequence[str] | None = None) -> Verdict:
    """Compare two models under every indicator both have (A < B means A is more efficient)."""
    raw = values(df, indicators)
    missing = [m for m in (a, b) if m not in raw.index]
    if missing:
        raise ValueError(f"verdict: {missing} not among {list(raw.index)}")
    groups: dict[str, list[str]] = {"a": [], "b": [], "tie": []}
    for column in raw.columns:
        va, vb = raw.loc[a, column], raw.loc[b, column]
        if pd.isna(va) or pd.isna(vb):
            continue
        cost = (va - vb) if INDICATORS[column].lower_is_better else (vb - va)
        groups["a" if cost < 0 else "b" if cost > 0 else "tie"].append(column)
    return Verdict(a, b, groups["a"], groups["b"], groups["tie"])


def setup_line(df: pd.DataFrame) -> str:
    """The setup behind the numbers ("Xeon · float32 · batch 1 · seq 128"), so no chart hides it."""
    prefixes = {"batch_size": "batch ", "seq_len": "seq ", "image_size": "image "}
    parts = []
    for column in SETUP_COLUMNS:
        if column not in df.columns:
            continue
        present = [v for v in pd.unique(df[column]) if not pd.isna(v)]
        if not present:
            continue
        shown = [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in present]
        text = shown[0] if len(shown) == 1 else "/".join(sorted(shown, key=lambda s: (len(s), s)))
        parts.append(prefixes.get(column, "") + text)
    return " · ".join(parts)
