"""The dashboard on a Ray cluster: pickers list the cluster's hardware next to this machine's devices and the
catalog chips, links accept cluster ids, and the Hardware page measures on the cluster beside its estimates.

Page tests without Ray replace the cluster glue (``efficiency.ui.cluster``) with stand-ins; the last test drives
the Hardware page against the session's loopback cluster (``cluster`` in conftest.py) and skips without Ray.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from efficiency.hardware import get_hardware
from efficiency.run.runner import Job
from efficiency.store.store import ResultStore
from efficiency.ui import cluster as ui_cluster
from efficiency.ui import state
from tests.compare_view import compare_table

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 90
DEVICES = [{"id": "cpu", "kind": "cpu", "name": "Test CPU", "usable_cpus": 2, "memory_bytes": 2**33}]
LISTED = [{"id": "cpu-big-xeon", "nodes": 2, "count": 2.0, "available": 2.0}, {"id": "cuda-a100", "nodes": 1}]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (optional)")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty results store, and no cluster unless a test sets one."""
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    monkeypatch.delenv(ui_cluster.ADDRESS_ENV, raising=False)
    return tmp_path


@pytest.fixture
def fake_cluster(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """A connected cluster offering LISTED, without Ray: the pages read it through ``cluster.hardware``."""
    monkeypatch.setenv(ui_cluster.ADDRESS_ENV, "10.0.0.5:6379")
    monkeypatch.setattr(ui_cluster, "_listed", lambda where, node_ip: (LISTED, None))
    return LISTED


# ---- pickers and links, no Ray ----


def test_measured_options_group_the_cluster_and_this_machine_with_labels():
    options = ui_cluster.measured_options(LISTED, DEVICES)
    assert list(options) == ["cluster:cpu-big-xeon", "cluster:cuda-a100", "cpu"]
    assert options["cluster:cpu-big-xeon"] == "cpu-big-xeon · cluster, 2 nodes"
    assert options["cluster:cuda-a100"] == "cuda-a100 · cluster, 1 node"
    assert options["cpu"] == "CPU · 2 cores · this machine"
    assert list(ui_cluster.measured_options(LISTED, DEVICES, local_first=True)) == [
        "cpu",
        "cluster:cpu-big-xeon",
        "cluster:cuda-a100",
    ]
    assert list(ui_cluster.measured_options([], DEVICES)) == ["cpu"]
    assert ui_cluster.job_device("cuda-a100") == "cuda" and ui_cluster.job_device("cpu-big-xeon") == "cpu"
    assert ui_cluster.measured_name("cluster:cuda-a100") == "cuda-a100" and ui_cluster.measured_name("cpu") == (
        "local-cpu"
    )


def test_url_state_accepts_cluster_ids_only_when_they_are_offered():
    values, warnings = state.parse({"device": ["cluster:cuda-a100"]}, ["cpu", "cluster:cuda-a100"], 2)
    assert values == {"device": "cluster:cuda-a100"} and warnings == []
    values, warnings = state.parse({"device": ["cluster:cuda-a100"]}, ["cpu"], 2)
    assert values == {} and "device: 'cluster:cuda-a100' ignored; accepted: cpu" in warnings[0]


def test_without_an_address_there_is_no_cluster_and_ray_is_never_imported():
    code = (
        "import os, sys; os.environ.pop('EFFICIENCY_RAY_ADDRESS', None); "
        "from efficiency.ui import cluster, runs, state; "
        "assert cluster.address() is None and cluster.hardware() == [] and cluster.picker_ids() == []; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_an_unreachable_cluster_is_one_warning_and_the_page_goes_on(data_dir, monkeypatch):
    monkeypatch.setenv(ui_cluster.ADDRESS_ENV, "127.0.0.1:1")  # nothing listens on port 1
    if "ray" in sys.modules:  # this process may be connected to the session's cluster, which connect() would reuse
        monkeypatch.setattr(sys.modules["ray"], "is_initialized", lambda: False)
    ui_cluster._listed.clear()
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    (warning,) = [w.value.replace("\\", "") for w in at.warning]  # unescaped: markdown escapes every ':'
    assert warning.startswith("Ray cluster unavailable (`EFFICIENCY_RAY_ADDRESS`=127.0.0.1:1)")
    assert "no Ray cluster answers at 127.0.0.1:1 (Connection refused)" in warning and "\n" not in warning
    assert not any("cluster" in option for option in at.selectbox(key="cmp_device").options)


def test_compare_lists_cluster_hardware_accepts_it_from_a_link_and_runs_it_on_the_cluster(
    data_dir, fake_cluster, monkeypatch
):
    """A fake executor stands in for Ray: this tests the page's wiring (the Ray path is tested below)."""
    ran: list[Job] = []

    class FakeRay:
        stores_results = False

        def memory_available(self, job: Job) -> None:
            return None

        def find_stored(self, store: ResultStore, job: Job) -> None:
            return None

        def execute(self, jobs: Sequence[Job], on_progress: Any) -> Iterator[tuple[int, dict]]:
            for index, job in enumerate(jobs):
                ran.append(job)
                on_progress(job.model, "inference", 0.5)
                hardware = {"id": job.hardware, "device": job.device, "name": "Big Xeon", "threads": 56}
                yield (
                    index,
                    {
                        "model": job.model,
                        "workload": job.workload,
                        "params": 1.4e7,
                        "flops": 1e9,
                        "measured": True,
                        "latency_ms": {"median": 3.0},
                        "hardware": hardware,
                    },
                )

    monkeypatch.setattr(ui_cluster, "executor", lambda store: FakeRay())
    at = AppTest.from_file(str(ROOT / "pages/1_Compare.py"), default_timeout=TIMEOUT)
    params = {"models": "electra-small-discriminator", "run": "measured", "device": "cluster:cpu-big-xeon"}
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    picker = at.selectbox(key="cmp_device")
    assert picker.value == "cluster:cpu-big-xeon"
    assert "cpu-big-xeon · cluster, 2 nodes" in picker.options and "cuda-a100 · cluster, 1 node" in picker.options
    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [(job.model, job.hardware, job.device, job.threads) for job in ran] == [
        ("electra-small-discriminator", "cpu-big-xeon", "cpu", None)
    ]
    table = compare_table(at)
    assert set(table["How obtained"]) == {"measured on Big Xeon (cpu, 56 threads)"}
    at.selectbox(key="cmp_device").set_value("cpu").run()  # this machine's CPU: the cluster's result is not it
    assert not at.dataframe and any("No measured results yet" in info.value for info in at.info)  # Table tab open


# ---- the Hardware page on a real loopback cluster ----


def _table(at: AppTest) -> Any:
    return next(frame.value for frame in at.dataframe if "How obtained" in frame.value.columns)


@needs_ray
def test_hardware_page_measures_on_cluster_hardware_beside_estimates(cluster, data_dir, monkeypatch):
    monkeypatch.setenv(ui_cluster.ADDRESS_ENV, cluster.address)
    monkeypatch.setenv(ui_cluster.NODE_IP_ENV, "127.0.0.1")
    model = "electra-small-discriminator"
    at = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    measured_picker = at.multiselect(key="hw_measured")
    assert measured_picker.options[:2] == ["test-a · cluster, 1 node", "test-b · cluster, 1 node"]
    assert any(option.endswith("· this machine") for option in measured_picker.options[2:])
    assert any(label.startswith("Raspberry Pi 5") for label in at.multiselect(key="hw_chips").options)  # by name

    at.multiselect(key="hw_models").set_value([model])
    at.multiselect(key="hw_chips").set_value(["raspberry-pi-5"])
    at.multiselect(key="hw_measured").set_value(["cluster:test-a", "cluster:test-b"])
    at.number_input(key="hw_seq").set_value(8)
    at.run()
    next(b for b in at.button if b.label == "Measure").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    table = _table(at).set_index("Hardware")
    pi = get_hardware("raspberry-pi-5").name  # estimated chips by name, as the pickers show them
    assert set(table.index) == {"test-a (measured)", "test-b (measured)", pi}
    for hardware in ("test-a (measured)", "test-b (measured)"):
        assert not table.loc[hardware, "estimated"] and table.loc[hardware, "Latency"] > 0
        assert table.loc[hardware, "How obtained"].startswith("measured on cluster: ")
    assert table.loc[pi, "estimated"]
    assert table.loc[pi, "How obtained"] == "estimated (roofline on datasheet figures)"
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert heatmap["layout"]["title"]["text"].startswith("Measured latency per model and hardware")
    assert sum("measured" in cell for cell in heatmap["data"][0]["text"][0]) == 2
    assert any("2 of 3 cells measured" in c.value for c in at.caption)

    store = ResultStore(str(data_dir / "results.db"))
    rows = store.list(model=model)
    assert sorted(row.hardware.id for row in rows) == ["test-a", "test-b"]  # once each: the node stored it
    assert all(row.error is None and row.measured for row in rows)
    next(b for b in at.button if b.label == "Measure").click().run()  # reused from the store: nothing runs
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [row.created_at for row in store.list(model=model)] == [row.created_at for row in rows]

    again = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=120).run()
    again.multiselect(key="hw_models").set_value([model])
    again.multiselect(key="hw_chips").set_value([])
    again.multiselect(key="hw_measured").set_value(["cluster:test-b"])
    again.number_input(key="hw_seq").set_value(8)
    again.run()  # a new visit that never presses Measure: the stored result is shown
    assert not again.exception and not again.error, [e.value for e in again.error]
    assert list(_table(again)["Hardware"]) == ["test-b (measured)"]
