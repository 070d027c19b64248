"""What a machine offers a Ray cluster, and the ``ray start`` commands that join it, without importing Ray.

A node advertises its hardware as Ray custom resources ``hw:<id>`` (from the local detection, or named by
catalog id), so a job for ``hw:cuda-nvidia-a100-sxm4-80gb`` lands on a node that has that GPU. The CLI's
``head`` / ``worker`` commands, the Ray executor and the dashboard share these rules.

Loopback: Ray rewrites 127.0.0.1 to the machine's network address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(:data:`LOOPBACK_ENV`); :func:`head_command` sets it for a loopback head. A worker cannot join a loopback head
(Ray refuses multi-node under that setting), which is fine: a loopback head is one machine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from efficiency.hardware import ID_PATTERN

INSTALL_HINT = "pip install -r requirements-cluster.txt"
RESOURCE_PREFIX = "hw:"
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
DEFAULT_PORT = 6379
ADDRESS_PATTERN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def is_loopback(host: str | None) -> bool:
    """True for localhost, 127.x.y.z and ::1 (a bare host or a ``HOST:PORT`` address)."""
    if not host:
        return False
    name = host.strip()
    if name.startswith("[") and "]" in name:
        name = name[1 : name.index("]")]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    return name in ("localhost", "::1") or name.startswith("127.")


def slug(text: str) -> str:
    """A hardware id from a device name: lowercase, runs of other characters to '-', at most 60 long."""
    value = re.sub(r"[^a-z0-9.+]+", "-", text.lower()).strip("-.")
    return value[:60].rstrip("-.") or "unknown"


def advertised_resources(devices: Sequence[dict[str, Any]], hardware: Sequence[str] = ()) -> dict[str, float]:
    """The ``hw:*`` resources a node offers: ``cpu-<model>`` 1, ``cuda-<gpu>`` per GPU, ``mps-<chip>`` 1.

    One unit per CPU, so one CPU profile at a time per node (timings must not share cores); one per GPU.
    ``hardware`` entries (``ID`` or ``ID=N``) replace detection, for a node named by a catalog id; a bare
    ``ID`` counts the node's GPUs (1 without GPUs).
    """
    if hardware:
        gpus = sum(1 for device in devices if device.get("kind") == "gpu")
        named: dict[str, float] = {}
        for entry in hardware:
            name, _, count = entry.partition("=")
            name = name.strip()
            if not ID_PATTERN.match(name):
                raise ValueError(f"hardware id {name!r}: use a lowercase slug like a100-80gb (a-z, 0-9, . _ + -)")
            if count and (not count.isdigit() or int(count) < 1):
                raise ValueError(f"hardware {entry!r}: the count after '=' must be a whole number of at least 1")
            named[RESOURCE_PREFIX + name] = float(int(count) if count else max(1, gpus))
        return named
    detected: dict[str, float] = {}
    for device in devices:
        kind = device.get("kind")
        prefix = {"cpu": "cpu", "gpu": "cuda", "soc": "mps"}.get(str(kind))
        if prefix is None:
            continue
        name = str(device.get("name") or "unknown")
        if kind == "soc":
            name = name.removeprefix("Apple GPU (").removesuffix(")")
        key = f"{RESOURCE_PREFIX}{prefix}-{slug(name)}"
        detected[key] = detected.get(key, 0.0) + 1.0
    return detected


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def ray_executable() -> list[str]:
    """The ``ray`` command of this interpreter's environment (not whichever is first on PATH)."""
    sibling = Path(sys.executable).with_name("ray")
    return [str(sibling)] if sibling.is_file() else [sys.executable, "-m", "ray.scripts.scripts"]


def head_command(
    port: int, node_ip_address: str, resources: dict[str, float], block: bool = False
) -> tuple[list[str], dict[str, str]]:
    """``ray start --head`` argv and the environment it needs (loopback: keep Ray from rewriting 127.0.0.1)."""
    argv = [*ray_executable(), "start", "--head", "--port", str(port), "--node-ip-address", node_ip_address]
    argv += ["--include-dashboard=false", "--resources", json.dumps(resources, sort_keys=True)]
    argv += ["--block"] if block else []
    return argv, ({LOOPBACK_ENV: "0"} if is_loopback(node_ip_address) else {})


def worker_command(
    address: str, node_ip_address: str | None, resources: dict[str, float], block: bool = False
) -> list[str]:
    """``ray start --address`` argv for a machine joining a head."""
    if not ADDRESS_PATTERN.match(address):
        raise ValueError(f"--address {address!r}: give the head as HOST:PORT, e.g. 192.168.1.10:{DEFAULT_PORT}")
    if is_loopback(address):
        raise ValueError(
            f"--address {address}: a head on loopback accepts no other machines, and it already offers this "
            "machine's hardware; to add machines, start the head with --node-ip-address <its LAN address>"
        )
    argv = [*ray_executable(), "start", "--address", address]
    argv += ["--node-ip-address", node_ip_address] if node_ip_address else []
    argv += ["--resources", json.dumps(resources, sort_keys=True)]
    return argv + (["--block"] if block else [])
