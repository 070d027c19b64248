"""The memory budget against measured peaks (issue 19): is the pre-run estimate an upper-ish bound?

For a few small catalog models and workloads, ``efficiency.run.budget.estimate_memory`` (a weight-free replay on
fake tensors, in this process) is set beside what the isolated worker measures for the same job (the runner's
real path, one forked worker per job). Printed per row: the estimate and its parts; the measured peak of the
workload's mode (``peak_memory_bytes``; in training the training step's when higher); their ratio (goal: 1 to
~2, never far below 1), and the same without the fixed runtime allowance ("w/o rt"); the worker's own figures
from ``/proc/self/status``: its resident growth over the job (``VmHWM`` minus the resident size at the job's
start: what the RSS watchdog sees, static profile included) and the estimate's ratio to it, its peak address
space (``VmPeak``) and peak private writable memory (``VmData``, sampled), with their values at the job's start,
which decide between ``RLIMIT_AS``, ``RLIMIT_DATA`` and the watchdog for the default cap.

Run: .venv/bin/python benchmarks/memory_budget.py   (about 3 minutes on 2 cores)
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = (  # (model, workload): small enough to measure in seconds on a laptop CPU
    ("electra-small", {"batch_size": 8, "seq_len": 128}),
    ("electra-small", {"batch_size": 64, "seq_len": 256}),
    ("electra-small", {"batch_size": 8, "seq_len": 128, "mode": "training"}),
    ("distilbert-base-uncased", {"batch_size": 16, "seq_len": 128}),
    ("gpt2", {"batch_size": 4, "seq_len": 128}),
    ("gpt2", {"batch_size": 2, "seq_len": 64, "mode": "training"}),
    ("t5-small", {"batch_size": 8, "seq_len": 128}),
    ("deit-tiny", {"batch_size": 16}),
)


def _status() -> dict[str, int]:
    """This process's Vm* lines of /proc/self/status, in bytes."""
    figures = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name.startswith("Vm") and value.strip().endswith("kB"):
                figures[name] = int(value.split()[0]) * 1024
    return figures


def run_job_with_vm(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    """The runner's own target, with the worker's memory figures added (runs in the forked worker)."""
    from efficiency.run.jobs import run_job

    start = _status()
    data_peak = [start["VmData"]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            data_peak[0] = max(data_peak[0], _status()["VmData"])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_job(job, progress)
    finally:
        done.set()
        sampler.join()
    end = _status()
    result["worker_vm"] = {
        "rss_start": start["VmRSS"],
        "rss_growth": end["VmHWM"] - start["VmRSS"],
        "vm_start": start["VmSize"],
        "vm_peak": end["VmPeak"],
        "data_start": start["VmData"],
        "data_peak": data_peak[0],
    }
    return result


def main() -> None:
    from efficiency.models.loading import resolve
    from efficiency.run.budget import estimate_memory
    from efficiency.run.runner import Job, LocalExecutor, Runner
    from efficiency.specs import Workload
    from efficiency.units import nbytes

    executor = LocalExecutor()
    executor.warm_up()
    header = (
        f"{'model':<26} {'workload':<20} {'estimate':>9} {'measured':>9} {'ratio':>5} {'w/o rt':>6} "
        f"{'job RSS+':>9} {'ratio':>5} "
        f"{'VmPeak (start)':>18} {'VmData (start)':>18} {'est. s':>6}  estimate parts"
    )
    print(header)
    for name, fields in CASES:
        spec = resolve(name)
        workload = Workload(**fields)
        began = time.perf_counter()
        estimate = estimate_memory(spec, workload)
        seconds = time.perf_counter() - began
        job = Job(
            spec.id,
            workload.for_modality(spec.modality),
            repeats=1,
            timeout_s=900,
            target="memory_budget:run_job_with_vm",
        )
        (result,) = Runner(executor).run([job])
        result = result if isinstance(result, dict) else result.to_dict()
        setup = f"b{workload.batch_size} " + (f"s{workload.seq_len}" if spec.modality == "text" else "img")
        setup += f" {workload.mode}"
        if result.get("error"):
            print(f"{spec.id[:26]:<26} {setup:<20} {nbytes(int(estimate)):>9} error: {result['error']}")
            continue
        measured = result["peak_memory_bytes"]
        if workload.mode == "training":
            measured = max(measured, result.get("peak_memory_training_bytes") or 0)
        vm = result["worker_vm"]
        address = f"{nbytes(vm['vm_peak'])} ({nbytes(vm['vm_start'])})"
        data = f"{nbytes(vm['data_peak'])} ({nbytes(vm['data_start'])})"
        print(
            f"{spec.id[:26]:<26} {setup:<20} {nbytes(int(estimate)):>9} {nbytes(measured):>9} "
            f"{int(estimate) / measured:>5.2f} {(int(estimate) - estimate.runtime_bytes) / measured:>6.2f} "
            f"{nbytes(vm['rss_growth']):>9} {int(estimate) / vm['rss_growth']:>5.2f} "
            f"{address:>18} {data:>18} {seconds:>6.2f}  {estimate.parts()}"
        )
    print(
        "estimate: weight-free replay x slack + runtime allowance (w/o rt: without it); measured: the mode's "
        "peak RSS above the pre-build baseline; job RSS+: the worker's resident growth over the whole job "
        "(static profile included); VmPeak / VmData: the worker's peak address space / private writable memory, "
        "at the job's start in brackets"
    )


if __name__ == "__main__":
    main()
