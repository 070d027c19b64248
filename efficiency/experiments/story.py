"""Story mode: an ordered walk through the experiments, one sentence (a typed :class:`Headline`) and one chart a step.

Each headline is computed from the run it shows (bundled or re-measured): it leads with the largest disagreement
in the data (an order reversed between two indicators beats "equal by one, apart by the other"; then the wider
spread of cost ratios; a speed disagreement before a memory one, because FLOPs are used as a proxy for speed),
and says plainly when the expected effect did not appear. Equal means the tolerance and p10-p90 rules of
:func:`~efficiency.analysis.findings.compare`. The chart is drawn relative to the model the sentence compares
against, and :func:`contradictions` holds every sentence to what its chart draws. Nothing here draws widgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import Fact, Headline
from efficiency.analysis.findings import SPREAD, compare
from efficiency.analysis.rankings import INDICATORS, pair_text
from efficiency.charts.story import contradictions, relative_points
from efficiency.charts.style import PRESENTATION_FONT_PX
from efficiency.charts.sweeps import line_sweep
from efficiency.experiments import ExperimentResult
from efficiency.experiments.frontier_story import quality_frontier
from efficiency.experiments.implementation import story_rows
from efficiency.experiments.lifecycle import lifecycle_step

NOT_SHOWN = "The expected effect did not appear in this run"


@dataclass(frozen=True)
class Slide:
    """What one step puts on screen: the sentence, its chart, where the numbers come from, and speaker notes."""

    headline: Headline
    figure: go.Figure
    provenance: str
    notes: str
    elapsed_s: float  # how long the run behind it took: what a live re-run will take


@dataclass(frozen=True)
class Step:
    """One screen of the story: which experiment's numbers and how to turn them into a headline and a chart."""

    title: str
    experiment: str
    build: Callable[[ExperimentResult, bool], tuple[Headline, go.Figure]]


# ---- facts and pairs ---------------------------------------------------------------------------------


def _fact(table: pd.DataFrame, a: str, b: str, column: str, category: str | None = None) -> Fact | None:
    """How row ``a`` compares with row ``b`` (column ``label``) under ``column``; None without both values."""
    verdict = compare(table, "label", a, b, [column])
    if column not in verdict.details:
        return None
    labels = list(table["label"])
    va, vb = float(table[column].iat[labels.index(a)]), float(table[column].iat[labels.index(b)])
    relation = "equal" if column in verdict.equal else ("lower" if va < vb else "higher")
    stated = ("the same" if va == vb else "about the same") if relation == "equal" else units.times(va / vb)
    return Fact(category or column, column, a, b, va, vb, relation, stated)


def _cost(fact: Fact) -> float:
    """log(a's cost / b's cost): > 0 when a is costlier, 0 when they are equal."""
    if fact.relation == "equal":
        return 0.0
    ratio = math.log(fact.a_value / fact.b_value)
    return ratio if INDICATORS[fact.indicator].lower_is_better else -ratio


def _best_pair(table: pd.DataFrame, cause: str, outcomes: list[str]) -> tuple[Fact, Fact] | None:
    """The most telling pair: a is cheaper (or equal) by ``cause`` and costlier (or equal) by an outcome, one of
    them clearly. Outcomes in priority order: the first that shows a disagreement wins."""
    for outcome in outcomes:
        best, best_rank = None, (False, 0.0)
        for a, b in permutations([str(v) for v in table["label"]], 2):
            c, o = _fact(table, a, b, cause), _fact(table, a, b, outcome)
            if c is None or o is None or _cost(c) > 0 or _cost(o) < 0 or _cost(c) == _cost(o) == 0:
                continue
            rank = (_cost(c) < 0 < _cost(o), _cost(o) - _cost(c))
            if best is None or rank > best_rank:
                best, best_rank = (c, o), rank
        if best is not None:
            return best
    return None


def _phrase(fact: Fact) -> str:
    return INDICATORS[fact.indicator].phrase


def _values(fact: Fact) -> str:
    if fact.a_value == fact.b_value:
        return INDICATORS[fact.indicator].format(fact.a_value)
    return pair_text(fact.indicator, fact.a_value, fact.b_value)


