"""What this machine is: its CPU and accelerators, and the software that every measurement depends on.

Every measured number is stored with :func:`environment_fingerprint`, because a latency means nothing
without the hardware, thread count and library versions it was taken under (the paper's second rule).
torch is imported inside the functions that need it, so the hardware catalog can be listed without it.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

CPUINFO = Path("/proc/cpuinfo")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name: /proc/cpuinfo on Linux, sysctl on macOS, else what ``platform`` knows."""
    if CPUINFO.exists():
        fields: dict[str, str] = {}
        for line in CPUINFO.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and value.strip():
                fields.setdefault(key.strip().lower(), value.strip())
        # x86 names the chip in "model name"; many Arm boards only say "Model" (the board) or "Hardware".
        for key in ("model name", "model", "hardware"):
            if key in fields and not fields[key].isdigit():
                return fields[key]
    if sys.platform == "darwin":
        result = subprocess.run(
            ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5, check=False
        )
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cpus() -> int:
    """CPUs this process may run on (a container or taskset can allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return psutil.cpu_count(logical=True) or 1


def cpu_device() -> dict[str, Any]:
    """The CPU as a device entry; core counts fall back to logical ones where psutil cannot tell."""
    logical = psutil.cpu_count(logical=True) or usable_cpus()
    physical = psutil.cpu_count(logical=False) or logical
    return {
        "id": "cpu",
        "kind": "cpu",
        "name": cpu_model(),
        "physical_cores": physical,
        "logical_cores": logical,
        "usable_cpus": usable_cpus(),
        "memory_bytes": psutil.virtual_memory().total,
        "architecture": platform.machine(),
    }


def local_devices() -> list[dict[str, Any]]:
    """The CPU, each CUDA device and the Apple GPU (mps) where present, each with an id torch accepts."""
    import torch

    devices = [cpu_device()]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append(
                {
                    "id": f"cuda:{index}",
                    "kind": "gpu",
                    "name": props.name,
                    "memory_bytes": props.total_memory,
                    "multiprocessors": props.multi_processor_count,
                    "compute_capability": f"{props.major}.{props.minor}",
                }
            )
    if torch.backends.mps.is_available():
        devices.append(
            {
                "id": "mps",
                "kind": "soc",
                "name": f"Apple GPU ({cpu_model()})",
                "memory_bytes": psutil.virtual_memory().total,  # unified memory, shared with the CPU
            }
        )
    return devices


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment_fingerprint(threads: int | None = None) -> dict[str, Any]:
    """Hardware and software that a measurement depends on; ``threads`` defaults to torch's current count."""
    import torch

    cpu = cpu_device()
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu_model": cpu["name"],
        "physical_cores": cpu["physical_cores"],
        "logical_cores": cpu["logical_cores"],
        "usable_cpus": cpu["usable_cpus"],
        "threads": threads if threads is not None else torch.get_num_threads(),
        "gpu": gpu_name,
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "torch": torch.__version__,
        "transformers": package_version("transformers"),
        "python": platform.python_version(),
        "os": platform.platform(),
    }
