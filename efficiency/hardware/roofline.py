"""Roofline estimates of latency, the roofline point and a fits-in-memory verdict on any catalog chip.

Most users cannot run every chip, so the Hardware page and ``python -m efficiency estimate`` show estimates
built from one static profile (op records of one traced forward pass) and a chip's figures:

- per op, ``time = max(FLOPs / peak, bytes / bandwidth) + overhead``; elementwise FLOPs count against the same
  peak (they are small); summed over the ops of one forward pass (eager PyTorch: no fusion);
- the whole-model roofline point: arithmetic intensity = FLOPs / bytes, attainable FLOP/s =
  ``min(peak, AI x bandwidth)``, "compute"-bound when the summed compute time exceeds the summed memory time
  (the same as AI above the ridge point ``peak / bandwidth``);
- for causal LMs, one decode step at the workload's context: all active weights plus the KV cache are read
  once per generated token;
- memory needed: weights + activations (+ KV cache); training adds gradients, AdamW state and every
  forward op output kept for backward.

Every number here is an estimate and says so (``note``); measured numbers live elsewhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from efficiency.counters.params import moe_top_k
from efficiency.counters.profile import StaticProfile, error_profile
from efficiency.counters.static import profile_static
from efficiency.models import catalog
from efficiency.models.loading import build_config, resolve
from efficiency.specs import HardwareSpec, ModelSpec, Workload

NOTE = "estimated (roofline)"
TRAINING_NOTE = NOTE + "; latency is one forward pass (the trace holds no backward ops), memory is a training step's"
# Fixed cost per op call: dispatch in eager PyTorch on a CPU, a kernel launch on a GPU. Measured orders of
# magnitude: ~5 us per eager op on a CPU, ~5 us launch + dispatch per CUDA kernel, ~10 us per Metal/edge-GPU
# dispatch; a TPU runs one compiled XLA program (ops fused, no per-op launch), so its cost is small.
OVERHEAD_S_BY_KIND: dict[str, float] = {"cpu": 5e-6, "gpu": 5e-6, "tpu": 1e-6, "soc": 10e-6, "edge": 10e-6}
DEFAULT_OVERHEAD_S = 5e-6  # a kind missing from the table (a user entry of a new kind)
BYTES_PER_ELEMENT = {"float32": 4, "tfloat32": 4, "bfloat16": 2, "float16": 2, "int8": 1}
LIVE_WINDOW = 4  # op outputs assumed alive at once in inference (an op's inputs, a residual, a branch)
ADAMW_STATE_BYTES_PER_PARAM = 8  # two fp32 moments per parameter


@dataclass(frozen=True)
class DecodeShape:
    """What one decode step reads besides the weights: the KV cache shape, and MoE routing if sparse."""

    layers: int
    kv_heads: int
    head_dim: int
    query_heads: int
    moe_top_k: int | None = None
    moe_experts: int | None = None

    def kv_bytes(self, context: int, batch: int, bytes_per_element: int) -> int:
        """Keys and values of every layer for ``context`` tokens: 2 x layers x kv_heads x head_dim x context."""
        return 2 * self.layers * self.kv_heads * self.head_dim * context * batch * bytes_per_element


@dataclass(frozen=True)
class Estimate:
    """One model on one chip: raw seconds and bytes inside, milliseconds where the name says so."""

    model: str
    hardware: str
    dtype: str
    estimated_latency_ms: float
    bound: str  # "compute" or "memory"
    fits: bool
    memory_needed_bytes: int
    memory_capacity_bytes: int
    arithmetic_intensity: float
    attainable_flops_per_s: float
    peak_flops_per_s: float
    bandwidth_bytes_per_s: float
    ridge_point: float
    compute_time_ms: float
    memory_time_ms: float
    overhead_ms: float
    ops: int
    decode_ms_per_token: float | None
    workload: dict[str, Any]
    note: str = NOTE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimated"] = True
        return data


def overhead_for(hw: HardwareSpec) -> float:
    """The per-op overhead in seconds for this chip's kind (see ``OVERHEAD_S_BY_KIND``)."""
    return OVERHEAD_S_BY_KIND.get(hw.kind, DEFAULT_OVERHEAD_S)


