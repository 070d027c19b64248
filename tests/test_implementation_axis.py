"""The implementation axis on Compare, in the findings, the "implementation" experiment and its Story step (issue 17,
item 3): one model under several implementations is one row each, named by its implementation; "what disagrees"
names a speed-up at the same FLOPs only beyond the p10-p90 spreads; the experiment says when no flip appeared; the
Story's headline is checked against the chart it stands beside. Results are made by hand (nothing is timed here).
"""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from efficiency.analysis.findings import implementation_findings
from efficiency.charts.story import contradictions
from efficiency.experiments import EXPERIMENTS
from efficiency.experiments.implementation import EXTRA_SOURCES, IMPLEMENTATION, flip
from efficiency.experiments.measure import sources_for
from efficiency.experiments.story import NOT_SHOWN, STEPS, slide
from efficiency.models import catalog
from efficiency.results import Result, results_frame
from efficiency.run.job import Job
from efficiency.run.runner import LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import state
from tests.compare_view import compare_table
from tests.test_pages import ROOT, figures, param

WORKLOAD = Workload().to_dict()
FLOPS = 2_000_000_000


def measured(model: str, implementation: str, median: float, spread: float = 0.05, name: str = "", **counts) -> Result:
    """A measured result on this machine at 1 thread, latency median ± ``spread`` as its p10-p90."""
    from efficiency.run.jobs import _hardware_entry

    latency = {"median": median, "p10": median * (1 - spread), "p90": median * (1 + spread), "n": 20}
    fields = {"params": 5_000_000, "flops": FLOPS, **counts}
    return Result.from_dict(
        {
            "model": model,
            "name": name,
            "workload": WORKLOAD,
            "implementation": implementation,
            "measured": True,
            "latency_ms": latency,
            "throughput_per_s": 1000.0 / median,
            "hardware": _hardware_entry("cpu", 1),
            **fields,
        }
    )


# ---- results_frame: one row per model and implementation -------------------------------------------------


def test_two_implementations_of_one_model_are_two_rows_named_by_implementation():
    frame = results_frame([measured("gpt2", "sdpa", 30.0), measured("gpt2", "compile", 12.0)])
    assert list(frame["model"]) == ["gpt2 (SDPA)", "gpt2 (torch.compile)"]
    assert list(frame["implementation"]) == ["sdpa", "compile"] and list(frame["latency_ms"]) == [30.0, 12.0]
    again = results_frame(
        [measured("gpt2", "sdpa", 30.0), measured("gpt2", "compile", 12.0), measured("gpt2", "sdpa", 9)]
    )
    assert list(again["latency_ms"]) == [30.0, 12.0], "a repeated (model, implementation): the first wins"


def test_one_implementation_keeps_one_row_per_model_and_plain_names():
    results = [measured("gpt2", "sdpa", 30.0), measured("bert", "sdpa", 40.0), measured("gpt2", "sdpa", 99.0)]
    frame = results_frame(results)
    assert list(frame["model"]) == ["gpt2", "bert"] and list(frame["latency_ms"]) == [30.0, 40.0]
    only_compiled = results_frame([measured("gpt2", "compile", 12.0)])
    assert list(only_compiled["model"]) == ["gpt2"], "one implementation in view: names as before"


# ---- "what disagrees": same FLOPs, different speed -----------------------------------------------------------


def _with_spread(results: list[Result]) -> pd.DataFrame:
    from efficiency.analysis.table import with_spread

    return with_spread(results_frame(results), results)


def test_a_speedup_beyond_the_spreads_is_named_with_its_ratio_and_same_flops():
    frame = _with_spread(
        [measured("gpt2", "sdpa", 30.0), measured("gpt2", "compile", 12.0), measured("bert", "sdpa", 5)]
    )
    (sentence,) = implementation_findings(frame)
    assert (
        sentence
        == "gpt2: same FLOPs (2 GFLOPs), 2.5x faster under torch.compile than under SDPA (12 vs 30 ms, measured)."
    )


def test_latencies_inside_each_others_spread_are_not_a_finding():
    frame = _with_spread([measured("gpt2", "sdpa", 30.0, spread=0.3), measured("gpt2", "compile", 24.0, spread=0.3)])
    assert implementation_findings(frame) == [], "p10-p90 ranges overlap: the run cannot tell them apart"
    close = _with_spread([measured("gpt2", "sdpa", 30.0, spread=0.01), measured("gpt2", "compile", 28.5, spread=0.01)])
    assert implementation_findings(close) == [], "5% apart: inside the 10% tolerance"


