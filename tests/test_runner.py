"""Isolated runner: every fault stays inside its own job, results keep job order and reach the store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fault_targets import ok
from process_checks import gone

from efficiency.results import Result
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, make_key

T = "fault_targets:"  # tests/ is on sys.path under pytest, and the forkserver inherits sys.path
HERE = "test_runner:"  # targets defined below
WORKLOAD = {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}


def measured_ok(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    """``ok``, stamped the way ``run_job`` stamps a measured result: measured, on this machine's device."""
    from efficiency.run.jobs import _hardware_entry

    return {**ok(job, progress), "measured": True, "hardware": _hardware_entry(job["device"], job["threads"])}


def plain(found: Result) -> Result:
    """A result from the store without what the store adds to it (its row id and time)."""
    return found.with_(store_id=None, created_at=None)


def stored(store: ResultStore, runner: Runner, job: Job) -> Result | None:
    """What the store holds under the exact key the runner gives ``job``."""
    return store.get(make_key(**runner.key_fields(job)))


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(str(tmp_path / "results.db"))


def test_faults_are_contained_and_the_other_jobs_go_on(executor: LocalExecutor, store: ResultStore, tmp_path: Path):
    pid_file = tmp_path / "grandchild.pid"
    jobs = [
        Job("ok-1", {"n": 1}, target=T + "ok"),
        Job("hang", {"pid_file": str(pid_file)}, target=T + "sleep_forever", timeout_s=5),
        Job("segv", target=T + "segfault"),
        Job("ok-2", {"n": 2}, target=T + "ok"),
        Job("hog", target=T + "hog_memory", memory_cap_bytes=150 * 2**20),
        Job("raises", target=T + "raise_error"),
        Job("exits", target=T + "hard_exit"),
        Job("giant", target=T + "ok"),
        Job("ok-3", {"n": 3}, target=T + "ok"),
    ]
    runner = Runner(executor, store=store, estimator=lambda job: 1.4e12 if job.model == "giant" else 1_000)
    results = runner.run(jobs)

    assert [r.model for r in results] == [job.model for job in jobs]
    errors = {r.model: r.error for r in results}
    assert errors["hang"] == "timed out after 5 s"
    assert errors["segv"].startswith("crashed (signal 11, SIGSEGV")
    assert errors["hog"].startswith("killed: memory above cap 150 MiB (reached ")
    # an unexpected error: its first line, and its traceback in a log file the line names (efficiency.validation)
    assert re.fullmatch(
        r"ValueError: seq_len 4096 is beyond the model's 512 positions \(traceback: \S+\.log\)", errors["raises"]
    )
    assert errors["exits"] == "worker exited with status 3 before returning a result"
    assert re.fullmatch(
        r"needs ~1.27 TiB, \S+ GiB available; the static profile \(counts only\) still works", errors["giant"]
    )
    kinds = {r.model: r.error_kind for r in results if r.error}
    assert kinds == {
        "hang": "timeout",
        "segv": "crash",
        "hog": "memory",
        "raises": "exception",
        "exits": "crash",
        "giant": "refused",
    }

    good = [(job, r) for job, r in zip(jobs, results) if r.error is None]
    assert [job.model for job, _ in good] == ["ok-1", "ok-2", "ok-3"]
    assert len({r.extra["pid"] for _, r in good}) == 3 and os.getpid() not in {r.extra["pid"] for _, r in good}
    for job, r in good:
        assert r.workload == job.workload and stored(store, runner, job) == r
    stored_errors = {row.model: row.error for row in store.list() if row.error}
    assert stored_errors == {model: error for model, error in errors.items() if error}
    assert gone(int(pid_file.read_text())), "the hung job's own child must die with it"


def test_progress_events_arrive_in_order(executor: LocalExecutor) -> None:
    events: list[tuple[str, str, float]] = []
    Runner(executor).run([Job("p", target=T + "phases")], on_progress=lambda *event: events.append(event))
    steps = [(phase, fraction) for phase in ("load", "count", "measure") for fraction in (0.0, 1.0)]
    assert events == [("p", "started", 0.0), *[("p", *step) for step in steps], ("p", "finished", 1.0)]


def test_stored_results_are_reused_unless_fresh(executor: LocalExecutor, store: ResultStore) -> None:
    runner = Runner(executor, store=store)
    first = runner.run([Job("r", WORKLOAD, target=HERE + "measured_ok")])[0]
    assert first.error is None and first.measured and first.reused is None
    events: list[tuple] = []
    again = runner.run([Job("r", WORKLOAD, target=HERE + "measured_ok")], on_progress=lambda *e: events.append(e))[0]
    assert plain(again) == first.with_(reused=True) and events == [("r", "reused", 1.0)]
    assert again.store_id == store.list()[0].store_id
    fresh = runner.run([Job("r", WORKLOAD, target=HERE + "measured_ok")], fresh=True)[0]
    assert fresh.reused is None and fresh.extra["pid"] != first.extra["pid"]
    other_workload = {**WORKLOAD, "batch_size": 2}  # another workload is another key
    other = runner.run([Job("r", other_workload, target=HERE + "measured_ok")])[0]
    assert other.error is None and other.reused is None


