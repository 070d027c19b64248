"""Fixtures shared by the runner, fault-injection and cluster tests."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from efficiency.counters import fvcore_helper
from efficiency.run.runner import LocalExecutor

# Whatever the tests write (kept configs, traceback logs, calibrations) goes to a throwaway folder, never the
# user's data folder; a test that needs its own sets EFFICIENCY_DATA_DIR itself.
os.environ.setdefault("EFFICIENCY_DATA_DIR", tempfile.mkdtemp(prefix="efficiency-tests-"))
# Tests check the reuse logic, not how quiet the machine is: a stored result measured while the suite itself kept
# the cores busy is marked noisy (honestly) but still reused. tests/test_noise.py unsets this to check the rule.
os.environ.setdefault("EFFICIENCY_REUSE_NOISY", "1")
# A conv model's fvcore trace runs in a child forked per count, which sees each test's monkeypatches; a warm helper
# forked by an earlier test would not. tests/test_fvcore_helper.py turns helpers on where it tests them.
fvcore_helper.ENABLED = False


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """Its own empty data folder and results store, offline (a test module may define its own to add more)."""
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def executor() -> LocalExecutor:
    """A warm forkserver executor, started once per test module."""
    executor = LocalExecutor()
    executor.warm_up()
    return executor


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head with hw:test-a, one more node with hw:test-b, all on 127.0.0.1, this process connected as the driver.

    One per module that asks (a start costs about 5 s), shut down at the module's end whatever happens: a
    process that stays a Ray driver changes how later tests' forked workers die (a segfault read as exit 1).
    Skips when Ray is not installed (optional: pip install -r requirements-cluster.txt).
    """
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (optional: pip install -r requirements-cluster.txt)")
    from efficiency.run.ray.cluster import import_ray

    ray = import_ray("127.0.0.1")  # sets RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 first: every address stays loopback
    from ray.cluster_utils import Cluster

    started = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": "127.0.0.1",
            "num_cpus": 1,
            "resources": {"hw:test-a": 1},
            "include_dashboard": False,
        },
    )
    try:
        cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1, resources={"hw:test-b": 1})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level="WARNING")
        print(f"cluster up in {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
