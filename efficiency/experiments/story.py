"""Story mode data: an ordered walk through the experiments, one chart and one takeaway per step.

The takeaway of each step is computed from the numbers of the run it shows (bundled or re-measured), never
typed in: when a run does not show the effect, the sentence says what the run did show. Titles are neutral
topic names. Pages read ``STEPS`` and call :func:`takeaway` and :func:`step_figure`; nothing here draws widgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.findings import compare
from efficiency.charts.compare import relative_bars
from efficiency.charts.sweeps import line_sweep
from efficiency.experiments import ExperimentResult
from efficiency.experiments.base import fmt
from efficiency.experiments.chips import latency_flips


@dataclass(frozen=True)
class Step:
    """One screen of the story: which experiment's numbers, which chart of them, which sentence."""

    title: str
    experiment: str
    chart: str  # "experiment": the experiment's own figure; see CHARTS for the others
    sentence: Callable[[ExperimentResult], str]


def _reversal(data: pd.DataFrame, by: str, against: str) -> tuple[pd.Series, pd.Series] | None:
    """The pair (a, b) where a is clearly cheaper by ``by`` and clearly costlier by ``against`` (the same
    tolerance and noise rules as the verdicts), the most striking such pair; None when there is none."""
    best, best_strength = None, 0.0
    rows = data.dropna(subset=[by, against]).set_index("model", drop=False)
    for a, b in permutations(rows.index, 2):
        verdict = compare(rows.reset_index(drop=True), "model", str(a), str(b), [by, against])
        if by in verdict.a_better and against in verdict.b_better and verdict.strength > best_strength:
            best, best_strength = (rows.loc[a], rows.loc[b]), verdict.strength
    return best


def _r(a: float, b: float) -> str:
    return units.times(a / b)


def _sharing(result: ExperimentResult) -> str:
    pair = _reversal(result.data, "params", "latency_ms")
    if pair is None:
        return "In this run, fewer parameters also meant lower latency for every pair of models."
    a, b = pair
    return (
        f"{a.model} has {_r(a.params, b.params)} the parameters of {b.model}, "
        f"yet {_r(a.latency_ms, b.latency_ms)} its latency on this CPU."
    )


def _moe(result: ExperimentResult) -> str:
    data = result.data
    dense = data[data["params"] == data["params_active"]].iloc[0]
    big = data.loc[data["params"].idxmax()]
    return (
        f"{big.model} stores {_r(big.params, dense.params)} the parameters of {dense.model} "
        f"but costs {_r(big.flops, dense.flops)} its FLOPs per token (counted)."
    )


def _sequence(result: ExperimentResult) -> str:
    first, last = result.data.iloc[0], result.data.iloc[-1]
    text = (
        f"Same {fmt('params', first.params)}: from {first.seq_len:g} to {last.seq_len:g} tokens, "
        f"FLOPs grew {_r(last.flops, first.flops)}"
    )
    if pd.notna(last.get("latency_ms")):
        text += f" and latency {_r(last.latency_ms, first.latency_ms)}"
    return text + "."


def _tokens(result: ExperimentResult) -> str:
    data = result.data
    at = data[data["image_size"] == (224 if 224 in set(data["image_size"]) else data["image_size"].max())]
    if len(at) < 2:
        lo, hi = data.iloc[0], data.iloc[-1]
        return (
            f"{lo.model}: {_r(hi.tokens, lo.tokens)} the tokens, {_r(hi.flops, lo.flops)} the FLOPs, same parameters."
        )
    few, many = at.sort_values("tokens").iloc[0], at.sort_values("tokens").iloc[-1]
    text = (
        f"{many.model} vs {few.model}: {_r(many.params, few.params)} the parameters, "
        f"{_r(many.tokens, few.tokens)} the tokens, {_r(many.flops, few.flops)} the FLOPs"
    )
    return text + (f", {_r(many.latency_ms, few.latency_ms)} the latency." if pd.notna(many.latency_ms) else ".")


def _depth(result: ExperimentResult) -> str:
    data = result.data
    fast, slow = data.loc[data["latency_ms"].idxmin()], data.loc[data["latency_ms"].idxmax()]
    return (
        f"Parameters within {data['params'].max() / data['params'].min() - 1:.1%}, FLOPs within "
        f"{data['flops'].max() / data['flops'].min() - 1:.1%}: {slow.model} took "
        f"{_r(slow.latency_ms, fast.latency_ms)} the latency of {fast.model}."
    )


def _vision(result: ExperimentResult) -> str:
    for against, what in (("latency_ms", "latency on this CPU"), ("peak_memory_bytes", "peak memory")):
        if against in result.data.columns and (pair := _reversal(result.data, "flops", against)) is not None:
            a, b = pair
            return (
                f"{a.model} needs {_r(a.flops, b.flops)} the FLOPs of {b.model}, "
                f"yet {_r(a[against], b[against])} its {what}."
            )
    return "In this run, fewer FLOPs also meant lower latency and peak memory for every pair of models."


