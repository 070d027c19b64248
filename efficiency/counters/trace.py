"""One traced pass over a fake-tensor model: every aten op with its FLOPs and the bytes it moves.

torch's FlopCounterMode is the "torch" counter, with the gap it has on CPU filled: it has no formula for
``_scaled_dot_product_flash_attention_for_cpu`` (SDPA on CPU would count 0), nor for the grouped expert matmul.
Our own dispatch mode records per op: matrix FLOPs (the same formulas), elementwise FLOPs (a stated convention),
and bytes read and written at the tensors' dtype as eager PyTorch runs the op (no fusion) — the paper's "memory
access cost". It hands every op it runs to the FlopCounterMode's own counting (its registry, its formulas), in
place of that counter's dispatch mode running beneath it: the same counts, from one Python dispatch mode per op.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import (
    FakeTensor,
    FakeTensorMode,
    in_kernel_invocation_manager,
    unset_fake_temporarily,
)
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode
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


@dataclass(frozen=True)
class _OpFacts:
    """What the tracer needs to know of an op, asked once per op: a fake forward+backward dispatches thousands."""

    packet: torch._ops.OpOverloadPacket
    name: str
    kind: str
    formula: object
    attention: bool
    composite: bool  # it has a CompositeImplicitAutograd kernel: it decomposes into other ops
    fresh: bool  # functional, returning new tensors only (no views, no in-place, no data-dependent shapes)
    view: bool  # a view of its first argument, one tensor out, taken whole by the kernel (not decomposed)


_DEVICE = torch.ops.prim.device.default
_UNSAFE_VIEW = torch.ops.aten._unsafe_view.default
_VIEW = torch.ops.aten.view.default
_FACTS: dict[torch._ops.OpOverload, _OpFacts] = {}


def _facts(func: torch._ops.OpOverload) -> _OpFacts:
    facts = _FACTS.get(func)
    if facts is None:
        packet = func._overloadpacket
        name = base_name(str(packet))
        composite = func.namespace != "prim" and torch._C._dispatch_has_kernel_for_dispatch_key(
            func.name(), "CompositeImplicitAutograd"
        )  # prim::device and the other prims have no kernels to ask about
        attention = name in ATTENTION_OPS or "scaled_dot_product" in name
        facts = _FACTS[func] = _OpFacts(
            packet,
            name,
            classify(name),
            MATRIX_FORMULAS.get(packet),
            attention,
            composite,
            _fresh(func),
            not composite and _view_of_first(func),
        )
    return facts


_UNCACHED_TAGS = {torch.Tag.dynamic_output_shape, torch.Tag.data_dependent_output, torch.Tag.inplace_view}


def _fresh(func: torch._ops.OpOverload) -> bool:
    """Whether every output of ``func`` is a new tensor whose metadata follows from its inputs' metadata alone."""
    schema = func._schema
    return (
        func.namespace == "aten"
        and not schema.is_mutable
        and bool(schema.returns)
        and all(r.alias_info is None and str(r.type) == "Tensor" for r in schema.returns)
        and not _UNCACHED_TAGS.intersection(func.tags)
        and not func.is_view
    )


def _view_of_first(func: torch._ops.OpOverload) -> bool:
    """Whether ``func`` returns one tensor, a view of its first argument (``view``, ``t``, ``transpose``,
    ``expand``, ``detach`` ...) whose shape, strides and offset follow from its inputs' metadata alone. As
    FakeTensorMode's cache, not ``_unsafe_view`` (answered apart) nor ops that change their input's view."""
    schema = func._schema
    if func.namespace != "aten" or not func.is_view or schema.is_mutable or func is _UNSAFE_VIEW:
        return False
    if len(schema.returns) != 1 or not schema.arguments or _UNCACHED_TAGS.intersection(func.tags):
        return False
    out, first = schema.returns[0], schema.arguments[0]
    return (
        str(out.type) == "Tensor"
        and str(first.type) == "Tensor"
        and out.alias_info is not None
        and first.alias_info is not None
        and not out.alias_info.is_write
        and out.alias_info.before_set == first.alias_info.before_set
    )


_SHAPES: dict[tuple, tuple | None] = {}  # (op, its arguments' metadata) -> its outputs' metadata, or None: not kept
_SHAPES_LIMIT = 200_000  # entries; past it the memo starts again (a few hundred bytes each)


