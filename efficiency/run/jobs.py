"""Glue between the runner and the engine: what one isolated profiling job does (its memory estimate is in
:mod:`efficiency.run.budget`).

``run_job`` is the runner's default target: it runs in a forked worker, profiles one model statically
(weight-free), and for ``metrics="all"`` builds the real model (random weights) and measures it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from efficiency.hardware.detect import environment_fingerprint
from efficiency.results import DEFAULT_IMPLEMENTATION, MeasuredOn, Result
from efficiency.run.budget import estimate_job_memory
from efficiency.run.job import DEFAULT_TIMEOUT_S
from efficiency.run.planning import Target, plan_jobs
from efficiency.run.runner import LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.store.store import ResultStore

ProgressFn = Callable[[str, float], None]
TRACE_TARGET = "efficiency.run.jobs:run_trace"


def _hardware_entry(device: str, threads: int | None) -> dict[str, Any]:
    env = environment_fingerprint(threads)
    name = env["gpu"] if device.startswith("cuda") and env["gpu"] else env["cpu_model"]
    return {"id": f"local-{device}", "device": device, "name": name, "threads": env["threads"], "environment": env}


def run_trace(job: dict[str, Any], progress: ProgressFn) -> dict[str, Any]:
    """The forward-only op trace a roofline estimate reads (``hardware.roofline.trace_profile``), in a worker:
    the profile object itself goes back to the parent (its op records are what the estimate needs)."""
    from efficiency.hardware.roofline import trace_profile  # lazy: torch and transformers load in the worker only
    from efficiency.models.loading import resolve  # lazy: as above

    workload = Workload(**{k: v for k, v in job["workload"].items() if k in Workload.__dataclass_fields__})
    progress("trace", 0.0)
    return {
        "model": job["model"],
        "workload": job["workload"],
        "profile": trace_profile(resolve(job["model"]), workload),
    }


def run_job(job: dict[str, Any], progress: ProgressFn) -> dict[str, Any]:
    """Static profile as the job's implementation runs it, then (``metrics == "all"``) measurement on the job's
    device: one :class:`Result`, sent back to the parent in its wire form (``Result.to_dict``)."""
    from efficiency.counters.static import profile_static  # lazy: torch and transformers load in the worker only
    from efficiency.measure.implementation_counts import linear_work_or_refuse, static_for  # lazy: as above
    from efficiency.measure.implementations import check_implementation  # lazy: as above
    from efficiency.models.loading import resolve  # lazy: as above

    workload = Workload(**{k: v for k, v in job["workload"].items() if k in Workload.__dataclass_fields__})
    implementation = job.get("implementation") or DEFAULT_IMPLEMENTATION
    device = job.get("device", "cpu")
    check_implementation(implementation, device, workload.dtype, workload.mode)
    spec = resolve(job["model"])
    progress("static", 0.0)
    static = profile_static(spec, workload)
    linear = linear_work_or_refuse(spec, workload) if implementation == "int8" else None
    hardware = MeasuredOn.from_value(_hardware_entry(device, job.get("threads")))
    result = static_for(static.to_result(), implementation, linear).with_(model=job["model"], hardware=hardware)
    if job.get("metrics") != "all":
        return result.to_dict()
    from efficiency.measure import measure_model, noise  # lazy: as above

    def measured_progress(phase: str, fraction: float) -> None:
        progress(phase, 0.1 + 0.9 * fraction)

    before = noise.sample_state()  # the machine with this job idle, just before and just after the timing
    measured = measure_model(
        spec,
        workload,
        device=device,
        threads=job.get("threads"),
        repeats=job.get("repeats"),
        progress=measured_progress,
        forward_flops=None if result.int8_ops else static.flops,  # int8 work is not FLOPs: no achieved FLOP/s
        implementation=implementation,
    )
    after = noise.sample_state()
    timed = {name: measured.get(name) for name in ("latency_ms", "ttft_ms", "decode_ms_per_token", "training_step_ms")}
    own_threads = (hardware.threads if hardware is not None else None) or 1
    measured["noise"] = noise.assess(before, after, os.cpu_count() or 1, own_threads, timed)
    timings = {**result.timings_s, **{f"{k}_s": v for k, v in measured.pop("timings_s", {}).items()}}
    notes = [*result.notes, *measured.pop("notes", [])]
    return {**result.to_dict(), **measured, "notes": notes, "timings_s": timings, "measured": True}


def profile_measured(
    models: Sequence[str],
    workload: Workload,
    *,
    device: str = "cpu",
    threads: int | None = None,
    repeats: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    db: str | None = None,
    fresh: bool = False,
    implementations: Sequence[str] = (DEFAULT_IMPLEMENTATION,),
) -> list[Result]:
    """Every model under every implementation measured through the isolated runner and the results store, one
    result per name and implementation, in that order (a name that does not resolve gets its error under each; an
    implementation that cannot run a model gets its own; the others still run). The CLI's ``--metrics all``."""
    from tqdm import tqdm  # lazy: only a measured run draws a bar

    plan = plan_jobs(
        models,
        workload,
        [Target(device)],
        threads=threads,
        repeats=repeats,
        timeout_s=timeout_s,
        implementations=implementations,
    )
    implementations = tuple(dict.fromkeys(implementations))
    ((_, named_jobs),) = plan.jobs.items()
    bar = tqdm(total=len(named_jobs), unit="model", file=sys.stderr, disable=not sys.stderr.isatty())

    def on_progress(model: str, phase: str, fraction: float) -> None:
        bar.set_description(f"{model}: {phase}")
        if phase in {"finished", "failed", "reused", "refused"}:
            bar.update(1)

    runner = Runner(LocalExecutor(), store=ResultStore(db), estimator=estimate_job_memory)
    try:
        ran = runner.run([job for _, job in named_jobs], on_progress=on_progress, fresh=fresh)
    finally:
        bar.close()
    by_id = {(job.model, job.implementation): result for (_, job), result in zip(named_jobs, ran)}
    return [
        plan.failures[name].with_(implementation=implementation)
        if name in plan.failures
        else by_id[plan.model_ids[name], implementation]
        for name in models
        for implementation in implementations
    ]
