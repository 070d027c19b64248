"""One traced pass over a fake-tensor model: every aten op with its FLOPs and the bytes it moves.

torch's FlopCounterMode runs alongside as the "torch" counter, with the gap it has on CPU filled: it has
no formula for ``_scaled_dot_product_flash_attention_for_cpu`` (SDPA on CPU would count 0), nor for the
grouped expert matmul. Our own dispatch mode records per op: matrix FLOPs (the same formulas), elementwise
FLOPs (a stated convention), and bytes read and written at the tensors' dtype as eager PyTorch runs the op
(no fusion) — the paper's "memory access cost".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import (
    FlopCounterMode,
    flop_registry,
    sdpa_backward_flop_count,
    sdpa_flop_count,
    shape_wrapper,
)

from efficiency.counters.opclasses import ELEMENTWISE_FACTORS, REDUCTION_OPS, base_name, classify

aten = torch.ops.aten
ATTENTION_OPS = frozenset(
    {"bmm", "baddbmm"} | {n for n in ("_scaled_dot_product_flash_attention_for_cpu",) if hasattr(aten, n)}
)


def cpu_sdpa_flop(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Same formula torch uses for the CUDA SDPA kernels: 2 FLOPs per multiply-add of QK^T and AV."""
    return sdpa_flop_count(query, key, value)


def cpu_sdpa_backward_flop(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def grouped_mm_flop(mat_a, mat_b, *args, out_shape=None, **kwargs) -> int:
    """Expert matmul over all routed rows: (M, K) x (G, K, N) -> 2 M K N, whatever the routing."""
    return 2 * mat_a[0] * mat_a[-1] * mat_b[-1]


EXTRA_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: cpu_sdpa_backward_flop,
    aten._grouped_mm: grouped_mm_flop,
}
MATRIX_FORMULAS = {**flop_registry, **{op: shape_wrapper(f) for op, f in EXTRA_FORMULAS.items()}}


@dataclass
class OpRecord:
    """One op call: what the roofline estimator needs."""

    op: str
    flops: int
    elementwise_flops: float
    bytes_read: int
    bytes_written: int
    attention: bool = False


@dataclass
class TraceSummary:
    ops: list[OpRecord] = field(default_factory=list)
    unknown_ops: Counter = field(default_factory=Counter)

    @property
    def matrix_flops(self) -> int:
        return sum(r.flops for r in self.ops)

    @property
    def attention_flops(self) -> int:
        return sum(r.flops for r in self.ops if r.attention)

    @property
    def elementwise_flops(self) -> int:
        return int(sum(r.elementwise_flops for r in self.ops))

    @property
    def bytes_total(self) -> int:
        return sum(r.bytes_read + r.bytes_written for r in self.ops)

    def by_op(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for r in self.ops:
            row = table.setdefault(r.op, {"calls": 0, "flops": 0, "bytes": 0})
            row["calls"] += 1
            row["flops"] += r.flops
            row["bytes"] += r.bytes_read + r.bytes_written
        return table


def _is_composite(func: torch._ops.OpOverload, known: dict[torch._ops.OpOverload, bool]) -> bool:
    """Whether ``func`` has a CompositeImplicitAutograd kernel (it decomposes into other ops); asked of the
    dispatcher once per op and kept in ``known``: a fake forward+backward asks it thousands of times."""
    composite = known.get(func)
    if composite is None:  # prim::device and the other prims have no kernels to ask about
        composite = func.namespace != "prim" and torch._C._dispatch_has_kernel_for_dispatch_key(
            func.name(), "CompositeImplicitAutograd"
        )
        known[func] = composite
    return composite


def _nbytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches: never more than the storage (a broadcast view reads its source once)."""
    logical = t.numel() * t.element_size()
    try:
        return min(logical, t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):  # storage-less tensors (e.g. some wrappers): logical size
        return logical


class OpTracer(TorchDispatchMode):
    """Records each aten op's FLOPs and bytes; see the module docstring for the conventions."""

    def __init__(self) -> None:
        super().__init__()
        self.summary = TraceSummary()
        self._composite: dict[torch._ops.OpOverload, bool] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _is_composite(func, self._composite):
            # Under inference_mode (video trackers' forward) composite ops (linear, conv2d, matmul) reach the mode
            # whole; elsewhere autograd has already split them. Trace their parts, as torch's own counter does.
            with self:  # the parts come back through this mode
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        name = base_name(str(packet))
        kind = classify(name)
        if kind in {"ignored", "view"}:
            return out
        inputs = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        outputs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if name in {"embedding", "index_select", "gather", "index", "_unsafe_index"}:
            # A lookup reads the indices and only the rows it gathers, not the whole table.
            read = sum(_nbytes(t) for t in inputs[1:]) + sum(_nbytes(o) for o in outputs)
        else:
            read = sum(_nbytes(t) for t in inputs)
        written = sum(_nbytes(o) for o in outputs)
        flops = 0
        elementwise = 0.0
        formula = MATRIX_FORMULAS.get(packet)
        if formula is not None:
            flops = int(formula(*args, **kwargs, out_val=out))
        elif kind == "elementwise":
            counted = inputs[0] if name in REDUCTION_OPS and inputs else (outputs[0] if outputs else None)
            elementwise = ELEMENTWISE_FACTORS[name] * (counted.numel() if counted is not None else 0)
        elif kind == "backward-elementwise":
            elementwise = 2.0 * sum(o.numel() for o in outputs)
        elif kind == "unknown":
            self.summary.unknown_ops[name] += 1
        attention = name in ATTENTION_OPS or "scaled_dot_product" in name
        self.summary.ops.append(OpRecord(name, flops, elementwise, read, written, attention))
        return out


class _NoModules:
    """Stands in for FlopCounterMode's module tracker: every count under "Global", none per module. The tracker
    hooks every module call (and, for the backward, every module's inputs) to attribute FLOPs to modules, which the
    profile never reads; without it a fake forward+backward of Swin-T or MobileViT takes 8-17% less time, with the
    same totals (tests compare them)."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _NoModules:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def torch_flop_counter(per_module: bool = False) -> FlopCounterMode:
    """torch's own counter, given the formulas it lacks for CPU SDPA and grouped expert matmuls; totals only
    unless ``per_module``."""
    counter = FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS)
    if not per_module:
        counter.mod_tracker = _NoModules()
    return counter
