"""Compare a researcher can trust at a glance (issue 18, items 2 to 4): scales that show order, no dead ends, the
first chart in the first screen.

The charts are checked on the issue's five models (BERT-base, ALBERT-xxlarge, GPT-2, ViT-B/16, ResNet-50, their
static counts as the catalog gives them): with linear axes four of them merge at one end. The page is checked under
AppTest and, where only a browser can tell (what is on the first screen, what Enter does in the model picker,
where labels land), in Chromium against `streamlit run app.py`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from efficiency.analysis.rankings import INDICATORS
from efficiency.charts import compare as charts
from efficiency.charts import style
from efficiency.counters import static as static_counters
from efficiency.results import Result
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import common, views
from tests.compare_view import compare_table
from tests.streamlit_server import serving
from tests.test_pages import TIMEOUT, app, figures, no_problems, param

SMALL = ["electra-small-discriminator", "gpt2"]


def five_models() -> pd.DataFrame:
    """The issue's five models, static counts at batch 1, seq 128, image 224, float32 (as profiled here)."""
    return pd.DataFrame(
        {
            "model": ["ResNet-50 (v1.5)", "ViT-B/16 (224)", "GPT-2 (124M)", "ALBERT-xxlarge v2", "BERT-base (uncased)"],
            "params": [25_557_032, 86_567_656, 124_439_808, 222_595_584, 109_482_240],
            "flops": [8.178e9, 35.13e9, 32.23e9, 621.9e9, 22.35e9],
            "memory_traffic_bytes": [0.4276e9, 0.6418e9, 1.0076e9, 12.356e9, 0.5370e9],
            "measured": False,
            "dtype": "float32",
            "batch_size": 1,
            "seq_len": 128,
            "image_size": 224,
        }
    )


def axis_positions(fig, column: str) -> dict[str, float]:
    """Each model's height (0..1) on the parallel-coordinates axis of ``column``."""
    index = list(fig.layout.meta["columns"]).index(column)
    return {trace.name: trace.y[index] for trace in fig.data}


# ---------------------------------------------------------------- scales that show order


def test_log_axes_past_10x_separate_the_four_models_a_linear_axis_merges() -> None:
    df = five_models()
    small = ["ResNet-50 (v1.5)", "ViT-B/16 (224)", "GPT-2 (124M)", "BERT-base (uncased)"]
    linear = charts.parallel_coordinates(df, scale="linear")
    auto = charts.parallel_coordinates(df)
    assert linear.layout.meta["log_axes"] == []
    assert auto.layout.meta["log_axes"] == ["flops", "memory_traffic_bytes"], "params span 8.7x: linear; others >10x"
    spread = {
        name: np.ptp([axis_positions(fig, "flops")[m] for m in small]) for name, fig in (("lin", linear), ("log", auto))
    }
    assert spread["lin"] < 0.06, "linear: the four lines merge at the top of the FLOPs axis"
    assert spread["log"] > 0.25, "log: they spread over the axis"
    params, flops = axis_positions(auto, "params"), axis_positions(auto, "flops")
    assert params["ViT-B/16 (224)"] > params["GPT-2 (124M)"], "ViT has fewer parameters: higher (more efficient)"
    assert flops["ViT-B/16 (224)"] < flops["GPT-2 (124M)"], "...and more FLOPs: lower, so the lines cross"
    assert "log scale" in " ".join(auto.layout.xaxis.ticktext) and "Log scale" in charts.caption(auto)
    forced = charts.parallel_coordinates(df, scale="log")
    assert forced.layout.meta["log_axes"] == ["params", "flops", "memory_traffic_bytes"]


