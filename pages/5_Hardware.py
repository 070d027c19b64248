"""Hardware: estimated latency of models on chips you may not have, and how their ranking flips across chips."""

from typing import Any

import pandas as pd
import streamlit as st

from efficiency.specs import DTYPES, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_SEQ_LEN, Workload
from efficiency.ui import common

common.page_header(
    "Hardware: the same models, other chips",
    "Estimated latency of each model on each chip from a roofline model on datasheet figures: per op, "
    "max(FLOPs / peak, bytes / bandwidth) plus a fixed per-op cost. Rankings by speed change from chip to chip.",
)

DEFAULT_MODELS = [
    "distilbert-base-uncased",
    "google/efficientnet-b0",
    "google/mobilenet_v2_1.0_224",
    "microsoft/resnet-18",
]
DEFAULT_CHIPS = ["h100-sxm", "rtx-4090", "raspberry-pi-5", "local-cpu"]
LOCAL = "local-cpu"
MEASURED_DEVICES = ("cpu", LOCAL)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_profile(model_id: str, workload_items: tuple) -> Any:
    """Forward-only static profile, keyed by model id and the workload fields the model uses."""
    from efficiency.roofline import trace_profile

    with common.engine_lock():
        return trace_profile(model_id, Workload(**dict(workload_items)))


def chip_list() -> list:
    from efficiency.hardware import load_hardware

    try:
        return load_hardware()
    except ValueError as problem:  # a broken user or calibration file: fall back to the datasheet catalog
        st.warning(f"Hardware list: {common.escape_md(common.one_line(problem))}", icon=":material/warning:")
        return load_hardware(include_user=False, include_measured=False)


labels = common.catalog_labels()
chips = chip_list()
chip_ids = [hw.id for hw in chips]
st.session_state.setdefault("hw_models", [m for m in DEFAULT_MODELS if m in labels])
st.session_state.setdefault("hw_chips", [c for c in DEFAULT_CHIPS if c in chip_ids])

with st.container(border=True):
    pick_models, pick_chips, pick_workload = st.columns([5, 4, 4], gap="medium")
with pick_models:
    st.multiselect(
        "Models from the catalog",
        list(labels),
        key="hw_models",
        format_func=lambda model: labels.get(model, model),
        placeholder="Type to search: BERT, ViT, CNN …",
        help="Each model is traced once (a second or two) at this workload; estimates on every chip are instant.",
    )
with pick_chips:
    st.multiselect(
        "Hardware",
        chip_ids,
        key="hw_chips",
        placeholder="Pick chips: GPUs, TPUs, CPUs, edge …",
        help="Datasheet catalog, your own entries, and this machine once calibrated (local-cpu, measured here).",
    )
with pick_workload:
    batch, dtype = st.columns(2)
    batch.number_input("Batch size", min_value=1, max_value=MAX_BATCH_SIZE, value=1, step=1, key="hw_batch")
    dtype.selectbox("dtype", DTYPES, key="hw_dtype")
    seq, image = st.columns(2)
    seq.number_input("Seq length (tokens)", min_value=1, max_value=MAX_SEQ_LEN, value=128, step=64, key="hw_seq")
    image.number_input("Image size (px)", min_value=8, max_value=MAX_IMAGE_SIZE, value=224, step=16, key="hw_image")

st.info(
    "**Estimated (roofline on datasheet figures), not measured.** Real kernels reach a fraction of peak; "
    "use these to compare chips and see rankings flip, not as benchmarks. Measured points from this machine "
    "are drawn apart on the roofline.",
    icon=":material/calculate:",
)

models: list[str] = list(st.session_state["hw_models"])
selected = [hw for hw in chips if hw.id in st.session_state["hw_chips"]]
try:
    workload = Workload(
        batch_size=int(st.session_state["hw_batch"]),
        seq_len=int(st.session_state["hw_seq"]),
        image_size=int(st.session_state["hw_image"]),
        dtype=st.session_state["hw_dtype"],
    )
except ValueError as problem:
    st.error(f"Workload: {common.escape_md(common.one_line(problem))}")
    workload = None

if workload is None:
    st.stop()
if not models or not selected:
    st.info("Pick at least one model and one chip (two of each to see rankings flip).", icon=":material/touch_app:")
    st.stop()

