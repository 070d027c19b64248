"""Job targets for the runner tests: one well-behaved job and one of each fault the runner must contain.

Each is called in the worker as ``target(job_dict, progress)``, like ``efficiency.run.jobs:run_job``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[str, float], None]


def ok(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """A job that works: reports progress and returns a small result naming its worker."""
    progress("measure", 0.5)
    return {"model": job["model"], "workload": job["workload"], "latency_ms": {"median": 1.0}, "pid": os.getpid()}


def nap(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Sleeps ``workload["sleep"]`` seconds, so jobs running side by side finish out of order."""
    time.sleep(job["workload"]["sleep"])
    return {"model": job["model"], "workload": job["workload"]}


def phases(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Reports several phases, so the test can check they arrive in order."""
    for phase in ("load", "count", "measure"):
        progress(phase, 0.0)
        progress(phase, 1.0)
    return {"model": job["model"], "workload": job["workload"]}


def torch_threads(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Runs real torch work in the forked worker: preloaded torch must survive the fork."""
    import torch

    product = torch.ones(256, 256) @ torch.ones(256, 256)
    return {"model": job["model"], "threads": torch.get_num_threads(), "value": float(product[0, 0])}


def sleep_forever(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """A hang that also leaves a grandchild behind, which the process-group kill must end."""
    job_pid_file = job["workload"].get("job_pid_file")
    if job_pid_file:
        with open(job_pid_file, "w") as handle:
            handle.write(str(os.getpid()))
    pid_file = job["workload"].get("pid_file")
    if pid_file:
        grandchild = subprocess.Popen(["sleep", "600"])
        with open(pid_file, "w") as handle:
            handle.write(str(grandchild.pid))
    progress("measure", 0.1)
    time.sleep(3600)
    return {"model": job["model"]}


def segfault(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Crashes the interpreter: reads address 0."""
    ctypes.string_at(0)
    return {"model": job["model"]}


def hard_exit(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Ends the process without a result, like a library calling exit()."""
    os._exit(3)


def hog_memory(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Grows resident memory 32 MB at a time, up to a 3 GB safety stop the cap must beat."""
    chunks = []
    for _ in range(96):
        chunks.append(bytearray(32 * 1024 * 1024))  # zero-filled, so resident at once
        time.sleep(0.01)
    return {"model": job["model"], "allocated": sum(len(chunk) for chunk in chunks)}


def raise_error(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    raise ValueError("seq_len 4096 is beyond the model's 512 positions\nsecond line")


def not_a_dict(job: dict[str, Any], progress: Progress) -> Any:
    return 42


def allocate_past_cap(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Allocates 16 MB at a time as fast as it can, up to a 4 GB safety stop: the cap must stop it first."""
    chunks = [bytearray(16 * 1024 * 1024) for _ in range(256)]
    return {"model": job["model"], "allocated": sum(len(chunk) for chunk in chunks)}


def memory_limit(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Reports the worker's data-segment limit (RLIMIT_DATA) and its private writable memory (VmData) now."""
    import resource

    with open("/proc/self/status") as status:
        vm_data = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return {"model": job["model"], "limit": None if soft == resource.RLIM_INFINITY else soft, "vm_data": vm_data}


def allocate_at_once(job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Asks for ``workload["bytes"]`` in one allocation, then touches every page of it."""
    block = bytearray(job["workload"]["bytes"])
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    return {"model": job["model"], "allocated": len(block)}
