"""Every page runs under streamlit's AppTest; Compare profiles, draws, survives bad input, and round-trips its URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from efficiency.counters import static as static_counters
from efficiency.results import Result
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import common, views
from tests.compare_view import compare_table

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
SMALL = ["electra-small-discriminator", "gpt2"]
SMALL_NAMES = {"ELECTRA-small discriminator", "GPT-2 (124M)"}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Each test gets its own empty results store."""
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def stored_profiles() -> list[Result]:
    """Static profiles of three small models, computed once and stored per test where needed."""
    models = ["electra-small-discriminator", "distilbert-base-uncased", "gpt2"]
    return [static_counters.profile_static(m, Workload()).to_result() for m in models]


def fill_store(profiles: list[Result]) -> ResultStore:
    store = ResultStore()
    for profile in profiles:
        assert common.save_static(store, profile) is None
    return store


def app(path: str = "pages/1_Compare.py", **params: list[str] | str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def every_tab(at: AppTest) -> list[dict]:
    """The figure of each chart tab, opened one after the other (only the open tab's chart is sent)."""
    figs = []
    for label in views.CHART_TABS:
        at.session_state[views.CHART_TAB_KEY] = label
        at.run()
        no_problems(at)
        figs += figures(at)
    return figs


def param(at: AppTest, name: str) -> list[str]:
    value = at.query_params[name]
    return [value] if isinstance(value, str) else list(value)


def no_problems(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_home_without_stored_results_shows_the_bundled_measured_run(data_dir):
    at = app("app.py")
    no_problems(at)
    assert at.title[0].value == "The efficiency misnomer"
    (fig,) = figures(at)
    assert fig["layout"]["title"]["text"] and fig["layout"]["xaxis"]["title"]["text"]
    names = {t["name"] for t in fig["data"]}
    assert {"ALBERT-base v2", "BERT-base (uncased)"} <= names
    axes = fig["layout"]["xaxis"]["ticktext"]
    assert "Latency" in " ".join(axes) and len(axes) == 4, "params, FLOPs, measured latency and peak memory"
    assert any("bundled results measured on" in c.value for c in at.caption)


def test_home_prefers_stored_results_that_disagree(data_dir, stored_profiles):
    albert = static_counters.profile_static("albert-base-v2", Workload()).to_result()  # fewest params, not FLOPs
    fill_store([*stored_profiles, albert])
    at = app("app.py")
    no_problems(at)
    assert any("4 static results from the store" in c.value for c in at.caption)


def test_home_shows_the_bundle_over_stored_results_that_all_agree(data_dir, stored_profiles):
    fill_store(stored_profiles)  # ELECTRA-small < DistilBERT < GPT-2 by every static count
    at = app("app.py")
    no_problems(at)
    assert any("bundled results measured on" in c.value for c in at.caption)


def test_home_counts_three_small_models_when_nothing_else_is_there(data_dir, monkeypatch):
    from efficiency.experiments import bundled

    def unreadable(name, path=None):
        raise bundled.BundleError("bundle unreadable in this test")

    monkeypatch.setattr(bundled, "load_bundled", unreadable)
    at = app("app.py")
    assert not at.exception
    (fig,) = figures(at)
    assert {"ELECTRA-small discriminator", "DistilBERT-base (uncased)", "ALBERT-base v2"} <= {
        t["name"] for t in fig["data"]
    }
    assert any("static counts of three small catalog models" in c.value for c in at.caption)
    assert any("bundle unreadable in this test" in c.value for c in at.caption), "the reason is shown, not swallowed"


def test_compare_static_run_draws_table_and_charts_of_exactly_the_picked_models(data_dir):
    at = app()
    no_problems(at)
    at.multiselect(key="cmp_models").set_value(SMALL)
    at.radio(key="cmp_run").set_value("static")
    at.button[0].click().run()
    no_problems(at)
    (first,) = figures(at)  # one tab open: one figure sent, and no table
    assert "rank" in first["layout"]["title"]["text"].lower() and not at.dataframe
    table = compare_table(at)
    assert set(table["Model"]) == SMALL_NAMES
    assert set(table["How obtained"]) == {"counted (static)"}
    assert not figures(at), "the Table tab sends no chart"
    figs = every_tab(at)
    assert len(figs) == 4  # ranks, parallel, scatter, relative (the heatmap needs 3 models)
    at.session_state[views.CHART_TAB_KEY] = "Rank correlation"
    at.run()
    assert not figures(at) and any("needs at least 3 models" in c.value for c in at.caption)
    for fig in figs:
        assert fig["layout"]["title"]["text"]
        names = {t.get("name") for t in fig["data"]} - {None}
        assert names <= SMALL_NAMES | {f"{n} (estimated)" for n in SMALL_NAMES} | {"counted"}
    assert {t["name"] for t in figs[1]["data"]} == SMALL_NAMES  # parallel coordinates: one line per model
    assert at.info, "the 'what disagrees' callouts are shown"
    assert any("weights random" in c.value for c in at.caption)
    assert ResultStore().list(), "static profiles are kept in the store"


def test_chart_options_do_not_profile_again(data_dir, monkeypatch):
    from efficiency.ui import runs

    calls = []  # static counts run in a worker process (runs.count_in_worker): counted where they start
    original = runs.count_in_worker
    monkeypatch.setattr(runs, "count_in_worker", lambda *a, **k: calls.append(a) or original(*a, **k))
    at = app(models=["electra-small-discriminator", "distilbert-base-uncased", "gpt2"], batch="3")
    at.button[0].click().run()
    no_problems(at)
    assert len(calls) == 3
    assert len(every_tab(at)) == 5
    at.session_state[views.CHART_TAB_KEY] = "Rank correlation"
    at.run()
    at.radio(key="cmp_method").set_value("spearman").run()
    (heatmap,) = figures(at)
    assert "Spearman" in heatmap["layout"]["title"]["text"]
    at.session_state[views.CHART_TAB_KEY] = "Scatter"
    at.run()
    at.selectbox(key="cmp_y").set_value("memory_traffic_bytes").run()
    at.session_state[views.CHART_TAB_KEY] = "Relative to a model"
    at.run()
    at.selectbox(key="cmp_ref").set_value("GPT-2 (124M)").run()
    no_problems(at)
    assert len(calls) == 3
    assert param(at, "method") == ["spearman"] and param(at, "ref") == ["GPT-2 (124M)"]
    assert param(at, "y") == ["memory_traffic_bytes"], "options of charts in closed tabs are kept"
    assert param(at, "chart") == ["Relative to a model"]
    again = app(**{name: param(at, name) for name in at.query_params})  # the link opens the same tab
    no_problems(again)
    (bars,) = figures(again)
    assert "GPT-2" in bars["layout"]["title"]["text"] or "GPT-2" in json.dumps(bars["layout"])


def test_a_link_with_results_shows_them_with_the_pickers_folded(data_dir, stored_profiles):
    fill_store(stored_profiles)
    at = app(models=["gpt2", "electra-small-discriminator"], run="static")
    no_problems(at)
    (fig,) = figures(at)
    assert {t.get("name") for t in fig["data"]} >= SMALL_NAMES
    assert not at.multiselect and not at.number_input and not at.button, "pickers folded: none of their widgets"
    assert at.toggle(key="cmp_edit").value is False
    link = {name: param(at, name) for name in at.query_params}
    at.toggle(key="cmp_edit").set_value(True).run()
    no_problems(at)
    assert at.multiselect(key="cmp_models").value == ["gpt2", "electra-small-discriminator"], "the link's models"
    assert {name: param(at, name) for name in at.query_params} == link, "unfolding changes neither view nor link"
    at.number_input(key="cmp_seq").set_value(64).run()  # nothing stored at seq 64: no toggle, pickers stay
    assert at.multiselect(key="cmp_models") and not at.toggle
    at.number_input(key="cmp_seq").set_value(128).run()  # results again: the toggle is still on
    assert at.toggle(key="cmp_edit").value is True and at.multiselect(key="cmp_models")
    at.toggle(key="cmp_edit").set_value(False).run()
    assert not at.multiselect and len(figures(at)) == 1


def test_without_results_the_pickers_are_open_and_stay_open_after_a_run(data_dir):
    at = app(models=["gpt2"])
    no_problems(at)
    assert not at.toggle and not figures(at) and at.multiselect(key="cmp_models").value == ["gpt2"]
    at.button(key="cmp_go").click().run()
    no_problems(at)
    # one model is no finished comparison (issue 18): no chart of one, the pickers stay open to add another
    assert at.toggle(key="cmp_edit").value is True and at.multiselect(key="cmp_models") and not figures(at)
    assert any("One model in view" in i.value for i in at.info)


def test_bad_local_folder_shows_an_error_and_the_rest_still_works(data_dir, tmp_path):
    missing = str(tmp_path / "no-such-model")
    at = app(models=SMALL)
    at.text_input(key="cmp_extra").set_value(missing).run()
    assert not at.exception
    assert len(at.error) == 1 and "no such folder" in at.error[0].value
    at.button[0].click().run()
    assert not at.exception and len(at.error) == 1
    assert set(compare_table(at)["Model"]) == SMALL_NAMES


def test_model_errors_are_named_and_escaped(data_dir, tmp_path):
    folder = tmp_path / "[bad](javascript:alert(1))"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "not-a-real-architecture"}')
    at = app(models=["gpt2"])
    at.text_input(key="cmp_extra").set_value(str(folder)).run()
    assert not at.exception
    (error,) = at.error
    assert r"trust\_remote\_code" in error.value
    assert "\\[bad\\]\\(javascript" in error.value  # rendered as text, never as a link


def test_a_model_that_fails_to_profile_is_reported_beside_it_and_the_others_render(data_dir):
    at = app(models=["gpt2", "vit-b16"], image="230")  # ViT-B/16 takes multiples of its 16-pixel patch
    at.button[0].click().run()
    assert not at.exception
    assert len(at.error) == 1 and "ViT" in at.error[0].value and "patch size 16" in at.error[0].value
    assert set(compare_table(at)["Model"]) == {"GPT-2 (124M)"}
    at.session_state[views.CHART_TAB_KEY] = "Scatter"  # the error stays on screen across reruns
    at.run()
    assert len(at.error) == 1


def test_query_params_round_trip(data_dir):
    at = app(models=["gpt2", "bert-base"], batch="4", seq="256", dtype="bfloat16", mode="training", run="static")
    no_problems(at)
    assert at.multiselect(key="cmp_models").value == ["gpt2", "bert-base-uncased"]  # alias -> catalog id
    assert at.number_input(key="cmp_batch").value == 4
    assert at.number_input(key="cmp_seq").value == 256
    assert at.selectbox(key="cmp_dtype").value == "bfloat16"
    assert at.radio(key="cmp_mode").value == "training"
    assert param(at, "models") == ["gpt2", "bert-base-uncased"]
    at.number_input(key="cmp_batch").set_value(8).run()
    at.multiselect(key="cmp_models").set_value(["gpt2"]).run()
    assert param(at, "batch") == ["8"] and param(at, "models") == ["gpt2"]
    again = app(**{name: param(at, name) for name in at.query_params})
    assert again.number_input(key="cmp_batch").value == 8 and again.multiselect(key="cmp_models").value == ["gpt2"]


def test_bad_query_params_are_dropped_with_a_warning(data_dir):
    at = app(models=["gpt2", "<b>nope</b>"], batch="-1", dtype="float8", device="tpu:7", threads="999")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    for name in ("models", "batch", "dtype", "device", "threads"):
        assert name in warnings
    assert "<b>" not in warnings
    assert at.multiselect(key="cmp_models").value == ["gpt2"]
    assert at.number_input(key="cmp_batch").value == 1


@pytest.mark.parametrize("machine", ["this", "another"])
def test_measured_run_is_marked_measured(data_dir, monkeypatch, stored_profiles, machine):
    """The runner is replaced by a fake: this tests the page's wiring, not the measurement (tests/test_runner.py).
    A result whose CPU is not this machine's (a shared store holds other machines' ``local-cpu`` results) is
    never shown as measured here."""
    from efficiency.hardware.detect import cpu_model
    from efficiency.run import runner

    cpu_name = cpu_model() if machine == "this" else "Other CPU"

    def fake_run(self, jobs, on_progress=None, fresh=False):
        out = []
        for job in jobs:
            static = next(p for p in stored_profiles if p.model == job.model)
            on_progress(job.model, "inference", 0.5)
            hardware = {"id": "local-cpu", "device": "cpu", "name": cpu_name, "threads": job.threads}
            measured = {
                "measured": True,
                "latency_ms": {"median": 12.5 if job.model == "gpt2" else 4.0},
                "throughput_per_s": 80.0,
                "peak_memory_bytes": 5e8,
                "hardware": {**hardware, "environment": {"cpu_model": cpu_name}},
            }
            out.append(Result.from_dict({**static.to_dict(), **measured}))
        return out

    monkeypatch.setattr(runner.Runner, "run", fake_run)
    monkeypatch.setattr(runner.LocalExecutor, "warm_up", lambda self: None)
    at = app(models=["gpt2", "electra-small-discriminator"], run="measured", threads="1")
    at.button[0].click().run()
    no_problems(at)
    if machine == "another":
        assert any("No measured results yet" in i.value for i in at.info), "not shown as ours"
        titles = [fig["layout"]["title"]["text"] for fig in figures(at)]
        assert titles == ["Parameters as published for each model (not counted here)"], "no chart of its numbers"
        return
    table = compare_table(at)
    assert set(table["How obtained"]) == {f"measured on {cpu_name} (cpu, 1 thread)"}
    assert "Latency" in table.columns
    assert any(cpu_name in c.value for c in at.caption)


def test_results_page_lists_filters_and_opens_on_compare(data_dir, stored_profiles):
    fill_store(stored_profiles)
    at = app("app.py")
    at.switch_page("pages/2_Results.py").run()
    no_problems(at)
    table = at.dataframe[0].value
    assert len(table) == 3 and set(table["Hardware"]) == {"none (static count)"}
    assert len(at.get("download_button")) == 2  # CSV and JSON of what the filters show
    at.multiselect[0].set_value(["GPT-2 (124M)"]).run()
    assert list(at.dataframe[0].value["Model"]) == ["GPT-2 (124M)"]
    at.multiselect[0].set_value([]).run()
    at.session_state["res_table_0"] = {"selection": {"rows": [0, 2], "columns": []}}
    at.run()
    next(b for b in at.button if b.label == "Open on Compare").click().run()
    no_problems(at)
    assert at.title[0].value.startswith("Compare")
    at.switch_page("pages/1_Compare.py")  # stay on Compare for the next run (the Table tab)
    shown = set(compare_table(at)["Model"])
    assert len(shown) == 2 and shown <= {"GPT-2 (124M)", "DistilBERT-base (uncased)", "ELECTRA-small discriminator"}


def test_results_page_deletes_selected(data_dir, stored_profiles):
    store = fill_store(stored_profiles)
    at = app("pages/2_Results.py")
    no_problems(at)
    at.session_state["res_table_0"] = {"selection": {"rows": [1], "columns": []}}
    at.run()
    next(b for b in at.button if b.label == "Delete permanently").click().run()
    no_problems(at)
    assert len(store.list()) == 2
    assert len(at.dataframe[0].value) == 2
    assert any("Deleted 1" in s.value for s in at.success)


def test_results_page_with_empty_store(data_dir):
    at = app("app.py")
    at.switch_page("pages/2_Results.py").run()
    no_problems(at)
    assert any("Nothing stored yet" in i.value for i in at.info)


def test_escape_md_neutralises_markdown():
    text = common.escape_md("[x](http://e) ![i](u) **b** $x$ :red[r] <b>\n")
    for raw in ("[x]", "**", "$x$", ":red[", "<b>", "\n"):
        assert raw not in text


def test_the_audio_length_is_a_picker_kept_in_the_link_and_reaches_a_speech_model(data_dir):
    at = app(models=["facebook/wav2vec2-base", "gpt2"], audio="2.5", run="static")
    no_problems(at)
    assert at.number_input(key="cmp_audio").value == 2.5 and param(at, "audio") == ["2.5"]
    at.button(key="cmp_go").click().run()
    no_problems(at)
    table = compare_table(at)
    assert set(table["Model"]) == {"wav2vec 2.0 Base", "GPT-2 (124M)"}, table["Model"]
    from efficiency.store.store import ResultStore

    (speech,) = [r for r in ResultStore().list() if r.model == "facebook/wav2vec2-base"]
    assert speech.workload["audio_seconds"] == 2.5 and speech.inputs == "audio 2.5 s at 16 kHz"
    bad = app(models=["gpt2"], audio="forever")
    shown = [w.value.replace("\\", "") for w in bad.warning]  # as read: the page escapes markdown
    assert any("audio: 'forever' ignored; accepted: seconds from 0.1 to 3600" in text for text in shown), shown
    assert bad.number_input(key="cmp_audio").value == 10.0  # the default stays