def op_seconds(flops: float, nbytes: float, peak: float, bandwidth: float, overhead_s: float) -> float:
    """The roofline time of one op: whichever of compute and memory is slower, plus the fixed cost."""
    return max(flops / peak, nbytes / bandwidth) + overhead_s


def _bytes_per_element(dtype: str) -> int:
    if dtype not in BYTES_PER_ELEMENT:
        raise ValueError(f"dtype: {dtype!r} is not one of {', '.join(BYTES_PER_ELEMENT)}")
    return BYTES_PER_ELEMENT[dtype]


def activation_bytes(profile: StaticProfile, training: bool, scale: float = 1.0) -> int:
    """Activation memory from the op records, which carry sizes but not tensor identities.

    Inference: the peak over the trace of the outputs of the last ``LIVE_WINDOW`` ops (an op's inputs, the
    residual stream and a branch are alive together; earlier outputs are freed). Training: every forward
    op output is kept for backward, as eager autograd does for most ops (an upper-side estimate).
    """
    outputs = [record.bytes_written * scale for record in profile.op_records]
    if training:
        return int(sum(outputs))
    window = 0.0
    peak = 0.0
    for position, written in enumerate(outputs):
        window += written
        if position >= LIVE_WINDOW:
            window -= outputs[position - LIVE_WINDOW]
        peak = max(peak, window)
    return int(peak)


def distinct_expert_share(top_k: int, experts: int, tokens: int) -> float:
    """Expected share of a layer's experts that ``tokens`` tokens touch, each routed to ``top_k`` at random."""
    return 1.0 - (1.0 - top_k / experts) ** tokens


def weights_read_params(profile: StaticProfile, shape: DecodeShape | None, tokens: int) -> float:
    """Parameters read by a pass over ``tokens`` tokens: dense weights once, experts as many as are touched."""
    params = profile.params
    if params is None:
        raise ValueError(f"{profile.model}: the profile has no parameter counts")
    if shape is None or not shape.moe_top_k or not shape.moe_experts or params.active >= params.total:
        return float(params.total)
    routed_share = shape.moe_top_k / shape.moe_experts
    expert_params = (params.total - params.active) / (1.0 - routed_share)
    dense_params = params.total - expert_params
    return dense_params + expert_params * distinct_expert_share(shape.moe_top_k, shape.moe_experts, tokens)