def test_parallel_axes_are_labelled_with_round_numbers_never_a_models_value() -> None:
    df = five_models()
    for scale in style.SCALES:
        fig = charts.parallel_coordinates(df, scale=scale)
        labels = {a.text for a in fig.layout.annotations}
        model_values = {INDICATORS[c].format(v) for c in ("params", "flops", "memory_traffic_bytes") for v in df[c]}
        assert labels and not labels & model_values, f"{scale}: a tick reads like a model's value"
        for column, ticks in fig.layout.meta["ticks"].items():
            log = column in fig.layout.meta["log_axes"]
            for value in ticks if log else ():
                unit = 2.0 ** (10 * np.floor(np.log2(value) / 10)) if style.is_bytes(column) else 1.0  # KiB, MiB...
                scaled = value / unit
                mantissa = scaled / 10.0 ** np.floor(np.log10(scaled) + 1e-9)
                assert round(mantissa, 6) in (1, 2, 5), f"{column}: {value} is not a 1-2-5 step"
            positions = sorted(fig.layout.meta["tick_positions"][column])
            assert positions[0] == pytest.approx(0) and positions[-1] == pytest.approx(1), "round values at both ends"
    hover = " ".join(" ".join(t.hovertext) for t in charts.parallel_coordinates(df).data)
    assert "622 GFLOPs" in hover and "35.1 GFLOPs" in hover, "each model's own value is on hover"


def test_scatter_labels_cover_no_point_and_stay_inside_the_plot() -> None:
    """Where the chart puts each label, measured with the geometry it places them by; the browser test below
    checks the drawn page."""
    crowded = five_models()
    crowded.loc[len(crowded)] = ["Next to BERT", 110e6, 23e9, 0.54e9, False, "float32", 1, 128, 224]
    for df in (five_models(), crowded):
        fig = charts.scatter(df, "params", "flops", log_ratio=style.COMPARE_LOG_RATIO)
        (trace,) = fig.data
        width, height = charts.SCATTER_PLOT_WIDTH_PX, charts.SCATTER_HEIGHT_PX - (90 + 28) - 80
        log_x, log_y = fig.layout.xaxis.type == "log", fig.layout.yaxis.type == "log"

        def place(values, log, span):
            spaced = np.log10(np.array(values, dtype=float)) if log else np.array(values, dtype=float)
            return (spaced - span[0]) / (span[1] - span[0])

        xs = place(trace.x, log_x, fig.layout.xaxis.range) * width
        ys = place(trace.y, log_y, fig.layout.yaxis.range) * height
        radius = 9
        boxes = [style.label_box(x, y, radius, t, p, 14) for x, y, t, p in zip(xs, ys, trace.text, trace.textposition)]
        markers = [(x - radius, y - radius, x + radius, y + radius) for x, y in zip(xs, ys)]
        for i, box in enumerate(boxes):
            assert 0 <= box[0] and box[2] <= width and 0 <= box[1] and box[3] <= height, f"{trace.text[i]} cut"
            for other in markers:
                assert style._overlap(box, other) == 0, f"{trace.text[i]}'s label covers a point"
            for j, other in enumerate(boxes[:i]):
                assert style._overlap(box, other) == 0, f"{trace.text[i]} and {trace.text[j]} overlap"
        assert trace.cliponaxis is False


# ---------------------------------------------------------------- the page, under AppTest


@pytest.fixture(scope="module")
def small_profiles() -> list[Result]:
    return [static_counters.profile_static(m, Workload()).to_result() for m in SMALL]


def stored(profiles: list[Result]) -> None:
    store = ResultStore()
    for profile in profiles:
        assert common.save_static(store, profile) is None


def setup_caption(at) -> str:
    """The setup line as read (the page escapes markdown: ``\\:`` is shown ``:``)."""
    shown = [c.value.replace("\\", "") for c in at.caption]
    return next(text for text in shown if "Setup:" in text)


def test_a_link_with_a_pending_measured_run_shows_its_run_button_and_says_measured(data_dir, small_profiles):
    stored(small_profiles)  # static counts stored, nothing measured
    at = app(models=SMALL, run="measured")
    no_problems(at)
    assert at.button(key="cmp_go").label == "Run", "the pending run's button is drawn (pickers open)"
    assert any("No measured results yet" in i.value for i in at.info)
    setup = setup_caption(at)
    assert setup.startswith("Setup: Measured chosen") and "static counts (no hardware) until Run" in setup, setup
    assert "no hardware: static counts" not in setup, setup
    static = app(models=SMALL, run="static")
    no_problems(static)
    assert not static.button, "a finished static comparison folds its pickers"
    assert setup_caption(static).startswith("Setup: no hardware: static counts")


