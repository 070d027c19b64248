"""fvcore's FlopCountAnalysis on a ``meta`` model, with handles for the matrix ops it lacks.

fvcore counts one multiply-add as one "flop" (its numbers are MACs); we double them to FLOPs. It traces
with ``torch.jit``, which makes transformers skip its ``.item()`` branch, so it runs weight-free on
``meta``. Its stock handles miss ``scaled_dot_product_attention`` (attention matmuls silently absent) and
``_convolution_mode`` (``padding="same"`` convolutions); we add both. Its norm, pool and upsample handles
count elementwise work, which our convention keeps out of the headline, so their counts are left out of
the total here (and kept in ``by_operator``). Convolutions trace on ``meta`` through
:func:`traceable_meta_kernels`. Where a model cannot be traced on ``meta`` for a reason real tensors
avoid (``meta_trace_failure``: values needed, a meta kernel jit tracing breaks), the profile traces a real CPU copy
instead and the count's ``note`` says so (``efficiency.counters.static._fvcore_result``). Each meta trace runs in
a child process (:class:`CountApart`), or in a process that profiles model after model, a warm helper
(:mod:`efficiency.counters.fvcore_helper`).
"""

from __future__ import annotations

import math
import os
import pickle
import re
import select
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape

from efficiency.counters.forward import DATA_DEPENDENT_MARKERS
from efficiency.counters.opclasses import FVCORE_NOT_MATRIX

# A meta tensor named in the error ("Cannot copy out of meta tensor", "expected device meta", nonzero's
# register_meta), a CPU tensor the forward made meeting meta ones (SEW-D: "Expected `value` to be on same device as
# `a`"), or torch's meta convolution meeting the shape tensors jit tracing hands out.
META_FAILURE = re.compile(r"\bmeta\b|register_meta|cond must be a bool, but got a Tensor|to be on same device as")
ELEMENTWISE_KEYS = frozenset(
    """batch_norm group_norm layer_norm instance_norm upsample_nearest2d upsample_bilinear2d
    adaptive_avg_pool2d grid_sampler""".split()
)


_META_KERNELS_LOCK = threading.Lock()
_meta_kernel_library: torch.library.Library | None = None


