"""Hardware: latency of models on chips you may not have (estimated) and on hardware you can reach (measured:
this machine, a connected Ray cluster), and how their ranking flips across hardware."""

from typing import Any

import pandas as pd
import streamlit as st

from efficiency.specs import Workload
from efficiency.ui import cluster, common, lookup, pickers, runs

common.page_header(
    "Hardware: the same models, other chips",
    "Estimated latency of each model on each chip from a roofline model on datasheet figures: per op, "
    "max(FLOPs / peak, bytes / bandwidth) plus a fixed per-op cost; measured latency on this machine and on a "
    "connected Ray cluster's hardware. Rankings by speed change from chip to chip.",
)

DEFAULT_MODELS = [
    "distilbert-base-uncased",
    "google/efficientnet-b0",
    "google/mobilenet_v2_1.0_224",
    "microsoft/resnet-18",
]
DEFAULT_CHIPS = ["h100-sxm", "rtx-4090", "raspberry-pi-5", "local-cpu"]
LOCAL = "local-cpu"


@st.cache_data(show_spinner=False, max_entries=256)
def cached_profile(model_id: str, workload_items: tuple) -> Any:
    """Forward-only static profile, keyed by model id and the workload fields the model uses."""
    from efficiency.hardware.roofline import trace_profile

    with common.engine_lock():
        return trace_profile(model_id, Workload(**dict(workload_items)))


def chip_list() -> list:
    from efficiency.hardware import load_hardware

    try:
        return load_hardware()
    except ValueError as problem:  # a broken user or calibration file: fall back to the datasheet catalog
        st.warning(f"Hardware list: {common.escape_md(common.one_line(problem))}", icon=":material/warning:")
        return load_hardware(include_user=False, include_measured=False)


labels = pickers.catalog_labels()
chips = chip_list()
chip_ids = [hw.id for hw in chips]
on_cluster = cluster.hardware()
measured_labels = cluster.measured_options(on_cluster, common.detected_devices())
st.session_state.setdefault("hw_models", [m for m in DEFAULT_MODELS if m in labels])
st.session_state.setdefault("hw_chips", [c for c in DEFAULT_CHIPS if c in chip_ids])
pickers.workload_defaults("hw")
st.session_state["hw_measured"] = [d for d in st.session_state.get("hw_measured", []) if d in measured_labels]

with st.container(border=True):
    pick_models, pick_chips, pick_workload = st.columns([5, 4, 4], gap="medium")
with pick_models:
    pickers.model_picker("hw_models", "Each model is traced once (a second or two); estimates per chip are instant.")
with pick_chips:
    st.multiselect(
        "Measured on: the cluster and this machine" if on_cluster else "Measured on: this machine",
        list(measured_labels),
        key="hw_measured",
        wrap=True,
        format_func=lambda device: measured_labels.get(device, device),
        placeholder="Pick hardware to time the models on …",
        help="Timed for real, each model in its own process, when you press Measure; results already stored at "
        "this setup are shown without running again. Cluster hardware comes from the Ray cluster at "
        f"{cluster.ADDRESS_ENV} (unset: none).",
    )
    st.multiselect(
        "Estimated on: datasheet chips (roofline)",
        chip_ids,
        key="hw_chips",
        wrap=True,
        placeholder="Pick chips: GPUs, TPUs, CPUs, edge …",
        help="Datasheet catalog, your own entries, and this machine once calibrated (local-cpu, peaks measured here).",
    )
with pick_workload:
    pickers.workload_inputs("hw")
    fresh = st.checkbox("Measure again, ignore stored results", key="hw_fresh")
    measure_clicked = st.button(
        "Measure",
        type="primary",
        icon=":material/timer:",
        width="stretch",
        disabled=not st.session_state["hw_measured"],
        help="Time the picked models on the picked measured hardware (tens of seconds per model and hardware).",
    )

st.info(
    "**Estimated (roofline on datasheet figures), not measured**, on the chips picked under Estimated: real "
    "kernels reach a fraction of peak; use these to compare chips and see rankings flip, not as benchmarks. "
    "Hardware picked under Measured is timed for real; the table and charts mark every number measured or "
    "estimated.",
    icon=":material/calculate:",
)

models: list[str] = list(st.session_state["hw_models"])
selected = [hw for hw in chips if hw.id in st.session_state["hw_chips"]]
picked_measured: list[str] = list(st.session_state["hw_measured"])
workload = pickers.workload_from_state("hw")

