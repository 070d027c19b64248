"""Measured cost indicators on local hardware: latency, throughput, generation, training step, peak memory.

``measure_model`` is the one entry the runner calls inside its isolated process: it builds the real model
(random weights) on the device, then measures phase by phase and returns raw numbers whose keys carry
their units (``_ms``, ``_bytes``, ``_per_s``). Everything here is *measured*, and says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch

from efficiency.measure.generation import GenerationMeasurement, measure_generation
from efficiency.measure.implementations import (
    GENERATION_NOTE,
    ImplementationError,
    attention_for,
    check_implementation,
    memory_breakdown,
    prepare,
)
from efficiency.measure.memory import (
    MemoryBreakdown,
    baseline_bytes,
    release_free_memory,
    track_peak,
    training_breakdown,
    warm_up_runtime,
)
from efficiency.measure.timing import (
    InferenceMeasurement,
    LatencyStats,
    device_kind,
    measure_inference,
    measure_latency,
    num_threads,
)
from efficiency.measure.training import TrainingMeasurement, TrainingStep, measure_training
from efficiency.models.inputs import fit_workload, make_inputs, plan_inputs
from efficiency.models.loading import ModelLoadError, build_model, check_workload
from efficiency.results import DEFAULT_IMPLEMENTATION
from efficiency.specs import ModelSpec, Workload

__all__ = [
    "GenerationMeasurement",
    "ImplementationError",
    "InferenceMeasurement",
    "LatencyStats",
    "MemoryBreakdown",
    "TrainingMeasurement",
    "TrainingStep",
    "check_device",
    "check_implementation",
    "measure_generation",
    "measure_inference",
    "measure_latency",
    "measure_model",
    "measure_training",
    "supported_dtypes",
]

INFERENCE_MIN_REPEATS = 10
INFERENCE_MIN_TIME_S = 1.0
TRAINING_WARMUP = 1
TRAINING_MIN_REPEATS = 3
TRAINING_MIN_TIME_S = 1.0
GENERATION_REPEATS = 3
GENERATION_NEW_TOKENS = 32
MEMORY_PASS_CALLS = 3

ProgressCallback = Callable[[str, float], None]


def check_device(device: str | torch.device) -> str:
    """The canonical device string, or a ValueError saying why it cannot be used here."""
    try:
        parsed = torch.device(device)
    except RuntimeError as exc:  # torch's own message lists all ~20 of its backend names
        raise ValueError(f"device: {str(device)!r} is not a device name; use cpu, cuda[:N] or mps") from exc
    kind = device_kind(parsed)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {str(device)!r} requested but this torch sees no CUDA GPU")
        index = parsed.index if parsed.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"device: cuda:{index} does not exist; {torch.cuda.device_count()} GPU(s) visible")
        return f"cuda:{index}"
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device: 'mps' requested but the Metal backend is not available")
    return kind


def supported_dtypes(device: str | torch.device) -> tuple[str, ...]:
    """Dtypes we measure on a device. float16 on CPU is refused: its matmuls are emulated and very slow."""
    kind = device_kind(device)
    if kind == "cuda":
        with torch.cuda.device(torch.device(device)):
            bf16 = torch.cuda.is_bf16_supported()
        return ("float32", "float16", "bfloat16") if bf16 else ("float32", "float16")
    if kind == "mps":
        bf16 = torch.backends.mps.is_macos_or_newer(14, 0)
        return ("float32", "float16", "bfloat16") if bf16 else ("float32", "float16")
    return ("float32", "bfloat16")


def _check_dtype(device: str, dtype: str) -> None:
    accepted = supported_dtypes(device)
    if dtype not in accepted:
        raise ValueError(f"dtype: {dtype} is not measured on {device}; accepted there: {', '.join(accepted)}")


def _check_threads(threads: int | None) -> int:
    cores = os.cpu_count() or 1
    if threads is None:
        return torch.get_num_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cores:
        raise ValueError(f"threads: {threads!r} must be a whole number in 1..{cores} (this machine's cores)")
    return threads


def _warm_imports(spec: ModelSpec, workload: Workload) -> str:
    """Build once on ``meta`` (no weights) so the modeling code's import (often 100+ MB RSS) precedes the baseline."""
    try:
        build_model(spec, device="meta", dtype=workload.dtype)
    except ModelLoadError as exc:
        return f"meta pre-build failed ({exc}); the peak may include the modeling code's import"
    return "baseline taken after importing the modeling code and starting torch's thread pool"


def _phases(spec: ModelSpec, workload: Workload, generates: bool = True) -> list[str]:
    phases = ["build", "inference"]
    if spec.is_causal_lm and generates:
        phases.append("generation")
    if workload.mode == "training":
        phases.append("training")
    return phases