def test_a_run_that_measures_only_some_models_names_the_rest_in_the_setup_line(data_dir, small_profiles, monkeypatch):
    from efficiency.hardware.detect import cpu_model
    from efficiency.run import runner

    stored(small_profiles)

    def fake_run(self, jobs, on_progress=None, fresh=False):
        out = []
        for job in jobs:
            if job.model != "gpt2":
                out.append(Result.failure(job.model, job.workload, "timed out in this test", "timeout"))
                continue
            static = next(p for p in small_profiles if p.model == job.model)
            hardware = {"id": "local-cpu", "device": "cpu", "name": cpu_model(), "threads": job.threads}
            measured = {
                "measured": True,
                "latency_ms": {"median": 12.5},
                "throughput_per_s": 80.0,
                "peak_memory_bytes": 5e8,
                "hardware": {**hardware, "environment": {"cpu_model": cpu_model()}},
            }
            out.append(Result.from_dict({**static.to_dict(), **measured}))
        return out

    monkeypatch.setattr(runner.Runner, "run", fake_run)
    monkeypatch.setattr(runner.LocalExecutor, "warm_up", lambda self: None)
    at = app(models=SMALL, run="measured", threads="1")
    at.button(key="cmp_go").click().run()
    assert not at.exception
    setup = setup_caption(at)
    assert (
        setup.startswith("Setup: Measured chosen")
        and "static counts only (not measured yet): ELECTRA-small discriminator ·" in setup
    )
    assert at.button(key="cmp_go"), "a model left to measure: the Run button stays in view"


def test_one_model_gets_a_message_and_its_numbers_not_a_chart_of_one(data_dir, small_profiles):
    stored(small_profiles)
    at = app(models=["gpt2"], run="static")
    no_problems(at)
    assert not figures(at), "no one-model rank chart"
    assert any("One model in view" in i.value for i in at.info)
    assert not any("Flat lines" in c.value for c in at.caption)
    (table,) = at.dataframe
    assert list(table.value["Model"]) == ["GPT-2 (124M)"] and "FLOPs" in table.value.columns
    assert at.multiselect(key="cmp_models"), "the pickers are open to add a model"


PREVIEWED = ["bert-base-uncased", "albert-xxlarge-v2", "microsoft/resnet-18"]


def test_before_anything_is_counted_the_picked_models_published_parameters_are_drawn(data_dir):
    """Nothing stored: the page says what Run will count and draws each model's parameters as published (the
    catalog's figure and its source), marked as not counted here."""
    from efficiency.models import catalog

    at = app(models=PREVIEWED, run="static")
    no_problems(at)
    assert any("No static results yet" in i.value for i in at.info)
    (fig,) = figures(at)
    (bars,) = fig["data"]
    published = [catalog.find(name).published for name in PREVIEWED]
    assert bars["y"] == [common.display_name(name) for name in PREVIEWED]
    assert bars["x"] == [entry["params"] for entry in published]
    assert bars["text"] == ["110 M params", "223 M params", "11.7 M params"], bars["text"]
    for hover, entry in zip(bars["customdata"], published, strict=True):
        assert "as published" in hover and entry["params_source"][:30] in html.unescape(hover), hover
    assert "not counted here" in fig["layout"]["title"]["text"]
    assert fig["layout"]["xaxis"]["type"] == "log", "223 M against 11.7 M: more than 10x apart"
    assert any("Run counts parameters, FLOPs and memory traffic" in c.value.replace("\\", "") for c in at.caption)


