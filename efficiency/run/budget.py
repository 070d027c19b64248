"""A job's memory budget: the peak memory a measured run will need, estimated before it runs, weight-free.

The estimate replays what the worker will do on fake tensors (shapes and dtypes, no storage), under a dispatch
mode that keeps the bytes of every tensor an op creates for as long as that tensor lives: the most ever alive
at once is the activation peak of eager PyTorch, with nothing allocated. Inference replays one forward pass
(with the KV cache a causal LM's generation keeps); training replays the measured step itself (forward, the
same loss, backward, AdamW) and adds the optimizer state a steady-state step starts with. Weights are the
parameter and buffer bytes. Activations are the replayed bytes times ``ACTIVATION_SLACK`` (what eager CPU runs
hold beyond their live tensors), and ``RUNTIME_ALLOWANCE_BYTES`` is added for what the worker allocates besides
the model (the modeling code's import, the static profile it runs first); both measured with
``benchmarks/memory_budget.py``, which prints the estimate beside measured peaks.

Cost: fake tensors hold no data, so the replay's time does not grow with batch or length (electra-small at
batch 65536 x 512 replays in the same ~0.2 s as batch 1); only depth costs time, so a stack of identical
layers replays 2- and 3-layer copies and scales the difference to the full depth, like the static profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from efficiency.specs import ModelSpec, Workload
from efficiency.units import nbytes as format_bytes

# Calibrated with benchmarks/memory_budget.py (8 small models and workloads, 2-core CPU): the peak RSS a run
# measures holds 1.4 to 2.4 times the replayed live activation bytes (glibc keeps freed blocks for reuse; SDPA,
# oneDNN and MKL keep scratch of their own), and a worker grows 100 to 190 MiB beyond the measured peak (the
# modeling code's import and the static profile it runs first).
ACTIVATION_SLACK = 2.0
RUNTIME_ALLOWANCE_BYTES = 256 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes of a measured job and its parts (raw bytes); ``int(estimate)`` is the total."""

    weights_bytes: int
    activations_bytes: int
    gradients_bytes: int = 0
    optimizer_state_bytes: int = 0
    runtime_bytes: int = RUNTIME_ALLOWANCE_BYTES

    @property
    def total_bytes(self) -> int:
        parts = (self.weights_bytes, self.activations_bytes, self.gradients_bytes, self.optimizer_state_bytes)
        return sum(parts) + self.runtime_bytes

    def __int__(self) -> int:
        return self.total_bytes

    def parts(self) -> str:
        """ "weights 51 MiB, activations 352 GiB": the parts a refusal names."""
        named = [("weights", self.weights_bytes), ("activations", self.activations_bytes)]
        named += [("gradients", self.gradients_bytes), ("optimizer state", self.optimizer_state_bytes)]
        return ", ".join(f"{name} {format_bytes(value)}" for name, value in named if value)


@cache
def live_tensor_bytes() -> type:
    """The dispatch mode that tracks live tensor bytes (a class made on first use: this module imports no torch,
    so the CLI and the pages can import the estimator without paying for torch until they estimate)."""
    import torch
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveTensorBytes(TorchDispatchMode):
        """Bytes of the tensors ops have created that are still alive (``now``), and their ``peak``.

        Storages are watched by weak reference (a view or an in-place result shares its input's storage and is
        not counted again); ``ignore`` holds the storages of parameters and buffers, which are weights."""

        def __init__(self, ignore: set[int]) -> None:
            super().__init__()
            self.ignore = ignore
            self.live: dict[int, tuple[StorageWeakRef, int]] = {}
            self.now = 0
            self.peak = 0

        def _forget_dead(self) -> None:
            for key, (ref, size) in list(self.live.items()):
                if ref.expired():
                    del self.live[key]
                    self.now -= size

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self._forget_dead()
            for tensor in tree_flatten(out)[0]:
                if not isinstance(tensor, torch.Tensor):
                    continue
                storage = tensor.untyped_storage()
                ref = StorageWeakRef(storage)
                if ref.cdata in self.ignore or ref.cdata in self.live:
                    continue
                self.live[ref.cdata] = (ref, storage.nbytes())
                self.now += storage.nbytes()
            self.peak = max(self.peak, self.now)
            return out

    return LiveTensorBytes


@dataclass(frozen=True)
class _Replay:
    """What one replay of a model (full depth, or a 2- or 3-layer copy) needed, in bytes."""

    weights: int
    passes_peak: int  # live at the peak of the forward (inference) or forward + backward (training) pass
    retained: int  # live once the forward pass (and the loss) is done: what the backward pass starts from
    step_peak: int = 0  # live at the peak of the optimizer step: gradients, new state, its temporaries
    gradients: int = 0
    optimizer_state: int = 0

    @property
    def activations(self) -> int:
        """The peak beyond weights, gradients and state. A steady-state training step starts with the optimizer
        state that the replayed first step creates only at its end, hence ``passes_peak + optimizer_state``."""
        fixed = self.gradients + self.optimizer_state
        return max(0, max(self.passes_peak + self.optimizer_state, self.step_peak) - fixed)


