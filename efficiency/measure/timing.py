"""Wall-clock latency with warm-up, enough repeats and spread, synchronised per device.

One sample is one call of a function, timed from its launch to the device having finished it:
``time.perf_counter`` on CPU, CUDA events plus a synchronise on CUDA, a synchronise around
``perf_counter`` on MPS. Timing stops only when both a minimum count and a minimum total time are
reached, so fast models get many samples and slow ones still get a median, not a single run.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from efficiency.specs import ModelSpec, Workload


def percentile(sorted_samples: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on already sorted samples."""
    if not sorted_samples:
        raise ValueError("percentile: no samples")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"percentile: fraction {fraction} is outside 0..1")
    position = (len(sorted_samples) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_samples) - 1)
    return sorted_samples[low] + (sorted_samples[high] - sorted_samples[low]) * (position - low)


@dataclass(frozen=True)
class LatencyStats:
    """Samples in seconds and their summary; formatted (to ms) only by ``to_dict``."""

    samples: tuple[float, ...]
    median: float
    p10: float
    p90: float
    iqr: float
    std: float
    mean: float
    n: int

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> LatencyStats:
        """Summary of raw samples (seconds); std is the sample standard deviation (0 for one sample)."""
        values = tuple(float(s) for s in samples)
        if not values:
            raise ValueError("latency: at least one sample is required")
        ordered = sorted(values)
        return cls(
            samples=values,
            median=percentile(ordered, 0.5),
            p10=percentile(ordered, 0.1),
            p90=percentile(ordered, 0.9),
            iqr=percentile(ordered, 0.75) - percentile(ordered, 0.25),
            std=statistics.stdev(values) if len(values) > 1 else 0.0,
            mean=statistics.fmean(values),
            n=len(values),
        )

    @property
    def total(self) -> float:
        return math.fsum(self.samples)

    def to_dict(self) -> dict[str, float | int]:
        """Milliseconds; the caller stores this under a key that says so (``latency_ms``)."""
        return {
            "median": self.median * 1e3,
            "p10": self.p10 * 1e3,
            "p90": self.p90 * 1e3,
            "iqr": self.iqr * 1e3,
            "std": self.std * 1e3,
            "n": self.n,
        }


def device_kind(device: str | torch.device) -> str:
    """'cpu', 'cuda' or 'mps' for a device string such as 'cuda:1'."""
    kind = torch.device(device).type
    if kind not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"device: {str(device)!r} is not supported; use cpu, cuda[:N] or mps")
    return kind


def synchronize(device: str | torch.device) -> None:
    """Wait for queued work so that the clock sees it finished."""
    kind = device_kind(device)
    if kind == "cuda":
        torch.cuda.synchronize(torch.device(device))
    elif kind == "mps":
        torch.mps.synchronize()


class DeviceClock:
    """Marks points in a stream of work and reads the seconds between them once it has finished.

    On CUDA a mark is a recorded event, so a loop of marks does not stall the GPU until ``elapsed``.
    """

    def __init__(self, device: str | torch.device = "cpu", clock: Callable[[], float] = time.perf_counter) -> None:
        self.device = torch.device(device)
        self.kind = device_kind(device)
        self.clock = clock

    def mark(self) -> Any:
        if self.kind == "cuda":
            with torch.cuda.device(self.device):
                event = torch.cuda.Event(enable_timing=True)
                event.record()
            return event
        if self.kind == "mps":
            torch.mps.synchronize()
        return self.clock()

    def elapsed(self, start: Any, end: Any) -> float:
        """Seconds from ``start`` to ``end`` (synchronises on CUDA)."""
        if self.kind == "cuda":
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        return end - start


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` intra-op threads and restore the previous setting afterwards."""
    previous = torch.get_num_threads()
    if threads is None:
        yield previous
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads: must be a whole number >= 1, got {threads!r}")
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """A collection in the middle of a sample is noise, not model cost (timeit does the same)."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def measure_latency(
    fn: Callable[[], Any],
    device: str | torch.device = "cpu",
    min_repeats: int = 10,
    min_time_s: float = 1.0,
    warmup: int = 3,
    max_repeats: int = 1000,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyStats:
    """Time ``fn()`` until both ``min_repeats`` samples and ``min_time_s`` seconds of samples exist.

    ``max_repeats`` caps the count for very fast functions; ``clock`` is injectable for tests.
    """
    if min_repeats < 1 or max_repeats < min_repeats:
        raise ValueError(f"repeats: need 1 <= min_repeats ({min_repeats}) <= max_repeats ({max_repeats})")
    if warmup < 0 or min_time_s < 0:
        raise ValueError("warmup and min_time_s: must not be negative")
    timer = DeviceClock(device, clock)
    for _ in range(warmup):
        fn()
    synchronize(device)
    samples: list[float] = []
    total = 0.0
    with gc_paused():
        while len(samples) < max_repeats and (len(samples) < min_repeats or total < min_time_s):
            start = timer.mark()
            fn()
            seconds = timer.elapsed(start, timer.mark())
            samples.append(seconds)
            total += seconds
    return LatencyStats.from_samples(samples)


@dataclass(frozen=True)
class InferenceMeasurement:
    """Forward latency and what it implies: items/s, tokens/s, achieved FLOP/s."""

    latency: LatencyStats
    batch_size: int
    tokens_per_item: int | None
    forward_flops: float | None

    @property
    def items_per_s(self) -> float:
        return self.batch_size / self.latency.median

    @property
    def tokens_per_s(self) -> float | None:
        if self.tokens_per_item is None:
            return None
        return self.batch_size * self.tokens_per_item / self.latency.median

    @property
    def achieved_flops_per_s(self) -> float | None:
        return None if self.forward_flops is None else self.forward_flops / self.latency.median

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"latency_ms": self.latency.to_dict(), "throughput_per_s": self.items_per_s}
        if self.tokens_per_s is not None:
            result["tokens_per_s"] = self.tokens_per_s
        if self.achieved_flops_per_s is not None:
            result["achieved_flops_per_s"] = self.achieved_flops_per_s
        return result


def measure_inference(
    model: torch.nn.Module | Callable[..., Any],
    inputs: dict[str, Any],
    spec: ModelSpec,
    workload: Workload,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    forward_flops: float | None = None,
    min_repeats: int = 10,
    min_time_s: float = 1.0,
    warmup: int = 3,
    max_repeats: int = 1000,
) -> InferenceMeasurement:
    """Forward latency of ``model(**inputs)`` under ``torch.inference_mode`` with ``threads`` CPU threads; ``model``
    is a torch module or anything called like one (an implementation's runner, e.g. an ONNX Runtime session)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
    with num_threads(threads), torch.inference_mode():
        stats = measure_latency(
            lambda: model(**inputs),
            device=device,
            min_repeats=min_repeats,
            min_time_s=min_time_s,
            warmup=warmup,
            max_repeats=max_repeats,
        )
    tokens = workload.seq_len if spec.modality == "text" else None
    return InferenceMeasurement(stats, workload.batch_size, tokens, forward_flops)
