"""The Hardware page's widgets and state: pickers, the measured and estimated latencies, their table, the
roofline with where each chip's figures come from, and the form that adds a chip.

The numbers come from the engine (``efficiency.hardware.roofline`` traces and estimates, the runner measures);
the tables are built in :mod:`efficiency.analysis.hardware` and drawn by :mod:`efficiency.charts`; this module
only puts them on the page. A trace is cached per model and workload, so a rerun never traces again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from efficiency.analysis.hardware import chip_sources, estimate_table, latency_rows, user_chip
from efficiency.charts import roofline as roofline_charts
from efficiency.hardware import add_user_hardware, load_hardware
from efficiency.specs import HardwareSpec, Workload
from efficiency.ui import cluster, common, lookup, pickers, runs, views

DEFAULT_MODELS = [
    "distilbert-base-uncased",
    "google/efficientnet-b0",
    "google/mobilenet_v2_1.0_224",
    "microsoft/resnet-18",
]
DEFAULT_CHIPS = ["h100-sxm", "rtx-4090", "raspberry-pi-5", "local-cpu"]
LOCAL = "local-cpu"
ESTIMATE_NOTE = (
    "**Estimated (roofline on datasheet figures), not measured**, on the chips picked under Estimated: real "
    "kernels reach a fraction of peak; use these to compare chips and see rankings flip, not as benchmarks. "
    "Hardware picked under Measured is timed for real; the table and charts mark every number measured or "
    "estimated."
)


@dataclass(frozen=True)
class Picked:
    """What the pickers ask for: models, datasheet chips to estimate on, hardware to measure on, the workload."""

    models: list[str]
    chips: list[HardwareSpec]
    measured: list[str]
    workload: Workload | None
    measure: bool
    fresh: bool


@st.cache_data(show_spinner=False, max_entries=256)
def cached_profile(model_id: str, workload_items: tuple) -> Any:
    """Forward-only static profile, keyed by model id and the workload fields the model uses; traced in a worker
    (:func:`efficiency.ui.runs.trace_in_worker`), never in the server process."""
    return runs.trace_in_worker(model_id, Workload(**dict(workload_items)))


def chip_list() -> list[HardwareSpec]:
    try:
        return load_hardware()
    except ValueError as problem:  # a broken user or calibration file: fall back to the datasheet catalog
        st.warning(f"Hardware list: {common.escape_md(common.one_line(problem))}", icon=":material/warning:")
        return load_hardware(include_user=False, include_measured=False)


def pickers_box(chips: list[HardwareSpec]) -> Picked:
    """The models, the hardware (measured and estimated) and the workload, in one box; defaults on a first visit."""
    labels, chip_ids = pickers.catalog_labels(), [hw.id for hw in chips]
    on_cluster = cluster.hardware()
    measured_labels = cluster.measured_options(on_cluster, common.detected_devices())
    st.session_state.setdefault("hw_models", [m for m in DEFAULT_MODELS if m in labels])
    st.session_state.setdefault("hw_chips", [c for c in DEFAULT_CHIPS if c in chip_ids])
    pickers.workload_defaults("hw")
    st.session_state["hw_measured"] = [d for d in st.session_state.get("hw_measured", []) if d in measured_labels]

    with st.container(border=True):
        pick_models, pick_chips, pick_workload = st.columns([5, 4, 4], gap="medium")
    with pick_models:
        pickers.model_picker(
            "hw_models", "Each model is traced once (a second or two); estimates per chip are instant."
        )
    with pick_chips:
        st.multiselect(
            "Measured on: the cluster and this machine" if on_cluster else "Measured on: this machine",
            list(measured_labels),
            key="hw_measured",
            wrap=True,
            format_func=lambda device: measured_labels.get(device, device),
            placeholder="Pick hardware to time the models on …",
            help="Timed for real, each model in its own process, when you press Measure; results already stored "
            "at this setup are shown without running again. Cluster hardware comes from the Ray cluster at "
            f"{cluster.ADDRESS_ENV} (unset: none).",
        )
        st.multiselect(
            "Estimated on: datasheet chips (roofline)",
            chip_ids,
            key="hw_chips",
            wrap=True,
            placeholder="Pick chips: GPUs, TPUs, CPUs, edge …",
            help="Datasheet catalog, your own entries, and this machine once calibrated (local-cpu, peaks measured "
            "here).",
        )
    with pick_workload:
        pickers.workload_inputs("hw")
        fresh = st.checkbox("Measure again, ignore stored results", key="hw_fresh")
        measure = st.button(
            "Measure",
            type="primary",
            icon=":material/timer:",
            width="stretch",
            disabled=not st.session_state["hw_measured"],
            help="Time the picked models on the picked measured hardware (tens of seconds per model and hardware).",
        )
    return Picked(
        models=list(st.session_state["hw_models"]),
        chips=[hw for hw in chips if hw.id in st.session_state["hw_chips"]],
        measured=list(st.session_state["hw_measured"]),
        workload=pickers.workload_from_state("hw"),
        measure=measure,
        fresh=fresh,
    )


def measured_results(picked: Picked, workload: Workload, store: Any) -> list[dict[str, Any]]:
    """Measure if asked (else show this view's earlier errors), then the measured rows found at this setup."""
    if picked.measure:
        runs.measure(picked.models, picked.measured, workload, None, store, fresh=picked.fresh)
    else:
        for model_id in picked.models:
            for device in picked.measured:
                error = lookup.error_for(lookup.view_key(model_id, workload, "measured", device, None))
                if error:
                    common.show_error(f"{common.display_name(model_id)} on {cluster.where(device)}", error, model_id)
    found, not_measured = lookup.measured_rows(picked.models, picked.measured, workload, store)
    if not_measured:
        st.info(
            f"Not measured yet at this setup: {common.escape_md(', '.join(not_measured))}. Press **Measure**.",
            icon=":material/timer:",
        )
    return found


def estimates(
    models: list[str], chips: list[HardwareSpec], workload: Workload
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Each model traced once (cached) and estimated on every chip: the estimate table, and per model id its
    name, forward FLOPs, arithmetic intensity and workload (for the roofline). Errors are shown per model."""
    from efficiency.hardware.roofline import estimate_rows  # lazy: imports torch (seconds); the pickers show first

    rows: list[dict] = []
    profiles: dict[str, dict[str, Any]] = {}
    with st.spinner("Tracing the models (once per model and workload) …"):
        for model_id in models if chips else []:  # a trace serves the estimates and the roofline: both need a chip
            spec = common.catalog.find(model_id)
            fields = workload.for_modality(spec.modality) if spec else workload.to_dict()
            name = common.display_name(model_id)
            try:
                profile = cached_profile(model_id, tuple(sorted(fields.items())))
            except Exception as error:  # noqa: BLE001 - this model's error; the others go on
                common.show_error(name, common.one_line(error), model_id)
                continue
            if profile.error:
                common.show_error(name, profile.error, model_id)
                continue
            profiles[model_id] = {"name": name, "flops": profile.flops, "workload": fields}
            profiles[model_id]["arithmetic_intensity"] = profile.arithmetic_intensity
            for row in estimate_rows(profile, chips):
                if row.get("error"):
                    common.show_error(f"{name} on {row['hardware']}", row["error"], model_id)
                else:
                    rows.append(row)
    table = estimate_table(rows, {m: facts["name"] for m, facts in profiles.items()})
    for model_id, intensity in table.groupby("model_id")["arithmetic_intensity"].first().items() if rows else []:
        profiles[model_id]["arithmetic_intensity"] = intensity  # the estimate's own x, so both points align
    return table, profiles


def latency_table(both: pd.DataFrame, chips: list[HardwareSpec]) -> None:
    """Every latency, measured or estimated, with how it was obtained and the roofline's figures behind it."""
    st.dataframe(
        latency_rows(both, chips),
        hide_index=True,
        width="stretch",
        placeholder="n/a",
        column_config={
            "Model": st.column_config.TextColumn("Model", pinned=True),
            "Hardware": st.column_config.TextColumn("Hardware", width=165),
            "How obtained": st.column_config.TextColumn("How obtained", width=290),
            "Fits": st.column_config.CheckboxColumn(
                "Fits", width=50, help="Estimates only: the model's memory fits in the chip's memory"
            ),
            "Latency": st.column_config.NumberColumn(
                "Latency", format="%.3f ms", help="Median measured latency, or the roofline estimate: see How obtained"
            ),
            "Bound": st.column_config.TextColumn(
                "Bound", width=75, help="Estimates only. compute: FLOPs / peak dominates; memory: bytes / bandwidth"
            ),
            "Arithmetic intensity": st.column_config.NumberColumn(
                "Intensity",
                width=105,
                format="%.1f FLOPs/B",
                help="Estimates only: arithmetic intensity, FLOPs per byte moved",
            ),
            "Attainable": st.column_config.NumberColumn("Attainable", width=110, format="%.3g TFLOP/s"),
            "Memory needed": st.column_config.NumberColumn(
                "Memory", width=80, format="%.2f GiB", help="Estimates only: memory the model needs at this setup"
            ),
            "estimated": None,  # kept in the data (exports, tests); How obtained says it in words
        },
    )


def _measured_here(profiles: dict[str, dict[str, Any]], workload: Workload, store: Any) -> list[dict[str, Any]]:
    """Latencies measured on this machine's CPU for the traced models at this workload (this session's or stored)."""
    found = []
    for model_id in profiles:
        result = lookup.find_measured(model_id, workload, "cpu", None, store)
        if result is not None and result.latency_ms is not None:
            found.append({"model": model_id, "latency_ms": result.latency_ms.median, "hardware": LOCAL})
    return found


def roofline(
    table: pd.DataFrame, chips: list[HardwareSpec], workload: Workload, profiles: dict[str, dict[str, Any]], store: Any
) -> None:
    """The roofline of the picked chips with the models on it, and where each chip's figures come from."""
    st.subheader("Roofline")
    if not chips:
        st.caption("Pick a datasheet chip under Estimated to draw the roofline.")
        return
    roof_ids = [hw.id for hw in chips]
    chip = st.selectbox(
        "Model points on",
        roof_ids,
        index=roof_ids.index(LOCAL) if LOCAL in roof_ids else 0,
        key="hw_roof_chip",
        help="Each model is drawn at the attainable FLOP/s of this chip; every picked chip shows its roof.",
    )
    measured = roofline_charts.measured_points(_measured_here(profiles, workload, store), profiles)
    if measured.empty:
        st.caption(
            "No measured results of these models at this setup on this machine yet: pick this machine under "
            "Measured and press Measure."
        )
    views.draw(
        "Roofline",
        lambda: roofline_charts.roofline_plot(table, chips, measured, chip=chip),
        "hw_chart_roofline",
        "roofline",
    )
    with st.expander("Where each chip's figures come from"):
        st.dataframe(
            chip_sources(chips, workload.dtype),
            hide_index=True,
            width="stretch",
            column_config={
                "Source": st.column_config.LinkColumn("Source", display_text="datasheet"),
                "Peak (TFLOP/s)": st.column_config.NumberColumn(format="%.3g"),
                "Bandwidth (GB/s)": st.column_config.NumberColumn(format="%.4g"),
                "Memory (GiB)": st.column_config.NumberColumn(format="%.3g"),
            },
        )


def add_chip_form() -> None:
    """A person's own chip from its datasheet, saved to their hardware file and listed from the next run on."""
    with st.expander("Add your own chip (saved to your user hardware file)"):
        st.caption(
            "Dense datasheet figures only (not 'with sparsity'). The chip then appears in the hardware list above, "
            "marked with the source you give. Catalog ids and ids starting with 'local-' are reserved."
        )
        with st.form("add_chip", clear_on_submit=False):
            left, right = st.columns(2)
            chip_id = left.text_input("Id (lowercase, e.g. my-gpu)", max_chars=64)
            name = right.text_input("Name", max_chars=120)
            kind = left.selectbox("Kind", ["gpu", "tpu", "cpu", "soc", "edge"])
            source = right.text_input("Source (datasheet URL)", max_chars=500)
            fp32 = left.number_input("FP32 peak (TFLOP/s)", min_value=0.001, max_value=100_000.0, value=10.0)
            half = right.number_input("BF16/FP16 peak (TFLOP/s)", min_value=0.001, max_value=100_000.0, value=100.0)
            bandwidth = left.number_input("Memory bandwidth (GB/s)", min_value=0.1, max_value=100_000.0, value=500.0)
            memory = right.number_input("Memory (GiB)", min_value=0.1, max_value=100_000.0, value=16.0)
            submitted = st.form_submit_button("Add chip")
        if not submitted:
            return
        try:
            spec = user_chip(chip_id, name, kind, source, fp32, half, bandwidth, memory)
            add_user_hardware(spec)
        except (ValueError, TypeError) as problem:
            st.error(f"Chip not added: {common.escape_md(common.one_line(problem))}")
        else:
            st.success(f"Added {common.escape_md(spec.id)}; pick it in the hardware list above.")
