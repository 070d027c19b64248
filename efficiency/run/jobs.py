"""Glue between the runner and the engine: what one isolated profiling job does (its memory estimate is in
:mod:`efficiency.run.budget`).

``run_job`` is the runner's default target: it runs in a forked worker, profiles one model statically
(weight-free), and for ``metrics="all"`` builds the real model (random weights) and measures it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from efficiency.hardware.detect import environment_fingerprint
from efficiency.results import MeasuredOn, Result
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
    """Static profile, then (``metrics == "all"``) measurement on the job's device: one :class:`Result`, sent back
    to the parent in its wire form (``Result.to_dict``)."""
    from efficiency.counters.static import profile_static  # lazy: torch and transformers load in the worker only
    from efficiency.models.loading import resolve  # lazy: as above

    workload = Workload(**{k: v for k, v in job["workload"].items() if k in Workload.__dataclass_fields__})
    spec = resolve(job["model"])
    progress("static", 0.0)
    static = profile_static(spec, workload)
    hardware = MeasuredOn.from_value(_hardware_entry(job.get("device", "cpu"), job.get("threads")))
    result = static.to_result().with_(model=job["model"], hardware=hardware)
    if job.get("metrics") != "all":
        return result.to_dict()
    from efficiency.measure import measure_model  # lazy: as above

    def measured_progress(phase: str, fraction: float) -> None:
        progress(phase, 0.1 + 0.9 * fraction)

    measured = measure_model(
        spec,
        workload,
        device=job.get("device", "cpu"),
        threads=job.get("threads"),
        repeats=job.get("repeats"),
        progress=measured_progress,
        forward_flops=static.flops,
    )
    timings = {**result.timings_s, **{f"{k}_s": v for k, v in measured.pop("timings_s", {}).items()}}
    return {**result.to_dict(), **measured, "timings_s": timings, "measured": True}


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
) -> list[Result]:
    """Every model measured through the isolated runner and the results store, one result per name in order
    (a name that does not resolve gets its error; the others still run). The CLI's ``--metrics all``."""
    from tqdm import tqdm  # lazy: only a measured run draws a bar

    plan = plan_jobs(models, workload, [Target(device)], threads=threads, repeats=repeats, timeout_s=timeout_s)
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
    by_id = {job.model: result for (_, job), result in zip(named_jobs, ran)}
    return [plan.failures[name] if name in plan.failures else by_id[plan.model_ids[name]] for name in models]
