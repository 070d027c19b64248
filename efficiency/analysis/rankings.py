"""The cost indicators, and the ranks, rank correlations, rank flips and relative costs they give models.

The efficiency misnomer (Dehghani et al., ICLR 2022) is that cost indicators rank models differently.
Everything here works on a DataFrame with one row per model and raw values (counts, bytes, ms);
numbers become text only through the formatters of :data:`INDICATORS` (from :mod:`efficiency.units`), at the
edge. Sentences about the numbers (findings, verdicts) are in :mod:`efficiency.analysis.findings`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from efficiency import units

SETUP_COLUMNS = ("hardware", "dtype", "batch_size", "seq_len", "image_size")


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
        Indicator("params", "Parameters", "params", True, lambda v: units.params(v)),
        Indicator("params_active", "Active parameters", "params", True, lambda v: units.params(v)),
        Indicator("flops", "FLOPs", "FLOPs", True, units.flops),
        Indicator("training_flops", "Training FLOPs", "FLOPs", True, units.flops),
        Indicator("memory_traffic_bytes", "Memory traffic", "bytes", True, units.nbytes),
        Indicator("latency_ms", "Latency", "ms", True, units.duration, measurable=True),
        Indicator("throughput_per_s", "Throughput", "items/s", False, lambda v: units.count(v, "items/s"), True),
        Indicator("peak_memory_bytes", "Peak memory", "bytes", True, units.nbytes, measurable=True),
        Indicator("training_step_ms", "Training step", "ms", True, units.duration, measurable=True),
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


def cost_ratio(indicator: str, value_a: float, value_b: float) -> float:
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
            cost_x = cost_ratio(x, table[i, p], table[j, p])
            cost_y = cost_ratio(y, table[i, q], table[j, q])
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


def pair_text(column: str, a: float, b: float) -> str:
    """ "223 M vs 335 M params": the unit once when both values share it, both units otherwise."""
    a_text, b_text = INDICATORS[column].format(a), INDICATORS[column].format(b)
    a_head, _, a_unit = a_text.rpartition(" ")
    if a_head and b_text.endswith(" " + a_unit):
        return f"{a_head} vs {b_text}"
    return f"{a_text} vs {b_text}"


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
