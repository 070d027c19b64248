"""Measure what this machine actually achieves: matmul FLOP/s per dtype and memory copy bandwidth.

Datasheet peaks are upper bounds that a CPU with two cores in a container never reaches; local roofline
estimates must use achievable figures, or every local estimate is optimistic by the same unknown factor.
The result is a catalog entry marked ``measured_here``, cached in the data folder so that it is measured
once per device, thread count and machine, and measured again only on request.

Method: square ``torch.mm`` at a few sizes (best of a few timed runs after a warm-up; 2*n^3 FLOPs each),
and a large tensor copy (bytes read + bytes written per second, the STREAM "copy" convention). A small probe
predicts each run's time, and sizes that would overrun the time budget are skipped and said so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import torch

from efficiency.hardware import calibration_path, read_calibrations, spec_from_dict, write_json_atomic
from efficiency.hardware.detect import cpu_model, environment_fingerprint
from efficiency.specs import HardwareSpec

SOURCE = "measured here by efficiency.hardware.calibrate"
DEFAULT_SECONDS_BUDGET = 10.0
BANDWIDTH_SHARE = 0.15  # of the budget; the copy is cheap next to the matmuls
MAX_REPEATS = 5
MIN_TIMED_REGION_S = 0.01  # below this, timer resolution and launch overhead would dominate
PROBE_SIZE = 256
CACHE_VERSION = 1
SIZES = {"cpu": (1024, 2048), "cuda": (4096, 8192), "mps": (2048, 4096)}
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2**30, "mps": 512 * 2**20}
DTYPES = {
    "cpu": ("float32", "bfloat16"),
    "cuda": ("float32", "tfloat32", "bfloat16", "float16"),
    "mps": ("float32", "float16"),
}
TORCH_DTYPES = {
    "float32": torch.float32,
    "tfloat32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class Timing:
    """The best time of one call of a kernel, and how it was obtained."""

    seconds: float
    runs: int
    calls_per_run: int


def _normalize_device(device: str) -> str:
    name = device.strip().lower()
    if name == "cuda":
        return "cuda:0"
    if name == "cpu" or name == "mps":
        return name
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise ValueError(f"device: {device!r} is not one of 'cpu', 'cuda', 'cuda:N', 'mps'")


def _check_device_available(device: str) -> None:
    if device.startswith("cuda"):
        index = int(device.split(":")[1])
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available in this torch build ({torch.__version__})")
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps': the Apple GPU backend is not available here")


def _synchronizer(device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return lambda: torch.cuda.synchronize(device)
    if device == "mps":
        return torch.mps.synchronize
    return lambda: None


def _time_calls(fn: Callable[[], object], device: str, calls: int) -> float:
    """Seconds per call over ``calls`` back-to-back calls; CUDA uses events so launch queues are not timed."""
    sync = _synchronizer(device)
    if device.startswith("cuda"):
        with torch.cuda.device(device):  # events record on the current device's stream: make it this one
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            sync()
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            sync()
            return start.elapsed_time(end) / 1000.0 / calls
    sync()
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - began) / calls


def best_time(fn: Callable[[], object], device: str, seconds_budget: float, max_repeats: int = MAX_REPEATS) -> Timing:
    """Warm up once, then time runs (each long enough to time well) until the budget or the repeat cap."""
    began = time.perf_counter()
    once = _time_calls(fn, device, 1)
    calls = max(1, min(10_000, math.ceil(MIN_TIMED_REGION_S / max(once, 1e-9))))
    best, runs = math.inf, 0
    while runs < max_repeats and (runs == 0 or time.perf_counter() - began < seconds_budget):
        best = min(best, _time_calls(fn, device, calls))
        runs += 1
    return Timing(seconds=best, runs=runs, calls_per_run=calls)


class _MatmulPrecision:
    """Allow TF32 only while measuring "tfloat32"; plain float32 is measured at full precision."""

    def __init__(self, dtype: str) -> None:
        self.wanted = "high" if dtype == "tfloat32" else "highest"
        self.previous = torch.get_float32_matmul_precision()

    def __enter__(self) -> None:
        torch.set_float32_matmul_precision(self.wanted)

    def __exit__(self, *exc: object) -> None:
        torch.set_float32_matmul_precision(self.previous)


def _matmul(n: int, dtype: str, device: str) -> Callable[[], object]:
    a = torch.randn(n, n, device=device).to(TORCH_DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(TORCH_DTYPES[dtype])
    out = torch.empty(n, n, device=device, dtype=TORCH_DTYPES[dtype])
    return lambda: torch.mm(a, b, out=out)


def measure_matmul(
    dtype: str, device: str, sizes: Sequence[int], seconds_budget: float
) -> tuple[float | None, list[str]]:
    """Best achieved FLOP/s for one dtype over the sizes that fit the budget, and a note line per size."""
    notes: list[str] = []
    began = time.perf_counter()
    with _MatmulPrecision(dtype):
        probe_n = min(PROBE_SIZE, min(sizes))
        probe = best_time(_matmul(probe_n, dtype, device), device, 0.0, max_repeats=1)
        rate = 2 * probe_n**3 / probe.seconds
        best_rate: float | None = None
        ordered = sorted(sizes)
        for position, n in enumerate(ordered):
            left = seconds_budget - (time.perf_counter() - began)
            predicted = 2 * n**3 / rate
            if 2 * predicted > left:  # the warm-up and one timed call must fit
                notes.append(f"{dtype} n={n} skipped: about {predicted:.2f} s per call, {max(left, 0):.2f} s left")
                continue
            timing = best_time(_matmul(n, dtype, device), device, left / (len(ordered) - position))
            rate = 2 * n**3 / timing.seconds
            best_rate = max(best_rate or 0.0, rate)
            notes.append(
                f"{dtype} n={n}: best {timing.seconds * 1e3:.2f} ms per call "
                f"({timing.runs} runs x {timing.calls_per_run}) -> {rate / 1e9:.1f} GFLOP/s"
            )
    return best_rate, notes


def measure_bandwidth(device: str, copy_bytes: int, seconds_budget: float) -> tuple[float, str]:
    """Bytes read + written per second by a large float32 copy (the STREAM copy convention)."""
    elements = max(1, copy_bytes // 4)
    source = torch.empty(elements, dtype=torch.float32, device=device).fill_(1.0)
    target = torch.empty_like(source).fill_(0.0)  # touch every page before timing
    timing = best_time(lambda: target.copy_(source), device, seconds_budget)
    moved = 2 * source.numel() * source.element_size()
    rate = moved / timing.seconds
    note = (
        f"copy {source.numel() * 4 / 2**20:.0f} MiB float32: best {timing.seconds * 1e3:.2f} ms "
        f"({timing.runs} runs x {timing.calls_per_run}) -> {rate / 1e9:.1f} GB/s counting bytes read + written"
    )
    return rate, note


def cache_key(device: str, threads: int, cpu: str, gpu: str | None) -> str:
    """What a calibration depends on: the device, the thread count and the machine."""
    return f"{device}|threads={threads}|cpu={cpu}" + (f"|gpu={gpu}" if gpu else "")


def _device_facts(device: str, threads: int) -> tuple[str, str, str, float, str | None]:
    """(spec id, name, kind, memory bytes, gpu name) of the device being calibrated."""
    if device.startswith("cuda"):
        index = int(device.split(":")[1])
        props = torch.cuda.get_device_properties(index)
        return f"local-cuda{index}", f"{props.name} (measured here)", "gpu", float(props.total_memory), props.name
    if device == "mps":
        return (
            "local-mps",
            f"Apple GPU of {cpu_model()} (measured here)",
            "soc",
            float(psutil.virtual_memory().total),
            None,
        )
    return (
        "local-cpu",
        f"{cpu_model()}, {threads} thread{'' if threads == 1 else 's'} (measured here)",
        "cpu",
        float(psutil.virtual_memory().total),
        None,
    )


def calibrate(
    device: str = "cpu",
    threads: int | None = None,
    seconds_budget: float = DEFAULT_SECONDS_BUDGET,
    *,
    sizes: Sequence[int] | None = None,
    copy_bytes: int | None = None,
    dtypes: Sequence[str] | None = None,
    recalibrate: bool = False,
    use_cache: bool = True,
) -> HardwareSpec:
    """This device's achievable FLOP/s per dtype and copy bandwidth, as a ``measured_here`` hardware entry.

    A cached result for the same device, thread count and machine is returned unless ``recalibrate``;
    ``sizes``, ``copy_bytes`` and ``dtypes`` default per device kind and exist so tests can run in a second.
    """
    device = _normalize_device(device)
    _check_device_available(device)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: must be a whole number >= 1, got {threads!r}")
    if seconds_budget <= 0:
        raise ValueError(f"seconds_budget: must be positive, got {seconds_budget!r}")
    kind = device.split(":")[0]
    sizes = tuple(sizes or SIZES[kind])
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"sizes: must be positive whole numbers, got {sizes!r}")
    dtypes = tuple(dtypes or DTYPES[kind])
    unknown = [d for d in dtypes if d not in TORCH_DTYPES]
    if unknown:
        raise ValueError(f"dtypes: {unknown} are not among {', '.join(TORCH_DTYPES)}")
    copy_bytes = copy_bytes or COPY_BYTES[kind]

    previous_threads = torch.get_num_threads()
    effective_threads = threads or previous_threads
    spec_id, name, spec_kind, memory_bytes, gpu = _device_facts(device, effective_threads)
    key = cache_key(device, effective_threads, cpu_model(), gpu)
    if use_cache and not recalibrate:
        cached = read_calibrations().get(key)
        if cached is not None:
            return spec_from_dict(cached.get("spec"), f"calibration record {key!r}")

    began = time.perf_counter()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        peaks, bandwidth, notes = _measure_all(device, sizes, dtypes, copy_bytes, seconds_budget)
    finally:
        torch.set_num_threads(previous_threads)
    seconds = time.perf_counter() - began
    summary = f"threads {effective_threads}, torch {torch.__version__}, {seconds:.1f} s in all"
    spec = HardwareSpec(
        id=spec_id,
        name=name,
        kind=spec_kind,
        peak_flops=peaks,
        memory_bandwidth_bytes_per_s=bandwidth,
        memory_bytes=memory_bytes,
        tdp_watts=None,
        source=SOURCE,
        source_note="; ".join([*notes, summary]),
        measured_here=True,
    )
    if use_cache:
        _store(key, spec, device, effective_threads, gpu, seconds)
    return spec


def _measure_all(
    device: str, sizes: tuple[int, ...], dtypes: tuple[str, ...], copy_bytes: int, seconds_budget: float
) -> tuple[dict[str, float], float, list[str]]:
    """Achieved FLOP/s per dtype, copy bandwidth, and one note line per measurement."""
    per_dtype = seconds_budget * (1 - BANDWIDTH_SHARE) / len(dtypes)
    peaks: dict[str, float] = {}
    notes: list[str] = []
    for dtype in dtypes:
        try:
            rate, lines = measure_matmul(dtype, device, sizes, per_dtype)
        except RuntimeError as exc:  # a dtype this backend lacks: say so in the note, measure the others
            notes.append(f"{dtype}: not measured ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
            continue
        notes.extend(lines)
        if rate is not None:
            peaks[dtype] = rate
    if not peaks:
        raise RuntimeError(f"calibration of {device}: no matmul dtype could be measured: {'; '.join(notes)}")
    bandwidth, note = measure_bandwidth(device, copy_bytes, seconds_budget * BANDWIDTH_SHARE)
    notes.append(note)
    return peaks, bandwidth, notes


def _store(key: str, spec: HardwareSpec, device: str, threads: int, gpu: str | None, seconds: float) -> None:
    entries: dict[str, Any] = dict(read_calibrations())
    entries[key] = {
        "device": device,
        "threads": threads,
        "cpu_model": cpu_model(),
        "gpu": gpu,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "environment": environment_fingerprint(threads),
        "spec": spec.to_dict(),
    }
    write_json_atomic(calibration_path(), {"version": CACHE_VERSION, "entries": entries})