def _shape_key(func: torch._ops.OpOverload, args: tuple, kwargs: dict) -> tuple | None:
    """What a fresh op's outputs' metadata can depend on, as FakeTensorMode's own cache keys it: the default dtype and
    inference mode, each fake tensor argument's shape, strides, dtype, device, offset, grad, conjugate and negative
    bits, every other argument's type and value. None where that is not all: a fake tensor holding a constant (its
    outputs may hold one too) or of another mode than the first argument's, a non-strided or non-fake tensor, an
    argument that cannot be hashed. Like FakeTensorMode's, the memo is shared by every mode."""
    key: list = [func, torch.get_default_dtype(), torch.is_inference_mode_enabled()]
    mode = args[0].fake_mode

    def add(values) -> bool:
        for value in values:
            if type(value) is FakeTensor:
                if value.constant is not None or value.layout is not torch.strided:
                    return False
                if value.fake_mode is not mode:  # FakeTensorMode refuses to mix modes: let it
                    return False
                key.append(
                    (
                        value.shape,
                        value.stride(),
                        value.dtype,
                        value.fake_device,
                        value.storage_offset(),
                        value.requires_grad,
                        value.is_conj(),
                        value.is_neg(),
                    )
                )
            elif isinstance(value, torch.Tensor):
                return False
            elif isinstance(value, (list, tuple)):
                key.append((type(value), len(value)))
                if not add(value):
                    return False
            else:
                key.append((type(value), value))
        return True

    if not add(args) or not add([item for pair in sorted(kwargs.items()) for item in pair]):
        return None
    try:
        hash(tuple(key))
    except TypeError:  # an unhashable argument value
        return None
    return tuple(key)


def _keep(key: tuple, entry: tuple | None) -> None:
    """Store a memo entry (None: not kept); past the limit the memo starts again."""
    if len(_SHAPES) >= _SHAPES_LIMIT:
        _SHAPES.clear()
    _SHAPES[key] = entry


def _remember(key: tuple, out: object) -> None:
    """Keep ``out``'s metadata under ``key`` when ``out`` is fresh fake tensors that a meta ``empty_strided`` of the
    same shape, strides and dtype remakes exactly (same storage size); else remember not to keep it."""
    outs = out if isinstance(out, tuple) else (out,)
    kept = []
    for t in outs:
        if type(t) is not FakeTensor or t.constant is not None or t.storage_offset() != 0:
            _keep(key, None)
            return
        with unset_fake_temporarily():
            again = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
        if again.untyped_storage().nbytes() != t.untyped_storage().nbytes() or t.is_inference() != again.is_inference():
            _keep(key, None)
            return
        kept.append((t.shape, t.stride(), t.dtype, t.fake_device))
    _keep(key, (isinstance(out, tuple), tuple(kept)))


def _remember_view(key: tuple, out: object, base: FakeTensor) -> None:
    """Keep a view's shape, strides, offset and dtype under ``key`` when it is a plain fake tensor on ``base``'s
    storage (as FakeTensorMode's cache keeps a view's); else remember not to keep it."""
    plain = type(out) is FakeTensor and out.constant is None and not out.is_conj() and not out.is_neg()
    if not plain or out.untyped_storage()._cdata != base.untyped_storage()._cdata:
        _keep(key, None)
        return
    _keep(key, ("view", (out.shape, out.stride(), out.storage_offset(), out.dtype, out.fake_device, out.requires_grad)))


def _remade_view(mode: FakeTensorMode, base: FakeTensor, kept: tuple) -> FakeTensor:
    """The view again, made as FakeTensorMode makes a view from its cache: a meta tensor set to ``base``'s storage
    with the kept shape, strides and offset, wrapped."""
    shape, stride, offset, dtype, device, requires_grad = kept
    with in_kernel_invocation_manager(mode):
        empty = torch.empty_strided(shape, stride, dtype=dtype, device="meta", requires_grad=requires_grad)
        empty.set_(base.untyped_storage(), offset, shape, stride)
    return FakeTensor(mode, empty, device)


def _remade(mode: object, shapes: tuple) -> object:
    """Fresh fake tensors with the kept metadata, made as FakeTensorMode makes its outputs (a meta tensor, wrapped)."""
    is_tuple, kept = shapes
    with unset_fake_temporarily():
        metas = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype, _ in kept]
    outs = tuple(FakeTensor(mode, meta, device) for meta, (_, _, _, device) in zip(metas, kept, strict=True))
    return outs if is_tuple else outs[0]


