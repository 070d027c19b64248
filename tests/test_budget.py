"""Issue 19, item 1: every measured job has a memory budget checked before it runs, and runs under a hard cap.

The estimate (``efficiency.run.budget``) replays the job weight-free on fake tensors; the Runner refuses a job
whose estimate passes what it may use, naming both and offering the static profile; every worker runs under a
cap (its own or the machine's default), held by ``RLIMIT_DATA`` in the worker and the parent's RSS watchdog.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest
from tiny_models import tiny_bert_config

from efficiency.models.loading import build_model, resolve, spec_from_config_dict
from efficiency.run import budget
from efficiency.run.budget import MemoryEstimate, _deepen, _replay, estimate_memory
from efficiency.run.job import MEMORY_CAP_FLOOR_BYTES, default_memory_cap_bytes, usable_memory
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.run.worker import LIMIT_ROOM_BYTES
from efficiency.specs import Workload
from efficiency.store.store import ResultStore

T = "fault_targets:"
GiB = 2**30
MiB = 2**20
OVERSIZED = ["profile", "electra-small-discriminator", "--metrics", "all", "--batch-size", "65536", "--seq-len", "512"]
REFUSAL = re.compile(
    r"needs ~[\d.]+ [GT]iB \(estimated: weights 51\.4 MiB, activations [\d.]+ [GT]iB\), "
    r"[\d.]+ [MGT]iB available; the static profile \(counts only\) still works"
)


class NoProcesses:
    """An executor that runs nothing and says 20 GiB are available: what the Runner decides before any process."""

    def memory_available(self, job: Job) -> int:
        return 20 * GiB

    def execute(self, jobs: Sequence[Job], on_progress: object) -> Iterator[tuple[int, dict]]:
        for index, job in enumerate(jobs):
            yield index, {"model": job.model, "workload": job.workload}


def tiny_bert(layers: int) -> object:
    return spec_from_config_dict(tiny_bert_config(layers), "tiny-bert", "local", "config.json")


# ---------------------------------------------------------------- the refusal


def test_a_refusal_names_the_estimate_its_parts_and_the_limit_and_offers_the_static_profile() -> None:
    estimate = MemoryEstimate(weights_bytes=54 * MiB, activations_bytes=41 * GiB, runtime_bytes=0)
    jobs = [Job("huge"), Job("huge-static", metrics="static"), Job("capped", memory_cap_bytes=GiB)]
    results = Runner(NoProcesses(), estimator=lambda job: estimate).run(jobs)
    assert results[0].error == (
        "needs ~41.1 GiB (estimated: weights 54 MiB, activations 41 GiB), 18 GiB available; "
        "the static profile (counts only) still works"
    )
    assert results[0].error_kind == "refused" and "--" not in results[0].error
    assert results[1].error is None  # a static profile runs weight-free: never refused
    assert results[2].error.endswith(", cap 1 GiB; the static profile (counts only) still works")


def test_what_a_job_may_use_is_the_available_memory_less_a_reserve() -> None:
    assert usable_memory(20 * GiB) == 18 * GiB  # a tenth kept back
    assert usable_memory(4 * GiB) == 3 * GiB  # at least 1 GiB kept back
    assert usable_memory(100 * MiB) == MEMORY_CAP_FLOOR_BYTES
    assert default_memory_cap_bytes() == pytest.approx(usable_memory(psutil.virtual_memory().available), rel=0.05)


def test_the_oversized_electra_run_is_refused_through_the_cli_before_it_starts(tmp_path, capsys, monkeypatch):
    """Issue 19: this run took the host down (23 GB resident before the OOM killer). It must end in one refusal,
    in under 5 s, with no worker started. Timed from ``main``; torch and transformers' modeling code are imported
    first, as any CLI run has them before its first job."""
    import transformers.modeling_utils  # noqa: F401 - the one-off import every profile pays

    from efficiency.cli.main import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    began = time.perf_counter()
    status = main([*OVERSIZED, "--json", "--db", str(tmp_path / "results.db")])
    seconds = time.perf_counter() - began
    (row,) = json.loads(capsys.readouterr().out)
    assert status == 1 and row["error_kind"] == "refused", row
    assert REFUSAL.fullmatch(row["error"]), row["error"]
    assert seconds < 5, f"refused after {seconds:.1f} s"
    started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not [p for p in started if p.is_running() and p.name().startswith("job:")]
    print(f"refused in {seconds:.2f} s: {row['error']}")


# ---------------------------------------------------------------- the estimate


def test_the_estimate_is_weight_free_and_does_not_grow_with_the_batch() -> None:
    spec = resolve("electra-small")
    estimate_memory(spec, Workload(batch_size=1, seq_len=512))  # the model's code is imported once
    rss = psutil.Process().memory_info().rss
    timings = []
    for batch in (1, 65536):
        began = time.perf_counter()
        estimate = estimate_memory(spec, Workload(batch_size=batch, seq_len=512))
        timings.append(time.perf_counter() - began)
    model = build_model(spec, device="meta")
    assert estimate.weights_bytes == sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert estimate.activations_bytes > 100 * GiB and int(estimate) > estimate.activations_bytes
    assert psutil.Process().memory_info().rss - rss < 200 * MiB, "the replay must allocate no tensor memory"
    assert timings[1] < 5 and timings[1] < 3 * timings[0] + 1, timings


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_depth_scaling_from_two_and_three_layers_matches_a_full_depth_replay(mode: str) -> None:
    workload = Workload(batch_size=4, seq_len=32, mode=mode)
    full = _replay(tiny_bert(6), workload)
    two, three = (_replay(tiny_bert(n), workload) for n in (2, 3))
    deepened = _deepen(two, three, 6)
    assert deepened.weights == full.weights and deepened.gradients == full.gradients
    assert full.activations <= deepened.activations <= 1.25 * full.activations + MiB


def test_training_adds_gradients_and_adamw_state_to_the_weights() -> None:
    spec = tiny_bert(2)
    inference = estimate_memory(spec, Workload(batch_size=2, seq_len=16))
    training = estimate_memory(spec, Workload(batch_size=2, seq_len=16, mode="training"))
    parameters = sum(p.numel() * 4 for p in build_model(spec, device="meta").parameters())  # float32
    assert training.weights_bytes == inference.weights_bytes > parameters  # weights hold the buffers too
    assert training.gradients_bytes == parameters  # every parameter is trainable
    assert 2 * parameters <= training.optimizer_state_bytes < 2 * parameters + 1024  # AdamW: 2 moments (+ steps)
    assert inference.gradients_bytes == inference.optimizer_state_bytes == 0


# ---------------------------------------------------------------- the cap


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(str(tmp_path / "results.db"))


def test_a_worker_allocating_past_its_cap_dies_alone_with_one_line_naming_the_cap(
    executor: LocalExecutor, store: ResultStore, tmp_path: Path
) -> None:
    jobs = [
        Job("ok-before", {"n": 1}, target=T + "ok"),
        Job("hog", target=T + "allocate_past_cap", memory_cap_bytes=200 * MiB),
        Job("ok-after", {"n": 2}, target=T + "ok"),
    ]
    began = time.monotonic()
    before, hog, after = Runner(executor, store=store).run(jobs)
    assert time.monotonic() - began < 60
    assert hog.error_kind == "memory" and hog.error.startswith("killed: memory above cap 200 MiB (reached ")
    assert "\n" not in hog.error and len(hog.error) < 200
    assert before.error is None and after.error is None
    rows = {row.model: row for row in store.list()}
    assert rows["hog"].error == hog.error and rows["ok-after"].error is None
    with sqlite3.connect(tmp_path / "results.db") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_allocation_past_the_cap_is_refused_at_once_inside_the_worker(executor: LocalExecutor) -> None:
    """One 4 GiB request under a 200 MiB cap: the data limit refuses it before a page is touched (the watchdog
    alone would see it only as the pages fill)."""
    job = Job("greedy", {"bytes": 4 * GiB}, target=T + "allocate_at_once", memory_cap_bytes=200 * MiB)
    (result,) = Runner(executor).run([job])
    assert result.error == "killed: memory above cap 200 MiB (reached it: MemoryError)"
    assert result.error_kind == "memory"


def test_every_worker_runs_under_a_data_limit_its_cap_or_the_default(executor: LocalExecutor) -> None:
    capped, default = Runner(executor).run(
        [
            Job("capped", target=T + "memory_limit", memory_cap_bytes=300 * MiB),
            Job("default", target=T + "memory_limit"),
        ]
    )
    for result in (capped, default):
        assert result.error is None and result.extra["limit"] is not None
    headroom = capped.extra["limit"] - capped.extra["vm_data"]  # the limit was set just before this VmData
    assert 300 * MiB + LIMIT_ROOM_BYTES - 64 * MiB < headroom <= 300 * MiB + LIMIT_ROOM_BYTES
    default_headroom = default.extra["limit"] - default.extra["vm_data"] - LIMIT_ROOM_BYTES
    assert default_headroom == pytest.approx(default_memory_cap_bytes(), rel=0.25)


def test_albert_s_shared_layers_are_estimated_by_depth_scaling_exactly(monkeypatch):
    """ALBERT is depth-scaled (its layers share one group of weights): the estimate from 1- and 2-layer replays must
    be the full replay's, weights counted once."""
    spec = resolve("albert-base-v2")
    keys, layers = budget._layers(spec)
    assert keys == ("num_hidden_layers",) and layers == 12
    scaled = budget.estimate_memory(spec, Workload())
    monkeypatch.setattr(budget, "_layers", lambda spec: ((), 0))
    assert budget.estimate_memory(spec, Workload()) == scaled and scaled.weights_bytes < 50_000_000