def _meta_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
    """``aten::convolution`` on ``meta``: torch's own meta kernel, except inside a jit trace, where it calls
    ``aten::_convolution``, the op the tracer records for a convolution (fvcore's handle counts that node), whose
    shape checks run in C++. torch's Python meta kernel would fail there on its own checks (``cond must be a bool,
    but got a Tensor``: tracing hands out sizes as tensors), and it computes its output without recording a node.
    The trailing flags are those an eager CPU convolution records."""
    if torch._C._get_tracing_state() is None:
        from torch._meta_registrations import meta_conv

        return meta_conv(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    return torch.ops.aten._convolution(
        input, weight, bias, stride, padding, dilation, transposed, output_padding, groups, False, False, True, True
    )


def _torch_meta(op: torch._ops.OpOverload) -> Callable:
    """The Python meta kernel torch registers for ``op`` (``torch._meta_registrations.activate_meta``'s choice)."""
    from torch._decomp import global_decomposition_table

    for kind in ("meta", "post_autograd", "pre_autograd"):
        if op in global_decomposition_table[kind]:
            return global_decomposition_table[kind][op]
    raise LookupError(f"torch registers no Python meta kernel for {op}")


_FVCORE_TRACE = threading.local()  # .on while this thread runs fvcore's jit trace


@contextmanager
def _fvcore_trace() -> Iterator[None]:
    """Mark this thread as running fvcore's trace: the meta kernels in ``_TRACED_META`` take their short path. (Inside
    a meta kernel torch.jit's tracing state reads as none, so the kernels cannot ask the tracer.)"""
    outer = getattr(_FVCORE_TRACE, "on", False)
    _FVCORE_TRACE.on = True
    try:
        yield
    finally:
        _FVCORE_TRACE.on = outer


def _outside_traces(name: str, op: torch._ops.OpOverload) -> Callable:
    """``op``'s meta kernel: ``_TRACED_META[name]``'s while fvcore traces in this thread, torch's own otherwise (fake
    tensors, meta tensors elsewhere)."""
    torch_meta = _torch_meta(op)

    def kernel(*args, **kwargs):
        if getattr(_FVCORE_TRACE, "on", False):
            return _TRACED_META[name][1](*args, **kwargs)
        return torch_meta(*args, **kwargs)

    return kernel


def _traced_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """``native_batch_norm`` on ``meta`` with outputs as torch's meta kernel makes them (an elementwise result laid
    out like the input; the saved mean and inverse deviation, one per channel, in the computation dtype), without its
    decomposition into a dozen reference ops: half of fvcore's meta trace of EfficientNet-B0 went there. The trace
    records the node ``aten::batch_norm`` above this kernel either way."""
    stats = torch.empty(input.shape[1], dtype=torch.promote_types(input.dtype, torch.float32), device=input.device)
    return torch.empty_like(input), stats, torch.empty_like(stats)


def _traced_layer_norm(input, normalized_shape, weight, bias, eps):
    """``native_layer_norm`` on ``meta`` as torch's meta kernel makes its outputs (a contiguous result; the mean and
    inverse deviation over the normalized dimensions, kept as size 1, in the computation dtype), without its
    decomposition into reference ops (a fifth of fvcore's meta trace of MobileViT-S)."""
    kept = len(normalized_shape)
    if tuple(input.shape[input.ndim - kept :]) != tuple(normalized_shape):
        raise RuntimeError(
            f"layer_norm: input of size {list(input.shape)} for normalized_shape {list(normalized_shape)}"
        )
    stats_shape = (*input.shape[: input.ndim - kept], *([1] * kept))
    stats = torch.empty(stats_shape, dtype=torch.promote_types(input.dtype, torch.float32), device=input.device)
    return torch.empty(input.shape, dtype=input.dtype, device=input.device), stats, torch.empty_like(stats)


def _traced_addmm(self, mat1, mat2, beta=1, alpha=1):
    """``addmm`` on ``meta``: a contiguous (rows of ``mat1``) x (columns of ``mat2``) result, as torch's meta kernel
    makes it, without its decomposition into ``mm`` and reference ops."""
    if mat1.ndim != 2 or mat2.ndim != 2 or mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"addmm: mat1 {list(mat1.shape)} and mat2 {list(mat2.shape)} cannot be multiplied")
    return torch.empty((mat1.shape[0], mat2.shape[1]), dtype=mat1.dtype, device=mat1.device)


def _traced_elementwise(input, *args, **kwargs):
    """An elementwise op's output on ``meta`` (same shape, dtype and layout as its input)."""
    return torch.empty_like(input)


# Ops whose torch meta kernel is a Python decomposition into many reference ops (seconds of a conv model's trace),
# with their outputs' metadata made directly while a jit trace runs.
_TRACED_META = {
    "native_batch_norm": (torch.ops.aten.native_batch_norm.default, _traced_batch_norm),
    "hardtanh": (torch.ops.aten.hardtanh.default, _traced_elementwise),
    "native_layer_norm": (torch.ops.aten.native_layer_norm.default, _traced_layer_norm),
    "addmm": (torch.ops.aten.addmm.default, _traced_addmm),
}


