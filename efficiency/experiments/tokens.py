"""The token-count experiment: vision transformers whose cost follows their number of tokens, not parameters."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.findings import compare
from efficiency.charts.sweeps import line_sweep
from efficiency.experiments.base import Analysis, Experiment, Progress, fmt, ratio, verdict_analysis
from efficiency.experiments.measure import resolve_all, sources_for
from efficiency.experiments.sweeps import QUICK, TIMING, has_latency, panels_with_values, steady_from_zero, sweep_rows
from efficiency.specs import Workload


def _collect_tokens(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    specs = resolve_all(setup["models"])
    points = [Workload(batch_size=1, image_size=size) for size in setup["image_sizes"]]
    data = sweep_rows(setup, progress, specs, points, "image_size")
    patch = {s.id: int(s.config["patch_size"]) for s in specs}
    data["patch_size"] = data["model_id"].map(patch)
    data["tokens"] = (data["image_size"] // data["patch_size"]) ** 2 + 1  # + the class token
    return data, sources_for(data.columns, patch_size="setup", tokens="derived")


def _analyse_tokens(data: pd.DataFrame) -> Analysis:
    """Two contrasts: patch sizes at one image size (across models), and one model over image sizes."""
    measured = has_latency(data)
    sizes = set(data["image_size"])
    size = 224 if 224 in sizes else int(max(sizes))
    at = data[data["image_size"] == size].sort_values("tokens")
    parts, verdicts = [], []
    indicators = ["params", "flops", "latency_ms"]
    if len(at) >= 2:
        few, many = at.iloc[0], at.iloc[-1]
        parts.append(
            f"At {size} px, {many.model} sees {many.tokens:g} tokens and {few.model} {few.tokens:g}; with "
            f"{ratio(many.params, few.params)} the parameters ({fmt('params', many.params)} vs "
            f"{fmt('params', few.params)}), {many.model} costs {ratio(many.flops, few.flops)} the FLOPs"
            + (f" and {ratio(many.latency_ms, few.latency_ms)} the measured latency." if measured else ".")
        )
        verdicts.append(compare(data, "point", str(few.point), str(many.point), indicators))
    sweep = data[data["model"] == data["model"].iloc[0]].sort_values("image_size")
    if len(sweep) >= 2:
        lo, hi = sweep.iloc[0], sweep.iloc[-1]
        parts.append(
            f"From {lo.image_size:g} to {hi.image_size:g} px, {lo.model}'s parameters stay at "
            f"{fmt('params', lo.params)} while tokens grow {ratio(hi.tokens, lo.tokens)} and FLOPs "
            f"{ratio(hi.flops, lo.flops)}" + (f", latency {ratio(hi.latency_ms, lo.latency_ms)}." if measured else ".")
        )
        verdicts.append(compare(data, "point", str(lo.point), str(hi.point), indicators))
    found = next((v for v in verdicts if v.disagrees), verdicts[0] if verdicts else None)
    return verdict_analysis(" ".join(parts), found, "the token counts here did not separate the costs", data)


def _figure_tokens(data: pd.DataFrame, presentation: bool) -> go.Figure:
    panels = panels_with_values(data, ["params", "flops", "latency_ms"])
    title = "Tokens, not parameters: patch size and image size"
    figure = line_sweep(
        data, "image_size", panels, title=title, text=_analyse_tokens(data).notice, presentation=presentation
    )
    return steady_from_zero(figure, data, panels)


TOKEN_COUNT = Experiment(
    name="token-count",
    title="Token count: ViT-B/16 vs ViT-B/32 and image size",
    description=(
        "Vision transformers with about the same parameters but different numbers of tokens (patch size, image "
        "size): FLOPs and latency several times apart."
    ),
    default={
        "models": ["google/vit-base-patch16-224", "vit-base-patch32-224"],
        "image_sizes": [160, 224, 288, 384],
        **TIMING,
    },
    quick={"models": ["facebook/deit-tiny-patch16-224"], "image_sizes": [32, 64], **QUICK},
    collect=_collect_tokens,
    analyse=_analyse_tokens,
    figure=_figure_tokens,
)