def test_int8_is_never_called_the_same_flops():
    int8 = measured("gpt2", "int8", 10.0, flops=100_000_000, int8_ops=1_900_000_000)
    (sentence,) = implementation_findings(_with_spread([measured("gpt2", "sdpa", 30.0), int8]))
    assert "same FLOPs" not in sentence and "3x faster under int8 dynamic than under SDPA" in sentence
    assert "counted apart from FLOPs" in sentence


# ---- the picker in the link ----------------------------------------------------------------------------------


def test_the_link_keeps_known_implementations_and_warns_about_others():
    values, warnings = state.parse({"impl": ["sdpa", "compile", "tensorrt", "sdpa"]}, ["cpu"], 2)
    assert values["impl"] == ["sdpa", "compile"]
    assert len(warnings) == 1 and "tensorrt" in warnings[0] and "onnxruntime" in warnings[0]
    none_known, _ = state.parse({"impl": ["nope"]}, ["cpu"], 2)
    assert "impl" not in none_known, "nothing usable: the default stays"
    assert state.defaults(["cpu"], 2)["impl"] == ["sdpa"]
    link = state.compare_link_params(["gpt2"], WORKLOAD, "measured", "cpu", 1, ["int8", "sdpa"])
    assert link["impl"] == ["int8", "sdpa"]
    assert "impl" not in state.compare_link_params(["gpt2"], WORKLOAD, "static", None, None)


@pytest.fixture
def two_implementations(data_dir) -> None:
    """gpt2 and ELECTRA-small measured under SDPA and torch.compile, stored as this machine's runs at 1 thread,
    each with its catalog name as the runner gives it."""
    store, runner = ResultStore(), Runner(LocalExecutor(), store=None)
    latencies = {("gpt2", "sdpa"): 30.0, ("gpt2", "compile"): 12.0}
    latencies |= {("electra-small-discriminator", "sdpa"): 40.0, ("electra-small-discriminator", "compile"): 35.0}
    for (model, implementation), median in latencies.items():
        job = Job(model, WORKLOAD, threads=1, metrics="all", implementation=implementation)
        result = measured(model, implementation, median, name=catalog.find(model).display_name)
        store.put(result, runner.key_fields(job))
    store.close()


def compare_app(**params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=90)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    return at


MODELS = ["gpt2", "electra-small-discriminator"]


def test_compare_shows_a_row_per_model_and_implementation_from_the_store(two_implementations):
    at = compare_app(models=MODELS, run="measured", threads="1", impl=["sdpa", "compile"], chart="Ranks")
    assert at.session_state["cmp_impl"] == ["sdpa", "compile"] and param(at, "impl") == ["sdpa", "compile"]
    (fig,) = figures(at)
    assert {trace["name"] for trace in fig["data"]} == {
        "GPT-2 (124M) (SDPA)",
        "GPT-2 (124M) (torch.compile)",
        "ELECTRA-small discriminator (SDPA)",
        "ELECTRA-small discriminator (torch.compile)",
    }
    findings = " ".join(i.value.replace("\\", "") for i in at.info)
    assert "GPT-2 (124M): same FLOPs (2 GFLOPs), 2.5x faster under torch.compile than under SDPA" in findings
    assert "No indicator disagrees" not in findings, "the model's own rows disagree"
    setup = " ".join(c.value.replace("\\", "") for c in at.caption)
    assert "one row per model and implementation (SDPA, torch.compile)" in setup
    table = compare_table(at)
    assert dict(zip(table["Model"], table["Latency"])) == {
        "GPT-2 (124M) (SDPA)": 30.0,
        "GPT-2 (124M) (torch.compile)": 12.0,
        "ELECTRA-small discriminator (SDPA)": 40.0,
        "ELECTRA-small discriminator (torch.compile)": 35.0,
    }


def test_an_implementation_not_measured_yet_is_named_and_static_counts_offer_no_picker(two_implementations):
    at = compare_app(models=MODELS, run="measured", threads="1", impl=["sdpa", "int8"])
    pending = next(i.value.replace("\\", "") for i in at.info if "No measured results yet" in i.value)
    assert "GPT-2 (124M) (int8 dynamic)" in pending and "ELECTRA-small discriminator (int8 dynamic)" in pending
    assert "(SDPA)" not in pending
    assert at.button(key="cmp_go"), "rows left to measure: Run stays in view"
    static = compare_app(models=MODELS, run="static", impl=["sdpa", "compile"])
    assert not [m for m in static.multiselect if m.key == "cmp_impl"], "static counts: no implementation picker"
    assert param(static, "impl") == ["sdpa", "compile"], "the picker's value is kept in the link meanwhile"


