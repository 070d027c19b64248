"""The Compare page's two halves: the box of pickers (models, workload, hardware, Run) and the comparison in view
(run if asked, then the results found for the view, their findings, charts and table).

The pickers keep their values in session state (see :mod:`efficiency.ui.state`, which also writes them to the
URL); the comparison reads them back from there, so either half can be drawn first.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from efficiency.analysis.table import NOISE_COLUMN, with_spread
from efficiency.models import catalog
from efficiency.results import DEFAULT_IMPLEMENTATION, implementation_label, results_frame
from efficiency.specs import MODES
from efficiency.ui import cluster, common, lookup, pickers, quality, runs, state, views

RUN_KEY = "cmp_go"
EDIT_KEY = "cmp_edit"
UPLOAD_KEY = "cmp_upload"
UPLOAD_ERROR_KEY = "cmp_upload_error"


def take_upload() -> None:
    """An uploaded config.json joins the other models as its ``local:<id>`` (so the link and the store name it by
    its contents); a file that is not a usable config is shown beside the uploader in one line."""
    upload = st.session_state.get(UPLOAD_KEY)
    st.session_state[UPLOAD_ERROR_KEY] = None
    if upload is None:
        return
    from efficiency.models.upload import spec_from_upload  # lazy: imports torch; the page draws before it

    try:
        spec = spec_from_upload(upload.getvalue(), upload.name)
    except ValueError as error:
        st.session_state[UPLOAD_ERROR_KEY] = (upload.name, common.one_line(error))
        return
    names = runs.split_extra(st.session_state.get("cmp_extra"))
    st.session_state["cmp_extra"] = ", ".join(dict.fromkeys([*names, spec.id]))


def pickers_box(
    devices: list[dict[str, Any]],
    hardware_labels: dict[str, str],
    max_threads: int,
    extra_errors: list[tuple[str, str]],
) -> None:
    """The pickers in one bordered box: models (catalog and others), workload and mode, hardware and Run."""
    with st.container(border=True):
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
        st.file_uploader(
            "…or upload a config.json",
            type=["json"],
            key=UPLOAD_KEY,
            on_change=take_upload,
            help="Read as data only (at most 1 MB); an architecture outside transformers is refused and custom "
            "code is never run. The model joins the field above as local:<id>, named after its contents.",
        )
        for name, error in extra_errors:
            common.show_error(name, error)
        if st.session_state.get(UPLOAD_ERROR_KEY):
            common.show_error(*st.session_state[UPLOAD_ERROR_KEY])
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
            pickers.implementation_picker("cmp_impl")
            st.checkbox("Measure again, ignore stored results", key="cmp_fresh")
        st.button("Run", type="primary", icon=":material/play_arrow:", width="stretch", key=RUN_KEY)


def hardware_text(hardware_labels: dict[str, str], device: str, threads: int | None) -> str:
    """Where a measured run of this view runs: "CPU · 2 cores, 2 threads", or a cluster's hardware by its label."""
    label = hardware_labels.get(device, device)
    return (
        label
        if cluster.is_cluster(device) or not threads
        else f"{label}, {threads} thread{'' if threads == 1 else 's'}"
    )


def implementations_in_view(kind: str) -> list[str]:
    """The implementations a view shows: those picked for a measured view, the default for static counts (a count
    is the model's arithmetic, the same under every float implementation)."""
    if kind != "measured":
        return [DEFAULT_IMPLEMENTATION]
    return list(st.session_state.get("cmp_impl") or [])


def shown_name(name: str, implementation: str, several: bool) -> str:
    """A picked model as the page names it: with its implementation's label when the view holds several."""
    return common.display_name(name) + (f" ({implementation_label(implementation)})" if several else "")


