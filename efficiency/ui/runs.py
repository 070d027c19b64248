"""Running profiles from a page: the models picked, the hardware to run on, and the run with its progress.

Static profiles and measurements both run in the isolated runner's forked workers (never in the server
process, which only waits for them), the static ones cached (``static_profile``). Each result or error is
recorded in the session (``lookup.record``), where :mod:`efficiency.ui.lookup` finds it for the view; a chart
option change therefore redraws from memory and never profiles again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from efficiency.models import catalog
from efficiency.results import DEFAULT_IMPLEMENTATION, Result, implementation_label
from efficiency.run.budget import estimate_job_memory
from efficiency.run.job import Job
from efficiency.run.jobs import TRACE_TARGET
from efficiency.run.planning import Target, make_job, plan_jobs
from efficiency.run.runner import DEFAULT_PRELOAD, LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.store.store import ResultStore
from efficiency.ui import cluster
from efficiency.ui.common import (
    STATIC_SLOTS,
    device_help,
    device_label,
    display_name,
    engine_lock,
    escape_md,
    one_line,
    save_static,
    show_error,
)
from efficiency.ui.lookup import record, view_key

if TYPE_CHECKING:
    from efficiency.counters.profile import StaticProfile  # imports torch

MAX_EXTRA_MODELS = 10
ENDED = frozenset({"finished", "failed", "reused", "refused"})  # the runner's last phase of a job
# A page's static count runs in a worker for at most this long. The slowest count seen is a 1,024-layer ALBERT
# config (52 s on 2 cores, issue 19); catalog models take 1 to 20 s. Twice the slowest leaves room for a busy
# machine, and a person does not wait on a page longer than that (a measured job gets DEFAULT_TIMEOUT_S, 300 s).
STATIC_TIMEOUT_S = 120.0
# A static run draws the bars of its counts so far only once it has lasted this long: in a quicker run (five catalog
# models take 1.5-2 s on 2 cores) they would only flash, and each redraw cost the browser CPU the counts were
# using (five models: the browser's CPU time 1.6 s with them, 0.9 s without; Run to charts 2.2-2.6 s against 1.9 s).
SO_FAR_AFTER_S = 3.0


def split_extra(text: str | None) -> list[str]:
    """The free field: local folders or Hub ids, comma-separated."""
    names = [part.strip() for part in (text or "").split(",")]
    return list(dict.fromkeys(n for n in names if n))[:MAX_EXTRA_MODELS]


def resolve_extra(text: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The free field's models: (name, model id) of those that resolve, (name, one-line error) of the others."""
    found, errors = [], []
    for name in split_extra(text):
        model_id, error = resolve_name(name)
        if error or model_id is None:
            errors.append((name, error or "could not be resolved"))
        else:
            found.append((name, model_id))
    return found, errors


@st.cache_data(show_spinner=False, ttl=30, max_entries=256)
def resolve_name(name: str) -> tuple[str | None, str | None]:
    """(model id the engine reports results under, error line): a local folder or Hub id checked before a run."""
    from efficiency.models.loading import resolve  # lazy: imports torch; the page draws before it is needed

    try:
        return resolve(name).id, None
    except ValueError as error:
        return None, one_line(error)


@st.cache_resource(show_spinner=False)
def executor() -> Any:
    """One local executor per process, its forkserver started early so the first job (a static count or a
    measurement) need not wait; the forkserver imports torch in its own process, not in this one, and warms the
    counters there (``efficiency.run.warm_counts``) for the workers it forks."""

    local = LocalExecutor(preload=(*DEFAULT_PRELOAD, "efficiency.run.warm_counts"))
    local.warm_up()
    return local


class StaticCountFailed(Exception):
    """A static count the worker could not finish (crash, timeout, memory cap, exception): raised through the
    cache so that it is not kept, and a later Run counts again."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.error or "not counted")
        self.result = result


def local_stamp(name: str) -> float | None:
    """A local folder's config.json time, so an edited config is profiled again; None for everything else."""
    if catalog.find(name) is not None:
        return None
    config = Path(name).expanduser() / "config.json"
    try:
        return config.stat().st_mtime
    except (OSError, ValueError):
        return None


_RESOLVE_LOCK = threading.Lock()  # resolve's first import of transformers fails when two threads make it at once