def _pair_sentence(cause: Fact, outcome: Fact, extras: list[Fact], equals: list[Fact]) -> str:
    """ "A has 0.54x the parameters of B, yet 15x its latency and 14x its FLOPs." and the two "equal" forms."""
    a, b = cause.a, cause.b
    more = "".join(f" and {x.stated} its {_phrase(x)}" for x in extras)
    if cause.relation == "equal":
        same = " and ".join(f"{_phrase(x)} ({_values(x)})" for x in [cause, *equals])
        more = "".join(f" and {x.stated} the {_phrase(x)}" for x in extras)
        return (
            f"{a} and {b} have about the same {same}, yet {a} has {outcome.stated} the {_phrase(outcome)}{more} of {b}."
        )
    head = f"{a} has {cause.stated} the {_phrase(cause)} of {b}, yet "
    if outcome.relation == "equal":
        return head + f"about the same {_phrase(outcome)} ({_values(outcome)}){more}."
    return head + f"{outcome.stated} its {_phrase(outcome)}{more}."


def _indicators(data: pd.DataFrame, wanted: list[str]) -> list[str]:
    return [c for c in wanted if c in data.columns and data[c].notna().all()]


def _points(table: pd.DataFrame, reference: str, columns: list[str], measured: pd.Series | None = None) -> pd.DataFrame:
    """Long-form ratios to ``reference`` for :func:`relative_points`, with p10-p90 ranges of timed columns."""
    rows = table.set_index("label")
    flags = rows["measured"].astype(bool) if "measured" in rows.columns else pd.Series(True, index=rows.index)
    out = []
    for label, row in rows.iterrows():
        for column in columns:
            base = rows.loc[reference, column]
            prefix = SPREAD.get(column)
            low, high = (row.get(f"{prefix}_p10_ms"), row.get(f"{prefix}_p90_ms")) if prefix else (np.nan, np.nan)
            measurable = column in INDICATORS and INDICATORS[column].measurable
            out.append(
                {
                    "series": label,
                    "category": column,
                    "ratio": row[column] / base,
                    "low": low / base if pd.notna(low) else np.nan,
                    "high": high / base if pd.notna(high) else np.nan,
                    "estimated": measurable and not flags[label],
                }
            )
    return pd.DataFrame(out)


def _relative_figure(
    table: pd.DataFrame, reference: str, columns: list[str], title: str, presentation: bool, labels: dict | None = None
) -> go.Figure:
    names = {"tokens": "Tokens<br>(count)", **(labels or {})}
    categories = {c: names.get(c) or INDICATORS[c].axis_title.replace(" (", "<br>(") for c in columns}
    points = _points(table, reference, columns)
    caption = (
        f"Each marker is a value divided by that of {reference} (log scale): on the 1x line = the same, above = more."
    )
    if points["low"].notna().any():
        caption += " Whiskers: p10-p90 of the timed runs."
    return relative_points(points, reference, categories, table, title, caption, presentation)


def _labelled(data: pd.DataFrame, label: str) -> pd.DataFrame:
    return data.assign(label=data[label].astype(str)).reset_index(drop=True)


def _short_points(data: pd.DataFrame) -> pd.DataFrame:
    """ "ViT-B/32 @ 160 px": a model's name without its parenthesised details, and the image size."""
    short = data["model"].astype(str).str.replace(r" \(.*\)", "", regex=True)
    return data.assign(point=short + " @ " + data["image_size"].map(lambda v: f"{v:g}") + " px")