def test_one_model_or_models_without_a_published_count_get_no_published_chart(data_dir, tmp_path):
    at = app(models=["gpt2"], run="static")
    no_problems(at)
    assert not figures(at), "one model: no chart of one"

    def script(names):
        from efficiency.ui import compare

        compare.published_preview(names)

    local = str(tmp_path / "my-model")
    at = AppTest.from_function(script, args=([local, "gpt2"],), default_timeout=TIMEOUT).run()
    assert not at.exception and not at.get("plotly_chart"), "one published figure: nothing to compare it with"
    at = AppTest.from_function(script, args=([local, "gpt2", "bert-base-uncased"],), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1
    named = [c.value.replace("\\", "") for c in at.caption if "No published parameter count" in c.value]
    assert named and common.display_name(local) in named[0], [c.value for c in at.caption]


def test_the_published_chart_is_not_drawn_once_results_are_in_view(data_dir, small_profiles):
    stored(small_profiles)
    at = app(models=SMALL, run="static")
    no_problems(at)
    assert not any("as published" in json.dumps(fig) for fig in figures(at))


def test_the_model_picker_has_no_select_all_entry(data_dir):
    at = app(models=[""])
    no_problems(at)
    assert at.multiselect(key="cmp_models").proto.select_all == 0, "Enter must not add every match"


def test_the_scale_choice_changes_the_axes_and_is_kept_in_the_link(data_dir, small_profiles):
    stored(small_profiles)  # ELECTRA-small and GPT-2: FLOPs and traffic span more than 10x
    at = app(models=SMALL, run="static", chart="All indicators")
    no_problems(at)
    (fig,) = figures(at)
    assert fig["layout"]["meta"]["log_axes"], "auto: log where an indicator spans more than 10x"
    assert at.radio(key="cmp_scale").value == "auto"
    at.radio(key="cmp_scale").set_value("linear").run()
    (fig,) = figures(at)
    assert fig["layout"]["meta"]["log_axes"] == [] and param(at, "scale") == ["linear"]
    at.session_state[views.CHART_TAB_KEY] = "Scatter"
    at.run()
    (fig,) = figures(at)
    assert fig["layout"]["xaxis"]["type"] == "linear" and fig["layout"]["yaxis"]["type"] == "linear"
    again = app(**{name: param(at, name) for name in at.query_params} | {"scale": "log"})
    no_problems(again)
    (fig,) = figures(again)
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["yaxis"]["type"] == "log", "the link's scale"
    assert set(compare_table(again)["Model"]) == {"ELECTRA-small discriminator", "GPT-2 (124M)"}


def test_a_finished_run_folds_the_pickers_and_an_unfinished_one_keeps_them(data_dir, small_profiles):
    at = app(models=SMALL, run="static")
    at.button(key="cmp_go").click().run()
    no_problems(at)
    assert at.toggle(key="cmp_edit").value is False and not at.multiselect and figures(at)
    at.session_state[views.CHART_TAB_KEY] = "Scatter"  # the pickers' values outlive the runs that do not draw them
    at.run()
    (scatter,) = figures(at)
    assert scatter["layout"]["meta"]["kind"] == "scatter" and param(at, "models") == SMALL
    at.toggle(key="cmp_edit").set_value(True).run()
    at.session_state[views.CHART_TAB_KEY] = "Ranks"
    at.run()
    assert at.multiselect(key="cmp_models").value == SMALL, "unfolded by the user: a chart change keeps them open"
    at = app(models=["gpt2", "distilbert-base-uncased"], seq="1000")  # DistilBERT allows 512 positions
    at.button(key="cmp_go").click().run()
    assert at.toggle(key="cmp_edit").value is True and at.button(key="cmp_go"), "a failed model: Run stays"


# ---------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory, small_profiles) -> Iterator[str]:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    folder = tmp_path_factory.mktemp("browser")
    (folder / "data").mkdir()
    store = ResultStore(str(folder / "data" / "results.db"))
    for profile in small_profiles:
        assert common.save_static(store, profile) is None
    store.close()
    with serving(folder / "data", folder / "streamlit.log") as url:
        yield url


@pytest.fixture
def page(browser_server) -> Iterator:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM_ARGS, VIEWPORT

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT)
        finally:
            browser.close()


def opened(page, url: str, ready: str) -> None:
    from tests.test_browser import settled

    page.goto(url)
    page.wait_for_selector(ready, timeout=60_000)
    settled(page)


def link(base: str, models: list[str], **params: str) -> str:
    from urllib.parse import urlencode

    return f"{base}/Compare?" + urlencode([("models", m) for m in models] + list(params.items()))