def _tensors(values, found: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors among an op's arguments or outputs, in order (``tree_flatten``'s order, at a fraction of its
    cost: an aten op's arguments nest only in lists and tuples)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            _tensors(value, found)
    return found


def _nbytes(t: torch.Tensor) -> int:
    """Bytes a kernel touches: never more than the storage (a broadcast view reads its source once)."""
    logical = t.numel() * t.element_size()
    try:
        return min(logical, t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):  # storage-less tensors (e.g. some wrappers): logical size
        return logical


class OpTracer(TorchDispatchMode):
    """Records each aten op's FLOPs and bytes; see the module docstring for the conventions.

    Given torch's counter (``torch_flop_counter()``), it also hands each op it runs to that counter's own
    ``_count_flops``, as the counter's dispatch mode would: one Python dispatch mode per op instead of two stacked
    ones (the second cost a fake forward+backward about a quarter of its time). The totals are the same as the
    counter's own mode gives under this tracer: it decomposes composite ops itself, so the counter only ever saw
    the parts (tests compare the two)."""

    def __init__(self, torch_counter: FlopCounterMode | None = None) -> None:
        super().__init__()
        self.summary = TraceSummary()
        self.torch_counter = torch_counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # The short ways below answer for FakeTensorMode, so only where it is the next mode down (no other mode, such
        # as a counter of its own, would miss the op).
        first = args[0] if args else None
        fake_below = type(first) is FakeTensor and type(_get_current_dispatch_mode()) is FakeTensorMode
        if fake_below:  # two ops fake tensors answer slowly, answered as they would
            if func is _DEVICE and not first.fake_mode.in_kernel_invocation:
                return first.fake_device  # FakeTensorMode's own answer, without a second Python dispatch
            if func is _UNSAFE_VIEW:
                # ``view`` with its alias bookkeeping left to autograd, which ran above this mode: the same tensor
                # (shape, strides, storage) as FakeTensorMode makes, which takes ``_unsafe_view`` past its cache
                # through a Python decomposition (a tenth of MobileViT-S's fake count). A view: never recorded.
                return _VIEW(*args, **(kwargs or {}))
        kwargs = kwargs or {}
        facts = _facts(func)
        if facts.composite:
            # Under inference_mode (video trackers' forward) composite ops (linear, conv2d, matmul) reach the mode
            # whole; elsewhere autograd has already split them. Trace their parts, as torch's own counter does.
            with self:  # the parts come back through this mode
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        # A fresh op on fake tensors met before with the same metadata: its outputs are made here from what it gave
        # then, skipping FakeTensorMode's own cache, whose key (general: symbolic shapes, sparse layouts, ...) took a
        # third of a fake count. What runs and what is recorded do not change (every catalog profile is identical).
        # A view of its first argument is remade the same way, on that argument's storage.
        # Not under inference_mode (video trackers' forward): a view made there may be a normal tensor sharing its
        # base's version counter, which a tensor made afresh there cannot (an inference tensor has none).
        keyed = facts.fresh or (facts.view and not torch.is_inference_mode_enabled())
        key = _shape_key(func, args, kwargs) if keyed and fake_below else None
        shapes = _SHAPES.get(key) if key is not None else None
        if shapes is not None:
            if facts.view:
                out = _remade_view(first.fake_mode, first, shapes[1])
            else:
                out = _remade(first.fake_mode, shapes)
        else:
            out = func(*args, **kwargs)
            if key is not None and key not in _SHAPES:
                if facts.view:
                    _remember_view(key, out, first)
                else:
                    _remember(key, out)
        if self.torch_counter is not None:
            self.torch_counter._count_flops(facts.packet, out, args, kwargs)
        kind = facts.kind
        if kind in {"ignored", "view"}:
            return out
        name = facts.name
        inputs = _tensors(kwargs.values(), _tensors(args, []))
        outputs = _tensors((out,), [])
        if name in {"embedding", "index_select", "gather", "index", "_unsafe_index"}:
            # A lookup reads the indices and only the rows it gathers, not the whole table.
            read = sum(_nbytes(t) for t in inputs[1:]) + sum(_nbytes(o) for o in outputs)
        else:
            read = sum(_nbytes(t) for t in inputs)
        written = sum(_nbytes(o) for o in outputs)
        flops = 0
        elementwise = 0.0
        if facts.formula is not None:
            flops = int(facts.formula(*args, **kwargs, out_val=out))
        elif kind == "elementwise":
            counted = inputs[0] if name in REDUCTION_OPS and inputs else (outputs[0] if outputs else None)
            elementwise = ELEMENTWISE_FACTORS[name] * (counted.numel() if counted is not None else 0)
        elif kind == "backward-elementwise":
            elementwise = 2.0 * sum(o.numel() for o in outputs)
        elif kind == "unknown":
            self.summary.unknown_ops[name] += 1
        self.summary.ops.append(OpRecord(name, flops, elementwise, read, written, facts.attention))
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
