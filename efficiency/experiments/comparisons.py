"""Experiments that compare several models at one setup: sharing, sparse experts, CNNs vs ViTs, training."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.findings import compare, strongest
from efficiency.analysis.rankings import INDICATORS, rank_correlations
from efficiency.charts.compare import rank_chart, relative_bars, scatter
from efficiency.experiments.base import Analysis, Experiment, Progress, fmt, ratio, verdict_analysis
from efficiency.experiments.measure import (
    measure,
    measured_columns,
    resolve_all,
    setup_columns,
    sources_for,
    static_columns,
    static_profile,
)
from efficiency.experiments.sweeps import QUICK, THREADS, TIMING
from efficiency.specs import ModelSpec, Workload


def collect_models(
    setup: dict[str, Any], progress: Progress, training: bool = False, specs: list[ModelSpec] | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per model: setup, counted indicators, and (``measure``, default on) measured ones.

    ``specs``: custom configurations to profile instead of resolving the catalog names of ``setup["models"]``."""
    specs = specs if specs is not None else resolve_all(setup["models"])
    workload = Workload(
        batch_size=setup.get("batch_size", 1),
        seq_len=setup.get("seq_len", 128),
        image_size=setup.get("image_size", 224),
    )
    do_measure = setup.get("measure", True)
    rows = []
    for i, spec in enumerate(specs):
        progress(0.3 * i / len(specs) if do_measure else i / len(specs), f"counting {spec.display_name}")
        profile = static_profile(spec, workload)
        row = {**setup_columns(spec, workload, setup["threads"], do_measure), **static_columns(spec, workload)}
        row["params_as_used"] = profile.params.as_used if profile.params else None
        rows.append(row)
    if do_measure:
        measured = measure([(spec, [workload]) for spec in specs], setup, progress, training, span=(0.3, 1.0))
        for row, points in zip(rows, measured):
            row.update(measured_columns(points[0]))
    data = pd.DataFrame(rows)
    return data, sources_for(data.columns, params_as_used="counted")


def measured(data: pd.DataFrame, column: str = "latency_ms") -> bool:
    return column in data.columns and data[column].notna().any()


def order(data: pd.DataFrame, column: str) -> str:
    """ "cheapest first, a (12 ms), b (30 ms)" by a column: words a room reads aloud, not "a < b"."""
    ranked = data.dropna(subset=[column]).sort_values(column, ascending=INDICATORS[column].lower_is_better)
    return "cheapest first, " + ", ".join(f"{m} ({fmt(column, v)})" for m, v in zip(ranked["model"], ranked[column]))


def _indicators(data: pd.DataFrame, wanted: list[str]) -> list[str]:
    return [c for c in wanted if c in data.columns and data[c].notna().any()]


# ---- parameter-sharing ----------------------------------------------------------------------------


def _analyse_sharing(data: pd.DataFrame) -> Analysis:
    indicators = _indicators(data, ["params", "flops", "latency_ms", "peak_memory_bytes"])
    found = strongest(data, "model", indicators, needs=["latency_ms"] if measured(data) else ())
    shared = data[data["params_as_used"] > data["params"]]
    parts = []
    if len(shared):
        most = shared.loc[(shared["params_as_used"] / shared["params"]).idxmax()]
        parts.append(
            f"{most.model} stores {fmt('params', most.params)} but runs {fmt('params', most.params_as_used)} "
            f"per token ({ratio(most.params_as_used, most.params)}): its layers share one set of weights."
        )
    if found is not None:
        a = data.set_index("model").loc[found.a]
        b = data.set_index("model").loc[found.b]
        clauses = [f"{ratio(a[c], b[c])} its {INDICATORS[c].phrase}" for c in indicators if c != "params"]
        parts.append(
            f"{found.a} has {ratio(a.params, b.params)} the parameters of {found.b} "
            f"({fmt('params', a.params)} vs {fmt('params', b.params)}) but " + ", ".join(clauses) + "."
        )
    if not measured(data):
        parts.append("Latency was not measured in this run (static counts only).")
    return verdict_analysis(
        " ".join(parts) or "No shared-parameter model in this run.",
        found,
        "every indicator ordered these models the same way",
        data,
    )


def _figure_sharing(data: pd.DataFrame, presentation: bool) -> go.Figure:
    y = "latency_ms" if measured(data) else "flops"
    return scatter(data, "params", y, presentation=presentation)