@pytest.mark.browser
def test_browser_pending_run_shows_run_in_the_first_screen_and_the_setup_says_measured(page, browser_server) -> None:
    opened(page, link(browser_server, SMALL, run="measured"), "text=No measured results yet")
    run = page.get_by_role("button", name="Run", exact=True)
    box = run.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800, f"Run below the first screen: {box}"
    setup = page.get_by_text("Measured chosen").inner_text()
    assert setup.startswith("Setup: Measured chosen") and "no hardware: static counts" not in setup, setup


@pytest.mark.browser
def test_browser_one_model_gets_a_message_not_a_chart(page, browser_server) -> None:
    opened(page, link(browser_server, ["gpt2"], run="static"), '[data-testid="stDataFrame"]')
    assert page.get_by_text("One model in view").count() == 1
    assert page.locator(".js-plotly-plot").count() == 0


@pytest.mark.browser
def test_browser_enter_in_the_model_picker_adds_one_model(page, browser_server) -> None:
    opened(page, f"{browser_server}/Compare?models=&run=static", '[data-testid="stMultiSelect"] input')
    field = page.locator('[data-testid="stMultiSelect"] input').first
    field.click()
    field.type("BERT-base")
    page.wait_for_selector('[role="option"]', timeout=10_000)
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.search.includes('models=bert')", timeout=30_000)
    from tests.test_browser import settled

    settled(page)
    assert page.url.count("models=") == 1 and "models=bert-base-uncased&" in page.url, page.url
    chips = page.locator('[data-testid="stMultiSelectTagsContainer"]').first.inner_text()
    assert "BERT-base (uncased)" in chips and "DistilBERT" not in chips and "ALBERT" not in chips, chips


@pytest.mark.browser
def test_browser_first_chart_in_the_first_screen_and_no_empty_band(page, browser_server) -> None:
    opened(page, link(browser_server, SMALL, run="static"), ".js-plotly-plot")
    top = page.evaluate("() => document.querySelector('.js-plotly-plot').getBoundingClientRect().top")
    assert top < 600, f"the first chart starts at {top} px of an 800 px screen"
    for url in (browser_server, link(browser_server, SMALL, run="static")):
        opened(page, url, "[data-testid='stMainBlockContainer'] h1")
        title = page.evaluate(
            "() => document.querySelector('[data-testid=\"stMainBlockContainer\"] h1').getBoundingClientRect().top"
        )
        assert title <= 80, f"{url}: an empty band of {title} px above the title"


@pytest.mark.browser
def test_browser_log_scale_toggle_and_scatter_labels_clear_of_points(page, browser_server) -> None:
    opened(page, link(browser_server, SMALL, run="static", chart="All indicators"), ".js-plotly-plot")
    ticks = " ".join(page.locator(".js-plotly-plot .xtick text").all_text_contents())
    assert "log scale" in ticks
    page.get_by_text("Linear", exact=True).click()
    page.wait_for_function("() => location.search.includes('scale=linear')", timeout=30_000)
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.js-plotly-plot .xtick text')].some(t => t.textContent.includes('log'))",
        timeout=30_000,
    )
    opened(page, link(browser_server, SMALL, run="static", chart="Scatter"), ".js-plotly-plot .textpoint")
    found = page.evaluate(
        """() => {
        const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        const plot = document.querySelector('.js-plotly-plot .main-svg');
        return {svg: rect(plot),
                points: [...document.querySelectorAll('.js-plotly-plot .scatterlayer path.point')].map(rect),
                labels: [...document.querySelectorAll('.js-plotly-plot .scatterlayer .textpoint text')].map(rect)};
        }"""
    )
    assert len(found["labels"]) == len(found["points"]) == 2
    for label in found["labels"]:
        left, top, right, bottom = found["svg"]
        assert left <= label[0] and label[2] <= right and top <= label[1] and label[3] <= bottom, "label cut"
        for point in found["points"]:
            overlap = (
                min(label[2], point[2]) - max(label[0], point[0]),
                min(label[3], point[3]) - max(label[1], point[1]),
            )
            assert min(overlap) <= 0, f"a label covers a point: {label} {point}"