from efficiency import hardware_charts as hc  # noqa: E402 - plotly only once there is something to draw
from efficiency.analysis import setup_line  # noqa: E402
from efficiency.charts import caption  # noqa: E402
from efficiency.roofline import estimate_rows  # noqa: E402
from efficiency.ui.views import PLOTLY_CONFIG  # noqa: E402

rows: list[dict] = []
profiles: dict[str, dict] = {}
with st.spinner("Tracing the models (once per model and workload) …"):
    for model_id in models:
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

if not rows:
    st.stop()
table = hc.estimate_table(rows, {m: facts["name"] for m, facts in profiles.items()})
for model_id, intensity in table.groupby("model_id")["arithmetic_intensity"].first().items():
    profiles[model_id]["arithmetic_intensity"] = intensity  # the estimate's own x, so both points align


def measured_rows() -> list[dict]:
    """Measured latencies of the picked models on this machine at this workload, from the results store."""
    store = common.open_store(quiet=True)
    if store is None:
        return []
    found: dict[str, dict] = {}
    try:
        stored = store.list()
    except Exception:  # noqa: BLE001 - an unreadable store only loses the measured overlay
        return []
    for row in stored:
        result = common.unwrap(row)
        model_id = str(row.get("model"))
        if model_id not in profiles or model_id in found or row.get("hardware") not in MEASURED_DEVICES:
            continue
        if result.get("error") or not result.get("measured"):
            continue
        wanted = profiles[model_id]["workload"]
        done = result.get("workload") or {}
        if any(done.get(k) != v for k, v in wanted.items()):
            continue
        found[model_id] = {"model": model_id, "latency_ms": result.get("latency_ms"), "hardware": LOCAL}
    return list(found.values())


def draw(title: str, build, key: str) -> None:
    """One figure and its caption; a failing builder is reported for this chart only."""
    try:
        fig = build()
    except Exception as error:  # noqa: BLE001
        st.error(f"{common.escape_md(title)}: {common.escape_md(common.one_line(error))}")
        return
    st.plotly_chart(fig, theme=None, key=f"hw_chart_{key}", config=PLOTLY_CONFIG)
    st.caption(common.escape_md(caption(fig)))


st.divider()
st.subheader("Estimated latency")
st.caption(common.escape_md(f"Setup: {setup_line(table.drop(columns='hardware'))} · inference · {common.WEIGHTS_NOTE}"))
shown = pd.DataFrame(
    {
        "Model": table["model"],
        "Hardware": table["hardware"],
        "Estimated latency": table["estimated_latency_ms"],
        "Bound": table["bound"],
        "Fits in memory": table["fits"].astype(bool),
        "Arithmetic intensity": table["arithmetic_intensity"],
        "Attainable": table["attainable_flops_per_s"] / 1e12,
        "Memory needed": table["memory_needed_bytes"] / 1e9,
        "estimated": True,
    }
)
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "Model": st.column_config.TextColumn("Model", pinned=True),
        "Estimated latency": st.column_config.NumberColumn("Estimated latency", format="%.3f ms"),
        "Bound": st.column_config.TextColumn(
            "Bound", help="compute: FLOPs / peak dominates; memory: bytes / bandwidth"
        ),
        "Arithmetic intensity": st.column_config.NumberColumn("Arithmetic intensity", format="%.1f FLOPs/B"),
        "Attainable": st.column_config.NumberColumn("Attainable", format="%.3g TFLOP/s"),
        "Memory needed": st.column_config.NumberColumn("Memory needed", format="%.2f GB"),
        "estimated": st.column_config.CheckboxColumn("estimated", help="Always true: roofline, not measured"),
    },
)

draw("Latency heatmap", lambda: hc.latency_heatmap(table), "heatmap")
draw("Rank across hardware", lambda: hc.hardware_rank_chart(table), "ranks")

st.subheader("Roofline")
roof_ids = [hw.id for hw in selected]
st.selectbox(
    "Model points on",
    roof_ids,
    index=roof_ids.index(LOCAL) if LOCAL in roof_ids else 0,
    key="hw_roof_chip",
    help="Each model is drawn at the attainable FLOP/s of this chip; every picked chip shows its roof.",
)
measured = hc.measured_points(measured_rows(), profiles)
if measured.empty:
    st.caption("No measured results of these models at this setup on this machine yet (measure them on Compare).")
draw("Roofline", lambda: hc.roofline_plot(table, selected, measured, chip=st.session_state["hw_roof_chip"]), "roofline")

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
                "What it says": [hw.source_note or ("measured here" if hw.measured_here else "") for hw in selected],
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