def traceable_meta_kernels() -> None:
    """Let torch.jit trace conv models on ``meta`` quickly, so fvcore counts a conv model (and a Mamba's conv1d)
    without a real CPU copy, whose forward computes for real: convolutions through :func:`_meta_convolution`, and
    batch and layer norm, hardtanh and addmm with their outputs made directly (``_TRACED_META``). Registered once per
    process and never removed: outside a jit trace (outside fvcore's, for ``_TRACED_META``) each kernel is torch's
    own, so nothing else changes (fake tensors take their own convolution rule). A registration made and removed
    around each trace crashed some processes (SAM 3, session 7)."""
    global _meta_kernel_library
    with _META_KERNELS_LOCK:
        if _meta_kernel_library is None:
            library = torch.library.Library("aten", "IMPL", "Meta")
            library.impl("convolution", _meta_convolution)
            for name, (op, _) in _TRACED_META.items():
                library.impl(name, _outside_traces(name, op))
            _meta_kernel_library = library


def _bool_value_as_int(method, position: int, keyword: str):
    def with_number(*args, **kwargs):
        if len(args) > position and isinstance(args[position], bool):
            args = (*args[:position], int(args[position]), *args[position + 1 :])
        if isinstance(kwargs.get(keyword), bool):
            kwargs[keyword] = int(kwargs[keyword])
        return method(*args, **kwargs)

    return with_number


# (owner, name, position of the value among the arguments, its keyword)
_BOOL_VALUES = (
    (torch.Tensor, "scatter", 3, "value"),
    (torch.Tensor, "scatter_", 3, "value"),
    (torch, "full_like", 1, "fill_value"),
)


@contextmanager
def _numbers_for_bool_values() -> Iterator[None]:
    """``scatter(dim, index, False)`` and ``full_like(x, True)`` with the value as 0 or 1 while fvcore traces:
    torch.jit records a bool there, and its alias analysis then finds no overload for it and asserts (DeepSeek-V3.2's
    sparse-attention mask, UDOP's patch indices). The same tensor either way; neither op does arithmetic fvcore
    counts."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _, _ in _BOOL_VALUES]
    for (owner, name, method), (_, _, position, keyword) in zip(saved, _BOOL_VALUES, strict=True):
        setattr(owner, name, _bool_value_as_int(method, position, keyword))
    try:
        yield
    finally:
        for owner, name, method in saved:
            setattr(owner, name, method)


def _untraced_size(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    state = torch._C._get_tracing_state()
    if state is None:
        return torch._C.TensorBase.size(self, *args, **kwargs)
    torch._C._set_tracing_state(None)
    try:
        return torch._C.TensorBase.size(self, *args, **kwargs)
    finally:
        torch._C._set_tracing_state(state)


@contextmanager
def _sizes_as_numbers() -> Iterator[None]:
    """Tensor sizes as plain numbers while fvcore traces, not the size tensors torch.jit hands out: the trace then
    holds this input's sizes as constants, which a count of this one input needs anyway. Some models' Python breaks
    on size tensors (TVP's ``interpolate`` with a scale computed from them); only tried after the usual trace failed,
    in the child process (:class:`CountApart`), and the count's note says so."""
    own = {name: torch.Tensor.__dict__.get(name) for name in ("size", "shape")}  # None: inherited from TensorBase
    torch.Tensor.size = _untraced_size
    torch.Tensor.shape = property(_untraced_size)
    try:
        yield
    finally:
        for name, attribute in own.items():
            if attribute is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, attribute)


