"""Compare: pick models, a workload and hardware, run, and see how the cost indicators rank them."""

import streamlit as st

from efficiency.ui import common, compare, runs, state

common.page_header(
    "Compare models by every cost indicator",
    "Pick models and a setup, then Run. Static counts (parameters, FLOPs, memory traffic) take about a second "
    "per model; measured runs time each model in its own process, on this machine or on a connected cluster's "
    "hardware. The link in the address bar reproduces this view.",
)
devices = common.detected_devices()
device_ids = [device["id"] for device in devices]
max_threads = int(devices[0].get("usable_cpus") or 1)
for warning in state.start_visit(device_ids, max_threads):
    st.warning(f"From the link: {common.escape_md(warning)}", icon=":material/link_off:")

hardware_labels = runs.hardware_choices(devices)
if st.session_state.get("cmp_device") not in hardware_labels:  # cluster hardware that left since
    st.session_state["cmp_device"] = device_ids[0]
extras, extra_errors = runs.resolve_extra(st.session_state["cmp_extra"])
if compare.EDIT_KEY in st.session_state:  # kept while the pickers are not drawn (Streamlit drops undrawn widgets)
    st.session_state[compare.EDIT_KEY] = st.session_state[compare.EDIT_KEY]
# The pickers' box is placed first, the comparison below it. When nothing is to run, the comparison is drawn
# before the pickers (their values are in session state already). A finished comparison (two or more models, each
# with a result of the kind chosen: a link, or coming back to the page) folds the pickers behind one toggle: the
# browser renders the chart without first building a dozen widgets, and the chart sits in the first screen. An
# unfinished one (a run still to make, one model) keeps them open, its Run button in view. A run draws the pickers
# first, so that they stay usable during it, and folds them once it leaves a finished comparison.
pickers_area = st.container()
results_area = st.container()
with pickers_area:
    toggle_slot, pickers_slot = st.empty(), st.empty()


def draw_edit_toggle() -> bool:
    """The toggle that unfolds the pickers over a comparison in view; returns whether they are shown."""
    with toggle_slot:
        return st.toggle(
            "Change the models, workload or hardware",
            key=compare.EDIT_KEY,
            help="The comparison below is what the link or your last run asked for.",
        )


def draw_pickers() -> None:
    with pickers_slot.container():
        compare.pickers_box(devices, hardware_labels, max_threads, extra_errors)


if st.session_state.get(compare.RUN_KEY):
    draw_pickers()
    with results_area:
        kind, finished = compare.comparison(True, extras, hardware_labels)
    finished = finished and not extra_errors
    if finished:
        pickers_slot.empty()
    st.session_state[compare.EDIT_KEY] = not finished
    draw_edit_toggle()
else:
    with results_area:
        kind, finished = compare.comparison(False, extras, hardware_labels)
    if not (finished and not extra_errors) or draw_edit_toggle():
        draw_pickers()

state.write_url()
common.warm_engine_in_background()
if kind == "measured":
    runs.executor()
