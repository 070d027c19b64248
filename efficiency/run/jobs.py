"""Glue between the runner and the engine: what one isolated profiling job does, and its memory estimate.

``run_job`` is the runner's default target: it runs in a forked worker, profiles one model statically
(weight-free), and for ``metrics="all"`` builds the real model (random weights) and measures it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from efficiency.specs import Workload

ProgressFn = Callable[[str, float], None]
ACTIVATION_ALLOWANCE = 0.25  # activations and allocator slack on top of the weights, as a fraction: a rough bound


def _hardware_entry(device: str, threads: int | None) -> dict[str, Any]:
    from efficiency.hardware.detect import environment_fingerprint

    env = environment_fingerprint(threads)
    name = env["gpu"] if device.startswith("cuda") and env["gpu"] else env["cpu_model"]
    return {"id": f"local-{device}", "device": device, "name": name, "threads": env["threads"], "environment": env}


def run_job(job: dict[str, Any], progress: ProgressFn) -> dict[str, Any]:
    """Static profile, then (``metrics == "all"``) measurement on the job's device; one result dict."""
    from efficiency.counters.static import profile_static
    from efficiency.models.loading import resolve

    workload = Workload(**{k: v for k, v in job["workload"].items() if k in Workload.__dataclass_fields__})
    spec = resolve(job["model"])
    progress("static", 0.0)
    static = profile_static(spec, workload)
    result = static.to_dict()
    result["model"] = job["model"]
    result["hardware"] = _hardware_entry(job.get("device", "cpu"), job.get("threads"))
    if job.get("metrics") != "all":
        return result
    from efficiency.measure import measure_model

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
    timings = {**result.pop("timings_s"), **{f"{k}_s": v for k, v in measured.pop("timings_s", {}).items()}}
    result.update(measured)
    result["timings_s"] = timings
    result["measured"] = True
    return result


def estimate_job_memory(job: Any) -> int:
    """Bytes a measured job will need: weights (+ gradients and AdamW state when training) plus an
    allowance for activations. Built on ``meta``, so it costs no memory itself."""
    from efficiency.counters.params import count_params
    from efficiency.models.loading import build_model, resolve

    workload = Workload(**{k: v for k, v in job.workload.items() if k in Workload.__dataclass_fields__})
    spec = resolve(job.model)
    params = count_params(build_model(spec, device="meta", dtype=workload.dtype), spec).total
    weights = params * workload.bytes_per_element
    if workload.mode == "training":
        weights += params * workload.bytes_per_element + 2 * params * 4  # gradients + AdamW moments (fp32)
    return int(weights * (1 + ACTIVATION_ALLOWANCE))


def profile_measured(models: list[str], workload: Workload, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The CLI's ``--metrics all``: every model through the isolated runner and the results store."""
    from tqdm import tqdm

    from efficiency.models.loading import resolve
    from efficiency.run.runner import Job, LocalExecutor, Runner
    from efficiency.store.store import ResultStore

    store = ResultStore(args.db)
    jobs: list[Job] = []
    failed: dict[int, dict[str, Any]] = {}
    for index, name in enumerate(models):
        try:
            spec = resolve(name)
        except ValueError as exc:  # this model gets its error; the others still run
            failed[index] = {"model": name, "workload": workload.to_dict(), "error": str(exc), "measured": False}
            continue
        jobs.append(
            Job(
                model=spec.id,
                workload=workload.for_modality(spec.modality),
                metrics="all",
                device=args.device,
                threads=args.threads,
                repeats=args.repeats,
                timeout_s=args.timeout,
            )
        )
    bar = tqdm(total=len(jobs), unit="model", file=sys.stderr, disable=not sys.stderr.isatty())

    def on_progress(model: str, phase: str, fraction: float) -> None:
        bar.set_description(f"{model}: {phase}")
        if phase in {"finished", "failed", "reused", "refused"}:
            bar.update(1)

    try:
        ran = iter(
            Runner(LocalExecutor(), store=store, estimator=estimate_job_memory).run(
                jobs, on_progress=on_progress, fresh=args.fresh
            )
        )
    finally:
        bar.close()
    return [failed[i] if i in failed else next(ran) for i in range(len(models))]
