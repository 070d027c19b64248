"""Issue 19, item 5 and item 1's page part: the pages never count or measure a model in the server process.

A static count asked for by a page runs in the same isolated worker as a measurement (``efficiency.ui.runs
.static_profile`` -> a ``Job(metrics="static")`` through the runner), with a timeout and the default memory cap,
cached as before and equal to the in-process count; an oversized measured run from Compare is refused before
any worker starts. ``benchmarks/static_in_worker.py`` measures what the worker costs and shows the page stays
responsive during a long count.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tiny_models import tiny_bert_config

from efficiency.counters import static as static_counters
from efficiency.run import runner as runner_module
from efficiency.run.budget import estimate_job_memory
from efficiency.run.planning import make_job
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import common, runs

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
# Text, decoder and vision: each goes through its own input builder and counters.
MODELS = ["electra-small-discriminator", "gpt2", "google/mobilenet_v2_1.0_224"]
WORKLOAD = Workload(batch_size=2, seq_len=48, image_size=96)
RUN_METADATA = ("timings_s", "hardware")  # how and where it ran; everything else must be the same


@pytest.fixture
def no_count_here(monkeypatch):
    """A static count in this process (the server's, in production) fails the test."""

    def counted_here(*args, **kwargs):
        raise AssertionError("a page counted a model in the server process")

    monkeypatch.setattr(static_counters, "profile_static", counted_here)


@pytest.fixture
def counts(monkeypatch) -> list[str]:
    """The names each static count started a worker for."""
    started: list[str] = []
    original = runs.count_in_worker
    monkeypatch.setattr(runs, "count_in_worker", lambda name, *a, **k: started.append(name) or original(name, *a, **k))
    runs._cached_static.clear()
    return started


def without_run_metadata(data: dict) -> dict:
    return {key: value for key, value in data.items() if key not in RUN_METADATA}


def tiny_bert_folder(folder: Path, layers: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(tiny_bert_config(layers)))
    return str(folder)


# ---------------------------------------------------------------- static counts in a worker


def test_a_page_static_count_runs_in_a_worker_and_equals_the_in_process_count(data_dir, monkeypatch):
    expected = {m: static_counters.profile_static(m, WORKLOAD).to_result().to_dict() for m in MODELS}
    workers = []
    original = runner_module._RunningJob

    class Recorded(original):
        def __init__(self, ctx, job):
            super().__init__(ctx, job)
            workers.append((job.model, job.metrics, job.timeout_s, self.cap, self.process.pid))

    monkeypatch.setattr(runner_module, "_RunningJob", Recorded)
    monkeypatch.setattr(static_counters, "profile_static", lambda *a, **k: pytest.fail("counted in this process"))
    runs._cached_static.clear()
    for model in MODELS:
        result = runs.static_profile(model, WORKLOAD)
        assert result.error is None, result.error
        assert result.hardware is None and not result.measured, "a count has no hardware"
        assert set(result.to_dict()) == set(expected[model]), "the same fields"
        assert without_run_metadata(result.to_dict()) == without_run_metadata(expected[model]), model
    assert [(model, metrics) for model, metrics, *_ in workers] == [(m, "static") for m in MODELS]
    assert {timeout for _, _, timeout, _, _ in workers} == {runs.STATIC_TIMEOUT_S}
    assert all(cap > 0 for *_, cap, _ in workers), "each under the default memory cap"
    assert os.getpid() not in {pid for *_, pid in workers}


def test_a_rerun_never_counts_again_and_the_count_is_stored_as_before(data_dir, counts, no_count_here):
    first = runs.static_profile("gpt2", WORKLOAD)
    again = runs.static_profile("gpt2", WORKLOAD)
    assert counts == ["gpt2"] and again.to_dict() == first.to_dict()
    assert common.save_static(ResultStore(), first) is None
    (stored,) = ResultStore().list()
    assert (stored.model, stored.params, stored.flops, stored.memory_traffic_bytes) == (
        first.model,
        first.params,
        first.flops,
        first.memory_traffic_bytes,
    )
    assert stored.hardware is None and not stored.measured, "the Results page shows it as 'none (static count)'"


def test_a_local_config_edited_since_is_counted_again(data_dir, tmp_path, counts, no_count_here):
    folder = tiny_bert_folder(tmp_path / "tiny", layers=2)
    two = runs.static_profile(folder, WORKLOAD)
    assert runs.static_profile(folder, WORKLOAD).params == two.params and len(counts) == 1
    tiny_bert_folder(tmp_path / "tiny", layers=5)
    os.utime(Path(folder) / "config.json", (time.time() + 5, time.time() + 5))  # a new stamp even on a coarse clock
    five = runs.static_profile(folder, WORKLOAD)
    assert len(counts) == 2 and five.error is None and five.params > two.params
    assert five.model != two.model, "a config is known by its contents"


def test_a_count_past_its_timeout_is_one_line_and_not_kept(data_dir, counts, monkeypatch):
    monkeypatch.setattr(runs, "STATIC_TIMEOUT_S", 0.05)
    failed = runs.static_profile("gpt2", WORKLOAD)
    assert failed.error == "timed out after 0.05 s" and failed.error_kind == "timeout"
    assert failed.model == "gpt2" and failed.workload == WORKLOAD.for_modality("text")
    monkeypatch.setattr(runs, "STATIC_TIMEOUT_S", 120.0)
    assert runs.static_profile("gpt2", WORKLOAD).error is None
    assert counts == ["gpt2", "gpt2"], "a failure is not cached: the next Run counts again"


def test_a_refused_workload_starts_no_worker_and_reads_as_before(data_dir, counts, monkeypatch):
    monkeypatch.setattr(runner_module, "_RunningJob", lambda *a: pytest.fail("a worker started"))
    refused = runs.static_profile("vit-b16", Workload(image_size=230))
    assert refused.error.endswith("image_size 230 is not a multiple of the patch size 16")
    unknown = runs.static_profile("no-such-model-anywhere", WORKLOAD)
    assert unknown.error.startswith("unknown model 'no-such-model-anywhere'")


# ---------------------------------------------------------------- item 1 on the page


def test_an_oversized_measured_run_on_compare_is_refused_before_any_worker_starts(data_dir, monkeypatch):
    """Compare, ELECTRA-small at batch 65,536 (the widget's maximum) and sequence 512, Measured: the estimate
    (~100 GiB of activations) passes any machine's memory, so the Runner refuses it before a worker starts."""
    started = []
    monkeypatch.setattr(runner_module, "_RunningJob", lambda ctx, job: started.append(job) or pytest.fail("started"))
    # warm: the page's imports and the estimator's (the first replay imports the model's code)
    estimate_job_memory(make_job("electra-small-discriminator", {"batch_size": 1, "seq_len": 8}))
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=TIMEOUT)
    at.query_params["models"] = ["electra-small-discriminator"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="cmp_batch").set_value(65536)
    at.number_input(key="cmp_seq").set_value(512)
    at.radio(key="cmp_run").set_value("measured").run()
    began = time.perf_counter()
    at.button(key="cmp_go").click().run()
    seconds = time.perf_counter() - began
    assert not at.exception, [e.value for e in at.exception]
    (error,) = at.error
    text = re.sub(r"\\(.)", r"\1", error.value)  # as the browser shows it (escape_md's backslashes removed)
    assert re.search(r"needs ~[\d.]+ [GT]iB \(estimated: weights [\d.]+ MiB, activations [\d.]+ [GT]iB\)", text), text
    assert re.search(r"[\d.]+ [MGT]iB available", text), text
    assert "the static profile (counts only) still works" in text and "--" not in text, text
    assert not started, "no worker process was started"
    assert seconds < 5, f"refused after {seconds:.1f} s"
    print(f"refused on the page in {seconds:.2f} s: {text}")