def sdpa_macs(inputs: list[Any], outputs: list[Any]) -> Counter:
    """QK^T then AV: B*H*Sq*Sk*D + B*H*Sq*Sk*Dv multiply-adds (no causal saving, as torch counts)."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    batch_heads = math.prod(q[:-2])
    macs = batch_heads * q[-2] * k[-2] * q[-1] + batch_heads * q[-2] * k[-2] * v[-1]
    return Counter({"scaled_dot_product_attention": macs})


def conv_mode_macs(inputs: list[Any], outputs: list[Any]) -> Counter:
    """``padding="same"`` convolution: output elements x (input channels per group x kernel size)."""
    w_shape, out_shape = get_shape(inputs[1]), get_shape(outputs[0])
    return Counter({"conv": math.prod(out_shape) * math.prod(w_shape[1:])})


EXTRA_HANDLES = {
    "aten::scaled_dot_product_attention": sdpa_macs,
    "aten::_convolution_mode": conv_mode_macs,
}


@dataclass
class FvcoreCount:
    macs: int
    by_operator: dict[str, int]
    skipped_ops: dict[str, int] = field(default_factory=dict)  # arithmetic ops fvcore has no handle for
    # how it was traced, where not the usual meta trace (the profile's notes say it); two counts of the same ops are
    # equal whichever path counted them
    note: str | None = field(default=None, compare=False)
    # which sizes torch.jit handed out in the trace that counted ("numbers" or "tensors", see ``_counted``), and the
    # failure of the way tried first where that failed: the same count either way, so neither is compared
    sizes: str = field(default="tensors", compare=False)
    first_failure: str | None = field(default=None, compare=False)

    @property
    def flops(self) -> int:
        return 2 * self.macs


class _TupleOutputs(torch.nn.Module):
    """fvcore traces with torch.jit: plain tuple outputs, no cache objects, keyword inputs bound here."""

    def __init__(self, model: torch.nn.Module, names: list[str], constants: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.constants = constants

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        output = self.model(**dict(zip(self.names, tensors)), **self.constants, return_dict=False)
        return tuple(_output_tensors(output))


def _output_tensors(output: Any) -> list[torch.Tensor]:
    """The tensors in a model's output, depth first: torch.jit accepts only tensors, tuples and lists as outputs,
    and some models return ``ModelOutput`` dicts, ``None`` or cache objects in them even with ``return_dict=False``
    (LLaVA, BLIP-2, InternVL). What the forward computed, and so fvcore's count, does not depend on what it returns."""
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, dict):  # ModelOutput is an OrderedDict
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [t for item in output for t in _output_tensors(item)]
    return []  # None, a cache, a string: nothing torch.jit can return


def _remove_hooks_since(before: dict[torch.nn.Module, tuple[set, set]]) -> None:
    for module, (pre, post) in before.items():
        for key in set(module._forward_pre_hooks) - pre:
            del module._forward_pre_hooks[key]
        for key in set(module._forward_hooks) - post:
            del module._forward_hooks[key]


class TracedApartError(RuntimeError):
    """fvcore's failure in the child process that traced: its message is the child's ``error_text``."""


def error_text(exc: BaseException) -> str:
    """An exception in one line, as the profile keeps a counter's error: ``Type: first line`` (200 characters)."""
    if isinstance(exc, TracedApartError):
        return str(exc)
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


def meta_trace_failure(exc: BaseException) -> bool:
    """Whether a meta trace failed for a reason a trace on real tensors avoids: the model needs values that meta
    tensors lack (``.item()``, ``.tolist()``, ``nonzero``, ``repeat_interleave`` without a size), makes a tensor on
    the CPU beside meta ones, or meets a meta kernel that jit tracing breaks (convolutions). Failures of torch.jit
    itself (an op it cannot record, a vmap) are not: a real copy fails the same way, seconds later."""
    text = f"{type(exc).__name__}: {exc}"
    return bool(META_FAILURE.search(text)) or any(marker in text for marker in DATA_DEPENDENT_MARKERS)


def jit_failure(exc: BaseException) -> bool:
    """Whether torch.jit itself failed (an assert in its tracer or alias analysis, an output it cannot return): the
    same on any device and with any weights."""
    text = str(exc)
    return "INTERNAL ASSERT FAILED" in text or "supported as JIT" in text


def _replaced_module(exc: Exception) -> bool:
    """fvcore maps each module to its name before tracing; a model that swaps a submodule during its forward (BigBird
    switches block-sparse attention to full attention for short inputs) fails that map with ``KeyError(module)``."""
    return isinstance(exc, KeyError) and bool(exc.args) and isinstance(exc.args[0], torch.nn.Module)


APART_TIMEOUT_S = 600.0  # far beyond any trace seen (SAM 3's, the slowest, takes about 40 s on 2 cores)