@lru_cache(maxsize=256)
def _decode_shape_cached(model_type: str, config_json: str, is_causal: bool, moe: tuple[int, int] | None):
    if not is_causal and moe is None:
        return None

    spec_config = json.loads(config_json)
    config = build_config(
        ModelSpec(id="decode-shape", model_type=model_type, task="base", modality="text", config=spec_config)
    )
    missing = [
        name for name in ("num_attention_heads", "num_hidden_layers", "hidden_size") if not hasattr(config, name)
    ]
    if missing:
        raise ValueError(f"{model_type}: the config has no {', '.join(missing)}; no KV cache shape")
    heads = int(config.num_attention_heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    top_k, experts = moe if moe else (None, None)
    return DecodeShape(int(config.num_hidden_layers), kv_heads, head_dim, heads, top_k, experts)


def decode_shape(spec: ModelSpec) -> DecodeShape | None:
    """KV cache shape (causal LMs) and MoE routing (sparse models) from the spec's config; else None."""

    moe = moe_top_k(spec)
    config_json = json.dumps(spec.config, sort_keys=True, default=str)
    return _decode_shape_cached(spec.model_type, config_json, spec.is_causal_lm, moe)


def _spec_for(profile: StaticProfile) -> ModelSpec | None:
    """The spec of a profiled model from the catalog or its local folder; never the Hub (estimating stays
    offline and instant), so a Hub model gets no decode estimate unless its spec is passed in."""

    spec = catalog.find(profile.model)
    if spec is None and Path(profile.model).expanduser().is_dir():
        spec = resolve(profile.model)
    return spec


def decode_seconds(
    profile: StaticProfile,
    shape: DecodeShape,
    hw: HardwareSpec,
    dtype: str,
    batch: int,
    context: int,
    overhead_s: float,
) -> float:
    """One generated token per sequence at ``context`` tokens of KV cache.

    Bytes: the weights the batch's tokens touch + the KV cache. FLOPs: 2 x active params per token + the
    attention over the cache (2 x 2 x layers x heads x head_dim x context). The step runs about as many ops
    as one forward pass, so the per-op overhead is charged once per op of the traced pass.
    """
    bpe = _bytes_per_element(dtype)
    params = profile.params
    if params is None:
        raise ValueError(f"{profile.model}: the profile has no parameter counts")
    weight_bytes = weights_read_params(profile, shape, batch) * bpe
    kv_bytes = shape.kv_bytes(context, batch, bpe)
    flops = batch * (2 * params.active + 4 * shape.layers * shape.query_heads * shape.head_dim * context)
    work = max(flops / hw.peak_for(dtype), (weight_bytes + kv_bytes) / hw.memory_bandwidth_bytes_per_s)
    return work + len(profile.op_records) * overhead_s


def memory_needed(profile: StaticProfile, shape: DecodeShape | None, dtype: str, training: bool, scale: float) -> int:
    """Weights + activations (+ KV cache at the workload length for causal LMs); training adds gradients
    (one per weight, at the dtype) and AdamW's two fp32 moments per parameter."""
    if profile.params is None:
        raise ValueError(f"{profile.model}: the profile has no parameter counts")
    bpe = _bytes_per_element(dtype)
    weights = profile.params.total * bpe
    needed = weights + activation_bytes(profile, training, scale)
    workload = profile.workload
    if shape is not None and not training and shape.layers and "seq_len" in workload:
        needed += shape.kv_bytes(int(workload["seq_len"]), int(workload.get("batch_size", 1)), bpe)
    if training:
        needed += weights + profile.params.trainable * ADAMW_STATE_BYTES_PER_PARAM
    return int(needed)


def estimate(
    profile: StaticProfile,
    hw: HardwareSpec,
    dtype: str | None = None,
    overhead_s: float | None = None,
    *,
    spec: ModelSpec | None = None,
) -> Estimate:
    """The roofline estimate of one profiled model on one chip (microseconds: no model is built).

    ``dtype`` picks the peak (e.g. "tfloat32" or "int8") and defaults to the workload's; bytes are rescaled
    from the workload's element size. ``overhead_s`` overrides the per-op cost of the chip's kind. ``spec``
    (default: the catalog entry) gives the KV cache shape and MoE routing.
    """
    if profile.error:
        raise ValueError(f"{profile.model}: no estimate, the static profile failed: {profile.error}")
    if not profile.op_records:
        raise ValueError(f"{profile.model}: the profile holds no op records to estimate from")
    workload = profile.workload
    dtype = dtype or str(workload.get("dtype", "float32"))
    scale = _bytes_per_element(dtype) / _bytes_per_element(str(workload.get("dtype", "float32")))
    overhead = overhead_for(hw) if overhead_s is None else float(overhead_s)
    if overhead < 0 or not math.isfinite(overhead):
        raise ValueError(f"overhead_s: must be a finite number >= 0, got {overhead_s!r}")
    peak = hw.peak_for(dtype)
    bandwidth = hw.memory_bandwidth_bytes_per_s
    spec = spec or _spec_for(profile)
    shape = decode_shape(spec) if spec is not None else None
    training = workload.get("mode") == "training"

    total_flops = 0.0
    total_bytes = 0.0
    latency = 0.0
    for record in profile.op_records:
        flops = record.flops + record.elementwise_flops
        nbytes = (record.bytes_read + record.bytes_written) * scale
        total_flops += flops
        total_bytes += nbytes
        latency += op_seconds(flops, nbytes, peak, bandwidth, overhead)
    batch = int(workload.get("batch_size", 1))
    if shape is not None and shape.moe_top_k and profile.params is not None:
        # The trace runs each token through its top-k experts; a real batch reads every expert it touches.
        tokens = batch * int(workload.get("seq_len", 1))
        unread = (weights_read_params(profile, shape, tokens) - profile.params.active) * _bytes_per_element(dtype)
        total_bytes += max(unread, 0.0)
        latency += max(unread, 0.0) / bandwidth

    compute_s = total_flops / peak
    memory_s = total_bytes / bandwidth
    intensity = total_flops / total_bytes if total_bytes else math.inf
    decode_ms = None
    if spec is not None and spec.is_causal_lm and shape is not None and "seq_len" in workload:
        decode_ms = 1e3 * decode_seconds(profile, shape, hw, dtype, batch, int(workload["seq_len"]), overhead)
    needed = memory_needed(profile, shape if spec is not None and spec.is_causal_lm else None, dtype, training, scale)
    return Estimate(
        model=profile.model,
        hardware=hw.id,
        dtype=dtype,
        estimated_latency_ms=latency * 1e3,
        bound="compute" if compute_s > memory_s else "memory",
        fits=needed <= hw.memory_bytes,
        memory_needed_bytes=needed,
        memory_capacity_bytes=int(hw.memory_bytes),
        arithmetic_intensity=intensity,
        attainable_flops_per_s=min(peak, intensity * bandwidth),
        peak_flops_per_s=peak,
        bandwidth_bytes_per_s=bandwidth,
        ridge_point=peak / bandwidth,
        compute_time_ms=compute_s * 1e3,
        memory_time_ms=memory_s * 1e3,
        overhead_ms=overhead * len(profile.op_records) * 1e3,
        ops=len(profile.op_records),
        decode_ms_per_token=decode_ms,
        workload=dict(workload),
        note=TRAINING_NOTE if training else NOTE,
    )


def trace_profile(model: str | ModelSpec, workload: Workload | None = None) -> StaticProfile:
    """A forward-only static profile (torch's counter and the op trace; no fvcore, no backward): all an
    estimate uses, at a fraction of the time, for estimating a whole catalog."""

    return profile_static(model, workload, forward_only=True)


def safe_trace_profile(model: str, workload: Workload | None = None) -> StaticProfile:
    """Like ``trace_profile``, but a failure becomes an error profile for that model (others go on)."""
    try:
        return trace_profile(model, workload)
    except Exception as exc:  # reported in the profile's `error`, and so in every estimate row of the model
        return error_profile(model, workload or Workload(), exc)


def estimate_rows(
    profile: StaticProfile,
    hardware_list: Sequence[HardwareSpec],
    dtype: str | None = None,
    overhead_s: float | None = None,
    spec: ModelSpec | None = None,
) -> list[dict[str, Any]]:
    """One profile on every chip as plain rows; a chip or model that cannot be estimated gets its ``error``."""
    if spec is None and not profile.error:
        spec = _spec_for(profile)
    rows: list[dict[str, Any]] = []
    for hw in hardware_list:
        try:
            rows.append(estimate(profile, hw, dtype, overhead_s, spec=spec).to_dict())
        except ValueError as exc:  # reported in the row; the other models and chips go on
            rows.append({"model": profile.model, "hardware": hw.id, "estimated": True, "error": str(exc)})
    return rows


def estimate_many(
    profiles: Iterable[StaticProfile],
    hardware_list: Sequence[HardwareSpec],
    dtype: str | None = None,
    overhead_s: float | None = None,
) -> pd.DataFrame:
    """Every profile on every chip, one row each (see ``estimate_rows``).

    The static profile of a model is computed once by the caller and reused for all chips.
    """
    rows = [row for profile in profiles for row in estimate_rows(profile, hardware_list, dtype, overhead_s)]
    return pd.DataFrame(rows)