def test_the_hardware_pages_roofline_trace_runs_in_a_worker_and_equals_the_in_process_trace(data_dir, monkeypatch):
    from efficiency.hardware import roofline

    workload = Workload(seq_len=32)
    expected = roofline.trace_profile("electra-small-discriminator", workload)
    workers = []
    original = runner_module._RunningJob

    class Recorded(original):
        def __init__(self, ctx, job):
            super().__init__(ctx, job)
            workers.append((job.model, job.metrics, job.target))

    monkeypatch.setattr(runner_module, "_RunningJob", Recorded)
    monkeypatch.setattr(roofline, "trace_profile", lambda *a, **k: pytest.fail("traced in this process"))
    traced = runs.trace_in_worker("electra-small-discriminator", workload)
    assert workers == [("electra-small-discriminator", "static", "efficiency.run.jobs:run_trace")]
    assert (traced.flops, traced.memory_traffic_bytes, traced.params.total) == (
        expected.flops,
        expected.memory_traffic_bytes,
        expected.params.total,
    )
    assert [(r.op, r.flops, r.bytes_read, r.bytes_written) for r in traced.op_records] == [
        (r.op, r.flops, r.bytes_read, r.bytes_written) for r in expected.op_records
    ]


def test_the_engine_lock_admits_two_static_counts_and_a_measurement_alone():
    import threading

    lock = common.EngineLock(slots=2)
    inside, events = [], []
    release = threading.Event()

    def count(name: str) -> None:
        with lock.shared():
            inside.append(name)
            release.wait(10)
            inside.remove(name)

    def measure() -> None:
        with lock:
            events.append(("measure", list(inside)))

    counts = [threading.Thread(target=count, args=(f"c{i}",)) for i in range(3)]
    for thread in counts:
        thread.start()
    deadline = time.monotonic() + 10
    while len(inside) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(inside) == 2  # the third count waits for a slot
    measurer = threading.Thread(target=measure)
    measurer.start()
    time.sleep(0.1)
    assert events == []  # a measurement waits for every count to end
    release.set()
    for thread in [*counts, measurer]:
        thread.join(10)
    assert events == [("measure", [])]


