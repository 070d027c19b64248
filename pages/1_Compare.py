"""Compare: pick models, a workload and hardware, run, and see how the cost indicators rank them."""

import streamlit as st

from efficiency.specs import MODES
from efficiency.ui import cluster, common, lookup, pickers, runs, state, views

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
RUN_KEY = "cmp_go"
EDIT_KEY = "cmp_edit"
if EDIT_KEY in st.session_state:  # keep it while the pickers' box is not drawn (Streamlit drops undrawn widgets)
    st.session_state[EDIT_KEY] = st.session_state[EDIT_KEY]
# The pickers' box is placed first, the comparison below it. When nothing is to run, the comparison is drawn
# before the pickers (their values are in session state already). When that comparison has results (a link,
# or coming back to the page), the pickers stay folded behind one toggle until asked for: the browser then
# renders the chart without first building a dozen widgets, and the chart sits in the first screen. A run
# draws the pickers first, so that they stay usable during it.
pickers_area = st.container()
results_area = st.container()


def draw_edit_toggle() -> bool:
    """The toggle that unfolds the pickers over a comparison in view; returns whether they are shown."""
    with pickers_area:
        return st.toggle(
            "Change the models, workload or hardware",
            key=EDIT_KEY,
            help="The comparison below is what the link or your last run asked for.",
        )


def draw_pickers() -> None:
    """The pickers, in the box at the top of the page."""
    with pickers_area, st.container(border=True):
        pick_models, pick_workload, pick_hardware = st.columns([5, 4, 3], gap="medium")
    with pick_models:
        pickers.model_picker(
            "cmp_models",
            f"{len(pickers.catalog_labels())} models built from their published configs, grouped by family. "
            "Weights are random: parameter counts, FLOPs and speed do not depend on weight values.",
        )
        st.text_input(
            "Other models: a local folder holding config.json, or a Hub id",
            key="cmp_extra",
            placeholder="/path/to/model, org/name (comma-separated)",
            max_chars=state.MAX_EXTRA_CHARS,
        )
        for name, error in extra_errors:
            common.show_error(name, error)
    with pick_workload:
        pickers.workload_inputs("cmp")
        st.radio("Mode", MODES, key="cmp_mode", horizontal=True)
        st.caption("Text models use the sequence length, vision models the image size.")
    with pick_hardware:
        st.selectbox(
            "Hardware (for measured runs)",
            list(hardware_labels),
            key="cmp_device",
            format_func=lambda device_id: hardware_labels.get(device_id, device_id),
            help=runs.hardware_help(devices, hardware_labels),
        )
        if max_threads > 1:
            st.slider(
                "CPU threads",
                min_value=1,
                max_value=max_threads,
                key="cmp_threads",
                disabled=cluster.is_cluster(st.session_state["cmp_device"]),
                help="Cluster hardware: each job uses all cores of its node.",
            )
        st.radio(
            "What to run",
            state.RUN_KINDS,
            key="cmp_run",
            horizontal=True,
            format_func=lambda kind: "Static counts" if kind == "static" else "Measured",
            help="Static: counted from the architecture, instant, no hardware. Measured: latency, throughput and "
            "peak memory timed here, each model in its own process (tens of seconds per model).",
        )
        if st.session_state["cmp_run"] == "measured":
            st.checkbox("Measure again, ignore stored results", key="cmp_fresh")
        st.button("Run", type="primary", icon=":material/play_arrow:", width="stretch", key=RUN_KEY)


def draw_results(run: bool) -> tuple[str, bool]:
    """Run if asked, then the comparison in view; returns the kind of run in view and whether it has results."""
    picked = [(name, name) for name in st.session_state["cmp_models"]] + extras
    kind, device, threads = st.session_state["cmp_run"], st.session_state["cmp_device"], st.session_state["cmp_threads"]
    workload = pickers.workload_from_state("cmp", st.session_state["cmp_mode"])
    store = common.open_store()
    if workload is not None and picked:
        names = [name for name, _ in picked]
        if run and kind == "static":
            runs.run_static(names, workload, store)
        elif run:
            fresh = bool(st.session_state.get("cmp_fresh"))
            runs.run_measured(names, workload, device, threads, store, fresh=fresh)
        else:
            for name in names:
                error = lookup.error_for(lookup.view_key(name, workload, kind, device, threads))
                if error:
                    common.show_error(common.display_name(name), error, name)
        rows, missing = [], []
        for name, model_id in picked:
            result = lookup.find(model_id, workload, kind, device, threads, store)
            if result is None:
                missing.append(common.display_name(name))
            else:
                rows.append(result)
        if missing:
            st.info(
                f"No {kind} results yet at this setup for: {common.escape_md(', '.join(missing))}. Press **Run**.",
                icon=":material/play_circle:",
            )
        frame = common.results_frame(rows)
        if kind == "measured" and len(frame) and not frame["measured"].all():
            counted = ", ".join(frame.loc[~frame["measured"], "model"])
            st.caption(f"Counted only (not measured here yet): {common.escape_md(counted)}.")
        if len(frame):
            indicators = common.chart_indicators(frame)
            if st.session_state.get(EDIT_KEY):  # a line under the pickers' box, when it is shown (a run opens it)
                st.divider()
            views.render_setup(frame)
            views.render_findings(frame, indicators)
            heading, export = st.columns([4, 1], vertical_alignment="bottom")
            heading.subheader("Charts and table")
            every_figure = views.render_charts(frame, indicators)
            with export:
                views.export_button(
                    "Cost indicator comparison", common.setup_text(frame), every_figure, "comparison.html"
                )
        return kind, bool(len(frame))
    if not picked:
        st.info("Pick at least one model (two or more to see them disagree).", icon=":material/touch_app:")
    return kind, False


if st.session_state.get(RUN_KEY):
    st.session_state[EDIT_KEY] = True
    draw_edit_toggle()
    draw_pickers()
    with results_area:
        kind, _ = draw_results(run=True)
else:
    with results_area:
        kind, has_results = draw_results(run=False)
    if not has_results or draw_edit_toggle():
        draw_pickers()

state.write_url()
common.warm_engine_in_background()
if kind == "measured":
    runs.executor()