class CountApart:
    """``count_fvcore`` in a forked child process (where there is a fork: Linux, macOS; elsewhere it counts here, at
    once), started now and collected with :meth:`result`, so the caller's own counting runs meanwhile on another core.

    Apart for two more reasons: a trace that fails part way can leave torch.jit's state behind, and a later trace in
    the same process then meets values of the abandoned graph (an INTERNAL ASSERT, or a segfault: SAM 3 after its
    meta trace stopped at ``.item()``); and a trace may leave state on the modules (Swin keeps the window size it
    computed as the tensor tracing made of it). In a child neither reaches this process, and a crash is one failed
    count. The child inherits the model (copy on write): nothing is built twice. A fork costs milliseconds in a small
    process, but grows with what the process holds (0.15 s more per profile in one holding 3 GB), so the profile
    forks only where it pays (``apart``: conv models, see ``efficiency.counters.static``). A failure comes back as
    :class:`TracedApartError` carrying the one-line error."""

    def __init__(
        self, model: torch.nn.Module, inputs: dict[str, Any], count: Callable | None = None, apart: bool = True
    ) -> None:
        self._here: tuple | None = None
        self.pid: int | None = None
        self._model = model
        count = count or count_fvcore
        if not apart or not hasattr(os, "fork"):  # here, at once, and no second trace after a failure here
            self._here = _counted(count, model, inputs, retry=False)
            return
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: count, send the count or the error, and leave without running any cleanup
            status = 1  # nothing sent: the parent reports the exit code
            try:
                # One thread: the parent counts on the other core, and a forked child must not enter the OpenMP
                # pool its parent started (libgomp is not fork-safe; DataLoader's workers do the same).
                torch.set_num_threads(1)
                os.close(read)
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(pickle.dumps(_counted(count, model, inputs, retry=True)))
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self.pid, self._read = pid, read

    def result(self, timeout_s: float = APART_TIMEOUT_S) -> FvcoreCount:
        """The count, or :class:`TracedApartError`; a child that has sent nothing within ``timeout_s`` is killed
        (a child forked from a process whose other threads held a lock it needs would wait for ever)."""
        if self.pid is not None:
            data = self._received(timeout_s)
            pid, self.pid = self.pid, None
            if data:  # sent whole (the pipe closed after it): reaped meanwhile, not waited for (its exit took 10-20 ms)
                threading.Thread(target=_reap, args=(pid,), name="fvcore-reaper", daemon=True).start()
            else:
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
                raise TracedApartError(f"RuntimeError: fvcore's trace crashed its process ({how})")
            self._here = pickle.loads(data)
        kind, value = self._here
        if kind == "error":
            raise TracedApartError(value)
        _learn(self._model, value)  # what the child learnt of this model class, kept here for the next child
        return value

    def _received(self, timeout_s: float) -> bytes:
        chunks, deadline = [], time.monotonic() + timeout_s
        with os.fdopen(self._read, "rb", buffering=0) as pipe:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([pipe], [], [], left)[0]:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    self.pid = None
                    raise TracedApartError(f"TimeoutError: fvcore's trace did not finish within {timeout_s:.0f} s")
                chunk = pipe.read(1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def cancel(self) -> None:
        """Stop a count whose result is no longer wanted (the caller failed meanwhile) and reap its process."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.close(self._read)
            os.waitpid(self.pid, 0)
            self.pid = None


def _reap(pid: int) -> None:
    """Wait for a child that has sent its count, so it leaves no zombie."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped by a caller that waits for every child: nothing is left to wait for
        return


_NEEDS_SIZE_TENSORS: set[str] = set()  # model classes whose trace failed with sizes as numbers, in this process


def _model_class(model: torch.nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _learn(model: torch.nn.Module, counted: FvcoreCount) -> None:
    """Remember a model class whose trace needed torch.jit's size tensors, so that its next trace starts with them."""
    if counted.sizes == "tensors" and counted.first_failure is not None:
        _NEEDS_SIZE_TENSORS.add(_model_class(model))


def _counted(count: Callable, model: torch.nn.Module, inputs: dict[str, Any], retry: bool) -> tuple[str, Any]:
    """("count", FvcoreCount) or ("error", one line).

    With ``retry`` (in a child or helper process only: a second trace after a failed one can meet what the first left
    behind) the trace takes sizes as plain numbers first (:func:`_sizes_as_numbers`; the same ops at the same shapes,
    so the same count, in about two thirds of the time for conv models: torch.jit records every size a forward reads
    as ops of their own) and, where that fails for a reason other than meta tensors, torch.jit's size tensors, which
    some models' Python needs (MobileViT's ``torch.ceil(height / patch)``); such a model class is then traced with size
    tensors first for the rest of the process. Where both fail, the size tensors' failure is the reason. Without
    ``retry`` (in the profile's own process): one trace with size tensors, torch.jit's usual way."""
    if not retry:
        try:
            return ("count", count(model, inputs))
        except Exception as exc:  # sent to the caller, which raises it
            return ("error", error_text(exc))
    numbers_first = _model_class(model) not in _NEEDS_SIZE_TENSORS
    failures: dict[str, str] = {}
    for sizes in ("numbers", "tensors") if numbers_first else ("tensors", "numbers"):
        try:
            with _sizes_as_numbers() if sizes == "numbers" else nullcontext():
                counted = count(model, inputs)
        except Exception as exc:  # tried the other way, or sent to the caller, which raises it
            failures[sizes] = error_text(exc)
            if meta_trace_failure(exc):
                return ("error", failures[sizes])  # after a meta failure the parent traces a real copy
            continue
        first = None if not failures else next(iter(failures.values()))
        counted = replace(counted, sizes=sizes, first_failure=first)
        _learn(model, counted)
        return ("count", counted)
    return ("error", failures["tensors"])


def count_fvcore(model: torch.nn.Module, inputs: dict[str, Any]) -> FvcoreCount:
    """fvcore's count of one forward; a model that replaced a submodule during the first trace is traced once more
    (its modules are now the ones its forward runs)."""
    try:
        return _count_fvcore(model, inputs)
    except KeyError as exc:
        if not _replaced_module(exc):
            raise
    return _count_fvcore(model, inputs)


def _count_fvcore(model: torch.nn.Module, inputs: dict[str, Any]) -> FvcoreCount:
    traceable_meta_kernels()
    tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    constants = {k: v for k, v in inputs.items() if not isinstance(v, torch.Tensor)}
    wrapper = _TupleOutputs(model, list(tensors), constants)
    analysis = FlopCountAnalysis(wrapper, tuple(tensors.values()))
    analysis.set_op_handle(**EXTRA_HANDLES)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    hooks = {m: (set(m._forward_pre_hooks), set(m._forward_hooks)) for m in wrapper.modules()}
    captured = {m for m in wrapper.modules() if getattr(m, "_output_capturing_hooks_installed", False)}
    try:
        with _numbers_for_bool_values(), _fvcore_trace():
            by_operator = dict(analysis.by_operator())
    except Exception:
        _remove_hooks_since(hooks)  # fvcore removes its scope hooks only after a trace that succeeded
        for module in wrapper.modules():  # transformers' output-capturing hooks, installed once during the trace,
            if module not in captured and getattr(module, "_output_capturing_hooks_installed", False):
                module._output_capturing_hooks_installed = False  # went with them: let the next forward reinstall
        raise
    total = sum(v for op, v in by_operator.items() if op not in ELEMENTWISE_KEYS)
    skipped = {op: n for op, n in analysis.unsupported_ops().items() if op not in FVCORE_NOT_MATRIX}
    return FvcoreCount(macs=int(total), by_operator=by_operator, skipped_ops=skipped)