def test_run_measures_each_model_under_each_picked_implementation(data_dir, monkeypatch):
    """Run plans one job per model and implementation (the runner is replaced: nothing is timed), shows each
    failure beside its model and implementation, and the rows it measured."""
    from efficiency.run import runner

    planned = []

    def fake_run(self, jobs, on_progress=None, fresh=False):
        out = []
        for job in jobs:
            planned.append((job.model, job.implementation))
            if on_progress is not None:
                on_progress(job.model, "finished", 1.0)
            if job.implementation == "onnxruntime" and job.model == "gpt2":
                out.append(Result.failure(job.model, job.workload, "export failed in this test", "crash"))
                continue
            median = {"sdpa": 30.0, "onnxruntime": 10.0}[job.implementation] * (2 if job.model == "gpt2" else 1)
            out.append(measured(job.model, job.implementation, median, name=catalog.find(job.model).display_name))
        return out

    monkeypatch.setattr(runner.Runner, "run", fake_run)
    monkeypatch.setattr(runner.LocalExecutor, "warm_up", lambda self: None)
    at = compare_app(models=MODELS, run="measured", threads="1", impl=["sdpa", "onnxruntime"])
    at.button(key="cmp_go").click().run()
    assert not at.exception
    assert sorted(planned) == sorted((m, i) for m in MODELS for i in ("sdpa", "onnxruntime"))
    assert any("GPT-2 (124M) (ONNX Runtime)" in e.value.replace("\\", "") for e in at.error), "the failure, named"
    table = compare_table(at)
    assert set(table["Model"]) == {
        "GPT-2 (124M) (SDPA)",
        "ELECTRA-small discriminator (SDPA)",
        "ELECTRA-small discriminator (ONNX Runtime)",
    }


# ---- the experiment, on hand-made numbers ----------------------------------------------------------------------


def experiment_table(pair_latency: dict[tuple[str, str], float], one_model: dict[str, float], spread=0.05):
    """Rows as the experiment's collect makes them: DeiT-Tiny under ``one_model``'s implementations, and the pair
    (MobileNetV2, DeiT-Tiny) under the implementations of ``pair_latency``."""
    rows = {}
    for implementation, median in one_model.items():
        rows[("DeiT-Tiny", implementation)] = (median, True, False)
    for (model, implementation), median in pair_latency.items():
        old = rows.get((model, implementation))
        rows[(model, implementation)] = (median, bool(old and old[1]), True)
    labels = {"eager": "eager", "sdpa": "SDPA", "compile": "torch.compile", "int8": "int8 dynamic"}
    records = []
    for (model, implementation), (median, every, pair) in rows.items():
        int8 = implementation == "int8"
        flops = 1.26e9 if model == "DeiT-Tiny" else 0.6e9
        records.append(
            {
                "model": f"{model} ({labels[implementation]})",
                "model_name": model,
                "model_id": model.lower(),
                "implementation": implementation,
                "every_implementation": every,
                "flip_pair": pair,
                "hardware": "Test CPU, 1 thread",
                "dtype": "float32",
                "batch_size": 1,
                "image_size": 224,
                "measured": True,
                "params": 5.7e6 if model == "DeiT-Tiny" else 3.5e6,
                "flops": flops * (0.05 if int8 else 1),
                "int8_ops": flops * 0.95 if int8 else None,
                "memory_traffic_bytes": 1e8,
                "latency_ms": median,
                "latency_p10_ms": median * (1 - spread),
                "latency_p90_ms": median * (1 + spread),
                "latency_samples": 20,
                "throughput_per_s": 1000 / median,
                "peak_memory_bytes": 1e8,
                "preparation_s": 20.0 if implementation == "compile" else None,
                "error": "",
            }
        )
    return pd.DataFrame(records)


def experiment_result(data: pd.DataFrame):
    machine = {"cpu_model": "Test CPU", "threads": 1, "torch": "2.13.0", "date": "2026-11-30"}
    sources = sources_for(data.columns, **EXTRA_SOURCES)
    return IMPLEMENTATION.result(data, sources, IMPLEMENTATION.setup(), machine, 60.0, bundled=True)


