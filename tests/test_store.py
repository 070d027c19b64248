"""Results store: round trip, lookup, reopen, concurrent writers, writers killed mid-transaction, bad locations."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from efficiency.results import Result
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, StoreError, make_key

ROOT = Path(__file__).resolve().parents[1]
ENV = {"cpu_model": "Test CPU", "threads": 2, "gpu": None, "torch": "2.13.0", "transformers": "5.23.0"}
WORKLOAD = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}


def key_fields(model: str, **overrides: object) -> dict:
    return {"model": model, "workload": WORKLOAD, "metrics": "all", "hardware": "local-cpu", "env": ENV, **overrides}


def result(model: str, median: float = 12.5, **extra: object) -> Result:
    """A measured result as ``run_job`` writes it: on this machine's CPU, with its fingerprint."""
    return Result.from_dict(
        {
            "model": model,
            "workload": WORKLOAD,
            "params": 110_000_000,
            "latency_ms": {"median": median, "p10": median * 0.9, "p90": median * 1.1, "std": 0.3, "n": 30},
            "hardware": {"id": "local-cpu", "device": "cpu", "name": "Test CPU", "threads": 2, "environment": ENV},
            "uncounted_ops": ["aten::gelu"],
            "measured": True,
            **extra,
        }
    )


def wanted(model: str = "bert", **overrides: object) -> Wanted:
    """This machine asking for a measured result on its CPU with 2 threads."""
    asked = {"model": model, "workload": WORKLOAD, "measured": True, "hardware": "local-cpu", "device": "cpu"}
    return Wanted(**{**asked, "threads": 2, "machine": ENV, **overrides})


