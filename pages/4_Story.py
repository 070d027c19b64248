"""Story: the efficiency misnomer for a talk, one chart and one sentence per step, the step number in the URL.

Starts instantly and offline from the bundled results; a button re-measures the current step on this machine.
"""

import html

import streamlit as st

from efficiency.experiments import MeasurementError, get_experiment
from efficiency.experiments.bundled import BundleError, load_bundled
from efficiency.experiments.story import STEPS, clamp_step, step_figure, takeaway
from efficiency.ui import common

LIVE_KEY = "story_live"
TAKEAWAY_STYLE = "font-size: 2.1rem; line-height: 1.3; font-weight: 600; margin: 0.4rem 0 0.8rem 0;"


def go_to(number: int) -> None:
    st.query_params["step"] = str(clamp_step(number))


common.through_app()  # a talk often starts from a deep link (/Story?step=1) right after the server starts
# A talk page: no page title (the step line says where we are), less top padding, so chart and sentence fit a slide.
st.markdown(
    '<style>[data-testid="stMainBlockContainer"], .block-container {padding-top: 4rem;}</style>', unsafe_allow_html=True
)
number = clamp_step(st.query_params.get("step", "1"))
st.query_params["step"] = str(number)
step = STEPS[number - 1]
live = st.session_state.setdefault(LIVE_KEY, {})

back, position, forward = st.columns([1, 4, 1], vertical_alignment="center")
back.button(
    "Previous", icon=":material/arrow_back:", disabled=number == 1, on_click=go_to, args=(number - 1,), width="stretch"
)
position.markdown(f"**Step {number} of {len(STEPS)} · {common.escape_md(step.title)}** · the efficiency misnomer")
forward.button(
    "Next",
    icon=":material/arrow_forward:",
    disabled=number == len(STEPS),
    on_click=go_to,
    args=(number + 1,),
    width="stretch",
    type="primary",
)

result = live.get(step.experiment)
if result is None:
    try:
        result = load_bundled(step.experiment)
    except BundleError as error:
        st.error(f"No bundled results: {common.escape_md(common.one_line(error))}", icon=":material/error:")
        st.stop()

st.markdown(f'<p style="{TAKEAWAY_STYLE}">{html.escape(takeaway(step, result))}</p>', unsafe_allow_html=True)
st.plotly_chart(
    step_figure(step, result, presentation=True), theme=None, key=f"story_chart_{number}", config={"displaylogo": False}
)
origin = "measured live on" if not result.bundled else "bundled results measured on"
st.caption(
    f"{common.escape_md(get_experiment(step.experiment).title)} · {origin} {common.escape_md(result.machine_label)} "
    f"({str(result.machine.get('date', ''))[:10]}). Counted values do not depend on the machine; estimated ones "
    f"are marked. Verdict: {common.escape_md(result.verdict)}"
)

again, reset = st.columns([1, 1])
if again.button(
    f"Re-measure this step live on this machine (about {result.elapsed_s:.0f} s)", icon=":material/refresh:"
):
    bar = st.progress(0.0, text="starting …")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=common.escape_md(message))

    try:
        with common.engine_lock():
            live[step.experiment] = get_experiment(step.experiment).run(progress=progress)
    except (MeasurementError, ValueError) as error:
        st.error(f"The live run failed: {common.escape_md(common.one_line(error))}", icon=":material/error:")
    else:
        st.rerun()
if step.experiment in live and reset.button("Back to the bundled results", icon=":material/undo:"):
    live.pop(step.experiment)
    st.rerun()
