"""Messages a person reads in the browser (issue 19, item 6): they name no command-line flag; a link the app cannot
read whole says so; and nothing the pages start in other threads makes Streamlit log "missing ScriptRunContext".

Bad values cut to ~200 characters are tested in tests/test_hostile_pages.py; one-line errors with their traceback
in a log file in tests/test_worker_errors.py (with the forkserver that ran app.py outside Streamlit).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from efficiency.models.catalog import UnknownModelError
from efficiency.models.loading import resolve
from efficiency.results import Result
from efficiency.run.job import Job
from efficiency.run.ray import cluster as ray_cluster
from efficiency.run.runner import Runner
from efficiency.store.store import ResultStore
from efficiency.ui import cluster as ui_cluster
from efficiency.ui import common, runs, state  # state watches for dropped links from now, as in a server

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
CLI_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
WORKLOAD = {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}


def names_no_cli(text: str) -> bool:
    plain = text.replace("\\", "")  # Markdown escapes every '-' and ':' on a page
    return not CLI_FLAG.search(plain) and "python -m" not in plain and "efficiency head" not in plain


# ---------------------------------------------------------------- the engine's words


def test_the_engine_messages_that_reach_pages_name_no_command_line_flag(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnknownModelError) as unknown:
        resolve("frobnicate-9000")
    assert "see the catalog" in str(unknown.value) and names_no_cli(str(unknown.value))
    with pytest.raises(ray_cluster.RayUnavailableError) as nobody:
        ray_cluster.check_reachable("127.0.0.1:1")  # nothing listens on port 1
    assert str(nobody.value).endswith(ray_cluster.HEAD_HINT) and names_no_cli(str(nobody.value))
    assert names_no_cli(ray_cluster.HEAD_HINT)

    class NoProcesses:
        def memory_available(self, job: Job) -> int:
            return 2**30

        def execute(self, jobs, on_progress):
            return iter(())

    (refused,) = Runner(NoProcesses(), estimator=lambda job: 2**40).run([Job("big", WORKLOAD)])  # type: ignore[arg-type]
    assert refused.error_kind == "refused" and names_no_cli(refused.error) and "static profile" in refused.error


# ---------------------------------------------------------------- the pages


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    monkeypatch.setenv(ui_cluster.ADDRESS_ENV, "127.0.0.1:1")  # an unreachable cluster: its warning on each page
    ui_cluster._listed.clear()
    return tmp_path / "data"


def shown(at: AppTest) -> list[str]:
    return [str(e.value) for kind in ("error", "warning", "info", "toast") for e in at.get(kind)]


def page(path: str, state: dict[str, Any] | None = None, **params: Any) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_no_page_message_names_a_command_line_flag(data_dir):
    failed = Result.failure("stored-failure", WORKLOAD, "seq_len 9999 exceeds the model's maximum", "refused")
    data_dir.mkdir(parents=True)
    ResultStore(str(data_dir / "results.db")).put(
        failed, {"model": "stored-failure", "workload": WORKLOAD, "metrics": "all", "hardware": "h", "env": {}}
    )
    link = {"models": ["electra-small-discriminator"], "run": "measured", "batch": "65536", "seq": "512"}
    compare = page("pages/1_Compare.py", **link, extra="frobnicate-9000", device="tpu:9", dtype="float8")
    from_link = shown(compare)  # the link's warnings are said when the visit starts
    compare.button[0].click().run()  # the estimate refuses the run: the refusal offers the static profile, in words
    pages = {
        "compare": compare,
        "results": page("pages/2_Results.py"),
        "experiments": page("pages/3_Experiments.py", experiment="no-such-experiment"),
        "story": page("pages/4_Story.py", step="abc"),
        "hardware": page("pages/5_Hardware.py", state={"hw_models": []}),
        "home": page("app.py"),
    }
    said = {name: shown(at) for name, at in pages.items()}
    said["compare"] += from_link
    for name, messages in said.items():
        assert all(names_no_cli(message) for message in messages), (name, messages)
    compare_text = " ".join(said["compare"]).replace("\\", "")
    for expected in ("unknown model 'frobnicate-9000'", "device: 'tpu:9' ignored", "the static profile (counts only)"):
        assert expected in compare_text, said["compare"]
    for name in ("compare", "hardware"):
        assert any("start the cluster's head first" in m.replace("\\", "") for m in said[name]), said[name]


def test_a_link_streamlit_drops_says_so_instead_of_showing_the_defaults_silently(data_dir):
    """Streamlit drops a query string of more than 1,000 parameters before the page runs; the page says so."""
    at = page("pages/1_Compare.py", **{f"p{i}": "x" for i in range(1001)})
    warnings = [w.value.replace("\\", "") for w in at.warning if "could not be read" in w.value]
    assert warnings == [
        "From the link: this link could not be read whole (1001 parameters; the limit is 1000); showing the defaults"
    ]
    assert at.multiselect(key="cmp_models").value == ["bert-base-uncased", "albert-base-v2", "distilbert-base-uncased"]
    at.run()  # said once: a rerun of the same visit does not say it again
    assert not [w for w in at.warning if "could not be read" in w.value]
    again = page("pages/1_Compare.py", models=["gpt2"])  # a link within the limit: nothing said
    assert not [w for w in again.warning if "could not be read" in w.value]


def test_a_drop_is_noted_for_the_session_whose_request_streamlit_dropped():
    """In a server, Streamlit drops the query string while handling the browser's message, outside any script run:
    the watcher finds the session (and the page asked for) on the stack, as it is in Streamlit 1.67."""

    class AppSession:  # the name and the two locals the watcher reads, as in streamlit.runtime.app_session
        def __init__(self) -> None:
            self.id = "session-x"

        def request_rerun(self, client_state: Any) -> None:
            logging.getLogger(state.QUERY_PARAMS_LOGGER).warning(
                "Ignoring query string with %d parameters because it exceeds the %d parameter limit.", 1001, 1000
            )

    class ClientState:
        page_name = "Compare"

    worker = threading.Thread(target=AppSession().request_rerun, args=(ClientState(),))
    worker.start()
    worker.join()
    watch = state.watch_dropped_links()
    assert watch is state.watch_dropped_links()  # one per process
    assert watch.take("session-x") == ("1001 parameters; the limit is 1000", "Compare")
    assert watch.take("session-x") is None  # said once
    assert state.for_this_page("Compare") and state.for_this_page("/base/compare/") and state.for_this_page(None)
    assert not state.for_this_page("Story") and not state.for_this_page("")  # a link to another page, or Home
    assert state.dropped_link() is None  # outside a script run: nothing to tell


# ---------------------------------------------------------------- threads the pages start


@pytest.fixture
def streamlit_log() -> Iterator[list[logging.LogRecord]]:
    """Every warning any Streamlit logger makes meanwhile (they do not propagate to the root logger)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.WARNING)
    names = ["streamlit", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("streamlit."))]
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(keep)
    yield records
    for logger in loggers:
        logger.removeHandler(keep)