PARAMETER_SHARING = Experiment(
    name="parameter-sharing",
    title="Parameter sharing: ALBERT vs BERT",
    description=(
        "ALBERT reuses one layer's weights at every depth: few parameters, full compute. "
        "Parameters vs FLOPs vs latency for ALBERT base..xxlarge and BERT base/large."
    ),
    default={
        "models": [
            "albert-base-v2",
            "albert-large-v2",
            "albert-xlarge-v2",
            "albert-xxlarge-v2",
            "bert-base-uncased",
            "bert-large-uncased",
        ],
        "seq_len": 64,
        **TIMING,
    },
    quick={"models": ["albert-base-v2", "electra-small-discriminator"], "seq_len": 8, **QUICK},
    collect=collect_models,
    analyse=_analyse_sharing,
    figure=_figure_sharing,
)


# ---- sparse-moe -----------------------------------------------------------------------------------


def _analyse_moe(data: pd.DataFrame) -> Analysis:
    dense = data[data["params"] == data["params_active"]]
    sparse = data[data["params"] > data["params_active"]]
    if dense.empty or sparse.empty:
        return Analysis("Needs one dense and one sparse model.", "Not shown in this run: nothing to compare.", False)
    ref = dense.iloc[0]
    big = sparse.loc[sparse["params"].idxmax()]
    text = (
        f"{big.model} stores {ratio(big.params, ref.params)} the parameters of {ref.model} "
        f"({fmt('params', big.params)} vs {fmt('params', ref.params)}), yet each token passes through "
        f"{fmt('params', big.params_active)} of them and a forward pass costs {ratio(big.flops, ref.flops)} "
        f"the FLOPs ({fmt('flops', big.flops)} vs {fmt('flops', ref.flops)})."
    )
    if len(sparse) > 1:
        text += (
            f" Across the {len(sparse)} sparse models parameters span {fmt('params', sparse['params'].min())} to "
            f"{fmt('params', sparse['params'].max())} while FLOPs stay within "
            f"{sparse['flops'].max() / sparse['flops'].min() - 1:.1%}."
        )
    text += (
        " Counted per token as top-1 expert (routing-independent; capacity-based token dropping not modelled); "
        "latency not measured in this run."
    )
    found = compare(data, "model", str(ref.model), str(big.model), ["params", "params_active", "flops"])
    return verdict_analysis(text, found, "parameters and FLOPs grew together", data)


def _figure_moe(data: pd.DataFrame, presentation: bool) -> go.Figure:
    reference = str(data.loc[data["params"] == data["params_active"], "model"].iloc[0])
    indicators = ["params", "params_active", "flops", "memory_traffic_bytes"]
    return relative_bars(data, reference, indicators, presentation=presentation)


