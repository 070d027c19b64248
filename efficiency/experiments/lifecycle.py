"""The lifecycle experiment: a model trained once and served many requests, against one cheaper to train.

Which cost matters depends on how a model is used (the paper's point): trained once and served to many users,
the cost per request adds up; retrained often, the training does. Each model here gets

- training FLOPs per token, counted: forward + backward of one training step (``train_batch_size`` sequences of
  ``train_seq_len`` tokens; no optimizer update) divided by the tokens in it, times the tokens it was trained on
  (published, with its source, from :mod:`efficiency.models.training_tokens`, or set by the user);
- FLOPs per request, counted: one forward pass over a prompt of ``request_tokens`` tokens at batch 1. Generated
  tokens are not counted: the static profile counts no decode step;
- the same two in time on one chip, estimated by the roofline model of the Hardware page (never measured).

:mod:`efficiency.analysis.lifecycle` turns them into straight lines in the number of requests served and finds
where two lines cross (exactly); ``retrain_every_requests`` adds a retraining every K requests. Static counts
only: the default run takes seconds.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import TOLERANCE, Drawn, Fact, Headline
from efficiency.analysis.lifecycle import (
    Lifecycle,
    count_words,
    flip,
    flips,
    lines,
    long_duration,
    per_token,
    retrain_every,
    training_seconds,
)
from efficiency.charts.lifecycle import drawn_values, lifecycle_chart
from efficiency.experiments.base import Analysis, Experiment, ExperimentResult, Knob, Progress, fmt
from efficiency.experiments.measure import resolve_all, sources_for, static_profile
from efficiency.hardware import get_hardware
from efficiency.models.training_tokens import TrainingTokens, tokens_for, user_tokens
from efficiency.specs import ModelSpec, Workload

NOT_SHOWN = "The expected effect did not appear in this run"
SOURCES = {
    "hardware_id": "setup",
    "train_seq_len": "setup",
    "train_batch_size": "setup",
    "training_tokens": "setup",
    "training_tokens_source": "setup",
    "retrain_every_requests": "setup",
    "training_flops_per_token": "derived",
    "training_run_flops": "derived",
    "request_time_ms": "estimated",
    "training_time_s": "estimated",
}


def _tokens(spec: ModelSpec, setup: dict[str, Any]) -> TrainingTokens:
    """The user's figure when the setup gives one (by catalog id or the name given), else the published one."""
    given = setup.get("training_tokens") or {}
    for key in (spec.id, *spec.aliases, spec.hf_id):
        if key in given:
            return user_tokens(spec.id, given[key])
    published = tokens_for(spec.id)
    if published is None:
        raise ValueError(
            f"{spec.display_name}: no published training-token count in efficiency/models/training_tokens.json; "
            f"set one in the setup: training_tokens={{{spec.id!r}: <tokens>}}"
        )
    return published


def _row(spec: ModelSpec, setup: dict[str, Any]) -> dict[str, Any]:
    """One model: its counted FLOPs per request and per training token, its tokens, and both in estimated time."""
    from efficiency.hardware.roofline import estimate  # lazy: imports torch; listing experiments stays fast

    tokens = _tokens(spec, setup)  # first: a model without a figure fails before anything is counted
    chip, dtype = get_hardware(setup["chip"]), setup["dtype"]
    request = static_profile(spec, Workload(batch_size=1, seq_len=setup["request_tokens"]))
    step = static_profile(spec, Workload(batch_size=setup["train_batch_size"], seq_len=setup["train_seq_len"]))
    if step.training_flops is None:
        raise ValueError(f"{spec.display_name}: training FLOPs could not be counted ({step.counter_errors})")
    step_tokens = int(step.workload["batch_size"]) * int(step.workload["seq_len"])  # the tokens the pass counted
    step_ms = estimate(step, chip, dtype, spec=spec).estimated_latency_ms
    return {
        "model": spec.display_name,
        "model_id": spec.id,
        "hardware": chip.name,
        "hardware_id": chip.id,
        "dtype": dtype,
        "batch_size": 1,
        "seq_len": int(request.workload["seq_len"]),
        "measured": False,
        "params": request.params.total if request.params else None,
        "flops": request.flops,
        "train_seq_len": int(step.workload["seq_len"]),
        "train_batch_size": int(step.workload["batch_size"]),
        "training_flops_per_token": per_token(step.training_flops, step_tokens),
        "training_tokens": tokens.value,
        "training_tokens_source": tokens.source,
        "training_run_flops": per_token(step.training_flops, step_tokens) * tokens.value,
        "retrain_every_requests": setup.get("retrain_every_requests") or None,  # 0 or none: trained once
        "request_time_ms": estimate(request, chip, dtype, spec=spec).estimated_latency_ms,
        "training_time_s": training_seconds(step_ms, step.flops, step.training_flops, step_tokens, tokens.value),
    }


