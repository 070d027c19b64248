"""The static profile: parameters, FLOPs by three counters, training FLOPs, memory traffic. No weights.

Order of work: build the model on ``meta`` (no memory); let fvcore trace it there; then give it fake
parameters (FakeTensorMode: shapes and dtypes, no storage) and run one forward and one forward+backward
under torch's FlopCounterMode and our op tracer. That is how a 530 B model profiles in seconds on a laptop.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from efficiency.counters.analytic import analytic_count
from efficiency.counters.fvcore_counter import count_fvcore
from efficiency.counters.moe import per_token_experts
from efficiency.counters.params import CallCounter, count_params
from efficiency.counters.trace import OpTracer, TraceSummary, torch_flop_counter
from efficiency.inputs import make_inputs
from efficiency.loading import build_model, check_workload, resolve
from efficiency.results import StaticProfile, error_profile
from efficiency.specs import ModelSpec, Workload

AGREEMENT = 0.02  # counters within 2% agree; beyond that the differing ops are named
CPU_TRACE_LIMIT_BYTES = 4_000_000_000


def _fake_parameters(model: nn.Module) -> None:
    """Swap meta parameters and buffers for fake CPU tensors in place, keeping tied weights tied."""
    memo: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is None:
                continue
            if id(param) not in memo:
                empty = torch.empty(param.shape, dtype=param.dtype, device="cpu")
                memo[id(param)] = nn.Parameter(empty, requires_grad=param.requires_grad)
            module._parameters[name] = memo[id(param)]
        for name, buf in list(module._buffers.items()):
            if buf is not None:
                if id(buf) not in memo:
                    memo[id(buf)] = torch.zeros(buf.shape, dtype=buf.dtype, device="cpu")
                module._buffers[name] = memo[id(buf)]


def _has_convolutions(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def _run_fvcore(net: nn.Module, spec: ModelSpec, workload: Workload):
    """fvcore on meta; on a real CPU copy for conv models (a meta convolution breaks jit tracing)."""
    if not _has_convolutions(net):
        return count_fvcore(net, make_inputs(spec, workload, "meta"))
    if sum(p.numel() for p in net.parameters()) * 4 > CPU_TRACE_LIMIT_BYTES:
        raise MemoryError(f"convolutional model above {CPU_TRACE_LIMIT_BYTES / 1e9:.0f} GB: fvcore not run")
    # Built for real (buffers such as Swin's relative position index need their values).
    real = build_model(spec, device="cpu", dtype=workload.dtype)
    return count_fvcore(real, make_inputs(spec, workload, "cpu"))


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if hasattr(output, "values") else output
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"model output {type(output).__name__} holds no tensor")


def _relative(value: int, reference: int) -> float:
    return (value - reference) / reference if reference else float("inf") if value else 0.0


def _difference_notes(by_counter: dict[str, int], headline: str, trace: TraceSummary, fvcore_ops: dict) -> list[str]:
    notes = []
    for counter, value in by_counter.items():
        if counter == headline:
            continue
        diff = _relative(value, by_counter[headline])
        if abs(diff) > AGREEMENT:
            torch_ops = {op: row["flops"] for op, row in trace.by_op().items() if row["flops"]}
            detail = f"fvcore ops (MACs) {fvcore_ops}" if counter == "fvcore" else "closed form covers matrix work only"
            notes.append(
                f"{counter} differs from {headline} by {diff:+.1%}; {headline} FLOPs by op {torch_ops}; {detail}"
            )
    return notes


def profile_static(model: str | ModelSpec, workload: Workload | None = None) -> StaticProfile:
    """Everything countable without running on hardware. Raises on bad input; see ``safe_profile_static``."""
    workload = workload or Workload()
    spec = model if isinstance(model, ModelSpec) else resolve(model)
    check_workload(spec, workload)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    net = build_model(spec, device="meta", dtype=workload.dtype)
    timings["build_s"] = time.perf_counter() - start

    notes = ["Built from the configuration with random weights; no weights were loaded or allocated."]
    counter_errors: dict[str, str] = {}
    fvcore_count = None
    start = time.perf_counter()
    with per_token_experts(net) as moe_blocks:
        try:
            fvcore_count = _run_fvcore(net, spec, workload)
        except Exception as exc:  # one counter failing must not hide the others; the reason is reported
            counter_errors["fvcore"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    timings["fvcore_s"] = time.perf_counter() - start
    if moe_blocks:
        notes.append(
            "Sparse MoE: experts counted per token as top-k dense experts (routing-independent); "
            "capacity-based token dropping is not modelled."
        )

    start = time.perf_counter()
    with FakeTensorMode(allow_non_fake_inputs=True):
        _fake_parameters(net)
        inputs = make_inputs(spec, workload, "cpu")
        with per_token_experts(net), torch.no_grad():
            with CallCounter(net) as calls, torch_flop_counter() as torch_counter, OpTracer() as tracer:
                net(**inputs)
        forward_flops = int(torch_counter.get_total_flops())
        with per_token_experts(net):
            with torch_flop_counter() as train_counter, OpTracer() as train_tracer:
                _first_tensor(net(**inputs)).float().sum().backward()
    timings["torch_s"] = time.perf_counter() - start

    params = count_params(net, spec, as_used=calls.params_as_used())
    analytic = analytic_count(spec, workload, net.config.to_dict())
    by_counter: dict[str, int] = {"torch": forward_flops}
    if fvcore_count is not None:
        by_counter["fvcore"] = fvcore_count.flops
    if analytic is not None:
        by_counter["analytic"] = analytic.flops
    else:
        notes.append(f"No closed-form formula for {spec.model_type}; counted by torch and fvcore only.")
    summary = tracer.summary
    uncounted = sorted(set(summary.unknown_ops) | set(train_tracer.summary.unknown_ops))
    traffic = summary.bytes_total
    return StaticProfile(
        model=spec.id,
        name=spec.display_name,
        hf_id=spec.hf_id,
        families=list(spec.families),
        workload=workload.for_modality(spec.modality),
        params=params,
        flops=forward_flops,
        flops_by_counter=by_counter,
        counter_differences={k: _relative(v, forward_flops) for k, v in by_counter.items() if k != "torch"},
        counter_errors=counter_errors,
        training_flops=int(train_counter.get_total_flops()),
        attention_flops=summary.attention_flops,
        elementwise_flops=summary.elementwise_flops,
        memory_traffic_bytes=traffic,
        training_memory_traffic_bytes=train_tracer.summary.bytes_total,
        uncounted_ops=uncounted,
        fvcore_skipped_ops=fvcore_count.skipped_ops if fvcore_count else {},
        analytic_formula=analytic.formula if analytic else None,
        notes=notes + _difference_notes(by_counter, "torch", summary, fvcore_count.by_operator if fvcore_count else {}),
        timings=timings,
        op_records=summary.ops,
    )


def safe_profile_static(model: str, workload: Workload | None = None) -> StaticProfile:
    """Like profile_static, but a failure becomes an error result for that model (others go on)."""
    try:
        return profile_static(model, workload)
    except Exception as exc:  # reported in the result's `error`, shown beside the model
        return error_profile(model, workload or Workload(), exc)
