"""The results store against a real PostgreSQL server (started by the test run, loopback only).

The same contract as on SQLite (tests/test_store.py): round trip, failures kept apart from successes,
persistence across processes, and concurrent writers losing nothing, including two writers racing on one key
and on creating the schema of a fresh database. Skips when PostgreSQL or psycopg is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pg_server import fresh_database, postgres_url  # noqa: F401 - postgres_url is a fixture

from efficiency.results import Result
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, make_key

ROOT = Path(__file__).resolve().parents[1]
ENV = {"cpu_model": "Test CPU", "threads": 2, "gpu": None, "torch": "2.13.0", "transformers": "5.23.0"}
WORKLOAD = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}


def key_fields(model: str) -> dict:
    return {"model": model, "workload": WORKLOAD, "metrics": "all", "hardware": "a100-80gb", "env": ENV}


def result(model: str, median: float = 12.5) -> Result:
    return Result.from_dict(
        {
            "model": model,
            "workload": WORKLOAD,
            "latency_ms": {"median": median, "p10": median * 0.9, "p90": median * 1.1, "n": 30},
            "hardware": {"id": "a100-80gb", "device": "cuda", "name": "NVIDIA A100 80GB", "environment": ENV},
            "note": "ünïcode ✓",
            "measured": True,
        }
    )


def wanted(model: str = "bert", **overrides: object) -> Wanted:
    """A measured result of ``model`` on the cluster's A100s, asked for by a driver with these releases."""
    asked = {"model": model, "workload": WORKLOAD, "measured": True, "hardware": "a100-80gb", "machine": ENV}
    return Wanted(**{**asked, **overrides})


def plain(found: Result | None) -> Result | None:
    """A looked-up result without what the store adds to it (its row id and time), to compare with what was put."""
    return None if found is None else found.with_(store_id=None, created_at=None)


@pytest.fixture
def url(postgres_url: str) -> str:  # noqa: F811 - the fixture imported above
    return fresh_database(postgres_url)


def run_python(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True, stdout=subprocess.PIPE)


def test_round_trip_on_postgresql(url: str) -> None:
    store = ResultStore(url)
    assert store.url.get_backend_name() == "postgresql"
    key = store.put(result("bert"), key_fields("bert"))
    assert key == make_key("bert", WORKLOAD, "all", "a100-80gb", ENV)
    assert store.get(key) == result("bert")
    assert plain(store.lookup(wanted())) == result("bert")
    assert store.lookup(wanted(hardware="t4")) is None
    found = store.lookup(wanted(machine={"torch": "2.13.0+cu126"}))
    assert plain(found) == result("bert")  # any node's result for that hardware (the cluster's reuse lookup)
    assert store.lookup(wanted(workload={**WORKLOAD, "image_size": None, "seq_len": 64})) is None

    failure = Result.from_dict({"model": "bert", "workload": WORKLOAD, "error": "node died during the job"})
    store.put(failure, key_fields("bert"))
    assert plain(store.lookup(wanted())) == result("bert")  # a failure never replaces it
    store.put(result("gpt2", median=float("nan")), key_fields("gpt2"))
    rows = store.list()
    assert [row.model for row in rows] == ["gpt2", "bert", "bert"]
    assert rows[0].latency_ms.median is None  # NaN stored as null: PostgreSQL JSON has no NaN
    assert rows[0].created_at.endswith("+00:00") and rows[0].hardware.id == "a100-80gb"
    assert [row.model for row in store.list(hardware="a100-80gb")] == ["gpt2", "bert", "bert"]
    assert rows[0].extra["note"] == "ünïcode ✓"
    assert store.delete([row.store_id for row in rows if row.error]) == 1
    assert len(store.list()) == 2


def test_rows_survive_reopen_and_a_new_process(url: str) -> None:
    with ResultStore(url) as store:
        store.put(result("bert"), key_fields("bert"))
    reader = run_python(
        f"""
        from efficiency.store.store import ResultStore
        print(len(ResultStore({url!r}).list()))
        """
    )
    assert reader.communicate(timeout=60)[0].strip() == "1"
    assert plain(ResultStore(url).lookup(wanted())) == result("bert")


def test_two_processes_writing_at_once_lose_nothing(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    writer = """
        import os, time
        from efficiency.results import Result
        from efficiency.store.store import ResultStore
        print("ready", flush=True)
        while not os.path.exists({go!r}):
            time.sleep(0.005)
        store = ResultStore({url!r})  # both create the schema of the fresh database at once
        fields = lambda model: {{"model": model, "workload": {{}}, "metrics": "all", "hardware": "h", "env": {{}}}}
        for i in range(100):
            timed = Result.from_dict({{"model": "w{n}-%d" % i, "latency_ms": {{"median": i}}}})
            store.put(timed, fields("w{n}-%d" % i))
            if i % 10 == 0:  # both race on the same keys too
                store.put(Result.from_dict({{"model": "shared-%d" % i, "by": {n}}}), fields("shared-%d" % i))
        """
    writers = [run_python(writer.format(go=str(go), url=url, n=n)) for n in (1, 2)]
    assert [process.stdout.readline().strip() for process in writers] == ["ready", "ready"]
    go.touch()
    started = time.monotonic()
    assert [process.wait(timeout=120) for process in writers] == [0, 0]
    print(f"2 x 110 writes in {time.monotonic() - started:.1f} s")
    rows = ResultStore(url).list()
    assert len(rows) == 210
    assert {row.model for row in rows} == {f"w{n}-{i}" for n in (1, 2) for i in range(100)} | {
        f"shared-{i}" for i in range(0, 100, 10)
    }
