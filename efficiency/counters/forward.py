"""One counted pass of a built model: a forward (and a forward+backward) under torch's FlopCounterMode and our
op tracer, on fake tensors or, when fake tensors cannot run an op that needs values, on a real CPU copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from efficiency.counters.moe import per_token_experts
from efficiency.counters.params import CallCounter
from efficiency.counters.trace import OpTracer, TraceSummary, torch_flop_counter
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model
from efficiency.specs import ModelSpec, Workload

# Fake tensors have no values: an op that needs them (.item(), nonzero) fails with one of these; Python code that
# reads a tensor's elements itself (UDOP's ``zip(*indices)``) meets a fake tensor's unallocated data.
DATA_DEPENDENT_MARKERS = (
    "DataDependent",
    "DynamicOutputShape",
    "_local_scalar_dense",
    "nonzero",
    "data-dependent",
    "data is not allocated",
)
REAL_TENSOR_LIMIT_BYTES = 2_000_000_000  # the largest (reduced-depth) copy counted on real tensors instead
# Real tensors are drawn from this seed: where values decide how much work a forward does (FastSpeech 2's and VITS's
# duration predictors set the output length), a count depends on them, and with a seed it is the same every time.
REAL_TENSOR_SEED = 0
ONE_PASS = True  # models without SDPA: one forward and its backward (tests compare it with two passes)


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


@contextmanager
def _frozen(net: nn.Module) -> Iterator[None]:
    """Parameters that do not require grad for the inference pass: a model that hands a parameter straight to its
    output (a learned query, Kosmos-2's and BLIP-2's) would otherwise meet torch's module tracker, which asks such
    a leaf for a gradient function that no_grad never made."""
    wanted = {param: param.requires_grad for param in net.parameters()}
    for param in wanted:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param, requires in wanted.items():
            param.requires_grad_(requires)


def _summed(a: TraceSummary, b: TraceSummary) -> TraceSummary:
    return TraceSummary(ops=a.ops + b.ops, unknown_ops=a.unknown_ops + b.unknown_ops)


def has_convolutions(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in net.modules())


def _sdpa(summary: TraceSummary) -> bool:
    return any("scaled_dot_product" in record.op for record in summary.ops)


def _one_pass_fits(net: nn.Module) -> bool:
    """A model whose forward runs the same ops with and without grad: every model but those whose attention is
    SDPA (judged by its config here, by its ops in ``_one_pass``)."""
    return getattr(getattr(net, "config", None), "_attn_implementation", None) != "sdpa"


def _one_pass(net: nn.Module, inputs: dict[str, Any]) -> dict | None:
    """Forward and training counts from one forward, or None when its forward may differ from an inference one.

    The forward (grad on) runs under one counter and tracer, its backward (the loss included) under a second
    pair: training = forward + backward, the very ops a separate forward+backward pass runs. Its forward counts
    stand for the inference forward only when grad mode picks no other kernels. SDPA does where its mask needs a
    gradient: Swin-T's and T5's masks carry a learned position bias, and with grad their attention takes SDPA's math
    path (bmm, softmax: the same FLOPs, 28% more forward bytes for Swin-T) instead of the fused CPU kernel. So a
    forward with an SDPA record gets None (two passes, as before). Attention written as matmuls and softmax
    (MobileViT's, Swin V2's) runs the same kernels either way: one pass gave the same records as two on each of the
    14 catalog models that take it, and the tests compare them on three tiny ones."""
    with per_token_experts(net) as moe_blocks:
        with CallCounter(net) as calls, OpTracer(torch_flop_counter()) as tracer:
            output = first_tensor(net(**inputs))
        if _sdpa(tracer.summary):
            return None
        with OpTracer(torch_flop_counter()) as back_tracer:
            output.float().sum().backward()
    forward_flops = int(tracer.torch_counter.get_total_flops())
    return {
        "forward_flops": forward_flops,
        "training_flops": forward_flops + int(back_tracer.torch_counter.get_total_flops()),
        "training_error": None,
        "forward": tracer.summary,
        "training": _summed(tracer.summary, back_tracer.summary),
        "as_used": calls.params_as_used(),
        "moe_blocks": moe_blocks,
    }


def run_counters(net: nn.Module, spec: ModelSpec, workload: Workload, forward_only: bool, device: str) -> dict:
    """One forward (and one forward+backward) under torch's counter and our tracer."""
    inputs = make_inputs(spec, workload, device)
    if not forward_only and ONE_PASS and _one_pass_fits(net):
        try:
            counted = _one_pass(net, inputs)
        except Exception as exc:  # counted again below in two passes, which report a training failure as such
            if data_dependent_op(exc) is not None:
                raise  # no pass on fake tensors can run it: the caller counts on real tensors
            counted = None
        if counted is not None:
            return counted
        for param in net.parameters():
            param.grad = None  # a backward that got part way must not leave gradients to accumulate into
    with per_token_experts(net) as moe_blocks, torch.no_grad(), _frozen(net):
        with CallCounter(net) as calls, OpTracer(torch_flop_counter()) as tracer:
            net(**inputs)
    training_error = "not run (forward-only profile)" if forward_only else None
    with per_token_experts(net):
        with OpTracer(torch_flop_counter()) as train_tracer:
            try:
                if not forward_only:
                    first_tensor(net(**inputs)).float().sum().backward()
            except Exception as exc:  # reported as the training counter's error; forward stands
                training_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return {
        "forward_flops": int(tracer.torch_counter.get_total_flops()),
        "training_flops": None if training_error else int(train_tracer.torch_counter.get_total_flops()),
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
    with torch.random.fork_rng():  # the same weights and inputs every time, whatever ran before in this process
        torch.manual_seed(REAL_TENSOR_SEED)
        real = build_model(spec, device="cpu", dtype=workload.dtype, **overrides)
        return run_counters(real, spec, workload, forward_only, "cpu")
