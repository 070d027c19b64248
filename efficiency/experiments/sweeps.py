"""Experiments that sweep one setting of one model: sequence length, batch size, image size, depth at equal size.

Each sweep builds its model once (in an isolated worker) and walks the points in increasing order, so the
peak memory of a point is read above the same pre-build baseline (see ``efficiency.experiments.measure``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.findings import compare, strongest
from efficiency.analysis.rankings import pair_text
from efficiency.charts.sweeps import line_sweep
from efficiency.experiments.base import (
    Analysis,
    Experiment,
    Progress,
    fmt,
    grew,
    ratio,
    verdict_analysis,
)
from efficiency.experiments.measure import (
    measure,
    measured_columns,
    resolve_all,
    setup_columns,
    sources_for,
    static_columns,
)
from efficiency.hardware.detect import usable_cpus
from efficiency.specs import ModelSpec, Workload

# Measuring threads. On a 2-CPU machine we time with one: a thread per core turns any other load (the dashboard
# itself, the OS) into stalls at every OpenMP barrier. Seen here under a load of 2.5: BERT-base at 128 tokens took
# 285 ms (p10-p90 281-293) with 1 thread and 538 ms (202-1090) with 2. Larger machines get 2.
THREADS = 1 if usable_cpus() <= 2 else 2
TIMING = {"threads": THREADS, "repeats": 3, "warmup": 1, "min_time_s": 0.3}
QUICK = {"threads": THREADS, "repeats": 1, "warmup": 1, "min_time_s": 0.0, "isolated": False}
AXIS_LABELS = {"seq_len": "{} tokens", "batch_size": "batch {}", "image_size": "{} px"}


def sweep_rows(
    setup: dict[str, Any], progress: Progress, specs: list[ModelSpec], points: list[Workload], axis: str | None
) -> pd.DataFrame:
    """Static counts at every (model, point), then measurements (unless ``measure`` is False); one row each.

    ``point`` names each row ("BERT-base @ 128 tokens") by the swept ``axis``; None: the model's name."""
    rows = []
    total = len(specs) * len(points)
    for i, spec in enumerate(specs):
        for j, workload in enumerate(points):
            label = spec.display_name
            if axis is not None:
                label += " @ " + AXIS_LABELS[axis].format(getattr(workload, axis))
            progress(0.3 * (i * len(points) + j) / total, f"counting {label}")
            row = {**setup_columns(spec, workload, setup["threads"], setup.get("measure", True)), "point": label}
            rows.append({**row, **static_columns(spec, workload)})
    if setup.get("measure", True):
        measured = measure([(spec, points) for spec in specs], setup, progress, span=(0.3, 1.0))
        for row, point in zip(rows, [p for per_spec in measured for p in per_spec]):
            row.update(measured_columns(point))
    return pd.DataFrame(rows)


def percent(value: float) -> str:
    """ "23%", and "0.3%" rather than a misleading "0%" for small shares."""
    return f"{value:.1g}%" if 0 < value < 1 else f"{value:.0f}%"


def panels_with_values(data: pd.DataFrame, candidates: list[str]) -> list[str]:
    return [c for c in candidates if c in data.columns and data[c].notna().any()]


STEADY = 1.10  # a panel whose values stay within 10% is drawn from zero, so "flat" looks flat


def steady_from_zero(fig: go.Figure, data: pd.DataFrame, panels: list[str]) -> go.Figure:
    """Start the y axis at zero on panels whose values barely move: autorange would magnify a constant
    (13.483008M vs 13.483009M) into a slope. Only linear panels; a log axis cannot start at zero."""
    for row, column in enumerate(panels, start=1):
        values = pd.to_numeric(data[column], errors="coerce").dropna()
        if len(values) and values.min() > 0 and values.max() / values.min() <= STEADY:
            fig.update_yaxes(type="linear", range=[0, values.max() * 1.2], tickmode="auto", row=row, col=1)
    return fig


