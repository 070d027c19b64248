"""Experiments: pick a named experiment, see its bundled run (measured on a named machine), or run it live."""

import streamlit as st

from efficiency.experiments import EXPERIMENTS, MeasurementError
from efficiency.experiments.bundled import BundleError, load_bundled
from efficiency.ui import common
from efficiency.ui.experiment_numbers import knob_inputs, render_numbers

LIVE_KEY = "exp_live"

common.page_header(
    "Experiments",
    "Each experiment makes one face of the efficiency misnomer appear from real numbers. The page opens on "
    "results bundled with the dashboard; run one live to measure it on this machine.",
)
names = list(EXPERIMENTS)
asked = st.query_params.get("experiment", names[0])
choice = st.selectbox(
    "Experiment",
    names,
    index=names.index(asked) if asked in names else 0,
    format_func=lambda name: EXPERIMENTS[name].title,
    key="exp_choice",
)
st.query_params["experiment"] = choice
experiment = EXPERIMENTS[choice]
st.markdown(common.escape_md(experiment.description))

live = st.session_state.setdefault(LIVE_KEY, {})
left, right = st.columns([3, 1], vertical_alignment="bottom")
quick = left.toggle(
    "Quick run (a tiny setup in seconds; its timings are noise, for trying the page out)", key="exp_quick"
)
overrides = knob_inputs(experiment, quick)
if right.button("Run live on this machine", type="primary", icon=":material/play_arrow:", width="stretch"):
    bar = st.progress(0.0, text="starting …")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=common.escape_md(message))

    try:
        with st.spinner("Measuring: other work on this machine makes timings noisy.", show_time=True):
            with common.engine_lock():
                live[choice] = experiment.run(quick=quick, progress=progress, overrides=overrides)
    except (MeasurementError, ValueError) as error:
        st.error(f"The live run failed: {common.escape_md(common.one_line(error))}", icon=":material/error:")
    bar.empty()

result = live.get(choice)
if result is None:
    try:
        result = load_bundled(choice)
    except BundleError as error:
        st.warning(f"No bundled run: {common.escape_md(common.one_line(error))}", icon=":material/info:")
        st.stop()
    when = str(result.machine.get("date", ""))[:10]
    st.caption(
        f"Bundled results, measured on {common.escape_md(result.machine_label)} on {when} in "
        f"{result.elapsed_s:.0f} s (load average {result.machine.get('load_average_1m_start') or 0:.1f}). "
        "Counted values do not depend on the machine; estimated ones are marked."
    )
else:
    kind = "quick run (tiny setup)" if result.quick else "default setup"
    st.caption(
        f"Measured live on {common.escape_md(result.machine_label)}, {kind}, in {result.elapsed_s:.0f} s. "
        "Counted values do not depend on the machine; estimated ones are marked."
    )
    if st.button("Back to the bundled results", icon=":material/undo:"):
        live.pop(choice, None)
        st.rerun()

st.plotly_chart(result.chart(), theme=None, key=f"exp_chart_{choice}", config={"displaylogo": False})
st.markdown(f"**What to notice.** {common.escape_md(result.notice)}")
if result.shows_effect:
    st.success(f"**Verdict:** {common.escape_md(result.verdict)}", icon=":material/compare_arrows:")
else:
    st.warning(f"**Verdict:** {common.escape_md(result.verdict)}", icon=":material/info:")

with st.expander("Numbers, and where each column comes from"):
    render_numbers(result.data, result.sources)
    st.caption(
        "measured: timed here · counted: from the model's computation, exact for its input · estimated: roofline "
        "model of a chip · per-row: see the 'measured' column · derived: computed from other columns"
    )
with st.expander("Setup"):
    st.json(result.setup)
    st.json({k: v for k, v in result.machine.items() if v is not None})
