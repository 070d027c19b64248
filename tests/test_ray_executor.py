"""Ray executor and cluster CLI: placement by hardware resource, results in the store, a node dying mid-job.

The cluster tests start a two-node Ray cluster on this machine, on loopback only, and skip when Ray is not
installed (requirements-cluster.txt); the CLI tests need no Ray.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: keep every address on loopback

import argparse
import importlib.util
import ipaddress
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest
from process_checks import gone

from efficiency.cli import cluster as cli_cluster
from efficiency.results import MeasuredOn, Result
from efficiency.run.ray.nodes import advertised_resources, head_command, worker_command
from efficiency.run.runner import Job
from efficiency.store.store import ResultStore

TESTS = Path(__file__).resolve().parent
ME = "test_ray_executor:"  # targets below, imported by the nodes' forked workers (PYTHONPATH=tests)
FAULTS = "fault_targets:"
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (optional)")
DEVICES = [
    {"id": "cpu", "kind": "cpu", "name": "Intel(R) Xeon(R) Platinum 8480+"},
    {"id": "cuda:0", "kind": "gpu", "name": "NVIDIA A100-SXM4-80GB"},
    {"id": "cuda:1", "kind": "gpu", "name": "NVIDIA A100-SXM4-80GB"},
]


def where_am_i(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    """A job target that says which processes it runs under, so the test can find its node's raylet."""
    progress("measure", 0.5)
    return {"model": job["model"], "ancestors": [parent.pid for parent in psutil.Process().parents()]}


# ---- cluster CLI: commands and resources, no Ray needed ----


def test_resources_come_from_detection_or_from_named_hardware():
    assert advertised_resources(DEVICES) == {
        "hw:cpu-intel-r-xeon-r-platinum-8480+": 1.0,
        "hw:cuda-nvidia-a100-sxm4-80gb": 2.0,
    }
    assert advertised_resources(DEVICES, ["a100-80gb"]) == {"hw:a100-80gb": 2.0}
    assert advertised_resources(DEVICES[:1], ["a100-80gb", "xeon-8480plus=1"]) == {
        "hw:a100-80gb": 1.0,
        "hw:xeon-8480plus": 1.0,
    }
    with pytest.raises(ValueError, match="lowercase slug"):
        advertised_resources(DEVICES, ["A100 80GB"])
    with pytest.raises(ValueError, match="whole number"):
        advertised_resources(DEVICES, ["a100-80gb=two"])


def test_head_stays_on_loopback_unless_told_and_workers_need_a_lan_head():
    argv, env = head_command(6379, "127.0.0.1", {"hw:cpu-x": 1.0})
    assert argv[1:] == [
        "start",
        "--head",
        "--port",
        "6379",
        "--node-ip-address",
        "127.0.0.1",
        "--include-dashboard=false",
        "--resources",
        '{"hw:cpu-x": 1.0}',
    ]
    assert env == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    assert head_command(6380, "192.168.1.10", {})[1] == {}
    argv = worker_command("192.168.1.10:6379", None, {"hw:cuda-t4": 1.0}, block=True)
    assert argv[1:] == ["start", "--address", "192.168.1.10:6379", "--resources", '{"hw:cuda-t4": 1.0}', "--block"]
    with pytest.raises(ValueError, match="loopback"):
        worker_command("127.0.0.1:6379", None, {})
    with pytest.raises(ValueError, match="HOST:PORT"):
        worker_command("192.168.1.10", None, {})


def _parse(argv: list[str]) -> tuple[argparse.Namespace, dict]:
    parser = argparse.ArgumentParser()
    commands = cli_cluster.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv), commands


def test_worker_prints_the_command_it_runs(monkeypatch, capsys):
    monkeypatch.setattr("efficiency.hardware.detect.local_devices", lambda: DEVICES)
    args, commands = _parse(["worker", "--address", "10.0.0.5:6379", "--dry-run"])
    assert commands[args.command](args) == 0
    printed = capsys.readouterr().out
    assert "start --address 10.0.0.5:6379 --resources" in printed
    assert '"hw:cuda-nvidia-a100-sxm4-80gb": 2.0' in printed


def test_without_ray_the_commands_say_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setattr(cli_cluster, "ray_available", lambda: False)
    for argv in (["head"], ["worker", "--address", "10.0.0.5:6379"]):
        args, commands = _parse(argv)
        assert commands[args.command](args) == 2
        assert "Ray is not installed; pip install -r requirements-cluster.txt" in capsys.readouterr().err