FLIPPED = {
    ("MobileNetV2", "sdpa"): 25.0,
    ("DeiT-Tiny", "sdpa"): 36.0,
    ("MobileNetV2", "int8"): 24.0,
    ("DeiT-Tiny", "int8"): 15.0,
}
ONE_MODEL = {"eager": 45.0, "sdpa": 36.0, "compile": 20.0, "int8": 15.0}


def test_the_experiment_is_registered_once_with_a_default_under_every_implementation():
    assert EXPERIMENTS["implementation"] is IMPLEMENTATION
    setup = IMPLEMENTATION.setup()
    assert setup["implementations"] == ["eager", "sdpa", "compile", "int8", "onnxruntime"]
    assert len(setup["pair"]) == 2 and setup["batch_size"] == 1


def test_a_flip_under_int8_is_the_verdict():
    result = experiment_result(experiment_table(FLIPPED, ONE_MODEL))
    assert result.shows_effect and result.verdict.endswith(" ms, 1.4x): the implementations disagree.")  # one sentence
    assert ", yet MobileNetV2 is faster than DeiT-Tiny under SDPA (25 vs 36 ms, 1.4x)" in result.verdict
    assert "DeiT-Tiny is faster than MobileNetV2 under int8 dynamic (15 vs 24 ms, 1.6x)" in result.verdict
    assert result.contradictions() == []
    assert "<" not in result.verdict
    assert "same FLOPs (1.26 GFLOPs), 2.2x faster under torch.compile than under eager" in result.verdict
    assert "torch.compile 20.0 s" in result.notice, "the one-off compile is reported apart"


def test_no_flip_is_said_honestly():
    kept = {**FLIPPED, ("DeiT-Tiny", "int8"): 30.0}
    result = experiment_result(experiment_table(kept, ONE_MODEL))
    assert flip(result.data) is None
    assert result.shows_effect, "the one model's implementations still differ beyond their spread"
    assert result.verdict.endswith("measured); the pair's order did not flip: the implementations disagree.")
    blurred = experiment_result(experiment_table(kept, {"eager": 36.0, "sdpa": 36.0, "compile": 35.0}, spread=0.3))
    assert not blurred.shows_effect and blurred.verdict.startswith("Not shown in this run")


# ---- the Story step -------------------------------------------------------------------------------------------


def implementation_step():
    (step,) = [s for s in STEPS if s.experiment == "implementation"]
    return step


def test_the_story_step_sits_before_hardware():
    titles = [s.title for s in STEPS]
    assert titles.index("Implementation") == titles.index("Hardware") - 1


def test_the_story_headline_is_true_to_its_chart():
    shown = slide(implementation_step(), experiment_result(experiment_table(FLIPPED, ONE_MODEL)))
    text = shown.headline.text
    assert text == (
        "DeiT-Tiny (eager) and DeiT-Tiny (torch.compile) have about the same FLOPs (1.26 GFLOPs), "
        "yet DeiT-Tiny (eager) has 2.2x the latency of DeiT-Tiny (torch.compile)."
    )
    assert contradictions(shown.headline, shown.figure) == []
    assert "int8" not in text, "int8 work is not FLOPs: the step compares float implementations only"


def test_the_story_never_ranks_latencies_inside_their_spread():
    blurred = experiment_table(FLIPPED, {"eager": 36.0, "sdpa": 34.0, "compile": 33.0}, spread=0.3)
    shown = slide(implementation_step(), experiment_result(blurred))
    assert shown.headline.text.startswith(NOT_SHOWN) and not shown.headline.shown
    assert contradictions(shown.headline, shown.figure) == []


def test_results_lists_the_implementation_and_opens_compare_on_it(two_implementations):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).run()  # Open on Compare switches pages
    at.switch_page("pages/2_Results.py").run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    table = at.dataframe[0].value
    assert set(zip(table["Model"], table["Implementation"])) == {
        (name, label) for name in ("GPT-2 (124M)", "ELECTRA-small discriminator") for label in ("SDPA", "torch.compile")
    }
    compiled = [i for i, label in enumerate(table["Implementation"]) if label == "torch.compile"]
    at.session_state["res_table_0"] = {"selection": {"rows": compiled, "columns": []}}
    at.run()
    next(b for b in at.button if b.label == "Open on Compare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert param(at, "impl") == ["compile"] and param(at, "run") == ["measured"]