def test_a_run_counts_two_models_at_once_and_reports_each_as_it_ends(monkeypatch):
    import threading

    both = threading.Barrier(2, timeout=10)  # broken (an error) unless two counts wait on it together
    threads = set()

    def counted(name: str, workload: Workload):
        threads.add(threading.current_thread().name)
        both.wait()
        return runs.Result.failure(name, {}, f"{name} counted") if name == "b" else runs.Result(model=name, workload={})

    monkeypatch.setattr(runs, "static_profile", counted)
    got = dict(runs._static_profiles(["a", "b", "c", "d"], WORKLOAD))
    assert sorted(got) == [0, 1, 2, 3]
    assert [got[i].model for i in range(4)] == ["a", "b", "c", "d"] and got[1].error == "b counted"
    assert len(threads) == 2 and all(name.startswith("static-count") for name in threads)


def test_a_failed_count_is_shown_in_its_models_place(monkeypatch):
    """Two counts run at once, so a failure can arrive before the model listed above it ends: its error takes that
    model's own place in the list (between the bars of the models around it), not the end of the list."""

    def script():
        from efficiency.specs import Workload
        from efficiency.ui import runs

        runs.run_static(["bert-base-uncased", "gpt2", "distilbert-base-uncased"], Workload(), None)

    def counted(name: str, workload: Workload):
        if name == "gpt2":
            return runs.Result.failure(name, {}, "gpt2: it broke")
        time.sleep(0.5)  # the failure arrives first
        return runs.Result(model=name, workload={})

    monkeypatch.setattr(runs, "static_profile", counted)
    monkeypatch.setattr(runs, "record", lambda *args, **kwargs: None)
    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    (status,) = at.main.children.values()
    shown = [node.type for node in status.children.values()]
    assert shown[-1] == "empty", shown  # where the bars of the counts so far were, cleared at the end
    shown = shown[:-1]
    assert len(shown) == 3 and shown[0] == shown[2] == "progress" and shown[1] != "progress", shown
    (error,) = at.error
    assert "it broke" in error.value
    texts = [p.text for p in at.get("progress")]
    assert len(texts) == 2 and all(text.endswith(": counted") for text in texts), texts