def _static_job_in_worker(name: str, workload: Workload, timeout_s: float | None, **job: Any) -> dict[str, Any]:
    """One static job in a forked worker of :func:`executor`, under the default memory cap, for ``timeout_s``
    (None: :data:`STATIC_TIMEOUT_S`); its wire result. The name is resolved and the workload checked here first
    (cheap), so a refusal reads as the engine words it (``ValueError``) and starts no process; a worker's failure
    raises :class:`StaticCountFailed`. Up to ``STATIC_SLOTS`` at once (``engine_lock().shared()``: a count times
    nothing), and none while this machine times a model or warms the engine (``engine_lock``, exclusive); the waiting
    thread holds no GIL, so other sessions are served."""
    from efficiency.models.loading import check_workload, resolve  # lazy: imports torch; pages draw before it

    with engine_lock().shared():
        with _RESOLVE_LOCK:
            spec = resolve(name)
        check_workload(spec, workload)
        fields = workload.for_modality(spec.modality)
        made = make_job(spec.id, fields, metrics="static", timeout_s=timeout_s or STATIC_TIMEOUT_S, **job)
        ((_, outcome),) = list(executor().execute([made], None))
    if outcome.get("error"):
        raise StaticCountFailed(Result.from_dict(outcome))
    return outcome


def count_in_worker(name: str, workload: Workload, timeout_s: float | None = None) -> Result:
    """The runner's ``run_job`` with ``metrics="static"`` in a worker (see :func:`_static_job_in_worker`): the same
    fields as an in-process ``profile_static``, but no hardware (a count has none)."""
    return Result.from_dict(_static_job_in_worker(name, workload, timeout_s)).with_(hardware=None)


def trace_in_worker(name: str, workload: Workload, timeout_s: float | None = None) -> StaticProfile:
    """The Hardware page's forward-only op trace (what a roofline estimate reads), in a worker like
    :func:`count_in_worker`; the profile object comes back whole (its op records are what the estimate needs)."""
    return _static_job_in_worker(name, workload, timeout_s, target=TRACE_TARGET)["profile"]


@st.cache_data(show_spinner=False, max_entries=256)
def cached_trace(model_id: str, workload_items: tuple) -> Any:
    """Forward-only static profile (:func:`trace_in_worker`), keyed by model id and the workload fields; what the
    Hardware page and Compare's estimate panel estimate from. A rerun never traces again."""
    return trace_in_worker(model_id, Workload(**dict(workload_items)))


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_static(name: str, workload_items: tuple, stamp: float | None) -> Result:
    """``stamp`` only keys the cache (a local config edited since); the fields a model ignores keep defaults."""
    return count_in_worker(name, Workload(**dict(workload_items)))


def static_profile(name: str, workload: Workload) -> Result:
    """The static profile, or its error; counted in a worker, cached per model and the workload fields it uses
    (a rerun never counts again; a failure is not kept)."""
    spec = catalog.find(name)
    fields = workload.for_modality(spec.modality) if spec else workload.to_dict()
    try:
        return _cached_static(name, tuple(sorted(fields.items())), local_stamp(name))
    except StaticCountFailed as failed:
        return Result.failure(name, fields, failed.result.error or "not counted", failed.result.error_kind)
    except Exception as error:  # noqa: BLE001 - any failure is this model's error; the page goes on
        return Result.failure(name, fields, one_line(error))


