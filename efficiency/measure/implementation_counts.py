"""Static counts as each implementation runs the model (issue 17): what stays the same and what int8 changes.

Parameters and FLOPs are the model's arithmetic: the float implementations (eager, sdpa, compile, onnxruntime)
share them, and each result says so. Dynamic int8 quantization runs the ``nn.Linear`` layers as int8 matmuls: that
work is counted apart (``int8_ops``, 2 per multiply-add, like FLOPs) and left out of ``flops``; those layers'
weights count at one byte in the memory traffic and in ``weight_bytes["int8_dynamic"]``. The running side is
:mod:`efficiency.measure.implementations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from efficiency.measure.implementations import ImplementationError, check_implementation, failed
from efficiency.models.inputs import fit_workload, make_inputs
from efficiency.models.loading import build_model
from efficiency.results import DEFAULT_IMPLEMENTATION, Result
from efficiency.specs import ModelSpec, Workload

FLOAT_IMPLEMENTATIONS = ("eager", "sdpa", "compile", "onnxruntime")
FLOAT32_BYTES = 4
INT8_BYTES = 1
SAME_COUNT = "Parameters and FLOPs are the model's arithmetic, the same under eager, sdpa, compile and onnxruntime; "
SAME_COUNT_NOTES = {
    "eager": SAME_COUNT + "memory traffic is counted with SDPA as one op, so the attention score matrices that eager "
    "attention writes and reads again are not in it.",
    "compile": SAME_COUNT + "memory traffic is counted op by op without fusion, so it does not show what compile fuses "
    "away.",
    "onnxruntime": SAME_COUNT + "memory traffic is counted op by op without fusion, so it does not show what ONNX "
    "Runtime's graph optimizations fuse away.",
}


@dataclass(frozen=True)
class LinearWork:
    """What the ``nn.Linear`` layers of one forward pass do: the part dynamic int8 quantization takes over.

    ``macs`` are multiply-adds; ``weight_reads`` the weight elements read (each call reads its layer's weight)."""

    layers: int
    weight_elements: int
    macs: int
    weight_reads: int


def count_linear_work(spec: ModelSpec, workload: Workload) -> LinearWork:
    """Hooks on every ``nn.Linear`` of a weight-free build (meta, then fake tensors) over one forward pass."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    workload, _ = fit_workload(spec, workload)  # the inputs the static profile counts
    net = build_model(spec, device="meta", dtype=workload.dtype)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    macs = reads = 0

    def hook(module: nn.Linear, args: tuple, _output: Any) -> None:
        nonlocal macs, reads
        macs += args[0].numel() * module.out_features  # rows x in_features x out_features
        reads += module.weight.numel()

    handles = [m.register_forward_hook(hook) for m in linears]
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            net = net.to_empty(device="cpu")
            net(**make_inputs(spec, workload, "cpu"))
    finally:
        for handle in handles:
            handle.remove()
    return LinearWork(len(linears), sum(m.weight.numel() for m in linears), macs, reads)


def static_for(result: Result, name: str, linear: LinearWork | None = None) -> Result:
    """The static result as ``name`` runs it. Float implementations keep every count (and say so); ``int8`` moves
    its linear layers' work out of ``flops`` into ``int8_ops`` and counts their weights at one byte.

    ``linear`` (:func:`count_linear_work`) is needed for int8 only."""
    if result.error or name == DEFAULT_IMPLEMENTATION:
        return result.with_(implementation=name)
    if name in FLOAT_IMPLEMENTATIONS:
        return result.with_(implementation=name, notes=[*result.notes, SAME_COUNT_NOTES[name]])
    if linear is None:
        raise ValueError("static_for: int8 needs the model's linear work (count_linear_work)")
    if not linear.layers:
        raise ImplementationError(
            f"int8: {result.model} has no nn.Linear layer for dynamic quantization to make int8 "
            "(its projections are another module type); it would run as the float model"
        )
    int8_ops = 2 * linear.macs
    flops = None if result.flops is None else result.flops - int8_ops
    saved = (FLOAT32_BYTES - INT8_BYTES) * linear.weight_reads
    traffic = None if result.memory_traffic_bytes is None else result.memory_traffic_bytes - saved
    weights = dict(result.weight_bytes) if isinstance(result.weight_bytes, dict) else {}
    if result.params is not None:
        weights["int8_dynamic"] = result.params * FLOAT32_BYTES - (FLOAT32_BYTES - INT8_BYTES) * linear.weight_elements
    share = f"{int8_ops / result.flops:.0%}" if result.flops else "an unknown share"
    held = f", {linear.weight_elements / result.params:.0%} of the parameters" if result.params else ""
    note = (
        f"int8 (dynamic quantization of {linear.layers} nn.Linear layers{held}; other layer types stay float): "
        f"{share} of the forward work runs as int8 "
        "operations, counted apart in int8_ops (2 per multiply-add); flops, macs and the arithmetic intensity count "
        "the float work left; flops_by_counter is the float model's. Memory traffic reads those layers' weights at 1 "
        "byte; the per-call quantization of their inputs is not counted. weight_bytes.int8_dynamic holds their "
        "weights at 1 byte and every other weight at 4."
    )
    return result.with_(
        implementation=name,
        flops=flops,
        macs=None if flops is None else flops // 2,
        int8_ops=int8_ops,
        memory_traffic_bytes=traffic,
        arithmetic_intensity_flops_per_byte=flops / traffic if flops is not None and traffic else None,
        weight_bytes=weights or result.weight_bytes,
        notes=[*result.notes, note],
    )


def static_results(
    static: Result, spec: ModelSpec, workload: Workload, implementations: Sequence[str], device: str = "cpu"
) -> list[Result]:
    """``static`` (the model's counted profile) as each implementation runs it, in order; an implementation that
    cannot run this model or setup gets a failure with its one line, and the others go on."""
    results, linear = [], None
    for name in implementations:
        try:
            check_implementation(name, device, workload.dtype, workload.mode)
            if name == "int8" and linear is None and not static.error:
                linear = linear_work_or_refuse(spec, workload)
            results.append(static_for(static, name, linear))
        except ImplementationError as error:
            failed = Result.failure(static.model, static.workload or workload.to_dict(), str(error), "refused")
            results.append(failed.with_(implementation=name, name=static.name, hf_id=static.hf_id))
    return results


def linear_work_or_refuse(spec: ModelSpec, workload: Workload) -> LinearWork:
    """:func:`count_linear_work`, its failure said as the int8 implementation's one line."""
    try:
        return count_linear_work(spec, workload)
    except Exception as error:
        raise failed("int8", "counting its nn.Linear work", error) from error
