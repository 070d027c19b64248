"""Fault injection beyond tests/test_runner.py and tests/test_store.py: kills from outside, a dead worker
server, results that cannot be stored, a store failing mid-run, two sessions at once, a dashboard killed
mid-run and restarted, corrupt rows. In every one: the fault stays with its job and no result is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fault_targets import ok
from process_checks import gone

from efficiency.results import Latency, Result
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, StoreError

T = "fault_targets:"
HERE = "test_fault_injection:"  # targets defined below; tests/ is on the worker's sys.path too
ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}


def workload(batch_size: int) -> dict[str, Any]:
    return {**WORKLOAD, "batch_size": batch_size}


def measured_ok(job: dict[str, Any], progress) -> dict[str, Any]:
    """``ok``, stamped the way ``run_job`` stamps a measured result (measured, on this machine's device), so
    the runner can reuse it."""
    from efficiency.run.jobs import _hardware_entry

    return {**ok(job, progress), "measured": True, "hardware": _hardware_entry(job["device"], job["threads"])}


def returns_a_set(job: dict[str, Any], progress) -> dict[str, Any]:
    """A result that pickles but is not JSON: the store must refuse it without losing the run."""
    return {"model": job["model"], "workload": job["workload"], "tags": {"a", "b"}}


def kills_itself(job: dict[str, Any], progress) -> dict[str, Any]:
    """What the kernel's OOM killer does to a job: SIGKILL, no chance to clean up."""
    progress("measure", 0.5)
    os.kill(os.getpid(), signal.SIGKILL)
    return {"model": job["model"]}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def intact(db: Path) -> bool:
    with sqlite3.connect(db) as raw:
        return raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def wait_for_file(path: Path, within_s: float = 60) -> str:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise TimeoutError(f"{path} never appeared")


def test_a_job_killed_from_outside_like_the_oom_killer_is_reported_and_the_others_go_on(executor, db, tmp_path):
    pid_file = tmp_path / "job.pid"
    jobs = [
        Job("ok-1", {"n": 1}, target=T + "ok"),
        Job("victim", {"job_pid_file": str(pid_file)}, target=T + "sleep_forever", timeout_s=60),
        Job("suicide", target=HERE + "kills_itself"),
        Job("ok-2", {"n": 2}, target=T + "ok"),
    ]

    def oom_killer() -> None:
        os.kill(int(wait_for_file(pid_file)), signal.SIGKILL)

    killer = threading.Thread(target=oom_killer)
    killer.start()
    store = ResultStore(str(db))
    results = Runner(executor, store=store).run(jobs)
    killer.join()
    oom = "crashed (signal 9, SIGKILL; the system may have run out of memory)"
    assert [r.error for r in results] == [None, oom, oom, None]
    assert [r.error_kind for r in results] == [None, "crash", "crash", None]
    stored = {row.model: row.error for row in store.list()}
    assert stored == {"ok-1": None, "victim": oom, "suicide": oom, "ok-2": None} and intact(db)


def test_a_dead_worker_server_is_restarted_for_the_next_job(executor):
    from multiprocessing import forkserver

    assert Runner(executor).run([Job("before", target=T + "ok")])[0].error is None
    server = forkserver._forkserver._forkserver_pid
    assert server is not None
    os.kill(server, signal.SIGKILL)
    assert gone(server, within_s=10)
    results = Runner(executor).run([Job("after-1", target=T + "ok"), Job("after-2", target=T + "torch_threads")])
    assert [r.error for r in results] == [None, None] and results[1].extra["value"] == 256.0
    assert forkserver._forkserver._forkserver_pid != server


def test_results_that_cannot_be_stored_still_reach_the_caller(executor, db):
    store = ResultStore(str(db))
    runner = Runner(executor, store=store)
    jobs = [
        Job("set", target=HERE + "returns_a_set"),
        Job("int", target=T + "not_a_dict"),
        Job("ok", target=T + "ok"),
    ]
    unstorable, not_a_dict, ok = runner.run(jobs)
    assert unstorable.extra["tags"] == {"a", "b"} and "set is not JSON-able" in unstorable.store_error
    assert not_a_dict.error.startswith("TypeError: job target returned int; it must return a dict (traceback: ")
    assert ok.error is None and ok.store_error is None
    assert {row.model for row in store.list()} == {"int", "ok"} and intact(db)


def test_a_store_failing_mid_run_keeps_every_result_and_a_rerun_stores_it(executor, db, monkeypatch):
    store = ResultStore(str(db))
    real_put = store.put
    calls = []

    def flaky_put(result, key_fields):
        calls.append(result.model)
        if len(calls) == 2:
            raise StoreError("results database: disk I/O error")
        return real_put(result, key_fields)

    monkeypatch.setattr(store, "put", flaky_put)
    runner = Runner(executor, store=store)
    jobs = [Job(f"m{i}", workload(i + 1), target=HERE + "measured_ok") for i in range(3)]
    first = runner.run(jobs)
    assert [r.error for r in first] == [None, None, None]
    assert first[1].store_error == "results database: disk I/O error"
    assert sorted(row.model for row in store.list()) == ["m0", "m2"]
    again = runner.run(jobs)  # the one that was not stored runs again; the others are reused
    assert [bool(r.reused) for r in again] == [True, False, True]
    assert sorted(row.model for row in store.list()) == ["m0", "m1", "m2"] and intact(db)


def test_two_dashboard_sessions_profiling_at_once_both_get_their_results(executor, db):
    """Streamlit runs each browser session in a thread of one process: two sessions, two runners, one
    database, faults in one session only. Each gets its own results, in order; the store holds all."""
    sessions = {
        "a": [
            Job("a-ok", {"n": 1}, target=T + "ok"),
            Job("a-segv", target=T + "segfault"),
            Job("a-nap", {"sleep": 0.3}, target=T + "nap"),
        ],
        "b": [
            Job("b-ok", {"n": 2}, target=T + "ok"),
            Job("b-nap", {"sleep": 0.2}, target=T + "nap"),
            Job("b-raise", target=T + "raise_error"),
        ],
    }
    results: dict[str, list[Result]] = {}
    barrier = threading.Barrier(2)

    def session(name: str) -> None:
        runner = Runner(LocalExecutor(), store=ResultStore(str(db)))
        barrier.wait()
        results[name] = runner.run(sessions[name])

    threads = [threading.Thread(target=session, args=(name,)) for name in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.model for r in results["a"]] == ["a-ok", "a-segv", "a-nap"]
    assert [r.model for r in results["b"]] == ["b-ok", "b-nap", "b-raise"]
    assert [bool(r.error) for r in results["a"] + results["b"]] == [False, True, False, False, False, True]
    assert {row.model for row in ResultStore(str(db)).list()} == {j.model for jobs in sessions.values() for j in jobs}
    assert intact(db)


DASHBOARD = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.store.store import ResultStore
if __name__ == "__main__":
    jobs = [
        Job("done-1", {first!r}, target="test_fault_injection:measured_ok"),
        Job("done-2", {second!r}, target="test_fault_injection:measured_ok"),
        Job("in-flight", {{"job_pid_file": {pid_file!r}}}, target="fault_targets:sleep_forever", timeout_s=600),
    ]
    Runner(LocalExecutor(preload=["efficiency.run.runner"]), store=ResultStore({db!r})).run(jobs)
"""


def test_a_dashboard_killed_mid_run_loses_no_stored_result_and_a_restart_reuses_them(executor, db, tmp_path):
    pid_file = tmp_path / "job.pid"
    paths = {"root": str(ROOT), "tests": str(ROOT / "tests"), "pid_file": str(pid_file), "db": str(db)}
    script = DASHBOARD.format(**paths, first=workload(1), second=workload(2))
    dashboard = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)])
    job_pid = int(wait_for_file(pid_file))
    dashboard.kill()
    dashboard.wait(timeout=30)
    assert gone(job_pid, within_s=10), "the in-flight job must die with its dashboard"

    store = ResultStore(str(db))  # the restart
    rows = {row.model: row for row in store.list()}
    assert set(rows) == {"done-1", "done-2"} and intact(db)  # nothing lost, nothing half-written
    assert rows["done-1"].workload == workload(1) and rows["done-1"].error is None

    runner = Runner(executor, store=store)
    jobs = [Job(f"done-{n}", workload(n), target=HERE + "measured_ok") for n in (1, 2)]
    again = runner.run(jobs)
    assert [r.reused for r in again] == [True, True]
    assert [r.with_(reused=None) for r in again] == [rows["done-1"], rows["done-2"]]  # the very rows, unchanged


def test_a_real_profile_runs_after_a_crash_in_the_same_worker_server(executor, db, tmp_path):
    model = tmp_path / "tiny"
    model.mkdir()
    config = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    (model / "config.json").write_text(json.dumps({**config, "intermediate_size": 64, "vocab_size": 128}))
    store = ResultStore(str(db))
    jobs = [
        Job("segv", target=T + "segfault"),
        Job(str(model), {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}, metrics="static"),
    ]
    crashed, profiled = Runner(executor, store=store).run(jobs)
    assert crashed.error_kind == "crash"
    assert profiled.error is None and profiled.params > 0 and profiled.flops > 0
    assert {row.model for row in store.list()} == {"segv", str(model)}


def test_a_corrupt_row_does_not_hide_the_others(db):
    store = ResultStore(str(db))
    fields = {"workload": WORKLOAD, "metrics": "all", "hardware": "h", "env": {}}

    def measured(model: str) -> Result:
        timed = {"latency_ms": {"median": 1.0}, "measured": True, "hardware": {"id": "h"}}
        return Result.from_dict({"model": model, "workload": WORKLOAD, **timed})

    keys = {m: store.put(measured(m), {"model": m, **fields}) for m in "abc"}
    with sqlite3.connect(db) as raw:  # another tool, or a bad disk, mangles one row
        raw.execute("UPDATE results SET result = '{broken' WHERE model = 'b'")
    rows = {row.model: row for row in store.list()}
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"].latency_ms == Latency(median=1.0) and rows["c"].error is None
    assert rows["b"].error == "stored result is unreadable (JSONDecodeError)"

    def wanted(model: str) -> Wanted:
        return Wanted(model, WORKLOAD, measured=True, hardware="h")

    assert store.lookup(wanted("a")) is not None and store.lookup(wanted("c")) is not None
    assert store.lookup(wanted("b")) is None  # unreadable: measured again, never served
    with pytest.raises(StoreError, match="unreadable"):
        store.get(keys["b"])


def test_a_truncated_database_file_is_one_line_and_a_copy_taken_before_is_whole(db, tmp_path):
    store = ResultStore(str(db))
    for i in range(40):
        store.put(
            Result.from_dict({"model": f"m{i}", "blob": "x" * 4000}),
            {"model": f"m{i}", "workload": {}, "metrics": "all", "hardware": "h", "env": {}},
        )
    store.close()
    backup = tmp_path / "backup.db"
    backup.write_bytes(db.read_bytes())
    os.truncate(db, db.stat().st_size // 2)
    with pytest.raises(StoreError) as caught:
        ResultStore(str(db)).list()
    assert "malformed" in str(caught.value) and "\n" not in str(caught.value)
    assert len(ResultStore(str(backup)).list()) == 40
