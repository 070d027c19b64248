"""CLI commands for a Ray cluster: ``head`` starts this machine's node, ``worker`` adds a machine to a head.

Both wrap ``ray start`` (printing the command they run) and advertise the machine's hardware as Ray custom
resources ``hw:<id>`` from the local detection, so a job for ``hw:cuda-nvidia-a100-sxm4-80gb`` lands on a
node that has that GPU. Ray itself is only run as a command here, never imported: the CLI works without it.

Loopback by default: the head binds 127.0.0.1 unless ``--node-ip-address`` names a LAN address. Ray rewrites
127.0.0.1 to the machine's network address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``; the head sets
that for a loopback head. A worker cannot join a loopback head (Ray refuses multi-node under that setting),
which is fine: a loopback head is one machine, and it advertises that machine's hardware itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Command = Callable[[argparse.Namespace], int]
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
        from efficiency.hardware import ID_PATTERN

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


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hardware",
        action="append",
        default=[],
        metavar="ID[=N]",
        help="offer this hardware id (repeatable; N units, default: the GPU count or 1) instead of the detected",
    )
    parser.add_argument("--block", action="store_true", help="stay in the foreground (for a service manager)")
    parser.add_argument("--dry-run", action="store_true", help="print the command without running it")


def register(sub: argparse._SubParsersAction) -> dict[str, Command]:
    """Add ``head`` and ``worker`` to a CLI's subparsers; returns their command functions."""
    head = sub.add_parser("head", help="start a Ray head on this machine (loopback unless --node-ip-address)")
    head.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the head's port (default {DEFAULT_PORT})")
    head.add_argument(
        "--node-ip-address",
        default="127.0.0.1",
        help="address other machines reach this one at; the default 127.0.0.1 keeps the cluster on this machine",
    )
    head.add_argument("--no-hardware", action="store_true", help="offer no hardware: this node only schedules")
    _add_common(head)
    worker = sub.add_parser("worker", help="join this machine to a Ray head, offering its hardware")
    worker.add_argument("--address", required=True, metavar="HEAD_IP:PORT", help="the head, as `head` printed it")
    worker.add_argument(
        "--node-ip-address", default=None, help="this machine's LAN address (default: the one that reaches the head)"
    )
    _add_common(worker)
    return {"head": cmd_head, "worker": cmd_worker}


def _resources(args: argparse.Namespace) -> dict[str, float]:
    if getattr(args, "no_hardware", False):
        return {}
    from efficiency.hardware.detect import local_devices

    return advertised_resources(local_devices(), args.hardware)


def _run(argv: list[str], env_extra: dict[str, str], args: argparse.Namespace, drop_env: Sequence[str] = ()) -> int:
    shown = " ".join(f"{name}={value}" for name, value in env_extra.items())
    print(f"{shown} {shlex.join(argv)}".strip(), flush=True)
    if args.dry_run:
        return 0
    env = {name: value for name, value in os.environ.items() if name not in drop_env} | env_extra
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except OSError as err:
        print(f"error: could not run {argv[0]}: {err}; {INSTALL_HINT}", file=sys.stderr)
        return 2


def cmd_head(args: argparse.Namespace) -> int:
    if not args.dry_run and not ray_available():
        print(f"error: Ray is not installed; {INSTALL_HINT}", file=sys.stderr)
        return 2
    resources = _resources(args)
    argv, env = head_command(args.port, args.node_ip_address, resources, args.block)
    status = _run(argv, env, args)
    if status == 0 and not args.dry_run and not args.block:
        offered = ", ".join(resources) or "no hardware"
        print(f"head up at {args.node_ip_address}:{args.port}, offering {offered}")
        print(f"the dashboard connects with RayExecutor('auto', node_ip_address={args.node_ip_address!r})")
        if not is_loopback(args.node_ip_address):
            print(
                f"add machines: python -m efficiency worker --address {args.node_ip_address}:{args.port}\n"
                "note: a Ray cluster runs code for anyone who can reach its ports; keep it on a trusted network"
            )
        print("stop with: ray stop")
    return status


def cmd_worker(args: argparse.Namespace) -> int:
    if not args.dry_run and not ray_available():
        print(f"error: Ray is not installed; {INSTALL_HINT}", file=sys.stderr)
        return 2
    resources = _resources(args)
    argv = worker_command(args.address, args.node_ip_address, resources, args.block)
    status = _run(argv, {}, args, drop_env=(LOOPBACK_ENV,))  # =0 would make Ray refuse to join a cluster
    if status == 0 and not args.dry_run and not args.block:
        print(f"worker joined {args.address}, offering {', '.join(resources) or 'no hardware'}; stop with: ray stop")
    return status