def test_nothing_imports_ray_unless_asked():
    code = (
        "import sys, efficiency.cli.main, efficiency.run.ray.nodes, efficiency.run.ray.cluster, "
        "efficiency.run.ray.executor; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=TESTS.parent, timeout=120)


def test_the_driver_times_jobs_from_their_start_and_queued_jobs_from_submission():
    from efficiency.run.ray.executor import RayExecutor

    settings = SimpleNamespace(grace_s=5.0, queue_timeout_s=60.0)  # _overdue reads only these
    job = Job("m", hardware="cpu-x", timeout_s=10)
    assert RayExecutor._overdue(settings, job, start=100.0, submitted=0.0, now=114.0) is None
    assert RayExecutor._overdue(settings, job, 100.0, 0.0, 115.5) == ("timed out after 10 s", "timeout")
    assert RayExecutor._overdue(settings, job, None, 0.0, 59.0) is None
    message, kind = RayExecutor._overdue(settings, job, None, 0.0, 61.0)
    assert (message, kind) == ("waited 60 s for a free node with hw:cpu-x and never started", "timeout")
    settings.queue_timeout_s = None
    assert RayExecutor._overdue(settings, job, None, 0.0, 1e6) is None


def test_the_driver_reuses_what_any_node_stored_for_that_hardware(tmp_path: Path):
    """The Runner's reuse for a cluster job goes through the executor: node fingerprint unknown, release matched."""
    from efficiency.run.ray.executor import RayExecutor

    store = ResultStore(str(tmp_path / "results.db"))
    node = {"cpu_model": "Node CPU", "threads": 8, "gpu": "A100", "torch": "2.13.0+cu126", "transformers": "5.23.0"}
    workload = {"batch_size": 1, "seq_len": 8, "dtype": "float32", "mode": "inference"}
    job = Job("bert", workload, hardware="cuda-a100", device="cuda")
    on_node = MeasuredOn("cuda-a100", device="cuda", threads=8, environment=node)
    result = Result(model="bert", workload=workload, measured=True, hardware=on_node)
    store.put(result, {"model": "bert", "workload": workload, "metrics": "all", "hardware": "cuda-a100", "env": node})
    driver = SimpleNamespace(
        _env_here=lambda threads: {"cpu_model": "Laptop", "torch": "2.13.0+cpu", "transformers": "5.23.0"}
    )
    found = RayExecutor.find_stored(driver, store, job)
    assert found is not None and found.with_(store_id=None, created_at=None) == result
    assert RayExecutor.find_stored(driver, store, Job("bert", job.workload, hardware="cuda-t4", device="cuda")) is None
    driver = SimpleNamespace(_env_here=lambda threads: {"torch": "2.14.0", "transformers": "5.23.0"})
    assert RayExecutor.find_stored(driver, store, job) is None  # other software: measure again


def test_an_address_where_nothing_listens_is_one_line_at_once_not_minutes_of_retries():
    from efficiency.run.ray.cluster import RayUnavailableError, check_reachable

    started = time.monotonic()
    with pytest.raises(RayUnavailableError, match=r"^no Ray cluster answers at 127\.0\.0\.1:1 \(Connection refused\)"):
        check_reachable("127.0.0.1:1")
    with pytest.raises(RayUnavailableError, match="answers at 127.0.0.1:1 "):
        check_reachable("ray://127.0.0.1:1")
    assert time.monotonic() - started < 2


# ---- a real cluster on loopback (the session's ``cluster`` fixture, conftest.py) ----


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a v6 socket bound to v4 loopback
    return (mapped or address).is_loopback


def _raylet_pid(node: Any) -> int:
    from ray._private import ray_constants

    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


def _executor(store: ResultStore) -> Any:
    from efficiency.run.ray.executor import RayExecutor

    env = {"env_vars": {"PYTHONPATH": str(TESTS)}}  # the nodes' forked workers import the test targets
    preload = ("torch", "efficiency.run.runner", "fault_targets", "test_ray_executor")  # once per node, not per job
    return RayExecutor(store_url=store.url.database, preload=preload, runtime_env=env)


@needs_ray
def test_the_cluster_listens_on_loopback_only(cluster: Any):
    processes = [
        psutil.Process(info.process.pid)
        for node in cluster.list_all_nodes()
        for infos in node.all_processes.values()
        for info in infos
    ]
    processes += [child for process in processes for child in process.children(recursive=True)]
    addresses = {
        (connection.laddr.ip, process.name())
        for process in processes
        for connection in process.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    }
    assert addresses, "found no listening sockets to check"
    exposed = {(ip, name) for ip, name in addresses if not _loopback(ip)}
    assert not exposed, f"Ray listens beyond loopback: {exposed}"


@needs_ray
def test_jobs_run_where_their_hardware_is_and_reach_the_store(cluster: Any, tmp_path: Path):
    from efficiency.run.ray.cluster import cluster_hardware

    store = ResultStore(str(tmp_path / "results.db"))
    assert [(h["id"], h["nodes"], h["count"]) for h in cluster_hardware()] == [("test-a", 1, 1.0), ("test-b", 1, 1.0)]
    jobs = [
        Job("a-1", {"n": 1}, target=ME + "where_am_i", hardware="test-a"),
        Job("b-1", {"n": 1}, target=ME + "where_am_i", hardware="test-b"),
        Job("a-2", {"n": 2}, target=ME + "where_am_i", hardware="test-a"),
        Job("b-hang", target=FAULTS + "sleep_forever", hardware="test-b", timeout_s=2),
        Job("b-2", {"n": 2}, target=ME + "where_am_i", hardware="test-b"),
        Job("nowhere", target=ME + "where_am_i", hardware="test-missing"),
    ]
    events: list[tuple[str, str]] = []
    started = time.monotonic()
    results = dict(_executor(store).execute(jobs, lambda model, phase, _f: events.append((model, phase))))
    print(f"6 jobs in {time.monotonic() - started:.1f} s")

    assert sorted(results) == list(range(len(jobs)))
    raylets = {"test-a": _raylet_pid(cluster.head_node), "test-b": _raylet_pid(cluster.list_all_nodes()[1])}
    node_ids = {"test-a": cluster.head_node.node_id, "test-b": cluster.list_all_nodes()[1].node_id}
    for index, job in enumerate(jobs):
        result = results[index]
        if job.target.endswith("where_am_i") and job.hardware != "test-missing":
            assert result.get("error") is None, result
            assert raylets[job.hardware] in result["ancestors"]  # it ran under that node's raylet
            assert result["ray_node"]["node_id"] == node_ids[job.hardware]
            assert result["stored_by"] == "node"
            assert [phase for model, phase in events if model == job.model] == ["started", "measure", "finished"]
    assert results[3]["error"] == "timed out after 2 s" and results[3]["error_kind"] == "timeout"
    assert results[5]["error_kind"] == "refused"
    assert results[5]["error"].startswith("no node in the Ray cluster offers hw:test-missing (offered: hw:test-a")
    assert results[5]["stored_by"] == "driver"

    rows = store.list()
    assert sorted(row.model for row in rows) == sorted(job.model for job in jobs)
    assert {row.model for row in store.list(hardware="test-b")} == {"b-1", "b-hang", "b-2"}
    assert sum(1 for row in rows if row.error) == 2


@needs_ray
def test_a_node_that_dies_mid_job_gives_an_error_result_not_a_hang(cluster: Any, tmp_path: Path):
    victim = cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1, resources={"hw:test-victim": 1})
    cluster.wait_for_nodes()
    store = ResultStore(str(tmp_path / "results.db"))
    pid_file = tmp_path / "job.pid"
    jobs = [
        Job("doomed", {"job_pid_file": str(pid_file)}, target=FAULTS + "sleep_forever", hardware="test-victim"),
        Job("fine", {"n": 1}, target=FAULTS + "ok", hardware="test-a"),
    ]
    jobs[0].timeout_s = 30
    killed_at: list[float] = []

    def on_progress(model: str, phase: str, _fraction: float) -> None:
        if model == "doomed" and phase == "measure":  # it is running on the victim: pull the plug
            killed_at.append(time.monotonic())
            cluster.remove_node(victim, allow_graceful=False)

    results = dict(_executor(store).execute(jobs, on_progress))
    took = time.monotonic() - killed_at[0]
    print(f"error result {took:.1f} s after the node died")

    assert results[0]["error_kind"] == "crash"
    assert results[0]["error"].startswith("node died during the job: ")
    assert took < jobs[0].timeout_s
    assert results[1].get("error") is None and results[1]["latency_ms"] == {"median": 1.0}
    assert gone(int(pid_file.read_text())), "the job's process outlived its node"
    stored = {row.model: row for row in store.list()}
    assert stored["doomed"].error.startswith("node died during the job")
    assert stored["fine"].error is None