def test_a_failure_is_never_reused(executor: LocalExecutor, store: ResultStore) -> None:
    runner = Runner(executor, store=store)
    assert runner.run([Job("f", WORKLOAD, target=T + "raise_error")])[0].error
    events: list[tuple] = []
    runner.run([Job("f", WORKLOAD, target=HERE + "measured_ok")], on_progress=lambda *e: events.append(e))
    assert ("f", "started", 0.0) in events and store.list()[0].error is None


def test_torch_works_in_the_forked_worker(executor: LocalExecutor) -> None:
    result = Runner(executor).run([Job("t", target=T + "torch_threads", threads=1)])[0]
    assert result.error is None and result.threads == 1 and result.extra["value"] == 256.0


def test_parallel_workers_keep_job_order(executor: LocalExecutor) -> None:
    finished: list[str] = []
    jobs = [Job("slow", {"sleep": 0.8}, target=T + "nap"), Job("quick", {"sleep": 0.0}, target=T + "nap")]
    parallel = LocalExecutor(max_workers=2)  # shares the running forkserver
    results = Runner(parallel).run(
        jobs, on_progress=lambda model, phase, _: finished.append(model) if phase == "finished" else None
    )
    assert finished == ["quick", "slow"] and [r.model for r in results] == ["slow", "quick"]


def test_refusals_need_no_process() -> None:
    class NoProcesses:
        def memory_available(self, job: Job) -> int:
            return 20 * 2**30

        def execute(self, jobs: Sequence[Job], on_progress: object) -> Iterator[tuple[int, dict]]:
            for index, job in enumerate(jobs):
                yield index, {"model": job.model, "workload": job.workload, "ran": True}

    def estimator(job: Job) -> int:
        if job.model == "broken":
            raise RuntimeError("config has no hidden_size\nmore")
        return 10 * 2**20

    jobs = [
        Job("capped", memory_cap_bytes=2**20),
        Job("broken"),
        Job("static-only", metrics="static", memory_cap_bytes=2**20),  # static runs weight-free: not checked
        Job("fits"),
    ]
    results = Runner(NoProcesses(), estimator=estimator).run(jobs)
    assert results[0].error == "needs ~10 MiB, cap 1 MiB; the static profile (counts only) still works"
    assert results[1].error == "memory estimate failed: RuntimeError: config has no hidden_size"
    assert results[2].extra["ran"] and results[3].extra["ran"]


def test_the_executor_seam_results_in_any_order_reach_the_store(store: ResultStore) -> None:
    class Backwards:
        """A stand-in for a distributed executor: finishes jobs in reverse and loses the first."""

        def memory_available(self, job: Job) -> None:
            return None

        def execute(self, jobs: Sequence[Job], on_progress: object) -> Iterator[tuple[int, dict]]:
            for index in reversed(range(1, len(jobs))):
                yield index, {"model": jobs[index].model, "workload": jobs[index].workload, "rank": index}

    jobs = [Job(f"m{i}", target=T + "ok") for i in range(4)]
    runner = Runner(Backwards(), store=store)
    results = runner.run(jobs)
    assert [r.model for r in results] == ["m0", "m1", "m2", "m3"]
    assert results[0].error == "the executor returned no result"
    assert [stored(store, runner, job).extra["rank"] for job in jobs[1:]] == [1, 2, 3]


