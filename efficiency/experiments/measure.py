"""Numbers for experiments: static counts (cached, weight-free) and measurements in isolated processes.

A sweep measures one model at several workloads, so a job here builds the model once and walks the
points in order (``PointsJob``), instead of one runner job per point, each rebuilding the model. The job
runs through the project's isolated runner (a forked worker per model), because peak memory is read from
the process's RSS and must not include the dashboard's own memory. Without isolation (quick runs in
tests) peak memory is not read at all: an in-process figure would not be the model's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from efficiency.experiments.base import Progress
from efficiency.hardware.detect import cpu_model, environment_fingerprint
from efficiency.run.job import Job
from efficiency.run.planning import make_job
from efficiency.run.runner import LocalExecutor
from efficiency.specs import ModelSpec, Workload

TARGET = "efficiency.experiments.measure:measure_points"
JOB_TIMEOUT_S = 300.0

STATIC_SOURCES = {
    "params": "counted",
    "params_active": "counted",
    "flops": "counted",
    "macs": "counted",
    "training_flops": "counted",
    "attention_flops": "counted",
    "memory_traffic_bytes": "counted",
    "arithmetic_intensity_flops_per_byte": "derived",
}
MEASURED_SOURCES = {
    "latency_ms": "measured",
    "latency_p10_ms": "measured",
    "latency_p90_ms": "measured",
    "latency_samples": "measured",
    "throughput_per_s": "measured",
    "peak_memory_bytes": "measured",
    "training_step_ms": "measured",
    "training_step_p10_ms": "measured",
    "training_step_p90_ms": "measured",
    "peak_memory_training_bytes": "measured",
}


class MeasurementError(RuntimeError):
    """A model's measurement failed (timeout, crash, memory); the message names the model and why."""


@dataclass
class PointsJob(Job):
    """One model (any spec, also a custom config), measured at several workloads in one isolated process."""

    spec: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    warmup: int = 1
    min_time_s: float = 0.5
    memory: bool = True
    training: bool = False


def _memory_pass(model: Any, inputs: dict, baseline: int) -> int:
    """Peak RSS above the pre-build baseline during one forward pass (freed memory returned first)."""
    import torch

    from efficiency.measure.memory import inference_breakdown, release_free_memory, track_peak  # lazy: imports torch

    release_free_memory("cpu")
    with track_peak("cpu") as peak, torch.inference_mode():
        model(**inputs)
    return inference_breakdown(model, peak, baseline).peak_bytes


def _training_point(model: Any, spec: ModelSpec, workload: Workload, job: dict, baseline: int | None) -> dict:
    from efficiency.measure import TRAINING_MIN_REPEATS  # lazy: torch loads in the worker only
    from efficiency.measure.memory import release_free_memory, track_peak, training_breakdown  # lazy: imports torch
    from efficiency.measure.training import TrainingStep, measure_training  # lazy: imports torch

    step = TrainingStep(model, spec, workload, "cpu")
    try:
        training = measure_training(
            step,
            "cpu",
            job["threads"],
            warmup=max(1, job["warmup"]),
            min_repeats=job["repeats"] or TRAINING_MIN_REPEATS,
            min_time_s=job["min_time_s"],
        )
        row: dict[str, Any] = training.to_dict()
        if baseline is not None:
            release_free_memory("cpu")
            with track_peak("cpu") as peak:
                step()
            row["peak_memory_training_bytes"] = training_breakdown(model, step.optimizer, peak, baseline).peak_bytes
    finally:
        step.close()
    return row


def measure_points(job: dict[str, Any], progress: Any) -> dict[str, Any]:
    """Runner target (runs in the isolated worker): build once, then per point latency [+ memory, training]."""
    from efficiency.measure import INFERENCE_MIN_REPEATS  # lazy: torch loads in the worker only
    from efficiency.measure.memory import baseline_bytes, warm_up_runtime  # lazy: imports torch
    from efficiency.measure.timing import measure_inference, num_threads  # lazy: imports torch
    from efficiency.models.inputs import make_inputs  # lazy: imports torch
    from efficiency.models.loading import build_model, check_workload  # lazy: imports torch

    spec = ModelSpec(**job["spec"])
    points = [Workload(**p) for p in job["points"]]
    for workload in points:
        check_workload(spec, workload)
    rows: list[dict[str, Any]] = []
    threads = job["threads"]
    with num_threads(threads):
        build_model(spec, device="meta", dtype=points[0].dtype)  # modeling code imported before the baseline
        warm_up_runtime("cpu")
        baseline = baseline_bytes("cpu") if job["memory"] else None
        model = build_model(spec, device="cpu", dtype=points[0].dtype)
        for index, workload in enumerate(points):
            progress(f"point {index + 1}/{len(points)}", index / len(points))
            inputs = make_inputs(spec, workload, "cpu")
            row: dict[str, Any] = {"workload": workload.to_dict()}
            if baseline is not None:  # the memory pass doubles as the first warm-up call
                row["peak_memory_bytes"] = _memory_pass(model, inputs, baseline)
            inference = measure_inference(
                model,
                inputs,
                spec,
                workload,
                device="cpu",
                threads=threads,
                min_repeats=job["repeats"] or INFERENCE_MIN_REPEATS,
                min_time_s=job["min_time_s"],
                warmup=max(0, job["warmup"] - (baseline is not None)),
            )
            row.update(inference.to_dict())
            if job["training"]:
                row.update(_training_point(model, spec, workload, job, baseline))
            rows.append(row)
            del inputs
    return {"points": rows, "environment": environment_fingerprint(threads)}


