"""Which result belongs to the view: this session's newest, else the store's, at the view's model, workload
and hardware.

New results are kept in the session (``RESULTS_KEY``) and errors per view (``ERRORS_KEY``), so that a chart
option change redraws from memory and never profiles again; stored results are read from the store
(milliseconds). A measured result counts for the picked hardware only if it was measured there: a cluster's
by its hardware id, this machine's by its device, threads and CPU or GPU model (a shared store also holds
other machines' ``local-<device>`` results).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from efficiency.specs import Workload
from efficiency.store.store import ResultStore, StoreError
from efficiency.ui import cluster
from efficiency.ui.common import detected_devices, display_name, hardware_text, unwrap

RESULTS_KEY = "cmp_results"
ERRORS_KEY = "cmp_errors"
MAX_SESSION_RESULTS = 300


def _session_results() -> list[dict[str, Any]]:
    return st.session_state.setdefault(RESULTS_KEY, [])


def _errors() -> dict[tuple, str]:
    return st.session_state.setdefault(ERRORS_KEY, {})


def view_key(name: str, workload: Workload, kind: str, device: str, threads: int | None) -> tuple:
    """What an error belongs to: the model as picked, the setup, and for measured runs the hardware."""
    hardware = (device, threads) if kind == "measured" else ()
    return (name, tuple(sorted(workload.to_dict().items())), kind, *hardware)


def record(name: str, result: dict[str, Any], key: tuple) -> None:
    """Keep a success for redraws (it replaces the model's earlier error at this view) or the error itself."""
    if result.get("error"):
        _errors()[key] = str(result["error"]).splitlines()[0]
        return
    _errors().pop(key, None)
    kept = _session_results()
    kept.append(result)
    del kept[:-MAX_SESSION_RESULTS]


def error_for(key: tuple) -> str | None:
    return _errors().get(key)


def fits(result: dict[str, Any], model: str, workload: Workload) -> bool:
    """Same model, and every workload field the result used equals the view's (a text model has no image size)."""
    if result.get("model") != model or result.get("error"):
        return False
    used = result.get("workload") or {}
    wanted = workload.to_dict()
    same_setup = all(used.get(k) == wanted[k] for k in ("batch_size", "dtype", "mode"))
    return bool(used) and same_setup and all(used[k] == wanted[k] for k in ("seq_len", "image_size") if k in used)


def this_machine(hardware: dict[str, Any], device: str) -> bool:
    """Whether a result's ``local-<device>`` hardware is this machine's ``device``: same CPU model and core count
    (a shared store also holds other machines' ``local-cpu`` results), or the same GPU model."""
    local = next((d for d in detected_devices() if d["id"] == device), None)
    if local is None or hardware.get("name") != local["name"]:
        return False
    env = hardware.get("environment") if isinstance(hardware.get("environment"), dict) else {}
    return local["kind"] != "cpu" or env.get("logical_cores", local["logical_cores"]) == local["logical_cores"]


def on_hardware(result: dict[str, Any], device: str, threads: int | None) -> bool:
    """Measured on the picked hardware: cluster hardware by the result's hardware id; a device of this machine
    by its device (and threads, on CPU) on this machine, never a cluster node's or another machine's result on
    the same kind of device."""
    hardware = result.get("hardware") if isinstance(result.get("hardware"), dict) else {}
    if not result.get("measured"):
        return False
    if cluster.is_cluster(device):
        return hardware.get("id") == cluster.hardware_id(device)
    here = hardware.get("id", f"local-{device}") == f"local-{device}" and this_machine(hardware, device)
    same_threads = threads is None or hardware.get("device") != "cpu" or hardware.get("threads") == threads
    return here and hardware.get("device") == device and same_threads


def _find(
    model: str, workload: Workload, kinds: Sequence[bool], device: str, threads: int | None, store: ResultStore | None
) -> dict[str, Any] | None:
    """The newest success of the first kind (measured True/False) that has one: this session's, then the store's."""

    def wanted(result: dict[str, Any], measured: bool) -> bool:
        if not fits(result, model, workload):
            return False
        return on_hardware(result, device, threads) if measured else not result.get("measured")

    stored: list[dict[str, Any]] | None = None
    for measured in kinds:
        for result in reversed(_session_results()):
            if wanted(result, measured):
                return result
        if store is not None and stored is None:
            try:
                stored = [unwrap(row) for row in store.list(model=model)]
            except StoreError:
                stored = []
        for result in stored or []:
            if wanted(result, measured):
                return result
    return None


def find(model: str, workload: Workload, kind: str, device: str, threads: int | None, store: ResultStore | None):
    """The newest successful result for this view: this session's first, then the store's.

    ``kind="measured"`` falls back to the static count when nothing was measured at this setup."""
    return _find(model, workload, (True, False) if kind == "measured" else (False,), device, threads, store)


def find_measured(
    model: str, workload: Workload, device: str, threads: int | None, store: ResultStore | None
) -> dict[str, Any] | None:
    """The newest result measured on ``device`` (this machine's, or ``cluster:<id>``) at this workload, or None."""
    return _find(model, workload, (True,), device, threads, store)


def measured_rows(
    models: Sequence[str], devices: Sequence[str], workload: Workload, store: ResultStore | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Per model x measured device, the newest result at this workload as a row for the Hardware page's table
    and charts (``hardware`` "<id> (measured)", ``latency_ms``, ``how``), and the "model on hardware" pairs
    not measured there yet."""
    rows, missing = [], []
    for model in models:
        for device in devices:
            result = find_measured(model, workload, device, None, store)
            if result is None:
                missing.append(f"{display_name(model)} on {cluster.where(device)}")
                continue
            place = "on cluster" if cluster.is_cluster(device) else "here"
            rows.append(
                {
                    "model_id": model,
                    "model": display_name(model),
                    "hardware": f"{cluster.measured_name(device)} (measured)",
                    "latency_ms": result.get("latency_ms"),
                    "how": f"measured {place}: {hardware_text(result)}",
                    "workload": result.get("workload"),
                }
            )
    return rows, missing