def _collect_moe(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    data, sources = collect_models({**setup, "measure": False}, progress)
    specs = resolve_all(setup["models"])
    data["experts"] = [int(s.config.get("num_experts") or 1) for s in specs]
    return data, {**sources, "experts": "setup"}


SPARSE_MOE = Experiment(
    name="sparse-moe",
    title="Sparse experts: Switch Transformers vs T5",
    description=(
        "Switch-Base-8/16/32 against T5-base: many times the parameters, about the same FLOPs per token. "
        "Static counts only (Switch needs 2.3 to 7.4 GiB in fp32 to run on a CPU)."
    ),
    default={
        "models": ["t5-base", "google/switch-base-8", "google/switch-base-16", "google/switch-base-32"],
        "seq_len": 128,
        "threads": THREADS,
    },
    quick={"models": ["t5-small", "google/switch-base-8"], "seq_len": 8, "threads": THREADS},
    collect=_collect_moe,
    analyse=_analyse_moe,
    figure=_figure_moe,
    measures="static counts only",
)


# ---- cnn-vs-transformer ---------------------------------------------------------------------------


def _analyse_vision(data: pd.DataFrame) -> Analysis:
    parts = [f"By FLOPs: {order(data, 'flops')}."]
    if measured(data):
        parts.append(f"By measured latency: {order(data, 'latency_ms')}.")
        tau = rank_correlations(data, "kendall", ["flops", "latency_ms"]).loc["flops", "latency_ms"]
        if pd.notna(tau):
            parts.append(f"FLOPs and latency agree with Kendall τ = {tau:.2f} (1 = same order).")
        if measured(data, "peak_memory_bytes"):
            parts.append(f"By peak memory: {order(data, 'peak_memory_bytes')}.")
    else:
        parts.append("Latency was not measured in this run.")
    found = strongest(data, "model", _indicators(data, ["flops", "latency_ms", "peak_memory_bytes"]))
    if found is None:
        found = strongest(data, "model", _indicators(data, ["params", "flops", "latency_ms", "peak_memory_bytes"]))
    return verdict_analysis(
        " ".join(parts), found, "FLOPs, latency and peak memory ranked these models the same way", data
    )


def _figure_vision(data: pd.DataFrame, presentation: bool) -> go.Figure:
    indicators = _indicators(data, ["params", "flops", "memory_traffic_bytes", "latency_ms", "peak_memory_bytes"])
    return rank_chart(data, indicators, presentation=presentation)


CNN_VS_TRANSFORMER = Experiment(
    name="cnn-vs-transformer",
    title="CNNs vs vision transformers: FLOPs, latency, memory",
    description=(
        "EfficientNet-B0, MobileNetV2, ResNet-50, ConvNeXt-T, DeiT-Tiny and ViT-B/16 at 224 px: "
        "their FLOPs, latency and peak-memory ranks."
    ),
    default={
        "models": [
            "google/efficientnet-b0",
            "google/mobilenet_v2_1.0_224",
            "microsoft/resnet-50",
            "facebook/convnext-tiny-224",
            "facebook/deit-tiny-patch16-224",
            "google/vit-base-patch16-224",
        ],
        "image_size": 224,
        **TIMING,
        "repeats": 5,
        "min_time_s": 0.5,
    },
    quick={"models": ["google/mobilenet_v2_1.0_224", "facebook/deit-tiny-patch16-224"], "image_size": 32, **QUICK},
    collect=collect_models,
    analyse=_analyse_vision,
    figure=_figure_vision,
)


# ---- training-vs-inference ------------------------------------------------------------------------


def _collect_training(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    return collect_models(setup, progress, training=True)


def _analyse_training(data: pd.DataFrame) -> Analysis:
    if not measured(data, "training_step_ms"):
        return Analysis("Nothing was measured in this run.", "Not shown in this run: no timings.", False)
    step_ratio = data["training_step_ms"] / data["latency_ms"]
    flops_ratio = data["training_flops"] / data["flops"]
    low, high = data.loc[step_ratio.idxmin()], data.loc[step_ratio.idxmax()]
    flops_span = f"{flops_ratio.min():.2f}x" + (
        f" to {flops_ratio.max():.2f}x" if f"{flops_ratio.max():.2f}" != f"{flops_ratio.min():.2f}" else ""
    )
    text = (
        f"A training step (forward, backward, AdamW) took {ratio(low.training_step_ms, low.latency_ms)} "
        f"({low.model}) to {ratio(high.training_step_ms, high.latency_ms)} ({high.model}) a forward pass, while "
        f"counted training FLOPs were {flops_span} forward FLOPs. "
        f"By inference latency: {order(data, 'latency_ms')}. By training step: {order(data, 'training_step_ms')}."
    )
    found = strongest(data, "model", ["latency_ms", "training_step_ms"])
    if found is None:
        found = strongest(data, "model", ["flops", "training_flops", "latency_ms", "training_step_ms"])
    return verdict_analysis(
        text, found, "inference latency and training step time ranked these models the same way", data
    )


def _figure_training(data: pd.DataFrame, presentation: bool) -> go.Figure:
    indicators = _indicators(data, ["params", "flops", "latency_ms", "training_flops", "training_step_ms"])
    return rank_chart(data, indicators, presentation=presentation)


TRAINING_VS_INFERENCE = Experiment(
    name="training-vs-inference",
    title="Training vs inference: does the order hold?",
    description=(
        "The same models ranked by inference latency and by training step time (forward, backward and an "
        "AdamW update, whose cost follows the parameters, not the FLOPs)."
    ),
    default={
        "models": [
            "bert-base-uncased",
            "distilbert-base-uncased",
            "albert-base-v2",
            "mobilebert-uncased",
            "electra-small-discriminator",
        ],
        "seq_len": 128,
        **TIMING,
    },
    quick={
        "models": ["electra-small-discriminator", "facebook/deit-tiny-patch16-224"],
        "seq_len": 8,
        "image_size": 32,
        **QUICK,
    },
    collect=_collect_training,
    analyse=_analyse_training,
    figure=_figure_training,
    measures="inference latency and training step measured on this CPU",
)