def test_the_counts_so_far_are_drawn_while_others_count_and_cleared_at_the_end(monkeypatch):
    """Once the run has lasted ``SO_FAR_AFTER_S``, each count that comes back while others still count redraws the
    bars of those counted so far (a failure has none); after the last, the bars go (the comparison's charts follow);
    a run of one model draws none, and neither does a run quicker than ``SO_FAR_AFTER_S``."""
    drawn: list[tuple[dict, list, str]] = []

    def show(where, flops, picked, key):
        drawn.append((dict(flops), list(picked), key))

    def counted(name: str, workload: Workload):
        if name == "gpt2":
            return runs.Result.failure(name, {}, "gpt2: it broke")
        flops = {"bert-base-uncased": 20, "distilbert-base-uncased": 10}[name]
        return runs.Result(model=name, workload={}, flops=flops)

    monkeypatch.setattr(runs, "_show_counted_so_far", show)
    monkeypatch.setattr(runs, "static_profile", counted)
    monkeypatch.setattr(runs, "record", lambda *args, **kwargs: None)
    monkeypatch.setattr(runs, "STATIC_SLOTS", 1)  # one at a time: the arrivals come in the order picked
    monkeypatch.setattr(runs, "SO_FAR_AFTER_S", 0.0)  # every run lasts long enough

    def script(names):
        from efficiency.specs import Workload
        from efficiency.ui import runs

        runs.run_static(names, Workload(), None)

    picked = ["BERT-base (uncased)", "GPT-2 (124M)", "DistilBERT-base (uncased)"]
    at = AppTest.from_function(script, args=(["bert-base-uncased", "gpt2", "distilbert-base-uncased"],)).run()
    assert not at.exception, at.exception
    assert drawn == [
        ({"BERT-base (uncased)": 20}, picked, "counted_so_far_1"),
        ({"BERT-base (uncased)": 20}, picked, "counted_so_far_2"),  # the failure added no bar
    ]
    assert not at.get("plotly_chart")  # cleared once every count was back
    drawn.clear()
    at = AppTest.from_function(script, args=(["bert-base-uncased"],)).run()
    assert not at.exception and drawn == []
    monkeypatch.setattr(runs, "SO_FAR_AFTER_S", 60.0)  # a quick run: its bars would only flash
    at = AppTest.from_function(script, args=(["bert-base-uncased", "gpt2", "distilbert-base-uncased"],)).run()
    assert not at.exception and drawn == []
    assert [p.text.endswith(": counted") for p in at.get("progress")] == [True, True], "its progress is shown"


def test_the_counted_so_far_bars_name_each_model_with_its_count_and_unit():
    from efficiency.charts import compare as charts

    picked = ["ALBERT-xxlarge v2", "BERT-base (uncased)", "ResNet-50 (v1.5)"]
    fig = charts.counted_so_far({"ResNet-50 (v1.5)": 8_200_000_000, "ALBERT-xxlarge v2": 4.9e11}, picked)
    (bars,) = fig.data
    assert list(bars.y) == ["ALBERT-xxlarge v2", "ResNet-50 (v1.5)"]  # the order picked, counted ones only
    assert [t.endswith("FLOPs") for t in bars.text] == [True, True], bars.text
    assert fig.layout.xaxis.type == "log"  # 60x apart
    assert "2 of 3" in fig.layout.title.text and charts.caption(fig)
    colors = charts.model_colors(picked)
    assert list(bars.marker.color) == [colors["ALBERT-xxlarge v2"], colors["ResNet-50 (v1.5)"]]
    close = charts.counted_so_far({"BERT-base (uncased)": 2.2e10, "ALBERT-xxlarge v2": 4.9e10}, picked)
    assert close.layout.xaxis.type == "linear"


def test_the_counted_so_far_bars_are_drawn_with_their_caption():
    def script():
        import streamlit as st

        from efficiency.ui import runs

        runs._show_counted_so_far(st.empty(), {"GPT-2 (124M)": 3.2e10}, ["BERT-base (uncased)", "GPT-2 (124M)"], "k")

    at = AppTest.from_function(script, default_timeout=TIMEOUT).run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert len(at.get("plotly_chart")) == 1
    assert any("counted so far" in caption.value for caption in at.caption)