def measure(
    runs: Sequence[tuple[ModelSpec, Sequence[Workload]]],
    setup: dict[str, Any],
    progress: Progress,
    training: bool = False,
    span: tuple[float, float] = (0.0, 1.0),
) -> list[list[dict[str, Any]]]:
    """Measure each (spec, workloads) in order; one list of point dicts per spec. Raises on any failure.

    ``setup`` gives ``threads``, ``repeats``, ``warmup``, ``min_time_s`` and ``isolated`` (default True);
    progress is reported within ``span`` of the experiment's 0..1.
    """
    isolated = setup.get("isolated", True)
    jobs = [
        make_job(
            spec.id,
            list(points)[0].for_modality(spec.modality),
            threads=setup.get("threads"),
            repeats=setup.get("repeats"),
            timeout_s=setup.get("timeout_s", JOB_TIMEOUT_S),
            job_class=PointsJob,
            target=TARGET,
            spec=spec.to_dict(),
            points=[w.to_dict() for w in points],
            warmup=setup.get("warmup", 1),
            min_time_s=setup.get("min_time_s", 0.5),
            memory=isolated and setup.get("memory", True),
            training=training,
        )
        for spec, points in runs
    ]
    low, high = span
    done: list[str] = []
    names = {spec.id: spec.display_name for spec, _ in runs}  # progress names the model as the page does

    def on_progress(model: str, phase: str, fraction: float) -> None:
        if phase in {"finished", "failed"}:
            done.append(model)
        share = (len(done) + (0.0 if phase in {"finished", "failed"} else fraction)) / max(len(jobs), 1)
        progress(low + (high - low) * min(share, 1.0), f"measuring {names.get(model, model)}: {phase}")

    if isolated:
        results: list[dict[str, Any]] = [{}] * len(jobs)
        for index, outcome in LocalExecutor().execute(jobs, on_progress):  # the points come back as sent
            results[index] = outcome
    else:
        results = []
        for job in jobs:
            results.append(
                {"model": job.model, **measure_points(job.to_dict(), lambda p, f, m=job.model: on_progress(m, p, f))}
            )
            on_progress(job.model, "finished", 1.0)
    failures = [f"{names.get(r['model'], r['model'])}: {r['error']}" for r in results if r.get("error")]
    if failures:
        raise MeasurementError("measurement failed for " + "; ".join(failures))
    return [r["points"] for r in results]


SETUP_SOURCES = dict.fromkeys(
    ("model", "model_id", "point", "hardware", "dtype", "batch_size", "seq_len", "image_size", "measured"), "setup"
)


def local_hardware(threads: int | None) -> str:
    """The ``hardware`` column of rows measured here (charts print it in their subtitle)."""

    return f"{cpu_model()}, {threads} thread{'s' if threads != 1 else ''}" if threads else cpu_model()


def setup_columns(spec: ModelSpec, workload: Workload, threads: int | None, measured: bool) -> dict[str, Any]:
    """What every row states about its setup: model (display name; ``model_id`` resolves), hardware, dtype,
    batch, sequence length or image size."""
    shape = {"seq_len": workload.seq_len} if spec.modality == "text" else {"image_size": workload.image_size}
    return {
        "model": spec.display_name,
        "model_id": spec.id,
        "hardware": local_hardware(threads),
        "dtype": workload.dtype,
        "batch_size": workload.batch_size,
        **shape,
        "measured": measured,
    }


def sources_for(columns: Sequence[str], **overrides: str) -> dict[str, str]:
    """The source of each column: setup, counted, measured, derived; ``overrides`` for the rest."""
    known = {**SETUP_SOURCES, **STATIC_SOURCES, **MEASURED_SOURCES, **overrides}
    missing = [c for c in columns if c not in known]
    if missing:
        raise ValueError(f"sources: no source given for columns {missing}")
    return {c: known[c] for c in columns}


def measured_columns(point: dict[str, Any]) -> dict[str, Any]:
    """The flat, unit-named columns of one measured point."""
    latency = point.get("latency_ms") or {}
    row = {
        "latency_ms": latency.get("median"),
        "latency_p10_ms": latency.get("p10"),
        "latency_p90_ms": latency.get("p90"),
        "latency_samples": latency.get("n"),
        "throughput_per_s": point.get("throughput_per_s"),
        "peak_memory_bytes": point.get("peak_memory_bytes"),
    }
    if "training_step_ms" in point:
        step = point["training_step_ms"]
        row.update(
            training_step_ms=step["median"],
            training_step_p10_ms=step["p10"],
            training_step_p90_ms=step["p90"],
            peak_memory_training_bytes=point.get("peak_memory_training_bytes"),
        )
    return row


@lru_cache(maxsize=128)
def _profile(spec_json: str, workload_json: str):
    from efficiency.counters.static import profile_static  # lazy: imports torch

    return profile_static(ModelSpec(**json.loads(spec_json)), Workload(**json.loads(workload_json)))


def static_profile(spec: ModelSpec, workload: Workload):
    """The static profile (weight-free, cached per spec and workload: sweeps and re-runs reuse it)."""
    return _profile(json.dumps(spec.to_dict(), sort_keys=True), json.dumps(workload.to_dict(), sort_keys=True))


def static_columns(spec: ModelSpec, workload: Workload) -> dict[str, Any]:
    """Counted indicators of one model at one workload, flat and unit-named."""
    result = static_profile(spec, workload).to_result()
    return {name: getattr(result, name) for name in STATIC_SOURCES}


def resolve_all(names: Sequence[str]) -> list[ModelSpec]:
    from efficiency.models.loading import resolve  # lazy: imports torch

    return [resolve(name) for name in names]
