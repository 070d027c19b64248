"""Connecting to a Ray cluster, and asking it what hardware it offers (README: "Measuring on many machines").

The driver's side of the cluster before any job runs: :func:`connect` joins a running cluster (or starts a
private local one that advertises this machine's hardware), :func:`cluster_hardware` lists the ``hw:*``
resources its live nodes offer, for the picker. Failures become one :class:`RayUnavailableError` line that
says what to do, never minutes of ``ray.init`` retries: :func:`check_reachable` knocks on the port first.

Ray stays optional: it is imported only inside functions here. Loopback clusters need
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` set before Ray is imported, else Ray rewrites 127.0.0.1 to this
machine's network address; :func:`import_ray` does it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from efficiency.hardware import detect
from efficiency.run.job import one_line
from efficiency.run.ray.nodes import (
    ADDRESS_PATTERN,
    INSTALL_HINT,
    LOOPBACK_ENV,
    RESOURCE_PREFIX,
    advertised_resources,
    is_loopback,
)

CONNECT_PROBE_S = 3.0
# What to do when no cluster answers, in words: the message may reach a page, which names no command-line flag.
HEAD_HINT = "start the cluster's head first (README, 'Measuring on many machines')"


class RayUnavailableError(RuntimeError):
    """Ray is missing or cannot be set up as asked; the message says what to do."""


def import_ray(node_ip_address: str | None = "127.0.0.1") -> Any:
    """``import ray``, keeping it on loopback when this machine's node address is loopback."""
    if is_loopback(node_ip_address):
        if "ray" not in sys.modules:
            os.environ[LOOPBACK_ENV] = "0"
        else:
            from ray._private import ray_constants

            if ray_constants.ENABLE_RAY_CLUSTER:
                raise RayUnavailableError(
                    f"Ray was imported before {LOOPBACK_ENV}=0 was set, so it would rewrite 127.0.0.1 to this "
                    f"machine's network address; set {LOOPBACK_ENV}=0 in the environment before starting"
                )
    try:
        import ray
    except ImportError as err:
        raise RayUnavailableError(f"Ray is not installed ({err}); {INSTALL_HINT}") from err
    return ray


def _bootstrap_address(address: str) -> tuple[str, int] | None:
    """The (host, port) a driver dials for ``address``; None where it cannot be told here (Ray then decides)."""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address_or_die
        except ImportError:  # another Ray version: let ray.init find the cluster as it does
            return None
        try:
            address = canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as err:
            raise RayUnavailableError(
                f"no running Ray cluster found on this machine (address 'auto'); {HEAD_HINT}, "
                "or give the head's HOST:PORT"
            ) from err
    match = ADDRESS_PATTERN.match(address.removeprefix("ray://"))
    return (match.group(1).strip("[]"), int(match.group(2))) if match else None


def check_reachable(address: str) -> None:
    """Raise one clear line unless something answers at ``address`` within ``CONNECT_PROBE_S``.

    Why: ``ray.init`` against an address where nothing listens retries for minutes, blocking its caller
    (a dashboard page), so the port is knocked on first.
    """
    target = _bootstrap_address(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=CONNECT_PROBE_S):
            pass
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise RayUnavailableError(f"no Ray cluster answers at {target[0]}:{target[1]} ({reason}); {HEAD_HINT}") from err


def connect(
    address: str | None = "auto",
    namespace: str = "efficiency",
    node_ip_address: str | None = "127.0.0.1",
) -> tuple[Any, bool]:
    """Ray, connected to ``address`` (None: start a local one advertising this machine's hardware).

    Returns ``(ray, started_here)``; an existing connection is reused, whatever its address.
    """
    ray = import_ray(node_ip_address)
    if ray.is_initialized():
        return ray, False
    if address is not None:
        check_reachable(address)
    options: dict[str, Any] = {"namespace": namespace, "logging_level": logging.WARNING}
    if address is None or not address.startswith("ray://"):
        options["_node_ip_address"] = node_ip_address
    if address is None:
        options.update(include_dashboard=False, resources=advertised_resources(detect.local_devices()))
    try:
        ray.init(address=address, **options)
    except ConnectionError as err:
        raise RayUnavailableError(f"no Ray cluster at {address!r} ({one_line(err)}); {HEAD_HINT}") from err
    except ValueError as err:  # a malformed address
        raise RayUnavailableError(
            f"Ray address {address!r}: {one_line(err)}; give auto, HOST:PORT or ray://HOST:PORT"
        ) from err
    return ray, True


def cluster_hardware(address: str | None = "auto", node_ip_address: str | None = "127.0.0.1") -> list[dict]:
    """The cluster's hardware, for the picker's "measured on cluster" entries.

    One dict per ``hw:*`` resource: ``id`` (the hardware id, without ``hw:``), ``nodes`` (live nodes
    offering it), ``count`` (units in all) and ``available`` (units free now).
    """
    ray, _ = connect(address, node_ip_address=node_ip_address)
    free = ray.available_resources()
    found: dict[str, dict[str, Any]] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for name, count in node.get("Resources", {}).items():
            if not name.startswith(RESOURCE_PREFIX):
                continue
            entry = found.setdefault(name, {"id": name[len(RESOURCE_PREFIX) :], "nodes": 0, "count": 0.0})
            entry["nodes"] += 1
            entry["count"] += float(count)
    return [{**entry, "available": float(free.get(name, 0.0))} for name, entry in sorted(found.items())]