def hardware_choices(devices: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Compare's hardware picker, id -> label: this machine's devices, then a connected cluster's hardware
    (``cluster:<id>``, measured through Ray); shows one warning line when a configured cluster is unreachable."""
    listed = cluster.hardware()
    if not listed:
        return {device["id"]: device_label(device) for device in devices}
    return cluster.measured_options(listed, devices, local_first=True)


def hardware_help(devices: Sequence[dict[str, Any]], choices: dict[str, str]) -> str:
    """This machine's devices in full, and what picking cluster hardware does."""
    text = device_help(devices)
    if any(cluster.is_cluster(choice) for choice in choices):
        text += "; cluster:… hardware is measured on a node of the Ray cluster that offers it"
    return text


def picker_device(hardware: dict[str, Any]) -> str | None:
    """The hardware picker's id of a result's hardware entry: ``cluster:<id>`` for a cluster's, else the device."""
    hardware_id = str(hardware.get("id") or "")
    if hardware_id and not hardware_id.startswith("local-"):
        return cluster.PREFIX + hardware_id
    return hardware.get("device")


def _finish(
    status: Any, done: int, failed: int, verb: str, began: float, unit: str = "model(s)", reused: int = 0
) -> None:
    """Fold the run's progress away once it went well; keep it open when a model failed."""
    seconds = time.perf_counter() - began
    ran = f"{verb} {done} {unit}"
    if reused:
        ran = f"Found {reused} {unit} in the store (not run again)" + (f", {verb.lower()} {done}" if done else "")
    label = f"{ran} in {seconds:.1f} s" + (f"; {failed} failed (see below)" if failed else "")
    status.update(label=label, state="error" if failed else "complete", expanded=bool(failed))


def _static_profiles(names: Sequence[str], workload: Workload) -> Iterator[tuple[int, Result]]:
    """(index into ``names``, static profile) as each is counted, ``STATIC_SLOTS`` at a time: each count runs in its
    own worker process, and the threads that wait for them carry this script's context (they touch no element; the
    cache they fill is the one later reruns read)."""
    context = get_script_run_ctx()
    with ThreadPoolExecutor(
        max_workers=min(STATIC_SLOTS, len(names)) or 1,
        thread_name_prefix="static-count",
        initializer=lambda: add_script_run_ctx(threading.current_thread(), context),
    ) as pool:
        futures = {pool.submit(static_profile, name, workload): index for index, name in enumerate(names)}
        for future in as_completed(futures):
            yield futures[future], future.result()  # static_profile returns a failure as a result, never raises


def _show_counted_so_far(where: Any, flops: dict[str, int], picked: Sequence[str], key: str) -> None:
    """The bars of the models counted so far, in ``where`` (a placeholder in the run's status box), drawn as every
    chart is (``figure.draw``: a failure is shown in the chart's place, the run goes on)."""
    from efficiency.charts import compare as charts  # lazy: plotly loads with the first chart, as on the pages
    from efficiency.ui import figure  # lazy: the same (it imports plotly)

    with where.container():
        figure.draw("Counted so far", lambda: charts.counted_so_far(flops, picked), key, "counted_so_far")


def run_static(names: Sequence[str], workload: Workload, store: ResultStore | None) -> None:
    """Each model's static profile with its own progress bar, two counted at once; a failure is shown beside that
    model only. Once the run has lasted :data:`SO_FAR_AFTER_S`, while others still count, the forward FLOPs of those
    counted so far are drawn as bars (cleared at the end: the comparison's charts follow)."""
    began, failed = time.perf_counter(), 0
    labels = [display_name(name) for name in names]
    with st.status(f"Counting {len(names)} model(s) …", expanded=True) as status:
        slots = [st.empty() for _ in names]  # each model's place: its progress bar, then "counted" or its error
        for slot, label in zip(slots, labels, strict=True):
            slot.progress(0.0, text=f"{escape_md(label)}: counting parameters, FLOPs and memory traffic …")
        so_far, counted = st.empty(), {}
        for done, (index, result) in enumerate(_static_profiles(names, workload), start=1):
            name, slot, label = names[index], slots[index], labels[index]
            if result.error:
                failed += 1
                with slot.container():  # in the bar's place: beside the models listed around it
                    show_error(label, result.error, name)
            else:
                problem = save_static(store, result)
                text = f"{escape_md(label)}: counted" + (f" ({escape_md(problem)})" if problem else "")
                slot.progress(1.0, text=text)
                if result.flops:
                    counted[label] = result.flops
            record(name, result, view_key(name, workload, "static", "", None))
            if counted and done < len(names) and time.perf_counter() - began >= SO_FAR_AFTER_S:
                _show_counted_so_far(so_far, counted, labels, key=f"counted_so_far_{done}")
        so_far.empty()
        _finish(status, len(names) - failed, failed, "Counted", began)


def run_measured(
    names: Sequence[str],
    workload: Workload,
    device: str,
    threads: int | None,
    store: ResultStore | None,
    fresh: bool = False,
    implementations: Sequence[str] = (DEFAULT_IMPLEMENTATION,),
) -> None:
    """Each model under each implementation measured in its own process on ``device``: a progress bar per job,
    errors beside it."""
    measure(names, [device], workload, threads, store, fresh, implementations)


def _jobs(
    names: Sequence[str],
    devices: Sequence[str],
    workload: Workload,
    threads: int | None,
    implementations: Sequence[str] = (DEFAULT_IMPLEMENTATION,),
) -> tuple[dict[str, list[tuple[str, Job]]], int]:
    """Per device, (name as picked, job) of each model and implementation, planned by the one planner; a name
    that cannot be resolved is shown and recorded."""
    targets = {
        device: Target(cluster.job_device(cluster.hardware_id(device)), cluster.hardware_id(device))
        if cluster.is_cluster(device)
        else Target(device)
        for device in devices
    }
    plan = plan_jobs(names, workload, list(targets.values()), threads=threads, implementations=implementations)
    for name, failure in plan.failures.items():
        show_error(display_name(name), failure.error, name)
        for device in devices:
            for implementation in implementations:
                key = view_key(name, workload, "measured", device, threads, implementation)
                record(name, failure.with_(implementation=implementation), key)
    return {device: plan.jobs[target] for device, target in targets.items()}, len(plan.failures)


def _run_on_cluster(
    groups: dict[str, list[Job]], store: ResultStore | None, fresh: bool, update: Callable[..., None]
) -> dict[str, list[dict[str, Any]]]:
    """Every cluster hardware's jobs at once, one thread per hardware (progress names only the model, so one
    runner per hardware keeps each bar its own); events come back through a queue and reach the bars from
    this thread, the script's, which owns the page's elements."""
    if not groups:
        return {}
    try:
        on_cluster = cluster.executor(store)
    except Exception as error:  # noqa: BLE001 - no cluster: its jobs get the error, this machine's still run
        message = f"cluster unavailable: {one_line(error)}"
        return {
            device: [Result.failure(job.model, job.workload, message, "refused") for job in jobs]
            for device, jobs in groups.items()
        }
    events: queue.Queue = queue.Queue()
    outcomes: dict[str, list[Result]] = {}

    def run_group(device: str, jobs: list[Job]) -> None:
        def progress(model: str, phase: str, fraction: float) -> None:
            events.put((device, model, phase, fraction))

        try:
            outcomes[device] = Runner(on_cluster, store=store).run(jobs, on_progress=progress, fresh=fresh)
        except Exception as error:  # noqa: BLE001 - e.g. the connection dropped: this hardware's jobs fail, visibly
            message = f"cluster run failed: {one_line(error)}"
            outcomes[device] = [Result.failure(job.model, job.workload, message, "crash") for job in jobs]

    # daemon: a server shutting down need not wait for them (Ray ends the tasks of a driver that is gone)
    workers = [
        threading.Thread(target=run_group, args=item, name=f"measure {item[0]}", daemon=True) for item in groups.items()
    ]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers) or not events.empty():
        try:
            update(*events.get(timeout=0.1))
        except queue.Empty:
            continue
    return outcomes


