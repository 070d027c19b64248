"""The dashboard's optional link to a Ray cluster: its hardware in the pickers, its executor for measured runs.

``EFFICIENCY_RAY_ADDRESS`` names the cluster (``auto`` for one started on this machine by ``python -m
efficiency head``, ``HOST:PORT``, or ``ray://HOST:10001``); unset, there is no cluster and Ray is never
imported. ``EFFICIENCY_RAY_NODE_IP`` is this machine's address in the cluster (default 127.0.0.1).

Why the caching: the executor holds the process's one Ray connection (``st.cache_resource``); the list of
the cluster's hardware changes as nodes join and leave, so it is kept ``HARDWARE_TTL_S`` only, failures
included (as their one line), so an unreachable cluster costs one check per ``HARDWARE_TTL_S``, not per rerun.

Why a SQLite store is not handed to the nodes beyond loopback: a node on another machine would write its
result into its own file at that path; the dashboard then stores what comes back itself.

Ray ends a driver whose cluster has been gone for a minute, and the dashboard is that driver: stop the
dashboard before the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import streamlit as st

from efficiency.run.ray.cluster import RayUnavailableError, cluster_hardware
from efficiency.run.ray.executor import RayExecutor
from efficiency.run.ray.nodes import is_loopback
from efficiency.store.store import ResultStore
from efficiency.ui.common import device_label, escape_md, one_line

ADDRESS_ENV = "EFFICIENCY_RAY_ADDRESS"
NODE_IP_ENV = "EFFICIENCY_RAY_NODE_IP"
DEFAULT_NODE_IP = "127.0.0.1"
PREFIX = "cluster:"  # picker ids of cluster hardware, e.g. "cluster:cuda-nvidia-a100-sxm4-80gb"
HARDWARE_TTL_S = 10
QUEUE_TIMEOUT_S = 600.0  # a job whose hardware stays busy this long fails instead of holding the page


def address() -> str | None:
    """The cluster's address from the environment; None when no cluster is configured."""
    return os.environ.get(ADDRESS_ENV, "").strip() or None


def node_ip() -> str:
    return os.environ.get(NODE_IP_ENV, "").strip() or DEFAULT_NODE_IP


def is_cluster(device: str | None) -> bool:
    return isinstance(device, str) and device.startswith(PREFIX)


def hardware_id(device: str) -> str:
    """``cluster:test-a`` -> ``test-a`` (the ``hw:`` resource and the results' hardware id)."""
    return device[len(PREFIX) :] if is_cluster(device) else device


def job_device(hardware: str) -> str:
    """The torch device a job on cluster hardware runs on: ``cuda-*`` hardware is a GPU, the rest CPUs."""
    return "cuda" if hardware.startswith("cuda-") else "cpu"


def measured_name(device: str) -> str:
    """The result's hardware id of a measurement on ``device``: the cluster's id, or ``local-<device>``."""
    return hardware_id(device) if is_cluster(device) else f"local-{device}"


def where(device: str) -> str:
    """Where a measurement runs, in words: ``test-a (cluster)``, ``cpu (this machine)``."""
    return f"{hardware_id(device)} (cluster)" if is_cluster(device) else f"{device} (this machine)"


def cluster_label(entry: dict[str, Any]) -> str:
    nodes = int(entry.get("nodes") or 0)
    return f"{entry['id']} · cluster, {nodes} node{'' if nodes == 1 else 's'}"


def measured_options(
    listed: Iterable[dict[str, Any]], devices: Sequence[dict[str, Any]], local_first: bool = False
) -> dict[str, str]:
    """Picker id -> label of the hardware a model can be measured on: the cluster's, then this machine's
    (``local_first``: the other way round).

    Each label says where the hardware is ("cluster, 2 nodes" / "this machine"), so one list keeps both groups
    apart; catalog chips (estimated) have their own picker.
    """
    on_cluster = {PREFIX + entry["id"]: cluster_label(entry) for entry in listed}
    here = {device["id"]: f"{device_label(device)} · this machine" for device in devices}
    return {**here, **on_cluster} if local_first else {**on_cluster, **here}


@st.cache_data(show_spinner=False, ttl=HARDWARE_TTL_S)
def _listed(where: str, node_ip_address: str) -> tuple[list[dict[str, Any]], str | None]:
    """(the cluster's hardware, None) or ([], why it cannot be listed): cached, failures too."""
    try:
        return cluster_hardware(where, node_ip_address=node_ip_address), None
    except Exception as error:  # noqa: BLE001 - Ray missing, cluster gone, bad address: one line, the page goes on
        return [], one_line(error)


def hardware(warn: bool = True) -> list[dict[str, Any]]:
    """The cluster's hardware (``id``, ``nodes``, ``count``, ``available``); [] without a cluster.

    ``warn``: show why a configured cluster cannot be listed, once per page run (pass False elsewhere).
    """
    where = address()
    if where is None:
        return []
    listed, problem = _listed(where, node_ip())
    if problem and warn:
        st.warning(
            f"Ray cluster unavailable (`{ADDRESS_ENV}`={escape_md(where)}), measuring on this machine only: "
            f"{escape_md(problem)}",
            icon=":material/cloud_off:",
        )
    return listed


def picker_ids(warn: bool = False) -> list[str]:
    """The picker ids of the cluster's hardware (``cluster:<id>``); [] without a cluster."""
    return [PREFIX + entry["id"] for entry in hardware(warn)]


def node_store_url(store: ResultStore | None) -> str | None:
    """The store URL the nodes write to: the dashboard's, unless it is a SQLite file beyond a loopback cluster."""
    if store is None or (store.url.get_backend_name() == "sqlite" and not is_loopback(node_ip())):
        return None
    return store.url.render_as_string(hide_password=False)


@st.cache_resource(show_spinner=False)
def _executor_at(where: str, node_ip_address: str, store_url: str | None) -> Any:
    return RayExecutor(where, node_ip_address=node_ip_address, store_url=store_url, queue_timeout_s=QUEUE_TIMEOUT_S)


def executor(store: ResultStore | None) -> Any:
    """The cluster's executor (one per process); raises ``RayUnavailableError`` (one line) when there is none."""
    where = address()
    if where is None:
        raise RayUnavailableError(f"no cluster configured; set {ADDRESS_ENV}")
    return _executor_at(where, node_ip(), node_store_url(store))
