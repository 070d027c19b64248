"""CLI commands for a Ray cluster: ``head`` starts this machine's node, ``worker`` adds a machine to a head.

Both wrap ``ray start`` (printing the command they run) and advertise the machine's hardware as Ray custom
resources (see :mod:`efficiency.run.ray.nodes`). Ray itself is only run as a command here, never imported: the
CLI works without it. Loopback by default: the head binds 127.0.0.1 unless ``--node-ip-address`` names a LAN
address.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence

from efficiency.cli.args import Command
from efficiency.hardware import detect
from efficiency.run.ray.nodes import (
    DEFAULT_PORT,
    INSTALL_HINT,
    LOOPBACK_ENV,
    advertised_resources,
    head_command,
    is_loopback,
    ray_available,
    worker_command,
)


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
    return advertised_resources(detect.local_devices(), args.hardware)


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
