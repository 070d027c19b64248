"""The implementation axis: one model, the same arithmetic, run by different code.

``eager`` and ``sdpa`` are PyTorch eager with transformers' eager attention (explicit matmul, softmax, matmul) or
``torch.nn.functional.scaled_dot_product_attention``; ``compile`` is the SDPA model under ``torch.compile``
(inductor); ``int8`` is the SDPA model with every ``nn.Linear`` swapped for torch's dynamically quantized int8
linear (``torch.ao.quantization.quantize_dynamic``: int8 weights, activations quantized per call, CPU only);
``onnxruntime`` is the SDPA model exported by ``torch.onnx.export`` (the torch.export-based exporter) and run by an
ONNX Runtime CPU session. The workload's dtype is a separate axis: bfloat16 combines with eager, sdpa and compile;
int8 and onnxruntime take float32 (dynamic quantization starts from float32 weights; ONNX Runtime's CPU kernels
are float32 here).

What each implementation does once before its steady state (compile, quantize, export, open a session) is timed
apart in ``setup_s``; the timed calls that follow use the warm-up, repeat and spread rules of
:mod:`efficiency.measure.timing`. A combination an implementation cannot run, or a model it fails on, raises
:class:`ImplementationError`: one line naming the implementation.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from efficiency.measure.memory import MemoryBreakdown, PeakMemory, inference_breakdown
from efficiency.measure.timing import device_kind, num_threads
from efficiency.results import IMPLEMENTATIONS

CPU_ONLY = ("int8", "onnxruntime")
FLOAT32_ONLY = ("int8", "onnxruntime")
INFERENCE_ONLY = ("compile", "int8", "onnxruntime")
WITH_GENERATION = ("eager", "sdpa", "int8")  # generate() runs the very module measured; not a compiled or ONNX one

GENERATION_NOTE = "Generation (TTFT, decode) not measured under {name}: generate() would run the plain torch model."


class ImplementationError(ValueError):
    """An implementation that cannot run this model or setup, said in one line that names it."""


def check_implementation(name: str, device: str = "cpu", dtype: str = "float32", mode: str = "inference") -> None:
    """Refuse, before anything is built, a setup the implementation cannot run."""
    if name not in IMPLEMENTATIONS:
        raise ImplementationError(f"implementation {name!r} is unknown; accepted: {', '.join(IMPLEMENTATIONS)}")
    if name in CPU_ONLY and device_kind(device) != "cpu":
        raise ImplementationError(f"{name}: runs on the CPU only here, not on {device}")
    if name in FLOAT32_ONLY and dtype != "float32":
        why = "it quantizes float32 weights" if name == "int8" else "its CPU kernels are float32 here"
        raise ImplementationError(f"{name}: takes float32 models ({why}), not {dtype}")
    if name in INFERENCE_ONLY and mode != "inference":
        raise ImplementationError(f"{name}: measured for inference only, not a {mode} step")


def attention_for(name: str) -> str:
    """The attention kernel the transformers model is built with: eager for ``eager``, SDPA for the rest."""
    return "eager" if name == "eager" else "sdpa"


# --- running -------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A model made ready to run by one implementation.

    ``runner`` is called as ``runner(**inputs)``; ``module`` is the torch module that runs (None for ONNX Runtime);
    ``setup_s`` holds the one-off seconds (``compile``, ``quantize``, ``export``, ``session``);
    ``weights_bytes`` the weights as this implementation holds them, when the module's parameters do not say it."""

    name: str
    runner: Callable[..., Any]
    module: nn.Module | None
    setup_s: dict[str, float] = field(default_factory=dict)
    weights_bytes: int | None = None
    weights_source: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def generates(self) -> bool:
        return self.name in WITH_GENERATION


def prepare(name: str, model: nn.Module, inputs: dict[str, Any], device: str, threads: int | None) -> Prepared:
    """``model`` (built with :func:`attention_for` ``(name)``) made ready for ``name``; the caller drops its own
    reference to ``model`` afterwards (int8 and onnxruntime no longer use it)."""
    attention = _attention_notes(name, model)
    if name in ("eager", "sdpa"):
        return Prepared(name, model, model, notes=attention)
    with num_threads(threads):
        if name == "compile":
            prepared = _compiled(model, inputs)
        elif name == "int8":
            prepared = _quantized(model)
        elif name == "onnxruntime":
            prepared = _onnx_session(model, inputs, threads)
        else:
            raise ImplementationError(f"implementation {name!r} is unknown; accepted: {', '.join(IMPLEMENTATIONS)}")
    prepared.notes[:0] = attention
    return prepared


def _attention_notes(name: str, model: nn.Module) -> list[str]:
    ran = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if ran and ran != attention_for(name):
        return [f"{name}: this architecture has no {attention_for(name)} attention in transformers; {ran} ran."]
    return []


def failed(name: str, step: str, error: BaseException) -> ImplementationError:
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return ImplementationError(f"{name}: {step} failed: {type(error).__name__}: {first}")