def test_a_failing_callback_stops_the_run_and_leaves_no_process(executor: LocalExecutor, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"

    def on_progress(model: str, phase: str, fraction: float) -> None:
        if phase == "measure":
            raise RuntimeError("the user pressed stop")

    job = Job("hang", {"pid_file": str(pid_file)}, target=T + "sleep_forever", timeout_s=60)
    with pytest.raises(RuntimeError, match="pressed stop"):
        Runner(executor).run([job], on_progress=on_progress)
    assert gone(int(pid_file.read_text()))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": ""}, "model"),
        ({"metrics": "some"}, "metrics"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"threads": 0}, "threads"),
        ({"memory_cap_bytes": True}, "memory_cap_bytes"),
        ({"target": "os.system"}, "module:function"),
    ],
)
def test_jobs_are_validated(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Job(**{"model": "m", **fields})


def test_a_job_that_cannot_be_sent_to_its_worker(executor: LocalExecutor) -> None:
    results = Runner(executor).run([Job("lambda", {"f": lambda: 1}, target=T + "ok"), Job("next", target=T + "ok")])
    assert results[0].error.startswith("could not start its worker: ") and results[1].error is None


def test_jobs_die_with_a_dashboard_that_dies(tmp_path: Path) -> None:
    job_pid_file = tmp_path / "job.pid"
    tests = Path(__file__).resolve().parent
    dashboard = f"""
import sys
sys.path[:0] = [{str(tests.parent)!r}, {str(tests)!r}]
from efficiency.run.runner import Job, LocalExecutor, Runner
if __name__ == "__main__":
    job = Job("orphan", {{"job_pid_file": {str(job_pid_file)!r}}}, target="fault_targets:sleep_forever", timeout_s=600)
    Runner(LocalExecutor(preload=["efficiency.run.runner"])).run([job])
"""
    process = subprocess.Popen([sys.executable, "-c", dashboard])
    deadline = time.monotonic() + 60
    while not (job_pid_file.exists() and job_pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    job_pid = int(job_pid_file.read_text())
    process.kill()
    process.wait(timeout=10)
    assert gone(job_pid, within_s=10), "a job must not run on after the process that watched it died"


def test_the_runner_does_not_store_again_what_its_executor_stored(store: ResultStore, monkeypatch) -> None:
    """A cluster node stores its result (keyed by its own fingerprint); a second row keyed by this machine's
    would be a duplicate. What the executor tried and failed to store it says so itself."""

    class StoresItself:
        stores_results = True

        def memory_available(self, job: Job) -> None:
            return None

        def execute(self, jobs: Sequence[Job], on_progress: object) -> Iterator[tuple[int, dict]]:
            marks = {"kept": {"stored_by": "node"}, "unstorable": {"store_error": "database is down"}}
            for index, job in enumerate(jobs):
                yield index, {"model": job.model, "workload": job.workload, **marks.get(job.model, {})}

    put: list[str] = []
    original = store.put
    monkeypatch.setattr(store, "put", lambda result, key: put.append(result.model) or original(result, key))
    jobs = [Job("kept"), Job("unstorable"), Job("too-big", memory_cap_bytes=2**20)]
    results = Runner(StoresItself(), store=store, estimator=lambda job: 2**30).run(jobs)
    assert results[0].stored_by == "node" and results[1].store_error == "database is down"
    assert put == ["too-big"]  # the runner's own refusal is still the runner's to store


def test_an_executor_lookup_finds_results_its_nodes_stored(store: ResultStore) -> None:
    """A result keyed by a node's fingerprint is reused through the executor's lookup, not this machine's key."""

    class Remote:
        def __init__(self) -> None:
            self.ran: list[str | None] = []

        def memory_available(self, job: Job) -> None:
            return None

        def find_stored(self, found_in: ResultStore, job: Job) -> Result | None:
            wanted = Wanted(job.model, job.workload, measured=job.metrics == "all", hardware=job.hardware_id)
            return found_in.lookup(wanted)

        def execute(self, jobs: Sequence[Job], on_progress: object) -> Iterator[tuple[int, dict]]:
            for index, job in enumerate(jobs):
                self.ran.append(job.hardware)
                yield index, {"model": job.model, "workload": job.workload, "hardware": {"id": job.hardware}, "v": 2}

    node = {"cpu_model": "Node CPU", "threads": 56, "torch": "2.13.0", "transformers": "5.23.0"}
    on_node = {"id": "hw-x", "device": "cuda", "environment": node}
    kept = Result.from_dict({"model": "m", "workload": WORKLOAD, "measured": True, "hardware": on_node, "v": 1})
    store.put(kept, {"model": "m", "workload": WORKLOAD, "metrics": "all", "hardware": "hw-x", "env": node})
    remote = Remote()
    jobs = [Job("m", WORKLOAD, hardware="hw-x"), Job("m", WORKLOAD, hardware="hw-y")]
    assert Runner(remote).run(jobs)[0].extra["v"] == 2  # no store: nothing to reuse
    remote.ran.clear()
    first, second = Runner(remote, store=store).run(jobs)
    assert plain(first) == kept.with_(reused=True) and second.extra["v"] == 2 and remote.ran == ["hw-y"]
    assert [r.extra["v"] for r in Runner(remote, store=store).run(jobs, fresh=True)] == [2, 2]


def test_a_host_that_swaps_main_does_not_make_workers_rerun_it(executor: LocalExecutor, tmp_path: Path, monkeypatch):
    """Streamlit makes each page run ``__main__``; a worker must not re-run that page (it died with exit 1)."""
    import types

    page = tmp_path / "a_page.py"
    page.write_text("raise SystemExit('this page must not run in a worker')\n", encoding="utf-8")
    hosted = types.ModuleType("__main__")
    hosted.__file__ = str(page)
    monkeypatch.setitem(sys.modules, "__main__", hosted)
    ((_, result),) = list(executor.execute([Job("ok-hosted", {"n": 2}, target=T + "ok")], None))
    assert not result.get("error"), result.get("error")
    assert sys.modules["__main__"] is hosted, "the host's main is back once the worker started"