def measure(
    names: Sequence[str],
    devices: Sequence[str],
    workload: Workload,
    threads: int | None,
    store: ResultStore | None,
    fresh: bool = False,
    implementations: Sequence[str] = (DEFAULT_IMPLEMENTATION,),
) -> None:
    """Each model under each implementation measured on each device (this machine's, or ``cluster:<id>``), one
    isolated process per job: a progress bar per model and device (the runner reports progress by model, so a
    model's implementations share its bar, which counts them), each failure shown beside its model, implementation
    and hardware while the others go on.

    Cluster hardware first, all of it at once (Ray places each job on a node offering it); this machine's
    devices after, one job at a time under the engine lock, so nothing else here shares the cores being timed.
    """
    began, several = time.perf_counter(), len(devices) > 1
    where = f" on {len(devices)} hardware" if several else ""
    with st.status(f"Measuring {len(names)} model(s){where}, one process each …", expanded=True) as status:
        groups, failed = _jobs(names, devices, workload, threads, implementations)
        codes = len(implementations) > 1

        def label(device: str, model: str, implementation: str | None = None) -> str:
            code = f" ({implementation_label(implementation)})" if codes and implementation else ""
            return display_name(model) + code + (f" on {cluster.where(device)}" if several else "")

        bars = {
            (device, job.model): st.progress(0.0, text=f"{escape_md(label(device, job.model))}: waiting")
            for device, pairs in groups.items()
            for _, job in pairs
        }
        counts = Counter((device, job.model) for device, pairs in groups.items() for _, job in pairs)
        ended: Counter = Counter()

        def update(device: str, model: str, phase: str, fraction: float) -> None:
            if (device, model) not in bars:
                return
            total = counts[(device, model)]
            ended[(device, model)] += phase in ENDED
            part = 0.0 if phase in ENDED else min(max(float(fraction), 0.0), 1.0)
            share = min((ended[(device, model)] + part) / total, 1.0)
            count = f" ({ended[(device, model)]}/{total} implementations)" if total > 1 else ""
            bars[(device, model)].progress(share, text=f"{escape_md(label(device, model))}{count}: {escape_md(phase)}")

        jobs = {device: [job for _, job in pairs] for device, pairs in groups.items() if pairs}
        outcomes = _run_on_cluster({d: j for d, j in jobs.items() if cluster.is_cluster(d)}, store, fresh, update)
        for device in [d for d in jobs if not cluster.is_cluster(d)]:
            runner = Runner(executor(), store=store, estimator=estimate_job_memory)
            with engine_lock():  # no static profile or warm-up in this process may steal the cores being timed
                outcomes[device] = runner.run(jobs[device], on_progress=partial(update, device), fresh=fresh)
        done, reused = 0, 0
        for device, pairs in groups.items():
            for (name, job), result in zip(pairs, outcomes.get(device, [])):
                if result.error:
                    failed += 1
                    if counts[(device, job.model)] == 1:
                        bars[(device, job.model)].empty()
                    show_error(label(device, job.model, job.implementation), result.error, job.model)
                elif result.reused:
                    reused += 1
                else:
                    done += 1
                key = view_key(name, workload, "measured", device, threads, job.implementation)
                record(name, result.with_(implementation=job.implementation), key)
        unit = "model x hardware pair(s)" if several else "model x implementation pair(s)" if codes else "model(s)"
        _finish(status, done, failed, "Measured", began, unit, reused)