def no_context_warnings(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if "ScriptRunContext" in r.getMessage()]


@pytest.mark.parametrize("frozen_at_start", [True, False], ids=["server froze its imports", "nothing frozen"])
def test_the_engine_warm_up_thread_touches_nothing_of_streamlit(monkeypatch, streamlit_log, frozen_at_start):
    from efficiency.models import loading

    built: list[str] = []
    lock_callers: list[str] = []
    real_lock = common.engine_lock

    def engine_lock() -> threading.Lock:
        lock_callers.append(threading.current_thread().name)
        return real_lock()

    monkeypatch.setattr(loading, "build_model", lambda spec, device: built.append(threading.current_thread().name))
    monkeypatch.setattr(common, "engine_lock", engine_lock)
    # after the build, what its imports made is frozen where the server froze its imports at start (not here: the
    # test process's objects would stay frozen)
    monkeypatch.setattr(common, "freeze_long_lived", lambda: built.append("frozen") or 0)
    monkeypatch.setattr(common.gc, "get_freeze_count", lambda: int(frozen_at_start))
    common.warm_engine_in_background.clear()
    timer = common.warm_engine_in_background(0.0)
    timer.join(30)
    common.warm_engine_in_background.clear()
    assert built == (["warm-static-engine", "frozen"] if frozen_at_start else ["warm-static-engine"])
    assert lock_callers == [threading.current_thread().name]  # the lock was taken here, not in the timer's thread
    assert not no_context_warnings(streamlit_log)


def test_freezing_keeps_every_object_alive_now_out_of_collections():
    import gc

    before = gc.get_freeze_count()
    try:
        kept = object()  # untracked by the collector (no references): a list is tracked
        tracked = [kept]
        assert common.freeze_long_lived() > before
        assert not any(item is tracked for item in gc.get_objects())  # the collector no longer walks it
    finally:
        gc.unfreeze()  # the test process's objects go back to the oldest generation, as before
    assert any(item is tracked for item in gc.get_objects())


def test_cluster_runs_report_progress_to_the_script_thread_only(monkeypatch, streamlit_log):
    class FakeCluster:
        """Stands in for the Ray executor: progress and results from the runner's thread."""

        def memory_available(self, job: Job) -> None:
            return None

        def execute(self, jobs, on_progress):
            for index, job in enumerate(jobs):
                on_progress(job.model, "measure", 0.5)
                yield index, {"model": job.model, "workload": job.workload, "measured": True}

    monkeypatch.setattr(runs.cluster, "executor", lambda store: FakeCluster())
    updates: list[tuple[str, ...]] = []

    def update(device: str, model: str, phase: str, fraction: float) -> None:
        updates.append((threading.current_thread().name, device, model, phase))

    groups = {"cluster:hw-a": [Job("m1", WORKLOAD)], "cluster:hw-b": [Job("m2", WORKLOAD)]}
    outcomes = runs._run_on_cluster(groups, None, False, update)
    assert {device: [r.model for r in results] for device, results in outcomes.items()} == {
        "cluster:hw-a": ["m1"],
        "cluster:hw-b": ["m2"],
    }
    here = threading.current_thread().name
    assert updates and {caller for caller, *_ in updates} == {here}  # page elements are touched here only
    assert ("cluster:hw-b", "m2", "measure") in {tuple(u[1:]) for u in updates}
    assert not no_context_warnings(streamlit_log)
