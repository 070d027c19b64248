"""One counted pass of a built model: a forward (and a forward+backward) under torch's FlopCounterMode and our
op tracer, on fake tensors or, when fake tensors cannot run an op that needs values, on a real CPU copy.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from efficiency.counters.moe import per_token_experts
from efficiency.counters.params import CallCounter
from efficiency.counters.trace import OpTracer, torch_flop_counter
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model
from efficiency.specs import ModelSpec, Workload

# Fake tensors have no values: an op that needs them (.item(), nonzero) fails with one of these.
DATA_DEPENDENT_MARKERS = ("DataDependent", "DynamicOutputShape", "_local_scalar_dense", "nonzero", "data-dependent")
REAL_TENSOR_LIMIT_BYTES = 2_000_000_000  # the largest (reduced-depth) copy counted on real tensors instead


def first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if hasattr(output, "values") else output
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError(f"model output {type(output).__name__} holds no tensor")


def data_dependent_op(exc: Exception) -> str | None:
    """The op behind a fake-tensor failure that needs real values (``.item()``, ``nonzero``), else None."""
    text = f"{type(exc).__name__} {exc}"
    if not any(marker in text for marker in DATA_DEPENDENT_MARKERS):
        return None
    found = re.search(r"aten\.[A-Za-z_0-9.]+", text)
    return found.group(0) if found else "a data-dependent op"


def run_counters(net: nn.Module, spec: ModelSpec, workload: Workload, forward_only: bool, device: str) -> dict:
    """One forward (and one forward+backward) under torch's counter and our tracer."""
    inputs = make_inputs(spec, workload, device)
    with per_token_experts(net) as moe_blocks, torch.no_grad():
        with CallCounter(net) as calls, torch_flop_counter() as torch_counter, OpTracer() as tracer:
            net(**inputs)
    training_error = "not run (forward-only profile)" if forward_only else None
    with per_token_experts(net):
        with torch_flop_counter() as train_counter, OpTracer() as train_tracer:
            try:
                if not forward_only:
                    first_tensor(net(**inputs)).float().sum().backward()
            except Exception as exc:  # reported as the training counter's error; forward stands
                training_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return {
        "forward_flops": int(torch_counter.get_total_flops()),
        "training_flops": None if training_error else int(train_counter.get_total_flops()),
        "training_error": training_error,
        "forward": tracer.summary,
        "training": train_tracer.summary,
        "as_used": calls.params_as_used(),
        "moe_blocks": moe_blocks,
    }


def count_on_real_tensors(spec: ModelSpec, workload: Workload, forward_only: bool, op: str, **overrides) -> dict:
    """The same counts on a real CPU copy (random weights), when fake tensors cannot run ``op``."""
    probe = build_model(spec, device="meta", dtype=workload.dtype, **overrides)
    weight_bytes = sum(p.numel() * p.element_size() for p in probe.parameters())
    if weight_bytes > REAL_TENSOR_LIMIT_BYTES:
        raise ValueError(
            f"{spec.id}: fake tensors cannot run {op} (it needs real values) and the weights "
            f"({weight_bytes / 1e9:.1f} GB) are too large to count on real tensors here"
        )
    real = build_model(spec, device="cpu", dtype=workload.dtype, **overrides)
    return run_counters(real, spec, workload, forward_only, "cpu")