if workload is None:
    st.stop()
if not models or not (selected or picked_measured):
    st.info(
        "Pick at least one model and one chip or measured hardware (two of each to see rankings flip).",
        icon=":material/touch_app:",
    )
    st.stop()

from efficiency.analysis.rankings import setup_line  # noqa: E402
from efficiency.charts import hardware as hc  # noqa: E402 - plotly only once there is something to draw
from efficiency.charts import roofline as roofline_charts  # noqa: E402
from efficiency.charts.compare import caption  # noqa: E402
from efficiency.hardware.roofline import estimate_rows  # noqa: E402
from efficiency.ui.views import PLOTLY_CONFIG  # noqa: E402

store = common.open_store(quiet=not picked_measured)  # estimates alone need no store
if measure_clicked:
    runs.measure(models, picked_measured, workload, None, store, fresh=fresh)
else:
    for model_id in models:
        for device in picked_measured:
            error = lookup.error_for(lookup.view_key(model_id, workload, "measured", device, None))
            if error:
                common.show_error(f"{common.display_name(model_id)} on {cluster.where(device)}", error, model_id)
measured_found, not_measured = lookup.measured_rows(models, picked_measured, workload, store)
if not_measured:
    st.info(
        f"Not measured yet at this setup: {common.escape_md(', '.join(not_measured))}. Press **Measure**.",
        icon=":material/timer:",
    )

rows: list[dict] = []
profiles: dict[str, dict] = {}
to_trace = models if selected else []  # a trace serves the estimates and the roofline, both need a chip
with st.spinner("Tracing the models (once per model and workload) …"):
    for model_id in to_trace:
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
        profiles[model_id] = {
            "name": name,
            "flops": profile.flops,
            "arithmetic_intensity": profile.arithmetic_intensity,
            "workload": fields,
        }
        for row in estimate_rows(profile, selected):
            if row.get("error"):
                common.show_error(f"{name} on {row['hardware']}", row["error"], model_id)
            else:
                rows.append(row)

if not rows and not measured_found:
    st.stop()
table = hc.estimate_table(rows, {m: facts["name"] for m, facts in profiles.items()})
for model_id, intensity in table.groupby("model_id")["arithmetic_intensity"].first().items() if rows else []:
    profiles[model_id]["arithmetic_intensity"] = intensity  # the estimate's own x, so both points align
both = hc.with_measured(table, measured_found)


def measured_here() -> list[dict]:
    """Latencies measured on this machine's CPU for the traced models at this workload (this session's or stored)."""
    found = []
    for model_id in profiles:
        result = lookup.find_measured(model_id, workload, "cpu", None, store)
        if result is not None:
            found.append({"model": model_id, "latency_ms": result.get("latency_ms"), "hardware": LOCAL})
    return found


def draw(title: str, build, key: str) -> None:
    """One figure and its caption; a failing builder is reported for this chart only."""
    try:
        fig = build()
    except Exception as error:  # noqa: BLE001
        st.error(f"{common.escape_md(title)}: {common.escape_md(common.one_line(error))}")
        return
    st.plotly_chart(fig, theme=None, key=f"hw_chart_{key}", config=PLOTLY_CONFIG)
    st.caption(common.escape_md(caption(fig)))


def how_estimated(chip_id: str) -> str:
    here = any(hw.id == chip_id and hw.measured_here for hw in selected)
    return f"estimated (roofline on {'peaks measured here' if here else 'datasheet figures'})"


def column(name: str) -> pd.Series:
    return both[name] if name in both.columns else pd.Series([None] * len(both), index=both.index)


st.divider()
st.subheader("Latency: measured and estimated" if measured_found else "Estimated latency")
st.caption(common.escape_md(f"Setup: {setup_line(both.drop(columns='hardware'))} · inference · {common.WEIGHTS_NOTE}"))
estimated = both["obtained"] == hc.ESTIMATED
shown = pd.DataFrame(
    {
        "Model": both["model"],
        "Hardware": both["hardware"],
        "Latency": both["latency_ms"],
        "How obtained": column("how").where(~estimated, both["hardware"].map(how_estimated)),
        "estimated": estimated,
        "Bound": column("bound"),
        "Fits": column("fits").astype("boolean"),
        "Arithmetic intensity": pd.to_numeric(column("arithmetic_intensity")),
        "Attainable": pd.to_numeric(column("attainable_flops_per_s")) / 1e12,
        "Memory needed": pd.to_numeric(column("memory_needed_bytes")) / 1e9,
    }
)
st.dataframe(
    shown,
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
            "Memory", width=80, format="%.2f GB", help="Estimates only: memory the model needs at this setup"
        ),
        "estimated": None,  # kept in the data (exports, tests); How obtained says it in words
    },
)

