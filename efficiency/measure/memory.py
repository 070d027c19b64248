"""Peak memory during inference and a training step, split into weights, activations, gradients, optimizer state.

CUDA: the caching allocator's own peak (``max_memory_allocated``), exact for tensors. CPU: torch keeps no
allocator statistics, so we read the process's resident set size (RSS) with psutil: a baseline before the
model is built, then a background thread samples RSS every few milliseconds while the work runs. The result
is *process* memory above the baseline: it includes the C allocator's caching, thread stacks and
libraries that load lazily, so it is an upper bound on tensor memory. ``ru_maxrss`` is not used because it
only grows over the life of a process. The isolated runner gives each model a fresh (or trimmed) process,
so the baseline is that of an interpreter with torch loaded. Every figure is raw bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self

import psutil
import torch

from efficiency.measure.timing import device_kind, synchronize

SAMPLE_INTERVAL_S = 0.005
KIND_BY_DEVICE = {"cpu": "process_rss", "cuda": "cuda_allocator", "mps": "mps_allocator_sampled"}


def tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(tensor_bytes(p) for p in model.parameters())


def buffer_bytes(model: torch.nn.Module) -> int:
    """Non-trainable tensors the model carries (position ids, running stats); small but real."""
    return sum(tensor_bytes(b) for b in model.buffers())


def gradient_bytes(model: torch.nn.Module) -> int | None:
    """Bytes of the gradients currently held; None when no parameter holds one."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return sum(tensor_bytes(g) for g in grads) if grads else None


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int | None:
    """Bytes of the optimizer's state tensors (AdamW: exp_avg, exp_avg_sq, step); None before its first step."""
    total = 0
    for state in optimizer.state.values():
        total += sum(tensor_bytes(v) for v in state.values() if isinstance(v, torch.Tensor))
    return total or None


def _glibc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    library = ctypes.CDLL(name)
    return library if hasattr(library, "malloc_trim") else None


def release_free_memory(device: str | torch.device = "cpu") -> None:
    """Give freed memory back before a baseline, so later allocations show up instead of reusing it.

    Without this, a warm worker that profiled an earlier model holds freed-but-resident heap pages that
    the next model reuses, and its RSS would not grow at all.
    """
    gc.collect()
    kind = device_kind(device)
    if kind == "cuda":
        torch.cuda.synchronize(torch.device(device))
        torch.cuda.empty_cache()
    elif kind == "mps":
        torch.mps.empty_cache()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def warm_up_runtime(device: str | torch.device = "cpu") -> None:
    """Start torch's thread pool and autograd once, so their one-off memory is not charged to the model."""
    weights = torch.ones(32, 32, device=device, requires_grad=True)
    (weights @ weights).sum().backward()
    synchronize(device)


def current_bytes(device: str | torch.device = "cpu") -> int:
    """Memory in use now: process RSS on CPU, allocated tensor bytes on CUDA and MPS."""
    kind = device_kind(device)
    if kind == "cuda":
        return int(torch.cuda.memory_allocated(torch.device(device)))
    if kind == "mps":
        return int(torch.mps.current_allocated_memory())
    return int(psutil.Process().memory_info().rss)


def baseline_bytes(device: str | torch.device = "cpu") -> int:
    """The reference taken before the model is built: freed memory returned first, then read."""
    release_free_memory(device)
    return current_bytes(device)