def measure_model(
    spec: ModelSpec,
    workload: Workload,
    device: str = "cpu",
    threads: int | None = None,
    repeats: int | None = None,
    progress: ProgressCallback | None = None,
    forward_flops: float | None = None,
    min_time_s: float | None = None,
    new_tokens: int = GENERATION_NEW_TOKENS,
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> dict[str, Any]:
    """Build the model on ``device``, make it ready for ``implementation`` and measure it; a dict of raw numbers
    with units in the keys (``setup_s``: the implementation's one-off compile, quantize, export, session seconds).

    ``repeats`` sets the minimum number of timed repeats of every phase (inference calls, training steps,
    generation runs); ``min_time_s`` the minimum timed seconds of inference and training. Memory is
    measured above a baseline taken before the model is built (see ``efficiency.measure.memory``).
    """
    device = check_device(device)
    _check_dtype(device, workload.dtype)
    check_implementation(implementation, device, workload.dtype, workload.mode)
    check_workload(spec, workload)
    workload, _ = fit_workload(spec, workload)  # the static profile beside it states the change
    threads = _check_threads(threads)
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1):
        raise ValueError(f"repeats: must be a whole number >= 1, got {repeats!r}")
    timings: dict[str, float] = {}
    result: dict[str, Any] = {
        "measured": True,
        "implementation": implementation,
        "device": device,
        "threads": threads,
        "dtype": workload.dtype,
        "workload": workload.for_modality(spec.modality),
        "inputs": plan_inputs(spec, workload).description,
    }
    notes: list[str] = []
    phases = ["build", "inference"]

    def start(phase: str) -> float:
        if progress is not None:
            progress(phase, phases.index(phase) / len(phases))
        return time.perf_counter()

    with num_threads(threads):
        began = start("build")
        result["memory_baseline_note"] = _warm_imports(spec, workload)
        warm_up_runtime(device)
        baseline = baseline_bytes(device)
        attention = attention_for(implementation)
        model = build_model(spec, device=device, dtype=workload.dtype, attn_implementation=attention)
        timings["build"] = time.perf_counter() - began
        inputs = make_inputs(spec, workload, device)
        prepared = prepare(implementation, model, inputs, device, threads)  # its one-off seconds go to setup_s
        model = prepared.module  # int8 and onnxruntime leave the float model behind: freed before the timed calls
        release_free_memory(device)
        if prepared.setup_s:
            result["setup_s"] = dict(prepared.setup_s)
        notes.extend(prepared.notes)
        phases = _phases(spec, workload, prepared.generates)
        if spec.is_causal_lm and not prepared.generates:
            notes.append(GENERATION_NOTE.format(name=implementation))

        began = start("inference")
        inference = measure_inference(
            prepared.runner,
            inputs,
            spec,
            workload,
            device=device,
            threads=threads,
            forward_flops=forward_flops,
            min_repeats=repeats or INFERENCE_MIN_REPEATS,
            min_time_s=INFERENCE_MIN_TIME_S if min_time_s is None else min_time_s,
        )
        result.update(inference.to_dict())
        with track_peak(device) as peak, torch.inference_mode():
            for _ in range(MEMORY_PASS_CALLS):
                prepared.runner(**inputs)
        inference_memory = memory_breakdown(prepared, peak, baseline)
        result["peak_memory_bytes"] = inference_memory.peak_bytes
        result["memory_breakdown"] = inference_memory.to_dict()
        timings["inference"] = time.perf_counter() - began

        if "generation" in phases:
            began = start("generation")
            generation = measure_generation(
                model, spec, workload, device, threads, new_tokens=new_tokens, repeats=repeats or GENERATION_REPEATS
            )
            result.update(generation.to_dict())
            timings["generation"] = time.perf_counter() - began

        if workload.mode == "training":
            began = start("training")
            step = TrainingStep(model, spec, workload, device)
            training = measure_training(
                step,
                device=device,
                threads=threads,
                warmup=TRAINING_WARMUP,
                min_repeats=repeats or TRAINING_MIN_REPEATS,
                min_time_s=TRAINING_MIN_TIME_S if min_time_s is None else min_time_s,
            )
            result.update(training.to_dict())
            with track_peak(device) as peak:
                step()
            training_memory = training_breakdown(model, step.optimizer, peak, baseline)
            result["peak_memory_training_bytes"] = training_memory.peak_bytes
            result["memory_breakdown_training"] = training_memory.to_dict()
            step.close()
            del step
            timings["training"] = time.perf_counter() - began

    del model, inputs, prepared
    release_free_memory(device)
    result["timings_s"] = timings
    if notes:
        result["notes"] = notes
    if progress is not None:
        progress("done", 1.0)
    return result
