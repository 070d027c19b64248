"""Home: the efficiency misnomer in a few sentences, one live chart, and where to go next."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from efficiency.analysis.rankings import rank_flips
from efficiency.charts import compare as charts
from efficiency.experiments import bundled
from efficiency.results import Result, results_frame
from efficiency.specs import Workload
from efficiency.ui.common import (
    chart_indicators,
    escape_md,
    one_line,
    open_store,
    setup_text,
    warm_engine_in_background,
)
from efficiency.ui.runs import static_profile
from efficiency.ui.views import draw

# Small, quick, and they disagree: ALBERT has the fewest parameters but the most FLOPs of the three.
DEMO_MODELS = ("electra-small-discriminator", "distilbert-base-uncased", "albert-base-v2")
# Measured on the bundle's machine, shipped with the code: the paper's headline case (ALBERT vs BERT).
BUNDLED_DEMO = "parameter-sharing"
MIN_MODELS = 3
MAX_MODELS = 8
INTRO = """
A model's cost is usually summed up by one number: its parameter count, its FLOPs, or how fast it ran on
one machine. Dehghani, Arnab, Beyer, Vaswani and Tay ([The Efficiency Misnomer](https://arxiv.org/abs/2110.12894),
ICLR 2022) show that these **cost indicators often disagree**. ALBERT shares its weights across layers, so it
has few parameters but as much compute as a model many times its size; a model with fewer FLOPs can run slower
when its operations leave the hardware idle; a sparse mixture-of-experts has many parameters but little compute
per token. Calling a model "efficient" by one indicator is the *efficiency misnomer*.

This dashboard profiles models by **every** indicator, each with its unit and its setup (hardware, dtype, batch
size, sequence length), marks what was measured and what was counted, and shows where the rankings cross.
"""


def _group_key(result: Result) -> tuple:
    """Results comparable in one chart: same kind, hardware and workload (text and vision apart)."""
    return result.measured, result.hardware_text() or "", tuple(sorted(result.workload.items()))


def disagrees(frame: pd.DataFrame) -> bool:
    """Some pair of models swaps order between two of the charted indicators."""
    return len(frame) >= 2 and bool(rank_flips(frame, chart_indicators(frame)))


def stored_comparison() -> tuple[pd.DataFrame, str, bool] | None:
    """The stored results to chart: a group sharing one setup, newest result per model, preferring a group
    whose indicators disagree, then measured results, then the largest; with whether it disagrees."""
    store = open_store(quiet=True)
    if store is None:
        return None
    groups: dict[tuple, dict[str, Result]] = {}
    for result in store.list(limit=2000):
        if not result.error:
            groups.setdefault(_group_key(result), {}).setdefault(result.model, result)
    usable = []
    for key, by_model in groups.items():
        if len(by_model) >= MIN_MODELS:
            frame = results_frame(list(by_model.values())[:MAX_MODELS])
            usable.append((disagrees(frame), key[0], len(frame), frame))
    if not usable:
        return None
    disagreeing, measured, count, frame = max(usable, key=lambda group: group[:3])
    return frame, f"{count} {'measured' if measured else 'static'} results from the store", disagreeing


def bundled_comparison() -> tuple[pd.DataFrame, str] | None:
    """The bundled measured run that shows the misnomer (offline, instant), or None if the bundle is unreadable."""
    try:
        result = bundled.load_bundled(BUNDLED_DEMO)
    except bundled.BundleError as error:
        st.caption(f"Bundled results unavailable: {escape_md(one_line(error))}")
        return None
    return result.data, f"bundled results measured on {result.machine_label} ({result.title})"


def demo_comparison() -> tuple[pd.DataFrame, str]:
    with st.spinner("Counting three small models (first visit only, a few seconds) …"):
        results = [static_profile(model, Workload()) for model in DEMO_MODELS]
    return results_frame(results), "static counts of three small catalog models, profiled on this machine"


def comparison() -> tuple[pd.DataFrame, str]:
    """Stored results whose indicators disagree, else the bundled measured run, else any stored group, else
    a static count of three small models."""
    stored = stored_comparison()
    if stored is not None and stored[2]:
        return stored[:2]
    bundled = bundled_comparison()
    if bundled is not None:
        return bundled
    return stored[:2] if stored is not None else demo_comparison()


def home_indicators(frame: pd.DataFrame) -> list[str]:
    """At most four axes, so that the half-width chart keeps its labels level: parameters, FLOPs, and the
    measured latency and peak memory where there are measurements, else memory traffic (throughput at
    batch 1 only mirrors latency)."""
    available = chart_indicators(frame)
    measured = [c for c in ("latency_ms", "peak_memory_bytes") if c in available]
    chosen = [c for c in ("params", "flops", *(measured or ["memory_traffic_bytes"])) if c in available]
    return chosen if len(chosen) >= 2 else available


def live_chart() -> None:
    frame, source = comparison()
    if len(frame) < 2:
        st.info("Not enough results to compare yet: open Compare and run a few models.")
        return
    draw("Chart unavailable", lambda: charts.rank_chart(frame, home_indicators(frame)), "home_ranks", "ranks")
    st.caption(escape_md(f"Source: {source}. {setup_text(frame)}."))


def render() -> None:
    st.title("The efficiency misnomer")
    text, chart = st.columns([5, 7], gap="large")
    with text:
        st.markdown(INTRO)
        st.subheader("Where to go next")
        st.page_link("pages/1_Compare.py", label="Compare", icon=":material/compare_arrows:")
        st.caption("Pick models, hardware and a workload; profile them and see every indicator side by side.")
        st.page_link("pages/4_Story.py", label="Story", icon=":material/slideshow:")
        st.caption("The misnomer step by step, one chart and one sentence per screen: for a talk or a class.")
        st.page_link("pages/2_Results.py", label="Results", icon=":material/table_view:")
        st.caption("Browse, export or delete stored profiles, and reopen a past comparison.")
    with chart:
        live_chart()
    warm_engine_in_background()
