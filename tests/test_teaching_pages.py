"""The Story and Experiments pages under streamlit's AppTest: no exception, bundled results, navigation, URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from efficiency.experiments.story import STEPS

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def app(path: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def step_shown(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Step "))


def test_story_opens_on_step_one_from_bundled_results():
    at = app("pages/4_Story.py")
    no_problems(at)
    assert step_shown(at).startswith(f"**Step 1 of {len(STEPS)}")
    assert at.query_params["step"] == "1"
    (fig,) = figures(at)
    assert fig["layout"]["font"]["size"] >= 16 and fig["layout"]["title"]["text"]
    assert fig["layout"]["meta"]["reference"] == "BERT-base (uncased)", "relative to the model the sentence names"
    slide_text = " ".join(m.value for m in at.markdown)
    assert "story-headline" in slide_text and "Bundled results, measured on AMD EPYC" in slide_text
    assert "not on this machine" in slide_text and "this CPU" not in slide_text
    assert at.caption and "1x line" in at.caption[0].value, "the chart's caption says how to read it"
    assert at.button[0].disabled  # no previous step


def test_story_speaker_notes_are_hidden_until_asked_for():
    training = next(number for number, step in enumerate(STEPS, start=1) if step.title == "Training vs inference")
    at = app("pages/4_Story.py", step=str(training))
    no_problems(at)
    assert not any(m.value.startswith("**Speaker notes") for m in at.markdown)
    assert not any(b.label.startswith("Re-measure") for b in at.button)
    at.toggle(key="story_notes").set_value(True).run()
    no_problems(at)
    notes = [m.value for m in at.markdown if m.value.startswith("**Speaker notes")]
    assert notes and "Training vs inference" in notes[0]
    assert any("Verdict of the experiment" in m.value for m in at.markdown)
    assert any(b.label.startswith("Re-measure") for b in at.button)


def test_story_next_and_previous_move_one_step_and_update_the_url():
    at = app("pages/4_Story.py")
    next_button = next(b for b in at.button if b.label == "Next")
    next_button.click().run()
    no_problems(at)
    assert at.query_params["step"] == "2" and step_shown(at).startswith("**Step 2 of")
    next(b for b in at.button if b.label == "Previous").click().run()
    assert at.query_params["step"] == "1"


@pytest.mark.parametrize(("asked", "shown"), [("5", 5), ("99", len(STEPS)), ("0", 1), ("five", 1)])
def test_story_jumps_to_the_step_in_the_url(asked, shown):
    at = app("pages/4_Story.py", step=asked)
    no_problems(at)
    assert step_shown(at).startswith(f"**Step {shown} of {len(STEPS)}")
    assert at.query_params["step"] == str(shown)


def test_every_story_step_renders():
    for number in range(1, len(STEPS) + 1):
        at = app("pages/4_Story.py", step=str(number))
        no_problems(at)
        assert len(figures(at)) == 1, number


def test_experiments_page_shows_the_bundled_run_with_its_machine():
    at = app("pages/3_Experiments.py", experiment="hardware")
    no_problems(at)
    assert at.selectbox(key="exp_choice").value == "hardware"
    assert any(c.value.startswith("Bundled results, measured on") for c in at.caption)
    assert figures(at) and (at.success or at.warning)
    at.selectbox(key="exp_choice").set_value("sparse-moe").run()
    no_problems(at)
    assert at.query_params["experiment"] == "sparse-moe"


def test_experiments_page_runs_a_quick_experiment_live():
    at = app("pages/3_Experiments.py", experiment="depth-vs-width")
    at.toggle(key="exp_quick").set_value(True).run()
    next(b for b in at.button if b.label == "Run live on this machine").click().run()
    no_problems(at)
    assert any(c.value.startswith("Measured live on") and "quick run" in c.value for c in at.caption)
    assert figures(at)
