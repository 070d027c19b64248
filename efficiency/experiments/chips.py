"""The hardware experiment: the same models ranked on this CPU (measured) and on catalog chips (estimated).

Estimates come from ``efficiency.hardware.roofline`` (per-op roofline over the traced forward pass, plus a fixed
per-op overhead for the chip's kind); every estimated row says so in its ``measured`` flag and legend.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from efficiency.analysis.claims import Drawn, Fact, table_drawn
from efficiency.charts.sweeps import grouped_bar
from efficiency.experiments.base import Analysis, Experiment, Progress, fmt, ratio
from efficiency.experiments.comparisons import order
from efficiency.experiments.measure import (
    local_hardware,
    measure,
    measured_columns,
    resolve_all,
    setup_columns,
    sources_for,
    static_columns,
    static_profile,
)
from efficiency.experiments.sweeps import QUICK, THREADS, TIMING
from efficiency.hardware import get_hardware
from efficiency.specs import Workload

CLEAR = 0.10  # a latency order counts only when the two values are more than 10% apart


def _collect(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    from efficiency.hardware.roofline import estimate  # lazy: imports torch; listing experiments stays fast

    specs = resolve_all(setup["models"])
    chips = [get_hardware(chip) for chip in setup["chips"]]
    workload = Workload(seq_len=setup["seq_len"], image_size=setup["image_size"])
    here, rows = local_hardware(setup["threads"]), []
    for i, spec in enumerate(specs):
        progress(0.3 * i / len(specs), f"counting {spec.display_name}")
        profile = static_profile(spec, workload)
        base = {**setup_columns(spec, workload, setup["threads"], True), **static_columns(spec, workload)}
        rows.append({**base, "hardware_id": "this-cpu"})
        for chip in chips:
            est = estimate(profile, chip, spec=spec)
            rows.append(
                {
                    **base,
                    "hardware": chip.name,
                    "hardware_id": chip.id,
                    "measured": False,
                    "latency_ms": est.estimated_latency_ms,
                    "bound": est.bound,
                }
            )
    points = measure([(spec, [workload]) for spec in specs], {**setup, "memory": False}, progress, span=(0.3, 1.0))
    measured_rows = [r for r in rows if r["hardware_id"] == "this-cpu"]
    for row, per_spec in zip(measured_rows, points):
        row.update({k: v for k, v in measured_columns(per_spec[0]).items() if k != "peak_memory_bytes"})
        row["hardware"] = here
    data = pd.DataFrame(rows)
    return data, sources_for(data.columns, latency_ms="per-row", hardware_id="setup", bound="estimated")


def latency_flips(data: pd.DataFrame) -> list[dict[str, Any]]:
    """Model pairs whose latency order on this CPU (measured) reverses on a chip (estimated), both clearly."""
    here = data[data["measured"].astype(bool)].set_index("model")["latency_ms"]
    found = []
    for chip, part in data[~data["measured"].astype(bool)].groupby("hardware", sort=False):
        there = part.set_index("model")["latency_ms"]
        for a, b in combinations(here.index, 2):
            cost_here, cost_there = here[a] / here[b], there[a] / there[b]
            if min(cost_here, 1 / cost_here) > 1 / (1 + CLEAR) or min(cost_there, 1 / cost_there) > 1 / (1 + CLEAR):
                continue
            if (cost_here - 1) * (cost_there - 1) < 0:
                first, second = (a, b) if cost_here < 1 else (b, a)
                strength = abs(math.log(cost_here)) + abs(math.log(cost_there))
                found.append({"chip": chip, "a": first, "b": second, "strength": strength})
    return sorted(found, key=lambda f: f["strength"], reverse=True)


def _analyse(data: pd.DataFrame) -> Analysis:
    measured = data[data["measured"].astype(bool)]
    if measured["latency_ms"].isna().all():
        return Analysis("Nothing was measured in this run.", "Not shown in this run: no measured latency.", False)
    here_name = str(measured["hardware"].iloc[0])
    parts = [f"On {here_name} (measured): {order(measured, 'latency_ms')}."]
    here = measured.set_index("model")["latency_ms"]
    for chip, part in data[~data["measured"].astype(bool)].groupby("hardware", sort=False):
        there = part.set_index("model")["latency_ms"].reindex(here.index)
        tau = stats.kendalltau(here.to_numpy(), there.to_numpy()).statistic if len(here) >= 3 else float("nan")
        agreement = f" (Kendall τ with the measured CPU = {tau:.2f})" if pd.notna(tau) else ""
        parts.append(f"On {chip} (estimated): {order(part, 'latency_ms')}{agreement}.")
    flips = latency_flips(data)
    if not flips:
        line = (
            "Not shown in this run: every chip's estimated latency order matched the order measured here "
            f"(pairs within {CLEAR:.0%} not counted)."
        )
        return Analysis(" ".join(parts), line, False)
    flip = flips[0]
    a, b, chip = flip["a"], flip["b"], flip["chip"]
    there = data[data["hardware"] == chip].set_index("model")["latency_ms"]
    line = (
        f"{a} is faster than {b} on {here_name} (measured: {fmt('latency_ms', here[a])} vs "
        f"{fmt('latency_ms', here[b])}, {ratio(here[b], here[a])}), but slower on {chip} (estimated, roofline: "
        f"{fmt('latency_ms', there[a])} vs {fmt('latency_ms', there[b])}, {ratio(there[a], there[b])}): "
        "the two chips disagree on which is faster."
    )
    facts = (
        Fact(here_name, "latency_ms", b, a, float(here[b]), float(here[a]), "higher", ratio(here[b], here[a])),
        Fact(chip, "latency_ms", a, b, float(there[a]), float(there[b]), "higher", ratio(there[a], there[b])),
    )
    parts.append(f"{len(flips)} (model pair, chip) orders reverse against the measured CPU.")
    return Analysis(" ".join(parts), line, True, facts)


def _drawn(data: pd.DataFrame) -> Drawn:
    """Each model's latency on each chip, as the grouped bars draw it (measured here with its p10-p90)."""
    return table_drawn(data, category="hardware", names=("model",))


def _figure(data: pd.DataFrame, presentation: bool) -> go.Figure:
    title = "Latency per model: the measured CPU vs catalog chips (estimated)"
    return grouped_bar(data, "model", "latency_ms", group="hardware", title=title, presentation=presentation)


HARDWARE = Experiment(
    name="hardware",
    title="Hardware: the ranking depends on the chip",
    description=(
        "The same models ranked by latency on the CPU it runs on (measured) and on catalog chips (estimated with a "
        "roofline model: per-op compute or memory time plus a fixed per-op overhead)."
    ),
    default={
        "models": [
            "bert-base-uncased",
            "distilbert-base-uncased",
            "mobilebert-uncased",
            "microsoft/resnet-50",
            "google/efficientnet-b0",
            "google/mobilenet_v2_1.0_224",
            "facebook/deit-tiny-patch16-224",
        ],
        "chips": ["a100-80gb", "t4", "raspberry-pi-5"],
        "seq_len": 128,
        "image_size": 224,
        **TIMING,
        "repeats": 3,
        "min_time_s": 0.5,
    },
    quick={
        "models": ["electra-small-discriminator", "google/mobilenet_v2_1.0_224"],
        "chips": ["a100-80gb", "raspberry-pi-5"],
        "seq_len": 16,
        "image_size": 64,
        "threads": THREADS,
        **QUICK,
    },
    collect=_collect,
    analyse=_analyse,
    figure=_figure,
    measures="latency measured on this CPU; other chips estimated (roofline)",
    drawn=_drawn,
)