draw("Latency heatmap", lambda: hc.latency_heatmap(both), "heatmap")
draw("Rank across hardware", lambda: hc.hardware_rank_chart(both), "ranks")

st.subheader("Roofline")
if not selected:
    st.caption("Pick a datasheet chip under Estimated to draw the roofline.")
else:
    roof_ids = [hw.id for hw in selected]
    st.selectbox(
        "Model points on",
        roof_ids,
        index=roof_ids.index(LOCAL) if LOCAL in roof_ids else 0,
        key="hw_roof_chip",
        help="Each model is drawn at the attainable FLOP/s of this chip; every picked chip shows its roof.",
    )
    measured = roofline_charts.measured_points(measured_here(), profiles)
    if measured.empty:
        st.caption(
            "No measured results of these models at this setup on this machine yet: pick this machine under "
            "Measured and press Measure."
        )
    draw(
        "Roofline",
        lambda: roofline_charts.roofline_plot(table, selected, measured, chip=st.session_state["hw_roof_chip"]),
        "roofline",
    )

    with st.expander("Where each chip's figures come from"):
        st.dataframe(
            pd.DataFrame(
                {
                    "Chip": [hw.id for hw in selected],
                    "Name": [hw.name for hw in selected],
                    "Peak (TFLOP/s)": [hw.peak_for(workload.dtype) / 1e12 for hw in selected],
                    "Bandwidth (GB/s)": [hw.memory_bandwidth_bytes_per_s / 1e9 for hw in selected],
                    "Memory (GiB)": [hw.memory_bytes / 2**30 for hw in selected],
                    "Source": [hw.source if hw.source.startswith("https://") else None for hw in selected],
                    "What it says": [
                        hw.source_note or ("measured here" if hw.measured_here else "") for hw in selected
                    ],
                }
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

with st.expander("Add your own chip (saved to your user hardware file)"):
    st.caption(
        "Dense datasheet figures only (not 'with sparsity'). The chip then appears in the hardware list above, "
        "marked with the source you give. Catalog ids and ids starting with 'local-' are reserved."
    )
    with st.form("add_chip", clear_on_submit=False):
        left, right = st.columns(2)
        chip_id = left.text_input("Id (lowercase, e.g. my-gpu)", max_chars=64)
        chip_name = right.text_input("Name", max_chars=120)
        chip_kind = left.selectbox("Kind", ["gpu", "tpu", "cpu", "soc", "edge"])
        chip_source = right.text_input("Source (datasheet URL)", max_chars=500)
        fp32_tflops = left.number_input("FP32 peak (TFLOP/s)", min_value=0.001, max_value=100_000.0, value=10.0)
        bf16_tflops = right.number_input("BF16/FP16 peak (TFLOP/s)", min_value=0.001, max_value=100_000.0, value=100.0)
        bandwidth_gbs = left.number_input("Memory bandwidth (GB/s)", min_value=0.1, max_value=100_000.0, value=500.0)
        memory_gib = right.number_input("Memory (GiB)", min_value=0.1, max_value=100_000.0, value=16.0)
        submitted = st.form_submit_button("Add chip")
    if submitted:
        from efficiency.hardware import add_user_hardware
        from efficiency.specs import HardwareSpec

        try:
            if not chip_id.strip() or not chip_source.strip():
                raise ValueError("id and source are required: every chip must say where its figures come from")
            add_user_hardware(
                HardwareSpec(
                    id=chip_id.strip().lower(),
                    name=chip_name.strip() or chip_id.strip(),
                    kind=chip_kind,
                    peak_flops={
                        "float32": fp32_tflops * 1e12,
                        "bfloat16": bf16_tflops * 1e12,
                        "float16": bf16_tflops * 1e12,
                    },
                    memory_bandwidth_bytes_per_s=bandwidth_gbs * 1e9,
                    memory_bytes=memory_gib * 2**30,
                    source=chip_source.strip(),
                    source_note="added by a user in the dashboard",
                )
            )
        except (ValueError, TypeError) as problem:
            st.error(f"Chip not added: {common.escape_md(common.one_line(problem))}")
        else:
            st.success(f"Added {common.escape_md(chip_id.strip().lower())}; pick it in the hardware list above.")