def _collect(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    specs = resolve_all(setup["models"])
    rows = []
    for i, spec in enumerate(specs):
        progress(i / len(specs), f"counting {spec.display_name}")
        rows.append(_row(spec, setup))
    data = pd.DataFrame(rows)
    return data, sources_for(data.columns, **SOURCES)


# ---- facts and words -------------------------------------------------------------------------------------


def big_flops(value: float) -> str:
    """FLOPs of a whole training: "1.22e22 FLOPs" from 1e18 on (one form for every training), else "403 GFLOPs"."""
    if value < 1e18:
        return units.flops(value)
    exponent = math.floor(math.log10(value))
    return f"{units.significant(value / 10**exponent)}e{exponent} FLOPs"


def fact(category: str, indicator: str, a: str, b: str, a_value: float, b_value: float) -> Fact:
    """``a`` against ``b`` as the chart draws it: a ratio, or "about the same" within the indicator's tolerance."""
    ratio = a_value / b_value
    if max(ratio, 1 / ratio) - 1 <= TOLERANCE.get(indicator, 0.05):
        return Fact(category, indicator, a, b, a_value, b_value, "equal", "about the same")
    return Fact(category, indicator, a, b, a_value, b_value, "lower" if ratio < 1 else "higher", units.times(ratio))


def side(found: Fact, what: str, first: bool) -> str:
    """ "6.4x the training FLOPs of B" (first) or "0.42x its FLOPs per request"; "about the same ... as B"."""
    if found.relation == "equal":
        return f"about the same {what}" + (f" as {found.b}" if first else "")
    return f"{found.stated} the {what} of {found.b}" if first else f"{found.stated} its {what}"


def pair_facts(a: Lifecycle, b: Lifecycle, suffix: str, indicator: str) -> tuple[Fact, Fact]:
    """``a`` against ``b`` at 0 requests (its training) and per request, under the chart's categories."""
    return (
        fact(f"training{suffix}", indicator, a.name, b.name, a.training, b.training),
        fact(f"per request{suffix}", indicator, a.name, b.name, a.slope, b.slope),
    )


def crossing_fact(a: Lifecycle, b: Lifecycle, requests: float, suffix: str, indicator: str) -> Fact:
    """The two cost about the same at the crossing: a point every line of the chart draws."""
    cost_a, cost_b = float(a.cost(requests)), float(b.cost(requests))
    return fact(f"{requests:g} requests{suffix}", indicator, a.name, b.name, cost_a, cost_b)


def _describe(data: pd.DataFrame) -> str:
    """Per model: training FLOPs (per token x tokens) and FLOPs per request, counted."""
    tokens = int(data["seq_len"].iloc[0])
    parts = [
        f"{row.model} costs {big_flops(row.training_run_flops)} to train ({fmt('flops', row.training_flops_per_token)} "
        f"per token x {count_words(row.training_tokens)} tokens) and {fmt('flops', row.flops)} per {tokens}-token "
        "request"
        for row in data.itertuples()
    ]
    return "Counted: " + "; ".join(parts) + "."


def _crossings(models: list[Lifecycle], how: str) -> str:
    found = flips(models)
    if not found:
        return f"{how}, no two models change places at any number of requests."
    said = [f"{a.name} becomes cheaper than {b.name} after {count_words(r)} requests" for a, b, r in found]
    return f"{how}, " + "; ".join(said) + "."


def _analyse(data: pd.DataFrame) -> Analysis:
    chip, every = str(data["hardware"].iloc[0]), retrain_every(data)
    step = f"{int(data['train_batch_size'].iloc[0])} x {int(data['train_seq_len'].iloc[0])}"
    time = "; ".join(
        f"{row.model} {long_duration(row.training_time_s)} to train on one chip, "
        f"{units.duration(row.request_time_ms)} per request"
        for row in data.itertuples()
    )
    parts = [
        _describe(data),
        _crossings(lines(data, "flops"), "Trained once, by FLOPs"),
        f"Estimated on {chip} (roofline, not measured; a training step's forward pass of {step} tokens, scaled by "
        f"its counted training / forward FLOPs): {time}.",
        _crossings(lines(data, "time"), "By estimated time"),
    ]
    if every:
        retrained = lines(data, "flops", retrained=True)
        parts.append(_crossings(retrained, f"Retrained every {count_words(every)} requests, by FLOPs"))
    parts.append("A request is one forward pass over its prompt; generated tokens are not counted.")
    notice = " ".join(parts)
    found = flips(lines(data, "flops"))
    if not found:
        verdict = "Not shown in this run: the model cheaper to train was also cheaper per request in every pair"
        return Analysis(notice, verdict + ", so no ranking changes with the number of requests.", False)
    a, b, requests = found[0]
    trained, served = pair_facts(a, b, "", "flops")
    verdict = (
        f"{a.name} costs {side(trained, 'training FLOPs', True)} but {side(served, 'FLOPs per request', False)}: "
        f"training and serving costs disagree on which is cheaper, and {a.name} is the cheaper one from "
        f"{count_words(requests)} requests served on."
    )
    return Analysis(notice, verdict, True, claims=(trained, served))


def _figure(data: pd.DataFrame, presentation: bool) -> go.Figure:
    return lifecycle_chart(data, presentation)


def _drawn(data: pd.DataFrame) -> Drawn:
    """The values the verdict's facts rest on, as the run's chart draws them."""
    return drawn_values(lifecycle_chart(data))


# ---- the story step ------------------------------------------------------------------------------------


def _time_clause(a: Lifecycle, b: Lifecycle, chip: str) -> tuple[str, tuple[Fact, ...]]:
    """The same pair in estimated time: where they cross, or which stays cheaper at every request count."""
    trained, served = pair_facts(a, b, " (time)", "latency_ms")
    head = f"In estimated time on {chip} ({trained.stated} to train, {served.stated} per request)"
    if trained.relation == "equal" or served.relation == "equal":  # no ratio to quote: say it in words
        head = (
            f"In estimated time on {chip} it needs {side(trained, 'training time', True)} and "
            f"{side(served, 'time per request', False)}"
        )
    requests = flip(a, b)
    if requests is None:
        winner = b.name if float(b.cost(1.0)) <= float(a.cost(1.0)) else a.name
        return f"{head}, {winner} stays cheaper throughout.", (trained, served)
    at = crossing_fact(a, b, requests, " (time)", "latency_ms")
    return f"{head}, they take about the same time at {count_words(requests)} requests.", (trained, served, at)


def lifecycle_step(result: ExperimentResult, presentation: bool) -> tuple[Headline, go.Figure]:
    """The Story step: the earliest request count where a model costlier to train becomes the cheaper one by
    FLOPs, the facts behind it, and whether estimated time on the run's chip agrees."""
    data = result.data
    figure = lifecycle_chart(data, presentation)
    by_flops, by_time = lines(data, "flops"), {m.name: m for m in lines(data, "time")}
    chip, tokens = str(data["hardware"].iloc[0]), int(data["seq_len"].iloc[0])
    found = flips(by_flops)
    if not found:
        a, b = sorted(by_flops, key=lambda m: m.training)[:2]
        trained, served = pair_facts(a, b, "", "flops")
        text = (
            f"{NOT_SHOWN}: no two models change places by FLOPs; {a.name} costs "
            f"{side(trained, 'training FLOPs', True)} and {side(served, 'FLOPs per request', False)}."
        )
        return Headline(text, (trained, served), shown=False), figure
    a, b, requests = found[0]
    trained, served = pair_facts(a, b, "", "flops")
    crossing = crossing_fact(a, b, requests, "", "flops")
    clause, timed = _time_clause(by_time[a.name], by_time[b.name], chip)
    text = (
        f"{a.name} costs {side(trained, 'training FLOPs', True)}, {side(served, 'FLOPs per request', False)}: "
        f"about the same at {count_words(requests)} requests of {tokens} tokens, cheaper after. {clause}"
    )
    if presentation:  # the headline is the slide's title; the setup is in the caption
        figure.update_layout(title_text="", title_subtitle_text="")
    return Headline(text, (trained, served, crossing, *timed)), figure


LIFECYCLE = Experiment(
    name="lifecycle",
    title="Lifecycle: train once, serve many",
    description=(
        "Cumulative compute of training (counted FLOPs per token x published training tokens) plus serving "
        "(counted FLOPs per request) against the number of requests served: a model trained on 13x more tokens "
        "becomes the cheaper one after enough requests, or never when it is retrained often. Time on a chip is "
        "estimated (roofline). Static counts only."
    ),
    default={
        "models": ["HuggingFaceTB/SmolLM2-360M", "EleutherAI/pythia-410m", "EleutherAI/pythia-1b"],
        "request_tokens": 512,
        "train_seq_len": 2048,
        "train_batch_size": 8,
        "chip": "h100-sxm",
        "dtype": "bfloat16",
        "retrain_every_requests": 1e10,
        "training_tokens": {},
    },
    quick={
        "models": ["HuggingFaceTB/SmolLM2-360M", "EleutherAI/pythia-1b"],
        "request_tokens": 16,
        "train_seq_len": 32,
        "train_batch_size": 1,
        "chip": "h100-sxm",
        "dtype": "bfloat16",
        "retrain_every_requests": 1e10,
        "training_tokens": {},
    },
    collect=_collect,
    analyse=_analyse,
    figure=_figure,
    measures="static counts; time on a chip estimated (roofline)",
    knobs=(
        Knob(
            "retrain_every_requests",
            "Retrain every (requests; 0: never)",
            "The second knob: a model retrained after this many requests pays its training again and again",
            minimum=0.0,
        ),
        Knob("request_tokens", "Tokens per request", "One forward pass over a prompt this long", minimum=1.0),
        Knob(
            "training_tokens",
            "Training tokens of {model}",
            "Published figure prefilled (its source is in the numbers table); a figure you set is marked as yours",
            minimum=1.0,
            per_model=True,
            default_for=lambda model: figure.value if (figure := tokens_for(model)) else None,
        ),
    ),
    drawn=_drawn,
)
