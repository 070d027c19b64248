"""Results: browse the stored profiles, filter them, delete some, export them, open them on Compare."""

import pandas as pd
import streamlit as st

from efficiency.analysis.table import export, stored_table
from efficiency.ui import common, lookup, runs, state

common.page_header(
    "Stored results",
    "Every profile kept in the results store, newest first: static counts and measured runs, failures included. "
    "Select rows to open them on Compare or to delete them; export what the filters show.",
)
store = common.open_store()
if store is None:
    st.stop()
if notice := st.session_state.pop("res_notice", None):
    st.success(notice, icon=":material/check_circle:")
stored = store.list()
st.caption(f"Store: {common.escape_md(store.location)} · {len(stored)} stored results")
if not stored:
    st.info("Nothing stored yet: run a comparison on the Compare page.", icon=":material/inbox:")
    st.page_link("pages/1_Compare.py", label="Go to Compare", icon=":material/compare_arrows:")
    st.stop()

table = stored_table(stored, common.display_name)
by_id = {result.store_id: result for result in stored}
filter_model, filter_hardware, filter_workload = st.columns(3)
models = filter_model.multiselect("Model", sorted(table["Model"].unique()), placeholder="all models")
hardware = filter_hardware.multiselect("Hardware", sorted(table["Hardware"].unique()), placeholder="all hardware")
workloads = filter_workload.multiselect("Workload", sorted(table["Workload"].unique()), placeholder="all workloads")
keep = pd.Series(True, index=table.index)
for column, wanted in (("Model", models), ("Hardware", hardware), ("Workload", workloads)):
    if wanted:
        keep &= table[column].isin(wanted)
shown = table[keep].reset_index(drop=True)

units = {"Parameters": "%.1f M params", "FLOPs": "%.2f GFLOPs", "Latency": "%.2f ms", "Peak memory": "%.1f MiB"}
hidden = ["id"] + [column for column in ("Noise", "Error") if not shown[column].astype(bool).any()]
event = st.dataframe(
    shown.drop(columns=hidden),
    hide_index=True,
    on_select="rerun",
    selection_mode="multi-row",
    key=f"res_table_{st.session_state.get('res_generation', 0)}",
    column_config={name: st.column_config.NumberColumn(name, format=fmt) for name, fmt in units.items()},
    width="stretch",
    placeholder="n/a",
)
selected = [int(shown.loc[i, "id"]) for i in event.selection.rows if i < len(shown)]
st.caption(f"{len(shown)} shown · {len(selected)} selected · weights random (built from config) in every profile")
if shown["Noise"].astype(bool).any():
    st.warning(
        "Some timings were measured under load or with a wide spread: see the Noise column. Compare never reuses "
        "them for a fresh run; measure them again there on a quieter machine.",
        icon=":material/warning:",
    )

actions = st.container(horizontal=True)
if actions.button("Open on Compare", icon=":material/open_in_new:", disabled=not selected):
    first = by_id[selected[0]]
    kind = "measured" if first.measured else "static"
    hardware_entry = first.hardware.to_dict() if first.hardware is not None else {}
    params = state.compare_link_params(
        list(dict.fromkeys(by_id[i].model for i in selected)),
        first.workload,
        kind,
        runs.picker_device(hardware_entry) if kind == "measured" else None,
        hardware_entry.get("threads") if kind == "measured" else None,
        list(dict.fromkeys(by_id[i].implementation for i in selected)) if kind == "measured" else (),
    )
    st.switch_page("pages/1_Compare.py", query_params=params)
with actions.popover(f"Delete {len(selected)} selected", icon=":material/delete:", disabled=not selected):
    st.write(f"Delete {len(selected)} stored results permanently?")
    if st.button("Delete permanently", type="primary"):
        deleted = store.delete(selected)
        st.session_state.pop(lookup.RESULTS_KEY, None)  # Compare must not redraw what is gone
        st.session_state["res_generation"] = st.session_state.get("res_generation", 0) + 1
        st.session_state["res_notice"] = f"Deleted {deleted} stored results."
        st.rerun()

shown_results = [by_id[int(i)] for i in shown["id"]]
actions.download_button(
    "Export shown as CSV",
    lambda: export(shown_results, "csv"),
    file_name="results.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
)
actions.download_button(
    "Export shown as JSON",
    lambda: export(shown_results, "json"),
    file_name="results.json",
    mime="application/json",
    on_click="ignore",
    icon=":material/download:",
)
