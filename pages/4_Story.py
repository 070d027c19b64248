"""Story: the efficiency misnomer for a talk, one chart and one sentence per step, the step number in the URL.

Starts instantly and offline from the bundled results. Presenter mode: Right/Left, PageDown/PageUp and Space
(a clicker) step through, N shows the speaker notes, where a button re-measures the current step on this machine.
"""

import streamlit as st

from efficiency.experiments import MeasurementError, get_experiment
from efficiency.experiments.bundled import BundleError
from efficiency.experiments.story import STEPS, clamp_step, slide
from efficiency.ui import common
from efficiency.ui import story as view

LIVE_KEY = "story_live"


def go_to(number: int) -> None:
    st.query_params["step"] = str(clamp_step(number))


common.through_app()  # a talk often starts from a deep link (/Story?step=1) right after the server starts
view.presenter_mode()
number = clamp_step(st.query_params.get("step", "1"))
st.query_params["step"] = str(number)
step = STEPS[number - 1]
live = st.session_state.setdefault(LIVE_KEY, {})

back, position, notes_switch, forward = st.columns([1.3, 6, 2, 1.3], vertical_alignment="center")
back.button(
    "Previous",
    key=view.PREVIOUS_KEY,
    icon=":material/arrow_back:",
    disabled=number == 1,
    on_click=go_to,
    args=(number - 1,),
    width="stretch",
)
position.markdown(f"**Step {number} of {len(STEPS)} · {common.escape_md(step.title)}** · the efficiency misnomer")
show_notes = notes_switch.toggle("Speaker notes (N)", key=view.NOTES_KEY)
forward.button(
    "Next",
    key=view.NEXT_KEY,
    icon=":material/arrow_forward:",
    disabled=number == len(STEPS),
    on_click=go_to,
    args=(number + 1,),
    width="stretch",
    type="primary",
)

result = live.get(step.experiment)
try:
    shown = slide(step, result) if result is not None else view.bundled_slide(number)
except BundleError as error:
    st.error(f"No bundled results: {common.escape_md(common.one_line(error))}", icon=":material/error:")
    st.stop()
view.headline(shown)
view.chart(shown, number)
if not show_notes:
    st.stop()

view.notes(shown, get_experiment(step.experiment).title)
again, reset = st.columns([1, 1])
if again.button(
    f"Re-measure this step live on this machine (about {shown.elapsed_s:.0f} s)", icon=":material/refresh:"
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