def _replay(spec: ModelSpec, workload: Workload, **overrides: Any) -> _Replay:
    """Build on ``meta``, swap in fake parameters, replay the worker's passes under ``live_tensor_bytes()``."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.multiprocessing.reductions import StorageWeakRef

    from efficiency.counters.moe import per_token_experts  # lazy: imports torch
    from efficiency.counters.static import _fake_parameters  # lazy: as above
    from efficiency.measure.memory import optimizer_state_bytes  # lazy: as above
    from efficiency.measure.training import TrainingStep  # lazy: as above
    from efficiency.models.inputs import make_inputs  # lazy: as above
    from efficiency.models.loading import build_model  # lazy: as above

    net = build_model(spec, device="meta", dtype=workload.dtype, **overrides)
    with FakeTensorMode(allow_non_fake_inputs=True), per_token_experts(net):
        _fake_parameters(net)
        tensors = [*net.parameters(), *net.buffers()]
        weights = sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())
        ignore = {StorageWeakRef(t.untyped_storage()).cdata for t in tensors}
        live_bytes = live_tensor_bytes()
        if workload.mode == "inference":
            inputs = make_inputs(spec, workload, "cpu")
            if spec.is_causal_lm:
                inputs["use_cache"] = True  # generation keeps the prompt's KV cache beside the logits
            with torch.no_grad(), live_bytes(ignore) as live:
                outputs = net(**inputs)
                retained = live.now
            del outputs
            return _Replay(weights, live.peak, retained)
        step = TrainingStep(net, spec, workload, "cpu")
        with live_bytes(ignore) as live:
            step.model.train()
            loss = step.loss(net(**step.inputs))
            retained = live.now
            loss.backward()
            del loss
            passes_peak, live.peak = live.peak, live.now
            step.optimizer.step()
        # Every trainable parameter gets a gradient and AdamW state (two moments in its dtype): the replay routes
        # a sparse MoE's tokens to its top-k experts only, a real run's routing reaches all of them.
        trainable = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
        state = max(optimizer_state_bytes(step.optimizer) or 0, 2 * trainable)
        return _Replay(weights, passes_peak, retained, live.peak, trainable, state)


def _deepen(two: _Replay, three: _Replay, layers: int) -> _Replay:
    """The full-depth replay from copies of 2 and 3 identical layers.

    Sizes (weights, what the forward pass keeps, gradients, state) grow by what the third layer added. A peak
    is a maximum over time and where it sits moves with depth (the head's logits at small batch, the start of
    the backward pass at large batch), so the pass's peak grows per layer by the largest of the increments:
    an extra layer holds, at any moment, its kept activations (before its backward) or its gradients (after).
    Copies of 2 and 3 layers, not 1 and 2: a 1-layer copy's peak often sits elsewhere (electra-small training
    at batch 8: 30, 33, 54, 75 MiB for 1 to 4 layers)."""

    def grow(name: str) -> int:
        small, large = getattr(two, name), getattr(three, name)
        return max(large, large + (layers - 3) * (large - small))

    per_layer = max(0, *(getattr(three, f) - getattr(two, f) for f in ("passes_peak", "retained", "gradients")))
    return _Replay(
        weights=grow("weights"),
        passes_peak=three.passes_peak + (layers - 3) * per_layer,
        retained=grow("retained"),
        step_peak=grow("step_peak"),
        gradients=grow("gradients"),
        optimizer_state=grow("optimizer_state"),
    )


def _layers(spec: ModelSpec) -> tuple[tuple[str, ...], int]:
    """The depth fields of a stack of identical layers and its depth, or ((), 0) when depth scaling is not exact."""
    from efficiency.counters.static import DEPTH_SCALING_MIN_LAYERS, layer_stack  # lazy: as above

    _, keys, layers = layer_stack(spec)
    return (keys, layers) if layers > DEPTH_SCALING_MIN_LAYERS else ((), 0)


def estimate_memory(spec: ModelSpec, workload: Workload) -> MemoryEstimate:
    """The peak bytes a measured run of ``spec`` at ``workload`` needs, from a weight-free replay."""
    keys, layers = _layers(spec)
    if keys:
        two = _replay(spec, workload, **dict.fromkeys(keys, 2))
        three = _replay(spec, workload, **dict.fromkeys(keys, 3))
        replay = _deepen(two, three, layers)
    else:
        replay = _replay(spec, workload)
    return MemoryEstimate(
        weights_bytes=replay.weights,
        activations_bytes=int(replay.activations * ACTIVATION_SLACK),
        gradients_bytes=replay.gradients,
        optimizer_state_bytes=replay.optimizer_state,
    )


def estimate_job_memory(job: Any) -> MemoryEstimate:
    """The Runner's estimator: the budget of a measured job (see ``estimate_memory``); costs no memory itself."""
    from efficiency.models.loading import check_workload, resolve  # lazy: as above

    workload = Workload(**{k: v for k, v in job.workload.items() if k in Workload.__dataclass_fields__})
    spec = resolve(job.model)
    check_workload(spec, workload)  # a workload the model cannot take is refused for that reason, not by the replay
    return estimate_memory(spec, workload)