def published_preview(names: list[str]) -> None:
    """Before anything is counted: the parameter counts published for the picked catalog models (the catalog's
    figures, each with its source), when two or more have one (one model gets no chart). It is what the usual
    single-number view says, shown while the person decides to Run; drawing it also has the browser load the chart
    library (plotly.js, 4.7 MB) then instead of after the counts, when it held the comparison's first chart back by
    about a second (2 cores)."""
    picked = [common.display_name(name) for name in names]
    params, sources = {}, {}
    for name, label in zip(names, picked, strict=True):
        spec = catalog.find(name)
        published = spec.published if spec is not None else {}
        if published.get("params"):
            params[label], sources[label] = published["params"], str(published.get("params_source", ""))
    if len(params) < 2:
        return
    from efficiency.charts import compare as charts  # lazy: plotly loads with the first chart, as on the pages
    from efficiency.ui import figure  # lazy: the same

    figure.draw(
        "Parameters as published",
        lambda: charts.published_params(params, picked, sources),
        "published_params",
        "published_parameters",
    )
    missing = [label for label in picked if label not in params]
    if missing:
        st.caption(f"No published parameter count in the catalog for: {common.escape_md(', '.join(missing))}.")


def comparison(run: bool, extras: list[tuple[str, str]], hardware_labels: dict[str, str]) -> tuple[str, bool]:
    """Run if asked, then the comparison in view; returns the kind of run in view and whether it is finished: two
    or more rows (a model under each implementation picked), each with a result of the kind chosen (a measured
    view whose rows are not all measured yet, or with a noisy measurement, is a run still to make, so the page
    keeps its Run button in view)."""
    picked = [(name, name) for name in st.session_state["cmp_models"]] + extras
    kind, device, threads = st.session_state["cmp_run"], st.session_state["cmp_device"], st.session_state["cmp_threads"]
    workload = pickers.workload_from_state("cmp", st.session_state["cmp_mode"])
    codes = implementations_in_view(kind)
    store = common.open_store()
    if workload is None or not picked or not codes:
        if not picked:
            st.info("Pick at least one model (two or more to see them disagree).", icon=":material/touch_app:")
        elif not codes:
            st.info("Pick at least one implementation to measure.", icon=":material/touch_app:")
        return kind, False
    names, several = [name for name, _ in picked], len(codes) > 1
    if run and kind == "static":
        runs.run_static(names, workload, store)
    elif run:
        fresh = bool(st.session_state.get("cmp_fresh"))
        runs.run_measured(names, workload, device, threads, store, fresh=fresh, implementations=codes)
    else:
        for name in names:
            for code in codes:
                error = lookup.error_for(lookup.view_key(name, workload, kind, device, threads, code))
                if error:
                    common.show_error(shown_name(name, code, several), error, name)
    results, missing = [], []
    for name, model_id in picked:
        for code in codes:
            result = lookup.find(model_id, workload, kind, device, threads, store, code)
            if result is None:
                missing.append(shown_name(name, code, several))
            else:
                results.append(result)
    frame = with_spread(results_frame(results), results)
    pending = missing + (list(frame.loc[~frame["measured"], "model"]) if kind == "measured" and len(frame) else [])
    if pending:
        what = "measured" if kind == "measured" else "static"
        st.info(
            f"No {what} results yet at this setup for: {common.escape_md(', '.join(pending))}. Press **Run** "
            "(in the box above) to " + ("measure them here." if kind == "measured" else "count them."),
            icon=":material/play_circle:",
        )
    if not len(frame):
        published_preview(names)
        return kind, False
    where = hardware_text(hardware_labels, device, threads)
    views.render_setup(frame, kind, where)
    views.render_noise_note(frame)
    if len(frame) == 1:
        st.info(
            f"One model in view ({common.escape_md(frame['model'].iloc[0])}): ranks, crossing lines and "
            "correlations need two or more. Add a model above to see whether the indicators agree; its numbers, "
            "each with its unit, are below.",
            icon=":material/playlist_add:",
        )
        views.render_table(frame, common.chart_indicators(frame))
        return kind, False
    indicators = common.chart_indicators(frame)
    heading, export = st.columns([4, 1], vertical_alignment="bottom")
    heading.subheader("What disagrees")
    views.render_findings(frame, indicators)
    st.session_state[quality.RESULTS_KEY] = results  # the Quality vs cost tab keeps the visitor's figures with them
    every_figure = views.render_charts(frame, indicators)
    with export:
        setup = views.setup_sentence(frame, kind, where)
        views.export_button("Cost indicator comparison", setup, every_figure, "comparison.html")
    return kind, not pending and not frame[NOISE_COLUMN].astype(bool).any()  # noisy: Run in view to measure again