def _pair_step(
    cause: str, outcomes: list[str], extras: list[str], shown: list[str], relabel: Callable | None = None
) -> Callable[[ExperimentResult, bool], tuple[Headline, go.Figure]]:
    """A step over several models: the most telling pair leads, the chart is relative to its second model."""

    def build(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
        data = relabel(result.data) if relabel else result.data
        table = _labelled(data, "point" if "point" in data.columns else "model")
        wanted = [c for c in outcomes if c in _indicators(table, outcomes)] or _indicators(table, ["flops"])
        columns = _indicators(table, shown)
        pair = _best_pair(table, cause, wanted)
        if pair is None:
            reference = str(table.loc[table[cause].idxmin(), "label"])
            figure = _relative_figure(table, reference, columns, f"Relative to {reference}", presentation)
            words = " and ".join(INDICATORS[c].phrase for c in (cause, *wanted))
            text = f"{NOT_SHOWN}: {words} ranked every pair of these models the same way."
            return Headline(text, (), tuple((c, c) for c in (cause, *wanted)), False), figure
        c, o = pair
        more = [_fact(table, c.a, c.b, x) for x in extras if x not in (cause, o.indicator)]
        costlier = sorted((f for f in more if f is not None and _cost(f) > 0), key=_cost, reverse=True)[:1]
        equals = [f for f in more if f is not None and f.relation == "equal"] if c.relation == "equal" else []
        figure = _relative_figure(table, c.b, columns, f"Relative to {c.b}", presentation)
        facts = (c, o, *costlier, *equals)
        return Headline(_pair_sentence(c, o, costlier, equals), facts), figure

    return build


# ---- the steps with a shape of their own ---------------------------------------------------------------


def _moe(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    table = _labelled(result.data, "model")
    dense = str(table.loc[table["params"] == table["params_active"], "label"].iloc[0])
    sparse = [str(m) for m in table.loc[table["params"] > table["params_active"], "label"]]
    columns = _indicators(table, ["params", "params_active", "flops", "memory_traffic_bytes"])
    figure = _relative_figure(table, dense, columns, f"Sparse experts relative to {dense} (counted)", presentation)
    pairs = [(_fact(table, s, dense, "params"), _fact(table, s, dense, "flops")) for s in sparse]
    p, f = max(pairs, key=lambda pair: _cost(pair[0]) - _cost(pair[1]))
    if f.relation != "equal":
        text = f"{NOT_SHOWN}: {p.a} has {p.stated} the parameters and {f.stated} the FLOPs of {p.b} (counted)."
        return Headline(text, (p, f), shown=False), figure
    text = f"{p.a} stores {p.stated} the parameters of {p.b}, yet costs about the same FLOPs per token ({_values(f)})."
    return Headline(text, (p, f)), figure


def _sequence(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    table = _labelled(result.data.assign(length=result.data["seq_len"].map(lambda v: f"{v:g} tokens")), "length")
    first, last = str(table["label"].iloc[0]), str(table["label"].iloc[-1])
    span = f"{table['seq_len'].iloc[0]:g} to {last}"
    columns = _indicators(table, ["params", "flops", "latency_ms", "peak_memory_bytes"])
    model = str(table["model"].iloc[0])
    figure = _relative_figure(table, first, columns, f"{model}: relative to {first}", presentation)
    params, *grown = [_fact(table, last, first, c) for c in ("params", "flops", "latency_ms") if c in columns]
    growth = " and ".join(f"{_phrase(g)} {'grow ' if i == 0 else ''}{g.stated}" for i, g in enumerate(grown))
    if params.relation != "equal" or any(g.relation != "higher" for g in grown):
        changes = ", ".join(f"{_phrase(g)} {g.stated}" for g in (params, *grown))
        return Headline(f"{NOT_SHOWN}: from {first} to {last}, {changes}.", (params, *grown), shown=False), figure
    text = f"{model} keeps {params.stated} parameters ({_values(params)}) from {span}, while {growth}."
    return Headline(text, (params, *grown)), figure


def _batch(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    data = result.data.sort_values("batch_size")
    table = _labelled(data.assign(batch=data["batch_size"].map(lambda v: f"{v:g}")), "batch")
    panels = ["latency_ms", "throughput_per_s"]
    title = "Latency and throughput over batch size"
    figure = line_sweep(data, "batch_size", panels, title=title, text=" ", presentation=presentation)
    figure.update_layout(height=None, meta={**figure.layout.meta, "panels": panels})
    log = " (log)" if figure.layout.yaxis.type == "log" else ""
    figure.update_yaxes(title_text=f"Latency{log}", row=1, col=1)  # short: a panel is a sixth of a slide
    figure.update_yaxes(title_text="Throughput<br>(items/s)", rangemode="tozero", row=2, col=1)  # honest heights
    first = str(table["label"].iloc[0])
    best = str(table.loc[table["throughput_per_s"].idxmax(), "label"])
    latency, rate = _fact(table, best, first, "latency_ms"), _fact(table, best, first, "throughput_per_s")
    caption = "Latency (top): the time for one batch; throughput (bottom): items per second; both measured."
    figure.update_layout(meta={**figure.layout.meta, "caption": caption})
    if latency is None or rate is None or rate.relation != "higher" or latency.relation != "higher":
        text = f"{NOT_SHOWN}: no batch size had clearly more throughput than batch {first} at a higher latency."
        return Headline(text, tuple(f for f in (latency, rate) if f), shown=False), figure
    text = (
        f"Batch {best} has {latency.stated} the latency of batch {first}, yet {rate.stated} its throughput: "
        f"latency picks batch {first}, throughput batch {best}."
    )
    return Headline(text, (latency, rate)), figure


def _hardware(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    data = result.data
    here = str(data.loc[data["measured"].astype(bool), "hardware"].iloc[0])
    chips = list(dict.fromkeys(str(h) for h in data["hardware"]))
    tables = {h: _labelled(data[data["hardware"] == h], "model") for h in chips}
    best, best_rank = None, (False, 0.0)
    for a, b in permutations([str(m) for m in tables[here]["label"]], 2):
        mine = _fact(tables[here], a, b, "latency_ms", here)
        for chip in [h for h in chips if h != here] if mine is not None and _cost(mine) <= 0 else ():
            there = _fact(tables[chip], a, b, "latency_ms", chip)
            if there is None or _cost(there) < 0 or _cost(mine) == _cost(there) == 0:
                continue
            rank = (_cost(mine) < 0 < _cost(there), _cost(there) - _cost(mine))
            if best is None or rank > best_rank:
                best, best_rank = (mine, there), rank
    reference = best[0].b if best else str(tables[here].loc[tables[here]["latency_ms"].idxmin(), "label"])
    points = pd.concat([_points(tables[h], reference, ["latency_ms"]).assign(category=h) for h in chips])
    labels = {h: h.replace(", ", "<br>") + ("<br>(measured)" if h == here else "<br>(estimated)") for h in chips}
    caption = (
        f"Latency divided by that of {reference} on the same hardware (log scale); open markers: estimated (roofline)."
    )
    title = f"Latency relative to {reference}, per hardware"
    figure = relative_points(points, reference, labels, data, title, caption, presentation)
    where = "this machine" if not result.bundled else here.split(",")[0]
    if best is None:
        text = f"{NOT_SHOWN}: every chip's estimated latency order matched the order measured on {where}."
        return Headline(text, same_order=tuple((h, "latency_ms") for h in chips), shown=False), figure
    mine, there = best
    on_here, on_chip = f"on {where} (measured)", f"on {there.category} (estimated)"
    if mine.relation == "equal":
        text = (
            f"{mine.a} and {mine.b} have about the same latency {on_here} ({_values(mine)}), "
            f"yet {mine.a} has {there.stated} the latency of {mine.b} {on_chip}."
        )
    elif there.relation == "equal":
        text = (
            f"{mine.a} has {mine.stated} the latency of {mine.b} {on_here}, "
            f"yet about the same latency {on_chip} ({_values(there)})."
        )
    else:
        text = (
            f"{mine.a} has {mine.stated} the latency of {mine.b} {on_here}, yet {there.stated} its latency {on_chip}."
        )
    return Headline(text, best), figure


def _side(fact: Fact) -> str:
    """ "1.1x the latency of B" or "about the same latency as B (3.4 vs 3.1 s)", for a sentence about a's cost."""
    if fact.relation == "equal":
        return f"about the same {_phrase(fact)} as {fact.b} ({_values(fact)})"
    return f"{fact.stated} the {_phrase(fact)} of {fact.b}"


def _deeper_or_wider(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    """The deepest ViT against the widest (the paper's depth-or-width question at equal FLOPs): the wider one is
    the chart's reference; the sentence says plainly when their latencies did not come apart here."""
    table = _labelled(result.data, "model")
    deep = str(table.loc[table["layers"].idxmax(), "label"])
    wide = str(table.loc[table["hidden_size"].idxmax(), "label"])
    columns = _indicators(table, ["params", "flops", "latency_ms", "peak_memory_bytes"])
    figure = _relative_figure(table, wide, columns, f"Relative to {wide}", presentation)
    flops, params = _fact(table, deep, wide, "flops"), _fact(table, deep, wide, "params")
    latency = _fact(table, deep, wide, "latency_ms") if "latency_ms" in columns else None
    if latency is None or flops is None or params is None:
        return Headline(f"{NOT_SHOWN}: no latency was measured for {deep} and {wide}.", shown=False), figure
    if flops.relation != "equal" or latency.relation == "equal":
        text = f"{NOT_SHOWN}: {deep} has {_side(flops)} and {_side(latency)}."
        if flops.relation == latency.relation == "equal":
            same = f"FLOPs ({_values(flops)}) and latency ({_values(latency)})"
            text = f"{NOT_SHOWN}: {deep} and {wide} have about the same {same}."
        return Headline(text, (flops, latency), shown=False), figure
    equals = [params] if params.relation == "equal" else []
    return Headline(_pair_sentence(flops, latency, [], equals), (flops, latency, *equals)), figure


STEPS: list[Step] = [
    Step("Parameter sharing", "parameter-sharing", _pair_step(
        "params", ["latency_ms", "flops"], ["flops", "latency_ms", "peak_memory_bytes"],
        ["params", "flops", "latency_ms", "peak_memory_bytes"])),
    Step("Sparse experts", "sparse-moe", _moe),
    Step("Sequence length", "sequence-length", _sequence),
    Step("Tokens per image", "token-count", _pair_step(
        "params", ["flops"], ["latency_ms"], ["params", "tokens", "flops", "latency_ms"], _short_points)),
    Step("Depth vs width", "depth-vs-width", _pair_step(
        "flops", ["latency_ms"], ["params"], ["params", "flops", "latency_ms", "peak_memory_bytes"])),
    Step("CNNs vs vision transformers", "cnn-vs-transformer", _pair_step(
        "flops", ["latency_ms", "peak_memory_bytes"], ["peak_memory_bytes", "latency_ms"],
        ["params", "flops", "latency_ms", "peak_memory_bytes"])),
    Step("Quality vs cost", "cnn-vs-transformer", quality_frontier),
    Step("Latency vs throughput", "batch-size", _batch),
    Step("Training vs inference", "training-vs-inference", _pair_step(
        "latency_ms", ["training_step_ms"], [], ["flops", "latency_ms", "training_flops", "training_step_ms"])),
    Step("Implementation", "implementation", _pair_step(
        "flops", ["latency_ms"], [], ["params", "flops", "latency_ms"], story_rows)),
    Step("Hardware", "hardware", _hardware),
    Step("Lifecycle: train once, serve many", "lifecycle", lifecycle_step),
    Step("The paper: Transformer, Universal Transformer, Switch", "paper-transformers", _pair_step(
        "params", ["latency_ms", "flops"], ["flops", "latency_ms"], ["params", "flops", "latency_ms"])),
    Step("The paper: ViT deeper or wider", "paper-vit-scaling", _deeper_or_wider),
]  # fmt: skip


def provenance(result: ExperimentResult) -> str:
    """Where and when the numbers were made, in words: "on this machine" only for what was measured here."""
    machine, date = result.machine_label, str(result.machine.get("date", ""))[:10] or "an unknown date"
    timed = any(s in ("measured", "per-row") for s in result.sources.values())
    if not timed:
        run = "bundled run" if result.bundled else "live run on this machine"
        return f"Counted from the models' configurations ({run} of {date}); counts do not depend on the machine."
    if not result.bundled:
        return f"Measured live on this machine ({machine}) on {date}."
    return (
        f"Bundled results, measured on {machine} on {date}, not on this machine. "
        "Counted values (parameters, FLOPs) do not depend on the machine."
    )


def slide(step: Step, result: ExperimentResult, presentation: bool = True) -> Slide:
    """The step's headline, chart, provenance and notes, all from the numbers of ``result``."""
    if result.name != step.experiment:
        raise ValueError(f"step {step.title!r} shows {step.experiment}, not {result.name}")
    headline, figure = step.build(result, presentation)
    if presentation:  # the headline above is the slide's title: the chart's own title needs less room
        figure.update_layout(title={"subtitle": {"font": {"size": PRESENTATION_FONT_PX}}}, margin_t=105)
    notes = f"{result.notice} Verdict of the experiment: {result.verdict}"
    return Slide(headline, figure, provenance(result), notes, result.elapsed_s)


def takeaway(step: Step, result: ExperimentResult) -> str:
    """The one sentence of a step, from the numbers of ``result``."""
    return slide(step, result, presentation=False).headline.text


def step_figure(step: Step, result: ExperimentResult, presentation: bool = True) -> go.Figure:
    """The step's chart (talk-sized fonts by default); its height is the page's to set."""
    return slide(step, result, presentation).figure


def clamp_step(value: object) -> int:
    """A 1-based step number from a URL parameter; anything else lands on step 1 or the last step."""
    try:
        number = int(str(value))
    except ValueError:
        return 1
    return min(max(number, 1), len(STEPS))


__all__ = [
    "STEPS",
    "Fact",
    "Headline",
    "Slide",
    "Step",
    "clamp_step",
    "contradictions",
    "slide",
    "step_figure",
    "takeaway",
]
