"""The Hardware page's widgets and state: pickers, the measured and estimated latencies, their table, the
roofline with where each chip's figures come from, and the form that adds a chip.

The numbers come from the engine (``efficiency.hardware.roofline`` traces and estimates, the runner measures);
the tables are built in :mod:`efficiency.analysis.hardware` and drawn by :mod:`efficiency.charts`; this module
only puts them on the page. A trace is cached per model and workload, so a rerun never traces again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from efficiency.analysis.hardware import chip_sources, estimate_table, latency_rows, user_chip, with_assumptions
from efficiency.charts import roofline as roofline_charts
from efficiency.hardware import (
    LOCAL_CPU_ID,
    add_user_hardware,
    cpu_assumption,
    load_hardware,
    local_calibrations,
    with_local_threads,
)
from efficiency.specs import HardwareSpec, Workload
from efficiency.ui import cluster, common, lookup, pickers, runs, views

DEFAULT_MODELS = [
    "distilbert-base-uncased",
    "google/efficientnet-b0",
    "google/mobilenet_v2_1.0_224",
    "microsoft/resnet-18",
]
DEFAULT_CHIPS = ["h100-sxm", "rtx-4090", "raspberry-pi-5", LOCAL_CPU_ID]
LOCAL = LOCAL_CPU_ID
ADD_LOCAL_KEY = "hw_add_local_cpu"
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


def chip_list() -> list[HardwareSpec]:
    try:
        return load_hardware()
    except ValueError as problem:  # a broken user or calibration file: fall back to the datasheet catalog
        st.warning(f"Hardware list: {common.escape_md(common.one_line(problem))}", icon=":material/warning:")
        return load_hardware(include_user=False, include_measured=False)


def chip_label(hw: HardwareSpec, any_threads: bool = False) -> str:
    """A chip as a picker shows it: "NVIDIA T4", "Raspberry Pi 5 · all 4 cores at peak"; this machine's calibration
    by its threads, or with ``any_threads`` by every count calibrated here (the page takes the run's)."""
    facts = cpu_assumption(hw)
    if facts and facts.cores:
        return f"{hw.name.split(' (')[0]} · all {facts.cores} cores at peak"
    if hw.measured_here and hw.kind == "cpu" and any_threads:
        counts = list(calibrations_here())
        threads = " or ".join(map(str, counts)) + (" thread" if counts == [1] else " threads")
        return f"This CPU, calibrated ({threads})"
    return hw.name


def pickers_box(chips: list[HardwareSpec]) -> Picked:
    """The models, the hardware (measured and estimated) and the workload, in one box; defaults on a first visit."""
    labels, chip_ids = pickers.catalog_labels(), [hw.id for hw in chips]
    names = {hw.id: chip_label(hw, any_threads=True) for hw in chips}
    on_cluster = cluster.hardware()
    measured_labels = cluster.measured_options(on_cluster, common.detected_devices())
    st.session_state.setdefault("hw_models", [m for m in DEFAULT_MODELS if m in labels])
    st.session_state.setdefault("hw_chips", [c for c in DEFAULT_CHIPS if c in chip_ids])
    pickers.workload_defaults("hw")
    if st.session_state.pop(ADD_LOCAL_KEY, False) and LOCAL in chip_ids and LOCAL not in st.session_state["hw_chips"]:
        st.session_state["hw_chips"] = [*st.session_state["hw_chips"], LOCAL]  # just calibrated: show it
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
            format_func=lambda chip_id: names.get(chip_id, chip_id),
            placeholder="Pick chips: GPUs, TPUs, CPUs, edge …",
            help="Datasheet catalog, your own entries, and this machine once calibrated (peaks measured here). A "
            "CPU's datasheet figure counts every core busy at peak, one thread each; a run here may use fewer.",
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
    threads = {}
    for model_id in picked.models:
        for device in picked.measured:
            result = lookup.find_measured(model_id, workload, device, None, store)
            if result is not None and result.hardware is not None:
                threads[(model_id, f"{cluster.measured_name(device)} (measured)")] = result.hardware.threads
    found = [{**row, "threads": threads.get((row["model_id"], row["hardware"]))} for row in found]
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
                profile = runs.cached_trace(model_id, tuple(sorted(fields.items())))
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
    table = with_assumptions(estimate_table(rows, {m: facts["name"] for m, facts in profiles.items()}), chips)
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
            "Cores and threads": st.column_config.TextColumn(
                "Cores and threads",
                width=170,
                help="CPUs only: a datasheet figure counts every core at peak; a run or a calibration here, the "
                "threads it ran with",
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


def measured_here(models: list[str], workload: Workload, store: Any) -> list[dict[str, Any]]:
    """Latencies measured on this machine's CPU for the models at this workload (this session's or stored), with
    the threads each run used: the points the roofline compares with this machine's own roof."""
    found = []
    for model_id in models:
        result = lookup.find_measured(model_id, workload, "cpu", None, store)
        if result is not None and result.latency_ms is not None:
            threads = result.hardware.threads if result.hardware is not None else None
            found.append(
                {"model": model_id, "latency_ms": result.latency_ms.median, "hardware": LOCAL, "threads": threads}
            )
    return found


def calibrations_here() -> dict[int, HardwareSpec]:
    """This machine's CPU calibrations by thread count; none when the calibration file is broken (the hardware list
    at the top of the page says so: :func:`chip_list`)."""
    try:
        return local_calibrations()
    except ValueError:  # reported by chip_list's warning on this same run
        return {}


def run_threads(here: list[dict[str, Any]]) -> int | None:
    """The thread count of the runs measured here (the most common one when runs differ), or None."""
    counts = Counter(row["threads"] for row in here if row.get("threads"))
    return counts.most_common(1)[0][0] if counts else None


def chips_at_run_threads(chips: list[HardwareSpec], here: list[dict[str, Any]]) -> list[HardwareSpec]:
    """The picked chips with this machine's calibration taken at the thread count of the runs measured here, so
    that its estimate stands for the same threads as the latency it sits beside; said when there is none."""
    threads = run_threads(here)
    swapped, found = with_local_threads(chips, threads, calibrations_here())
    local = next((hw for hw in swapped if hw.id == LOCAL), None)
    if local is not None and not found:
        facts = cpu_assumption(local)
        ran = f"{facts.threads} thread{'' if facts.threads == 1 else 's'}" if facts else "other threads"
        st.warning(
            f"{LOCAL} is calibrated with {ran}, but the runs measured here used {threads}: its estimates stand for "
            f"{ran}. Calibrate with {threads} under the roofline below to compare like with like.",
            icon=":material/warning:",
        )
    return swapped


def calibrate_button(threads: int) -> None:
    """Calibrate this machine's CPU with ``threads`` threads (about 10 s, in this process under the engine lock, so
    nothing else here runs torch meanwhile), then draw again with the new roof."""
    label = f"Calibrate this machine with {threads} thread{'' if threads == 1 else 's'} (about 10 s)"
    if not st.button(label, icon=":material/speed:", key="hw_calibrate"):
        return
    from efficiency.hardware.calibrate import calibrate  # lazy: imports torch

    with st.spinner("Measuring this machine's matmul FLOP/s and copy bandwidth …"), common.engine_lock():
        try:
            calibrate("cpu", threads=threads)
        except (RuntimeError, ValueError) as problem:
            st.error(f"Calibration failed: {common.escape_md(common.one_line(problem))}")
            return
    st.session_state[ADD_LOCAL_KEY] = True  # the chip picker is drawn already: it takes local-cpu on the rerun
    st.rerun()


def roofline(
    table: pd.DataFrame,
    chips: list[HardwareSpec],
    workload: Workload,
    profiles: dict[str, dict[str, Any]],
    here: list[dict[str, Any]],
) -> None:
    """The roofline of the picked chips with the models on it: measured points against this machine's own roof
    at their thread count, estimates on the chip picked; and where each chip's figures come from."""
    st.subheader("Roofline")
    measured = roofline_charts.measured_points(here, profiles)
    threads = run_threads(here)
    measured_roof = calibrations_here().get(threads) if threads else None
    if not chips and measured_roof is None:
        st.caption("Pick a datasheet chip under Estimated to draw the roofline.")
        return
    names = {hw.id: chip_label(hw) for hw in chips}
    roof_ids = list(names)
    chip = (
        st.selectbox(
            "Model points on",
            roof_ids,
            index=roof_ids.index(LOCAL) if LOCAL in roof_ids else 0,
            key="hw_roof_chip",
            format_func=lambda chip_id: names.get(chip_id, chip_id),
            help="Each model is drawn at the attainable FLOP/s of this chip (estimated); every picked chip shows its "
            "roof. Points measured here are compared with this machine's own roof only.",
        )
        if roof_ids
        else None
    )
    if measured.empty:
        st.caption(
            "No measured results of these models at this setup on this machine yet: pick this machine under "
            "Measured and press Measure."
        )
    elif measured_roof is None and threads:
        calibrate_button(threads)
    views.draw(
        "Roofline",
        lambda: roofline_charts.roofline_plot(
            table, chips, measured, chip=chip, measured_roof=measured_roof, roof_threads=threads
        ),
        "hw_chart_roofline",
        "roofline",
    )
    with st.expander("Where each chip's figures come from"):
        st.dataframe(
            chip_sources(
                [*chips, *([measured_roof] if measured_roof and measured_roof not in chips else [])], workload.dtype
            ),
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