def _compiled(model: nn.Module, inputs: dict[str, Any]) -> Prepared:
    """``torch.compile`` (inductor, default mode); the first call compiles, and its wall time is ``compile``."""
    from torch._dynamo.utils import counters

    compiled = torch.compile(model)
    began = time.perf_counter()
    try:
        with torch.inference_mode():  # the mode the timed calls run in: the same guards, no recompilation
            compiled(**inputs)
    except Exception as error:
        raise failed("compile", "torch.compile", error) from error
    seconds = time.perf_counter() - began
    note = "compile: setup_s.compile is the first call (Dynamo tracing, inductor code generation, C++ build, a forward)"
    if counters["inductor"].get("fxgraph_cache_hit", 0):
        note += "; inductor's on-disk cache supplied compiled code, so it is shorter than a cold compile"
    return Prepared("compile", compiled, compiled, setup_s={"compile": seconds}, notes=[note + "."])


def _quantized_weight_bytes(module: nn.Module) -> int:
    """Parameters still in float plus the packed int8 weights and float biases of the quantized linears."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total = sum(p.numel() * p.element_size() for p in module.parameters())
    for layer in module.modules():
        if isinstance(layer, DynamicLinear):
            weight, bias = layer._packed_params._weight_bias()
            total += weight.numel() * weight.element_size()
            total += 0 if bias is None else bias.numel() * bias.element_size()
    return total


def _quantized(model: nn.Module) -> Prepared:
    """Every ``nn.Linear`` as torch's dynamic int8 linear (per-tensor int8 weights, fbgemm/x86 kernels)."""
    layers = sum(1 for m in model.modules() if isinstance(m, nn.Linear))
    if not layers:
        raise ImplementationError("int8: the model has no nn.Linear layer for dynamic quantization to make int8")
    began = time.perf_counter()
    with warnings.catch_warnings():  # torch 2.13 warns that torch.ao.quantization is deprecated (torchao succeeds it)
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning, FutureWarning))
        try:
            quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        except Exception as error:
            raise failed("int8", "quantize_dynamic", error) from error
    seconds = time.perf_counter() - began
    note = f"int8: {layers} nn.Linear layers quantized dynamically (torch.ao.quantization, engine " + (
        f"{torch.backends.quantized.engine}); everything else runs in float32."
    )
    return Prepared(
        "int8",
        quantized,
        quantized,
        setup_s={"quantize": seconds},
        weights_bytes=_quantized_weight_bytes(quantized),
        weights_source="measured (float parameters + packed int8 weights and biases)",
        notes=[note],
    )


class OnnxRunner:
    """An ONNX Runtime session called like the model: ``runner(**inputs)`` feeds the tensors it takes."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def __call__(self, **inputs: torch.Tensor) -> list[Any]:
        return self.session.run(None, {name: inputs[name].numpy() for name in self.input_names})


def _initializer_bytes(path: Path) -> int:
    """Bytes of the exported model's weights (its initializers), read from the file's tensor shapes and types."""
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = onnx.load(str(path), load_external_data=False).graph
    total = 0
    for tensor in graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        total += count * tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return total


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporter's chatter off while it runs: "torchvision is not installed" per export, and the constant
    folder's "Evaluation failed" warnings (it leaves such a node unfolded; the model is unchanged). Errors still
    raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _onnx_session(model: nn.Module, inputs: dict[str, Any], threads: int | None) -> Prepared:
    """Exported by ``torch.onnx.export`` (dynamo, static shapes), run by an ONNX Runtime CPU session with
    ``threads`` intra-op threads and sequential execution; graph optimizations at ORT's default (all)."""
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="efficiency-onnx-") as folder:
        path = Path(folder) / "model.onnx"
        began = time.perf_counter()
        try:
            with _quiet_export(), torch.no_grad():
                program = torch.onnx.export(model, (), str(path), kwargs=dict(inputs), dynamo=True, verbose=False)
        except Exception as error:
            raise failed("onnxruntime", "torch.onnx.export", error) from error
        export_s = time.perf_counter() - began
        del program  # it holds the exported program's copy of the weights
        weights = _initializer_bytes(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        began = time.perf_counter()
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise failed("onnxruntime", "InferenceSession", error) from error
        session_s = time.perf_counter() - began
    note = (
        f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider, {options.intra_op_num_threads} intra-op "
        "threads): exported by torch.onnx.export (dynamo) at this input shape; setup_s holds the export and the "
        "session start (graph optimizations), apart from the timed runs."
    )
    return Prepared(
        "onnxruntime",
        OnnxRunner(session),
        None,
        setup_s={"export": export_s, "session": session_s},
        weights_bytes=weights,
        weights_source="counted (the exported model's initializers)",
        notes=[note],
    )


def memory_breakdown(prepared: Prepared, peak: PeakMemory, baseline: int) -> MemoryBreakdown:
    """The inference breakdown with the weights as this implementation holds them."""
    if prepared.module is not None and prepared.weights_bytes is None:
        return inference_breakdown(prepared.module, peak, baseline)
    source = prepared.weights_source or "measured"
    return inference_breakdown(prepared.module, peak, baseline, prepared.weights_bytes or 0, source)
