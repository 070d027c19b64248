"""Hardware: latency of models on chips you may not have (estimated) and on hardware you can reach (measured:
this machine, a connected Ray cluster), and how their ranking flips across hardware."""

import streamlit as st

from efficiency.analysis.hardware import with_measured
from efficiency.analysis.rankings import setup_line
from efficiency.charts import hardware as charts
from efficiency.ui import common, hardware, views

common.page_header(
    "Hardware: the same models, other chips",
    "Estimated latency of each model on each chip from a roofline model on datasheet figures: per op, "
    "max(FLOPs / peak, bytes / bandwidth) plus a fixed per-op cost; measured latency on this machine and on a "
    "connected Ray cluster's hardware. Rankings by speed change from chip to chip.",
)
picked = hardware.pickers_box(hardware.chip_list())
st.info(hardware.ESTIMATE_NOTE, icon=":material/calculate:")
workload = picked.workload
if workload is None:
    st.stop()
if not picked.models or not (picked.chips or picked.measured):
    st.info(
        "Pick at least one model and one chip or measured hardware (two of each to see rankings flip).",
        icon=":material/touch_app:",
    )
    st.stop()

store = common.open_store(quiet=not picked.measured)  # estimates alone need no store
measured = hardware.measured_results(picked, workload, store)
here = hardware.measured_here(picked.models, workload, store)  # this CPU's runs, with their threads
chips = hardware.chips_at_run_threads(picked.chips, here)  # local-cpu at the threads those runs used
table, profiles = hardware.estimates(picked.models, chips, workload)
if table.empty and not measured:
    st.stop()
both = with_measured(table, measured)

st.divider()
st.subheader("Latency: measured and estimated" if measured else "Estimated latency")
st.caption(common.escape_md(f"Setup: {setup_line(both.drop(columns='hardware'))} · inference · {common.WEIGHTS_NOTE}"))
hardware.latency_table(both, chips)
views.draw("Latency heatmap", lambda: charts.latency_heatmap(both), "hw_chart_heatmap", "latency_heatmap")
views.draw("Rank across hardware", lambda: charts.hardware_rank_chart(both), "hw_chart_ranks", "hardware_ranks")
hardware.roofline(table, chips, workload, profiles, here)
hardware.add_chip_form()
