"""The Story page's presenter mode: a slide-sized layout, keyboard (and clicker) navigation, the slide's words.

A presentation clicker sends Right/Left, PageDown/PageUp or Space; a small script, shipped inline (nothing is
fetched, a talk's network may be down), listens on the page and clicks the Next or Previous button, so every
step change goes through the same callback as a mouse click. Sizes follow the window's height, so the chart
fills 1920x1080 and 1280x720 screens alike.
"""

from __future__ import annotations

import html

import streamlit as st

from efficiency.charts.style import caption
from efficiency.experiments.bundled import load_bundled
from efficiency.experiments.story import STEPS, Slide, slide
from efficiency.ui import common

NEXT_KEY, PREVIOUS_KEY, NOTES_KEY = "story_next", "story_previous", "story_notes"
CHART_HEIGHT_VH = 64  # of the window's height: the chart is the slide
TEXT_SIZE = "max(16px, 1.75vh)"  # 18.9 px at 1080 p
HEADLINE_SIZE = "max(25px, 3.4vh)"  # 36.7 px at 1080 p

STYLE = f"""<style>
[data-testid="stMainBlockContainer"], .block-container {{padding: 3.5rem 2rem 0.5rem 2rem; max-width: 100%;}}
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] {{gap: 0.35rem;}}
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li,
[data-testid="stMainBlockContainer"] label, [data-testid="stMainBlockContainer"] button,
[data-testid="stCaptionContainer"], [data-testid="stTopNavLink"] span {{font-size: {TEXT_SIZE} !important;}}
p.story-headline {{font-size: {HEADLINE_SIZE} !important; line-height: 1.25; font-weight: 600; margin: 0;}}
[data-testid="stMarkdownContainer"]:has(p.story-headline) {{margin-bottom: 0 !important;}}
p.story-provenance {{color: #3d3d3d; margin: 0.2rem 0 0.3rem 0 !important; line-height: 1.4;}}
[data-testid="stCaptionContainer"] {{color: #3d3d3d;}}
.st-key-story_chart {{height: {CHART_HEIGHT_VH}vh; flex: none;}}
.st-key-story_keys {{position: absolute; height: 0; overflow: hidden;}}
</style>"""

# Runs in the parent page's realm (new parent.Function), so it keeps working when Streamlit replaces the iframe;
# it acts only where the Story's buttons exist, and never while the focus is in a text field.
KEYS_SCRIPT = f"""<script>
(function () {{
  const win = window.parent;
  const body = `
    if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)
        && target.type !== "checkbox")) return;
    const forward = ["ArrowRight", "PageDown", " ", "Spacebar"].includes(event.key);
    const backward = ["ArrowLeft", "PageUp"].includes(event.key);
    const notes = event.key === "n" || event.key === "N";
    const key = forward ? "{NEXT_KEY}" : backward ? "{PREVIOUS_KEY}" : notes ? "{NOTES_KEY}" : null;
    const control = key && document.querySelector(".st-key-" + key + (notes ? " input" : " button"));
    if (!control) return;
    event.preventDefault();
    event.stopPropagation();
    if (!control.disabled) control.click();
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  `;
  if (win.__storyKeys) win.document.removeEventListener("keydown", win.__storyKeys, true);
  win.__storyKeys = new win.Function("event", body);
  win.document.addEventListener("keydown", win.__storyKeys, true);
}})();
</script>"""


@st.cache_resource(show_spinner=False, max_entries=2 * len(STEPS))
def bundled_slide(number: int) -> Slide:
    """Step ``number`` on the bundled results, built once per server: a clicker's step change only redraws.
    Raises :class:`~efficiency.experiments.bundled.BundleError` (not cached) when the bundle lacks it."""
    step = STEPS[number - 1]
    return slide(step, load_bundled(step.experiment))


def presenter_mode() -> None:
    """Slide-sized fonts and chart, and the keyboard listener (an invisible inline component)."""
    st.markdown(STYLE, unsafe_allow_html=True)
    with st.container(key="story_keys"):
        st.iframe(KEYS_SCRIPT, height=1)


def headline(shown: Slide) -> None:
    """The sentence (at least 32 px at 1080 p) and, under it, where the numbers were made."""
    st.markdown(
        f'<p class="story-headline">{html.escape(shown.headline.text)}</p>'
        f'<p class="story-provenance">{html.escape(shown.provenance)}</p>',
        unsafe_allow_html=True,
    )


def chart(shown: Slide, number: int) -> None:
    """The step's chart at the window's height share, and its caption."""
    with st.container(key="story_chart"):
        st.plotly_chart(
            shown.figure,
            theme=None,
            key=f"story_chart_{number}",
            config={"displaylogo": False},
            height="stretch",
        )
    st.caption(common.escape_md(caption(shown.figure)))


def notes(shown: Slide, title: str) -> None:
    """Speaker notes: what the run shows in full and the experiment's verdict (hidden unless asked for)."""
    with st.container(border=True, key="story_notes_panel"):
        st.markdown(f"**Speaker notes · {common.escape_md(title)}**")
        st.markdown(common.escape_md(shown.notes))
