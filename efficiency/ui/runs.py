"""Running profiles from a page and finding the results that belong to the view.

Static profiles run in this process, cached (``common.static_profile``); measured ones go through the
isolated runner, one forked worker per model. New results are kept in the session (``RESULTS_KEY``) and
errors per view (``ERRORS_KEY``); stored results are read from the store (milliseconds). A chart option
change therefore redraws from memory and never profiles again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from efficiency.specs import Workload
from efficiency.store import ResultStore, StoreError
from efficiency.ui.common import (
    display_name,
    engine_lock,
    escape_md,
    one_line,
    save_static,
    show_error,
    static_profile,
    unwrap,
)

RESULTS_KEY = "cmp_results"
ERRORS_KEY = "cmp_errors"
MAX_SESSION_RESULTS = 300
MAX_EXTRA_MODELS = 10


def split_extra(text: str | None) -> list[str]:
    """The free field: local folders or Hub ids, comma-separated."""
    names = [part.strip() for part in (text or "").split(",")]
    return list(dict.fromkeys(n for n in names if n))[:MAX_EXTRA_MODELS]


@st.cache_data(show_spinner=False, ttl=30, max_entries=256)
def resolve_name(name: str) -> tuple[str | None, str | None]:
    """(model id the engine reports results under, error line): a local folder or Hub id checked before a run."""
    from efficiency.loading import resolve

    try:
        return resolve(name).id, None
    except ValueError as error:
        return None, one_line(error)


@st.cache_resource(show_spinner=False)
def executor() -> Any:
    """One local executor per process, its forkserver started early so the first measured job need not wait."""
    from efficiency.runner import LocalExecutor

    local = LocalExecutor()
    local.warm_up()
    return local


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


def on_hardware(result: dict[str, Any], device: str, threads: int | None) -> bool:
    hardware = result.get("hardware") if isinstance(result.get("hardware"), dict) else {}
    same_threads = threads is None or hardware.get("device") != "cpu" or hardware.get("threads") == threads
    return bool(result.get("measured")) and hardware.get("device") == device and same_threads


def find(model: str, workload: Workload, kind: str, device: str, threads: int | None, store: ResultStore | None):
    """The newest successful result for this view: this session's first, then the store's.

    ``kind="measured"`` falls back to the static count when nothing was measured at this setup."""

    def wanted(result: dict[str, Any], measured: bool) -> bool:
        if not fits(result, model, workload):
            return False
        return on_hardware(result, device, threads) if measured else not result.get("measured")

    stored: list[dict[str, Any]] | None = None
    for measured in (True, False) if kind == "measured" else (False,):
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


def _finish(status: Any, done: int, failed: int, verb: str, began: float) -> None:
    """Fold the run's progress away once it went well; keep it open when a model failed."""
    seconds = time.perf_counter() - began
    label = f"{verb} {done} model(s) in {seconds:.1f} s" + (f"; {failed} failed (see below)" if failed else "")
    status.update(label=label, state="error" if failed else "complete", expanded=bool(failed))


def run_static(names: Sequence[str], workload: Workload, store: ResultStore | None) -> None:
    """Each model's static profile with its own progress bar; a failure is shown beside that model only."""
    began, failed = time.perf_counter(), 0
    with st.status(f"Counting {len(names)} model(s) …", expanded=True) as status:
        for name in names:
            label = display_name(name)
            bar = st.progress(0.0, text=f"{escape_md(label)}: counting parameters, FLOPs and memory traffic …")
            result = static_profile(name, workload)
            if result.get("error"):
                failed += 1
                bar.empty()
                show_error(label, result["error"], name)
            else:
                problem = save_static(store, result)
                text = f"{escape_md(label)}: counted" + (f" ({escape_md(problem)})" if problem else "")
                bar.progress(1.0, text=text)
            record(name, result, view_key(name, workload, "static", "", None))
        _finish(status, len(names) - failed, failed, "Counted", began)


def run_measured(
    names: Sequence[str],
    workload: Workload,
    device: str,
    threads: int | None,
    store: ResultStore | None,
    fresh: bool = False,
) -> None:
    """Each model measured in its own process on ``device``: a progress bar per model, errors beside it."""
    from efficiency.jobs import estimate_job_memory
    from efficiency.loading import resolve
    from efficiency.runner import Job, Runner

    began, failed = time.perf_counter(), 0
    with st.status(f"Measuring {len(names)} model(s), one process each …", expanded=True) as status:
        jobs, picked_as = [], {}
        for name in names:
            key = view_key(name, workload, "measured", device, threads)
            try:
                spec = resolve(name)
            except ValueError as error:
                failed += 1
                show_error(display_name(name), one_line(error), name)
                record(name, {"model": name, "error": one_line(error)}, key)
                continue
            if spec.id not in picked_as:
                picked_as[spec.id] = (name, key)
                fields = workload.for_modality(spec.modality)
                jobs.append(Job(model=spec.id, workload=fields, metrics="all", device=device, threads=threads))
        bars = {job.model: st.progress(0.0, text=f"{escape_md(display_name(job.model))}: waiting") for job in jobs}

        def on_progress(model: str, phase: str, fraction: float) -> None:
            if model in bars:
                text = f"{escape_md(display_name(model))}: {escape_md(phase)}"
                bars[model].progress(min(max(float(fraction), 0.0), 1.0), text=text)

        runner = Runner(executor(), store=store, estimator=estimate_job_memory)
        with engine_lock():  # no static profile or warm-up in this process may steal the cores being timed
            results = runner.run(jobs, on_progress=on_progress, fresh=fresh) if jobs else []
        for job, result in zip(jobs, results):
            name, key = picked_as[job.model]
            if result.get("error"):
                failed += 1
                bars[job.model].empty()
                show_error(display_name(job.model), result["error"], job.model)
            record(name, result, key)
        _finish(status, len(picked_as) - sum(1 for r in results if r.get("error")), failed, "Measured", began)