def plain(found: Result | None) -> Result | None:
    """A looked-up result without what the store adds to it (its row id and time), to compare with what was put."""
    return None if found is None else found.with_(store_id=None, created_at=None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


def run_python(code: str, **kwargs: object) -> subprocess.Popen:
    """A separate Python process, as another dashboard session or CLI run would be."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, text=True, **kwargs)


def test_round_trip_lookup_list_delete(db: Path) -> None:
    store = ResultStore(str(db))
    key = store.put(result("bert"), key_fields("bert"))
    assert key == make_key("bert", WORKLOAD, "all", "local-cpu", ENV)
    # Only the key subset of the fingerprint matters: an extra field (the OS string) does not change the key.
    assert make_key("bert", WORKLOAD, "all", "local-cpu", {**ENV, "os": "Linux-6"}) == key
    assert make_key("bert", WORKLOAD, "all", "local-cpu", {**ENV, "threads": 1}) != key
    assert store.get(key) == result("bert")
    found = store.lookup(wanted())
    assert plain(found) == result("bert")
    assert found.store_id == store.list()[0].store_id and found.created_at.endswith("+00:00")
    assert store.lookup(wanted(workload={**WORKLOAD, "batch_size": 8})) is None
    assert store.lookup(wanted(threads=1)) is None
    assert store.lookup(wanted(machine={**ENV, "cpu_model": "Other CPU"})) is None  # another machine's local-cpu
    assert plain(store.lookup(wanted(machine={**ENV, "os": "Linux-6"}))) == result("bert")

    store.put(result("bert", median=11.0), key_fields("bert"))  # same key: replaced, not duplicated
    store.put(result("gpt2"), key_fields("gpt2"))
    rows = store.list()
    assert [row.model for row in rows] == ["gpt2", "bert"]
    assert rows[1].latency_ms.median == 11.0
    assert plain(rows[1]) == store.get(key) == result("bert", median=11.0)  # the listed row is the one under key
    assert rows[1].created_at.endswith("+00:00")
    assert [row.model for row in store.list(model="bert")] == ["bert"]
    assert len(store.list(limit=1)) == 1
    assert store.list(hardware="elsewhere") == []

    assert store.delete([rows[0].store_id]) == 1
    assert [row.model for row in store.list()] == ["bert"]


def test_a_cluster_result_is_found_by_its_hardware_whatever_node_measured_it(db: Path) -> None:
    """Keyed by the node's fingerprint, found by the driver by hardware id and software release."""
    store = ResultStore(str(db))
    node = {"cpu_model": "Node CPU", "threads": 56, "gpu": "A100", "torch": "2.13.0+cu126", "transformers": "5.23.0"}

    def on_node(hardware: str, device: str, env: dict = node, **extra: object) -> Result:
        measured_on = {"id": hardware, "device": device, "threads": env["threads"], "environment": env}
        return result("bert", hardware=measured_on, **extra)

    on_a100 = on_node("cuda-a100", "cuda")
    on_xeon = on_node("cpu-big-xeon", "cpu", {**node, "gpu": None})
    store.put(on_a100, key_fields("bert", hardware="cuda-a100", env=node))
    store.put(on_xeon, key_fields("bert", hardware="cpu-big-xeon", env={**node, "gpu": None}))
    store.put(on_node("cuda-t4", "cuda", error="boom"), key_fields("bert", hardware="cuda-t4", env=node))
    here = {"torch": "2.13.0+cpu", "transformers": "5.23.0"}  # a CPU-only driver: another build, same release

    def find(**overrides: object) -> Result | None:
        asked = {"model": "bert", "workload": WORKLOAD, "measured": True, "hardware": "cuda-a100", "machine": here}
        return plain(store.lookup(Wanted(**{**asked, **overrides})))

    assert find() == on_a100
    assert store.get(make_key("bert", WORKLOAD, "all", "cuda-a100", {**ENV, **here})) is None  # the exact key cannot
    assert find(threads=56) == on_a100
    assert find(threads=8) == on_a100  # on a GPU the thread count is not held against a result
    assert find(hardware="cpu-big-xeon", threads=56) == on_xeon and find(hardware="cpu-big-xeon", threads=8) is None
    assert find(machine={"torch": "2.12.1", "transformers": "5.23.0"}) is None
    assert find(machine={"torch": None}) == on_a100  # unknown here: not held against it
    assert find(workload={**WORKLOAD, "seq_len": 64}) is None
    assert find(workload={**WORKLOAD, "extra": 1}) is None  # the whole workload must match, not only its columns
    assert find(measured=False) is None and find(model="gpt2") is None
    assert [row.error for row in store.list(hardware="cuda-t4")] == ["boom"]
    assert find(hardware="cuda-t4") is None  # a failure is never reused
    newer = on_node("cuda-a100", "cuda", {**node, "cpu_model": "Other node CPU"}, latency_ms={"median": 1.0})
    store.put(newer, key_fields("bert", hardware="cuda-a100", env={**node, "cpu_model": "Other node CPU"}))
    assert find() == newer


def test_rows_survive_reopen_and_a_new_process(db: Path) -> None:
    ResultStore(str(db)).put(result("bert"), key_fields("bert"))
    reader = run_python(
        f"""
        from efficiency.store.store import ResultStore
        print(len(ResultStore({str(db)!r}).list()))
        """,
        stdout=subprocess.PIPE,
    )
    assert reader.communicate(timeout=60)[0].strip() == "1"
    assert [row.model for row in ResultStore(str(db)).list()] == ["bert"]


def test_failures_are_stored_but_never_replace_or_pose_as_a_success(db: Path) -> None:
    store = ResultStore(str(db))
    failure = result("bert", error="timed out after 3 s", error_kind="timeout")  # what a success would be, but failed
    store.put(failure, key_fields("bert"))
    assert store.lookup(wanted()) is None
    assert store.list()[0].error == "timed out after 3 s"

    key = store.put(result("bert"), key_fields("bert"))  # a success clears the failure
    assert [row.error for row in store.list()] == [None]
    store.put(failure, key_fields("bert"))  # a later failure (a --fresh rerun) keeps the success
    assert plain(store.lookup(wanted())) == result("bert")
    assert store.get(key) == result("bert")
    assert sorted(str(row.error) for row in store.list()) == ["None", "timed out after 3 s"]


def test_non_finite_numbers_become_null_and_objects_are_refused(db: Path) -> None:
    store = ResultStore(str(db))
    key = store.put(result("bert", median=float("nan")), key_fields("bert"))
    assert store.get(key).latency_ms.median is None
    with pytest.raises(StoreError, match="not JSON-able"):
        store.put(result("bert", note=object()), key_fields("bert"))


def test_two_processes_writing_at_once_lose_nothing(db: Path) -> None:
    ResultStore(str(db))  # create the schema first; both writers then open an existing store
    writer = """
        import sys
        from efficiency.results import Result
        from efficiency.store.store import ResultStore
        store = ResultStore({db!r})
        for i in range(200):
            store.put(Result.from_dict({{"model": "w{n}-%d" % i, "workload": {{}}, "latency_ms": {{"median": i}}}}),
                      {{"model": "w{n}-%d" % i, "workload": {{}}, "metrics": "all", "hardware": "h", "env": {{}}}})
        """
    writers = [run_python(writer.format(db=str(db), n=n)) for n in (1, 2)]
    assert [process.wait(timeout=120) for process in writers] == [0, 0]
    rows = ResultStore(str(db)).list()
    assert len(rows) == 400
    assert {row.model for row in rows} == {f"w{n}-{i}" for n in (1, 2) for i in range(200)}


def test_writer_killed_mid_transaction_leaves_committed_rows_intact(db: Path) -> None:
    writer = run_python(
        f"""
        import time
        from efficiency.results import Result
        from efficiency.store.store import ResultStore, results_table
        store = ResultStore({str(db)!r})
        for i in range(20):
            store.put(Result.from_dict({{"model": "m%d" % i, "workload": {{}}}}),
                      {{"model": "m%d" % i, "workload": {{}}, "metrics": "all", "hardware": "h", "env": {{}}}})
        with store.engine.execution_options(sqlite_immediate=True).begin() as conn:
            conn.execute(results_table.delete())  # uncommitted: must vanish with the process
            print("in transaction", flush=True)
            time.sleep(600)
        """,
        stdout=subprocess.PIPE,
    )
    assert writer.stdout.readline().strip() == "in transaction"
    writer.send_signal(signal.SIGKILL)
    assert writer.wait(timeout=30) == -signal.SIGKILL

    store = ResultStore(str(db))  # readable, and writable again: the dead writer's lock is gone
    assert sorted(row.model for row in store.list()) == sorted(f"m{i}" for i in range(20))
    store.put(result("after"), key_fields("after"))
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_writer_killed_while_streaming_puts_loses_no_committed_row(db: Path) -> None:
    writer = run_python(
        f"""
        from efficiency.results import Result
        from efficiency.store.store import ResultStore
        store = ResultStore({str(db)!r})
        blob = "x" * 200_000  # big rows: the kill is likely to land inside a transaction
        for i in range(100_000):
            store.put(Result.from_dict({{"model": "m%d" % i, "workload": {{}}, "blob": blob}}),
                      {{"model": "m%d" % i, "workload": {{}}, "metrics": "all", "hardware": "h", "env": {{}}}})
            print(i, flush=True)
        """,
        stdout=subprocess.PIPE,
    )
    for _ in range(40):
        reported = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    rows = ResultStore(str(db)).list()
    committed = {row.model for row in rows}
    assert {f"m{i}" for i in range(reported + 1)} <= committed  # every reported commit is there
    assert all(row.error is None and len(row.extra["blob"]) == 200_000 for row in rows)  # and none is torn


def test_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path / "data"))
    assert ResultStore().url.database == str(tmp_path / "data" / "results.db")
    monkeypatch.setenv("EFFICIENCY_DB", str(tmp_path / "env.db"))
    assert ResultStore().url.database == str(tmp_path / "env.db")
    assert ResultStore(f"sqlite:///{tmp_path / 'arg.db'}").url.database == str(tmp_path / "arg.db")
    assert ResultStore("sqlite://").url.database is None  # in memory, for a throwaway session
    assert ResultStore("sqlite:///:memory:").url.database == ":memory:"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("{tmp}/no/such/folder/results.db", "does not exist"),
        ("{tmp}", "is a folder"),
        ("/dev/null", "not a regular file"),
        ("", "is empty"),
        ("   ", "is empty"),
        ("postgresql+psycopg://user@host:notaport/db", "malformed"),
        ("nosuchdb://user@host/db", "unknown database kind"),
        ("postgresql+psycopg://user:s3cret@host:notaport/db", r"user:\*\*\*@host"),
    ],
)
def test_bad_locations_give_one_line_errors(tmp_path: Path, location: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        ResultStore(location.format(tmp=tmp_path))
    assert "\n" not in str(caught.value) and "s3cret" not in str(caught.value)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="not a database") as caught:
        ResultStore(str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_place_that_is_not_writable(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreError, match="not writable"):
        ResultStore(str(locked / "results.db"))


def test_a_newer_schema_is_refused_clearly(db: Path) -> None:
    ResultStore(str(db))
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer than this program's 1"):
        ResultStore(str(db))