def has_latency(data: pd.DataFrame) -> bool:
    return "latency_ms" in data.columns and data["latency_ms"].notna().any()


# ---- sequence-length ------------------------------------------------------------------------------


def _collect_sequence(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    (spec,) = resolve_all([setup["model"]])
    points = [Workload(batch_size=setup.get("batch_size", 1), seq_len=n) for n in setup["seq_lens"]]
    data = sweep_rows(setup, progress, [spec], points, "seq_len")
    data["attention_share_pct"] = 100 * data["attention_flops"] / data["flops"]
    return data, sources_for(data.columns, attention_share_pct="derived")


def _analyse_sequence(data: pd.DataFrame) -> Analysis:
    first, last = data.iloc[0], data.iloc[-1]
    text = (
        f"From {first.seq_len:g} to {last.seq_len:g} tokens FLOPs grew {ratio(last.flops, first.flops)} "
        f"({fmt('flops', first.flops)} to {fmt('flops', last.flops)}) while parameters stayed at "
        f"{fmt('params', first.params)}; attention's share of FLOPs went from {percent(first.attention_share_pct)} "
        f"to {percent(last.attention_share_pct)}."
    )
    if has_latency(data):
        rate_first, rate_last = first.flops / first.latency_ms / 1e6, last.flops / last.latency_ms / 1e6
        same_rate = abs(rate_last / rate_first - 1) <= 0.2
        text += (
            f" Measured latency {grew(last.latency_ms, first.latency_ms)} ({fmt('latency_ms', first.latency_ms)} to "
            f"{fmt('latency_ms', last.latency_ms)}): the CPU ran {rate_first:.1f} GFLOP/s at {first.seq_len:g} "
            f"tokens and {rate_last:.1f} GFLOP/s at {last.seq_len:g}, "
            + ("so latency tracked FLOPs here." if same_rate else "so latency did not follow FLOPs alone.")
        )
        if pd.notna(first.peak_memory_bytes) and pd.notna(last.peak_memory_bytes):
            text += f" Peak memory {grew(last.peak_memory_bytes, first.peak_memory_bytes)}."
    else:
        text += " Latency was not measured in this run (static counts only)."
    indicators = ["params", "flops", "latency_ms", "peak_memory_bytes"]
    verdict = compare(data, "point", str(first.point), str(last.point), indicators)
    return verdict_analysis(text, verdict, "parameters and the other indicators moved together", data)


def _figure_sequence(data: pd.DataFrame, presentation: bool) -> go.Figure:
    panels = panels_with_values(data, ["params", "flops", "latency_ms", "peak_memory_bytes"])
    text = _analyse_sequence(data).notice
    title = "Sequence length: parameters stay flat, the cost does not"
    figure = line_sweep(data, "seq_len", panels, title=title, text=text, presentation=presentation)
    return steady_from_zero(figure, data, panels)


SEQUENCE_LENGTH = Experiment(
    name="sequence-length",
    title="Sequence length: same parameters, growing cost",
    description=(
        "One model over sequence lengths 32 to 2048: parameters stay flat while FLOPs, memory and latency grow, "
        "and attention takes a rising share of the FLOPs."
    ),
    default={"model": "facebook/opt-125m", "seq_lens": [32, 64, 128, 256, 512, 1024, 2048], **TIMING},
    quick={"model": "electra-small-discriminator", "seq_lens": [16, 64], **QUICK},
    collect=_collect_sequence,
    analyse=_analyse_sequence,
    figure=_figure_sequence,
)


# ---- batch-size -----------------------------------------------------------------------------------


def _collect_batch(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    (spec,) = resolve_all([setup["model"]])
    points = [Workload(batch_size=b, seq_len=setup["seq_len"]) for b in setup["batch_sizes"]]
    data = sweep_rows(setup, progress, [spec], points, "batch_size")
    columns = sources_for(data.columns)
    if has_latency(data):
        data["latency_per_item_ms"] = data["latency_ms"] / data["batch_size"]
        columns["latency_per_item_ms"] = "derived"
    return data, columns


def _analyse_batch(data: pd.DataFrame) -> Analysis:
    first, last = data.iloc[0], data.iloc[-1]
    span = f"From batch {first.batch_size:g} to {last.batch_size:g}"
    if not has_latency(data):
        text = f"{span} FLOPs grew {ratio(last.flops, first.flops)}; latency was not measured in this run."
        return Analysis(text, "Not shown in this run: nothing was measured, and batching only shows when timed.", False)
    text = (
        f"{span} the latency of one batch {grew(last.latency_ms, first.latency_ms)} "
        f"({fmt('latency_ms', first.latency_ms)} to {fmt('latency_ms', last.latency_ms)}) while throughput "
        f"changed {ratio(last.throughput_per_s, first.throughput_per_s)} "
        f"({fmt('throughput_per_s', first.throughput_per_s)} to {fmt('throughput_per_s', last.throughput_per_s)}); "
        f"FLOPs grew {ratio(last.flops, first.flops)}."
    )
    best = data.loc[data["throughput_per_s"].idxmax()]
    text += f" The highest throughput came at batch {best.batch_size:g}."
    if len(data) > 2:
        prev = data.iloc[-2]
        text += (
            f" The last doubling (batch {prev.batch_size:g} to {last.batch_size:g}) changed throughput "
            f"{ratio(last.throughput_per_s, prev.throughput_per_s)}."
        )
    verdict = compare(data, "point", str(first.point), str(last.point), ["latency_ms", "throughput_per_s"])
    shown = "latency_ms" in verdict.a_better and "throughput_per_s" in verdict.b_better
    if shown:
        return Analysis(text, verdict.sentence(), True, verdict.facts())
    why = (
        f"throughput at batch {last.batch_size:g} was not clearly above batch {first.batch_size:g} "
        f"({fmt('throughput_per_s', last.throughput_per_s)} vs {fmt('throughput_per_s', first.throughput_per_s)}), "
        "so latency and throughput did not pick different batch sizes"
    )
    return Analysis(text, f"Not shown in this run: {why}.", False)


def _figure_batch(data: pd.DataFrame, presentation: bool) -> go.Figure:
    panels = panels_with_values(data, ["latency_ms", "throughput_per_s", "flops", "peak_memory_bytes"])
    title = "Batch size: latency and throughput pull apart"
    return line_sweep(
        data, "batch_size", panels, title=title, text=_analyse_batch(data).notice, presentation=presentation
    )


BATCH_SIZE = Experiment(
    name="batch-size",
    title="Batch size: latency vs throughput",
    description="One model over batch sizes: the latency of a batch grows while items per second rise, then level off.",
    default={"model": "bert-base-uncased", "seq_len": 32, "batch_sizes": [1, 2, 4, 8, 16, 32], **TIMING},
    quick={"model": "electra-small-discriminator", "seq_len": 16, "batch_sizes": [1, 4], **QUICK},
    collect=_collect_batch,
    analyse=_analyse_batch,
    figure=_figure_batch,
)


# ---- depth-vs-width -------------------------------------------------------------------------------

EQUAL_PARAMS_TOLERANCE = 0.02


def shape_specs(base_id: str, shapes: list[list[int]], embedding_size: int) -> list[ModelSpec]:
    """ELECTRA-style encoders (factorised embeddings, so every shape pays the same embedding parameters)
    with ``[layers, hidden, heads]`` each, FFN 4 x hidden: same parameters when layers x hidden^2 match."""
    (base,) = resolve_all([base_id])
    specs = []
    for layers, hidden, heads in shapes:
        config = {
            **base.config,
            "num_hidden_layers": layers,
            "hidden_size": hidden,
            "num_attention_heads": heads,
            "intermediate_size": 4 * hidden,
            "embedding_size": embedding_size,
        }
        name = f"{layers} layers x {hidden}"
        note = f"Custom {base.model_type} config for the depth-vs-width experiment, derived from {base.id}."
        specs.append(
            replace(
                base,
                id=f"{base.model_type}-L{layers}-H{hidden}",
                name=name,
                hf_id=None,
                aliases=(),
                config=config,
                note=note,
                source="efficiency.experiments",
                published={},
                origin="experiment",
            )
        )
    return specs


def _collect_depth(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    specs = shape_specs(setup["base"], setup["shapes"], setup["embedding_size"])
    workload = Workload(batch_size=1, seq_len=setup["seq_len"])
    data = sweep_rows(setup, progress, specs, [workload], None)
    data["model"] = [s.display_name for s in specs]
    data["layers"] = [s.config["num_hidden_layers"] for s in specs]
    data["hidden_size"] = [s.config["hidden_size"] for s in specs]
    spread = data["params"].max() / data["params"].min() - 1
    if spread > EQUAL_PARAMS_TOLERANCE:
        raise ValueError(f"depth-vs-width: configs differ by {spread:.1%} in parameters (limit 2%): {setup['shapes']}")
    return data, sources_for(data.columns, layers="setup", hidden_size="setup")


def _analyse_depth(data: pd.DataFrame) -> Analysis:
    deep, shallow = data.loc[data["layers"].idxmax()], data.loc[data["layers"].idxmin()]
    params_spread = data["params"].max() / data["params"].min() - 1
    flops_spread = data["flops"].max() / data["flops"].min() - 1
    text = (
        f"{len(data)} shapes from {shallow.model} to {deep.model} hold "
        f"{pair_text('params', data['params'].min(), data['params'].max()).replace(' vs ', ' to ')} "
        f"(within {params_spread:.1%}) and cost "
        f"{pair_text('flops', data['flops'].min(), data['flops'].max()).replace(' vs ', ' to ')} "
        f"(within {flops_spread:.1%}) per forward pass"
    )
    if not has_latency(data):
        return Analysis(text + "; latency was not measured in this run.", "Not shown in this run: no latency.", False)
    fast, slow = data.loc[data["latency_ms"].idxmin()], data.loc[data["latency_ms"].idxmax()]
    text += (
        f", yet measured latency ranges from {fmt('latency_ms', fast.latency_ms)} ({fast.model}) to "
        f"{fmt('latency_ms', slow.latency_ms)} ({slow.model}): {ratio(slow.latency_ms, fast.latency_ms)}."
    )
    found = strongest(data, "model", ["params", "flops", "latency_ms"], needs=["latency_ms"])
    return verdict_analysis(
        text, found, "the shapes' latencies were within 10% or within each other's p10-p90 range", data
    )


def _figure_depth(data: pd.DataFrame, presentation: bool) -> go.Figure:
    panels = panels_with_values(data, ["params", "flops", "latency_ms"])
    title = "Depth vs width at equal parameters"
    text = _analyse_depth(data).notice
    figure = line_sweep(data, "layers", panels, group="series", title=title, text=text, presentation=presentation)
    return steady_from_zero(figure, data, panels)


DEPTH_VS_WIDTH = Experiment(
    name="depth-vs-width",
    title="Depth vs width: equal parameters, unequal speed",
    description=(
        "Transformer encoders with the same parameters (within 2%), from shallow-wide to deep-narrow: "
        "FLOPs about equal, measured latency not."
    ),
    default={
        "base": "electra-small-discriminator",
        "shapes": [[3, 1440, 24], [6, 1024, 16], [12, 720, 12], [24, 512, 8], [48, 360, 6]],
        "embedding_size": 128,
        "seq_len": 32,  # short inputs: attention's share is small, so FLOPs stay within ~2% across shapes
        **TIMING,
        "repeats": 3,
        "min_time_s": 0.5,
    },
    quick={
        "base": "electra-small-discriminator",
        "shapes": [[2, 128, 4], [8, 64, 2]],
        "embedding_size": 32,
        "seq_len": 16,
        **QUICK,
    },
    collect=_collect_depth,
    analyse=_analyse_depth,
    figure=_figure_depth,
)
