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

from efficiency.results import DEFAULT_IMPLEMENTATION, Result
from efficiency.specs import Workload
from efficiency.store.lookup import Wanted, matches
from efficiency.store.store import ResultStore, StoreError
from efficiency.ui import cluster
from efficiency.ui.common import display_name

RESULTS_KEY = "cmp_results"
ERRORS_KEY = "cmp_errors"
MAX_SESSION_RESULTS = 300


def _session_results() -> list[Result]:
    return st.session_state.setdefault(RESULTS_KEY, [])


def _errors() -> dict[tuple, str]:
    return st.session_state.setdefault(ERRORS_KEY, {})


def view_key(
    name: str,
    workload: Workload,
    kind: str,
    device: str,
    threads: int | None,
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> tuple:
    """What an error belongs to: the model as picked, the setup, and for measured runs the hardware and the
    implementation (the default one keeps the key it had before implementations existed)."""
    hardware = (device, threads) if kind == "measured" else ()
    code = (implementation,) if kind == "measured" and implementation != DEFAULT_IMPLEMENTATION else ()
    return (name, tuple(sorted(workload.to_dict().items())), kind, *hardware, *code)


def record(name: str, result: Result, key: tuple) -> None:
    """Keep a success for redraws (it replaces the model's earlier error at this view) or the error itself."""
    if result.error:
        _errors()[key] = str(result.error).splitlines()[0]
        return
    _errors().pop(key, None)
    kept = _session_results()
    kept.append(result)
    del kept[:-MAX_SESSION_RESULTS]


def error_for(key: tuple) -> str | None:
    return _errors().get(key)


@st.cache_resource(show_spinner=False)
def this_machine() -> dict[str, Any]:
    """This machine's fingerprint (CPU model and cores, GPU, library versions), once per process."""
    from efficiency.hardware.detect import environment_fingerprint  # lazy: imports torch

    return environment_fingerprint()


def wanted(
    model: str,
    workload: Workload,
    measured: bool,
    device: str,
    threads: int | None,
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> Wanted:
    """What a result must be to stand for this view: cluster hardware by its id, a device of this machine by
    device, threads (on a CPU) and machine, and the implementation that ran it; the rule itself is
    :func:`efficiency.store.lookup.matches`."""
    on_cluster = cluster.is_cluster(device)
    return Wanted(
        model=model,
        workload=workload.to_dict(),
        measured=measured,
        hardware=cluster.hardware_id(device) if on_cluster else f"local-{device}",
        device=None if on_cluster else device,
        threads=None if on_cluster else threads,
        machine=this_machine(),
        implementation=implementation,
    )


def _find(
    model: str,
    workload: Workload,
    kinds: Sequence[bool],
    device: str,
    threads: int | None,
    store: ResultStore | None,
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> Result | None:
    """The newest success of the first kind (measured True/False) that has one: this session's, then the store's."""
    for measured in kinds:
        view = wanted(model, workload, measured, device, threads, implementation)
        for result in reversed(_session_results()):
            if matches(result, view):
                return result
        if store is not None:
            try:
                found = store.lookup(view)
            except StoreError:
                found = None
            if found is not None:
                return found
    return None


def find(
    model: str,
    workload: Workload,
    kind: str,
    device: str,
    threads: int | None,
    store: ResultStore | None,
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> Result | None:
    """The newest successful result for this view: this session's first, then the store's.

    ``kind="measured"`` falls back to the static count when nothing was measured at this setup, for the default
    implementation only: a page counts under the default, and another implementation's row must not stand on it."""
    fallback = kind == "measured" and implementation == DEFAULT_IMPLEMENTATION
    kinds = (True, False) if fallback else (True,) if kind == "measured" else (False,)
    return _find(model, workload, kinds, device, threads, store, implementation)


def find_measured(
    model: str, workload: Workload, device: str, threads: int | None, store: ResultStore | None
) -> Result | None:
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
                    "latency_ms": result.latency_ms.to_dict() if result.latency_ms else None,
                    "how": f"measured {place}: {result.hardware_text()}",
                    "workload": result.workload,
                }
            )
    return rows, missing