class PeakSampler:
    """A background thread that samples ``read()`` every ``interval_s`` and keeps the maximum.

    Torch kernels release the GIL, so the thread keeps sampling while a forward or backward pass runs.
    """

    def __init__(self, read: Callable[[], int], interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.read = read
        self.interval_s = interval_s
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-memory-sampler", daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, self.read())
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> Self:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class PeakMemory:
    """Filled in when the ``track_peak`` block ends: the absolute peak and how it was read."""

    kind: str
    peak_bytes: int = 0
    samples: int = 0


@contextlib.contextmanager
def track_peak(device: str | torch.device = "cpu", interval_s: float = SAMPLE_INTERVAL_S) -> Iterator[PeakMemory]:
    """Peak memory while the block runs (absolute; subtract a baseline for the model's share)."""
    kind = device_kind(device)
    result = PeakMemory(KIND_BY_DEVICE[kind])
    if kind == "cuda":
        torch.cuda.synchronize(torch.device(device))
        torch.cuda.reset_peak_memory_stats(torch.device(device))
        yield result
        torch.cuda.synchronize(torch.device(device))
        result.peak_bytes = int(torch.cuda.max_memory_allocated(torch.device(device)))
        result.samples = 1
        return
    with PeakSampler(lambda: current_bytes(device), interval_s) as sampler:
        yield result
        if kind == "mps":
            torch.mps.synchronize()
    result.peak_bytes = sampler.peak
    result.samples = sampler.samples


@dataclass(frozen=True)
class MemoryBreakdown:
    """Peak above baseline and its parts; ``sources`` says per part whether it was measured or derived."""

    kind: str
    peak_bytes: int
    baseline_bytes: int
    weights_bytes: int
    buffers_bytes: int
    activations_bytes: int
    gradients_bytes: int | None = None
    optimizer_state_bytes: int | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "peak_bytes": self.peak_bytes,
            "baseline_bytes": self.baseline_bytes,
            "weights_bytes": self.weights_bytes,
            "buffers_bytes": self.buffers_bytes,
            "activations_bytes": self.activations_bytes,
        }
        if self.gradients_bytes is not None:
            data["gradients_bytes"] = self.gradients_bytes
        if self.optimizer_state_bytes is not None:
            data["optimizer_state_bytes"] = self.optimizer_state_bytes
        data["sources"] = dict(self.sources)
        return data


def remainder(peak: int, known: int, what: str) -> tuple[int, str]:
    """Activations as the peak minus the parts we know; a negative rest is reported, not hidden."""
    rest = peak - known
    if rest >= 0:
        return rest, f"derived: peak minus {what}"
    return 0, f"derived: peak below {what} (memory reused from before the baseline); shown as 0"


def _measured_sources(peak: PeakMemory) -> dict[str, str]:
    """Where the parts every breakdown shares come from: all read from the tensors or the allocator."""
    return {
        "peak_bytes": f"measured ({peak.kind})",
        "weights_bytes": "measured (parameter tensors)",
        "buffers_bytes": "measured (buffer tensors)",
    }


def inference_breakdown(
    model: torch.nn.Module | None,
    peak: PeakMemory,
    baseline: int,
    weights: int | None = None,
    weights_source: str | None = None,
) -> MemoryBreakdown:
    """Weights measured from the parameters (or ``weights`` bytes as another runtime holds them, said by
    ``weights_source``); activations = peak above baseline - weights - buffers."""
    above = max(0, peak.peak_bytes - baseline)
    weights = parameter_bytes(model) if weights is None and model is not None else weights or 0
    buffers = buffer_bytes(model) if model is not None else 0
    activations, how = remainder(above, weights + buffers, "weights and buffers")
    sources = {**_measured_sources(peak), "activations_bytes": how}
    if weights_source:
        sources["weights_bytes"] = weights_source
    return MemoryBreakdown(
        kind=peak.kind,
        peak_bytes=above,
        baseline_bytes=baseline,
        weights_bytes=weights,
        buffers_bytes=buffers,
        activations_bytes=activations,
        sources=sources,
    )


def training_breakdown(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, peak: PeakMemory, baseline: int
) -> MemoryBreakdown:
    """Gradients and AdamW state read from the tensors when they exist, else computed (2 x parameter bytes).

    torch's AdamW keeps exp_avg and exp_avg_sq in each parameter's dtype, hence 2 x parameter bytes.
    Activations here include the backward pass's and the optimizer's temporaries.
    """
    above = max(0, peak.peak_bytes - baseline)
    weights, buffers = parameter_bytes(model), buffer_bytes(model)
    trainable = sum(tensor_bytes(p) for p in model.parameters() if p.requires_grad)
    grads = gradient_bytes(model)
    grads_source = "measured (gradient tensors)"
    if grads is None:
        grads, grads_source = trainable, "computed (1 x trainable parameter bytes)"
    states = optimizer_state_bytes(optimizer)
    states_source = "measured (optimizer state tensors)"
    if states is None:
        states, states_source = 2 * trainable, "computed (AdamW: 2 x trainable parameter bytes)"
    activations, how = remainder(above, weights + buffers + grads + states, "weights, gradients, optimizer state")
    return MemoryBreakdown(
        kind=peak.kind,
        peak_bytes=above,
        baseline_bytes=baseline,
        weights_bytes=weights,
        buffers_bytes=buffers,
        activations_bytes=activations,
        gradients_bytes=grads,
        optimizer_state_bytes=states,
        sources={
            **_measured_sources(peak),
            "gradients_bytes": grads_source,
            "optimizer_state_bytes": states_source,
            "activations_bytes": how,
        },
    )