def _batch(result: ExperimentResult) -> str:
    first, last = result.data.iloc[0], result.data.iloc[-1]
    return (
        f"Batch {last.batch_size:g} vs {first.batch_size:g}: {_r(last.latency_ms, first.latency_ms)} the latency, "
        f"{_r(last.throughput_per_s, first.throughput_per_s)} the throughput."
    )


def _training(result: ExperimentResult) -> str:
    pair = _reversal(result.data, "latency_ms", "training_step_ms")
    if pair is None:
        spread = result.data["training_step_ms"] / result.data["latency_ms"]
        return (
            f"A training step took {spread.min():.1f}x to {spread.max():.1f}x a forward pass here, "
            "and the order of these models held."
        )
    a, b = pair
    return (
        f"{a.model} infers in {_r(a.latency_ms, b.latency_ms)} the time of {b.model}, "
        f"but trains a step in {_r(a.training_step_ms, b.training_step_ms)}."
    )


def _hardware(result: ExperimentResult) -> str:
    flips = latency_flips(result.data)
    if not flips:
        return "In this run, every chip's estimated latency order matched the order measured on this CPU."
    a, b, chip = flips[0]["a"], flips[0]["b"], flips[0]["chip"]
    latency = result.data.set_index(["hardware", "model"])["latency_ms"]
    here = str(result.data.loc[result.data["measured"].astype(bool), "hardware"].iloc[0])
    return (
        f"{a} is {_r(latency[(here, b)], latency[(here, a)])} faster than {b} on this CPU (measured), "
        f"but {_r(latency[(chip, a)], latency[(chip, b)])} slower on {chip} (estimated)."
    )


STORY_HEIGHT_PX = 520  # a talk slide: the chart fits under the takeaway at 1280 x 800


def _relative_points(result: ExperimentResult, presentation: bool) -> go.Figure:
    """Every point of a sweep as a multiple of the cheapest one: a flat 1x bar is the indicator that did not move."""
    data = result.data.copy()
    if "point" in data.columns:  # one model swept: "32 tokens" says it all; several: keep the model's name
        short = data["point"].str.split(" @ ").str[-1]
        data["model"] = short if data["model"].nunique() == 1 else data["point"]
    data = data.sort_values("flops")
    indicators = [c for c in ("params", "flops", "latency_ms", "peak_memory_bytes") if c in data.columns]
    indicators = [c for c in indicators if data[c].notna().all()]
    return relative_bars(data, str(data["model"].iloc[0]), indicators, presentation=presentation)


def _latency_and_throughput(result: ExperimentResult, presentation: bool) -> go.Figure:
    title = "Batch size: latency and throughput pull apart"
    return line_sweep(
        result.data, "batch_size", ["latency_ms", "throughput_per_s"], title=title, presentation=presentation
    )


CHARTS: dict[str, Callable[[ExperimentResult, bool], go.Figure]] = {
    "experiment": lambda result, presentation: result.chart(presentation),
    "relative-to-cheapest": _relative_points,
    "latency-and-throughput": _latency_and_throughput,
}

STEPS: list[Step] = [
    Step("Parameter sharing", "parameter-sharing", "experiment", _sharing),
    Step("Sparse experts", "sparse-moe", "experiment", _moe),
    Step("Sequence length", "sequence-length", "relative-to-cheapest", _sequence),
    Step("Tokens per image", "token-count", "relative-to-cheapest", _tokens),
    Step("Depth vs width", "depth-vs-width", "relative-to-cheapest", _depth),
    Step("CNNs vs vision transformers", "cnn-vs-transformer", "experiment", _vision),
    Step("Latency vs throughput", "batch-size", "latency-and-throughput", _batch),
    Step("Training vs inference", "training-vs-inference", "experiment", _training),
    Step("Hardware", "hardware", "experiment", _hardware),
]


def takeaway(step: Step, result: ExperimentResult) -> str:
    """The one sentence of a step, from the numbers of ``result``."""
    if result.name != step.experiment:
        raise ValueError(f"step {step.title!r} shows {step.experiment}, not {result.name}")
    return step.sentence(result)


def step_figure(step: Step, result: ExperimentResult, presentation: bool = True) -> go.Figure:
    """The step's chart (talk-sized fonts and a slide's height by default)."""
    figure = CHARTS[step.chart](result, presentation)
    if not presentation:
        return figure
    meta = figure.layout.meta if isinstance(figure.layout.meta, dict) else {}
    if meta.get("kind") == "relative":  # the long axis title would be cut at a slide's height
        figure.update_yaxes(title_text=f"x {meta.get('reference')} (log scale)")
    return figure.update_layout(height=STORY_HEIGHT_PX)


def clamp_step(value: object) -> int:
    """A 1-based step number from a URL parameter; anything else lands on step 1 or the last step."""
    try:
        number = int(str(value))
    except ValueError:
        return 1
    return min(max(number, 1), len(STEPS))
