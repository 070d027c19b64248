"""The static profile: parameters, FLOPs by three counters, training FLOPs, memory traffic. No weights.

Order of work: build the model on ``meta`` (no memory); let fvcore trace it there (a conv model's trace in a child
process meanwhile, or from a process's second profile on in a warm helper that builds its own copy meanwhile: its
trace is the costly one, and the one that can go deep before failing); give it fake parameters
(FakeTensorMode: shapes and dtypes, no storage) and run one forward and one forward+backward under torch's
FlopCounterMode and our op tracer; then collect fvcore's count. That is how a 530 B model profiles in
seconds on a laptop.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch._guards import detect_fake_mode
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode, unset_fake_temporarily

from efficiency.counters import fvcore_helper
from efficiency.counters.analytic import analytic_count
from efficiency.counters.forward import (
    REAL_TENSOR_SEED,
    count_on_real_tensors,
    data_dependent_op,
    has_convolutions,
    run_counters,
)
from efficiency.counters.fvcore_counter import (
    CountApart,
    FvcoreCount,
    count_fvcore,
    error_text,
    jit_failure,
    meta_trace_failure,
)
from efficiency.counters.fvcore_helper import HelperCount
from efficiency.counters.moe import per_token_experts
from efficiency.counters.params import ParamCounts, count_params
from efficiency.counters.profile import StaticProfile, error_profile
from efficiency.counters.trace import OpRecord, TraceSummary
from efficiency.models.depth import reduced_depth, varying_lists
from efficiency.models.inputs import fit_workload, make_inputs, native_image_size, plan_inputs
from efficiency.models.loading import ModelLoadError, build_config, build_model, check_workload, resolve
from efficiency.specs import ModelSpec, Workload

AGREEMENT = 0.02  # counters within 2% agree; beyond that the differing ops are named
CPU_TRACE_LIMIT_BYTES = 4_000_000_000
# fvcore's real CPU copy runs the forward for real: on inputs this large (a 1536 px image is 28 MB) that is minutes
# of CPU and tens of GB of activations, so fvcore is not run there (the torch counter and the op trace still are)
CPU_TRACE_INPUT_LIMIT_BYTES = 20_000_000
FVCORE_INIT_WEIGHTS = False  # the real CPU copy fvcore traces keeps uninitialised weights
DEPTH_SCALING_MIN_LAYERS = 3  # below this, a full count is as cheap as two copies
# Config fields holding the depth of each stack of identical layers. Encoder-decoders scale both stacks
# together, which is exact when they are equally deep (T5's special first layer is in both copies).
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        """opt gpt_neox llama mistral qwen2 phi phi3 mixtral bert roberta megatron-bert electra deberta-v2
        mobilebert vit deit dinov2""".split(),
        ("num_hidden_layers",),
    ),
    "gpt2": ("n_layer",),
    "albert": ("num_hidden_layers",),
    "distilbert": ("n_layers",),
    "t5": ("num_layers", "num_decoder_layers"),
    "bart": ("encoder_layers", "decoder_layers"),
    "whisper": ("encoder_layers", "decoder_layers"),
}


def _fake_parameters(model: nn.Module) -> None:
    """Swap meta parameters and buffers for fake CPU tensors in place, keeping tied weights tied.

    Called under a FakeTensorMode. Each fake wraps a fresh meta tensor of the same shape and dtype directly (what the
    mode's own ``torch.empty(..., device="cpu")`` makes, without dispatching a factory op and a ``detach`` through
    the mode for each parameter: a tenth of a fake count of MobileViT-S went there). A parameter is marked as
    ``nn.Parameter`` marks a tensor subclass (``_is_param``), which is what ``nn.Parameter(fake)`` returns."""
    mode = detect_fake_mode()
    if mode is None:
        raise RuntimeError("_fake_parameters needs an active FakeTensorMode")
    cpu = torch.device("cpu")
    memo: dict[int, torch.Tensor] = {}

    def fake(t: torch.Tensor) -> torch.Tensor:
        with unset_fake_temporarily():  # a plain meta tensor, made outside the mode
            elem = torch.empty(t.shape, dtype=t.dtype, device="meta")
        return FakeTensor(mode, elem, cpu)

    for module in model.modules():
        for name, param in list(module._parameters.items()):
            if param is None:
                continue
            if id(param) not in memo:
                swapped = fake(param).requires_grad_(param.requires_grad)
                swapped._is_param = True
                memo[id(param)] = swapped
            module._parameters[name] = memo[id(param)]
        for name, buf in list(module._buffers.items()):
            if buf is not None:
                if id(buf) not in memo:
                    memo[id(buf)] = fake(buf)
                module._buffers[name] = memo[id(buf)]


def _fvcore_result(
    pending: CountApart, net: nn.Module, spec: ModelSpec, workload: Workload, **overrides: Any
) -> FvcoreCount:
    """fvcore's count from its meta trace (convolutions too, see ``traceable_meta_kernels``; a conv model's ran
    in a child process, :class:`CountApart`, while this one counted on fake tensors); on a real CPU copy where the meta
    trace failed for a reason real tensors avoid (``meta_trace_failure``: ``.item()`` or ``nonzero`` on meta, a
    tensor the forward makes on the CPU). Only taken after a meta failure, so models that trace on meta pay nothing;
    the count's ``note`` names the path and the meta failure."""
    try:
        return pending.result()
    except Exception as exc:
        if not meta_trace_failure(exc):
            raise
        meta_error = error_text(exc)
    return _fvcore_on_real_copy(net, spec, workload, meta_error, **overrides)


def _real_copy_failure(exc: Exception, meta_error: str) -> str:
    """Both of fvcore's failures in the 200 characters the profile keeps of an error: the real copy's first."""
    return f"on a real CPU copy: {error_text(exc)[:95]} (on meta: {meta_error[:70]})"


def _fvcore_on_real_copy(
    net: nn.Module, spec: ModelSpec, workload: Workload, meta_error: str, **overrides: Any
) -> FvcoreCount:
    """fvcore on a real CPU copy of ``net`` (the same depth-reduced config), within the size limits.

    Built for real (buffers such as Swin's relative position index need their values, which the constructors
    compute), first without the random initialisation of the weights (seconds less per model; the count depends on
    shapes); where uninitialised weights make the forward fail (NaN in data-dependent control flow), once more with
    the initialisation, and the note says which."""
    weight_gb = sum(p.numel() for p in net.parameters()) * 4 / 1e9
    if weight_gb * 1e9 > CPU_TRACE_LIMIT_BYTES:
        limit = CPU_TRACE_LIMIT_BYTES / 1e9
        raise MemoryError(f"real CPU copy above {limit:.0f} GB ({weight_gb:.1f} GB): fvcore not run ({meta_error})")
    shapes = plan_inputs(spec, workload).shapes.values()
    if sum(math.prod(shape) for shape, _ in shapes) * 4 > CPU_TRACE_INPUT_LIMIT_BYTES:  # Depth Pro's 1536 px
        limit = CPU_TRACE_INPUT_LIMIT_BYTES / 1e6
        raise MemoryError(f"real CPU run on inputs above {limit:.0f} MB: fvcore not run ({meta_error})")
    try:
        count = _seeded_real_count(spec, workload, FVCORE_INIT_WEIGHTS, **overrides)
        weights = "random weights" if FVCORE_INIT_WEIGHTS else "uninitialised weights"
    except Exception as exc:
        if FVCORE_INIT_WEIGHTS or jit_failure(exc):  # torch.jit's own failure: the weights' values do not matter
            raise RuntimeError(_real_copy_failure(exc, meta_error)) from exc
        uninitialised = error_text(exc)
        try:
            count = _seeded_real_count(spec, workload, True, **overrides)
        except Exception as again:
            raise RuntimeError(_real_copy_failure(again, meta_error)) from again
        weights = f"random weights: with uninitialised ones it failed ({uninitialised})"
    return replace(count, note=f"fvcore traced a real CPU copy ({weights}): its meta trace failed ({meta_error}).")


def _seeded_real_count(spec: ModelSpec, workload: Workload, init_weights: bool, **overrides: Any) -> FvcoreCount:
    """fvcore's count of a real CPU copy, its weights and inputs drawn as the torch counter's real copy draws them
    (``count_on_real_tensors``: the same seed, build, then inputs): where values decide how much work a forward does
    (VITS's duration predictor), both counters then count the same work."""
    with torch.random.fork_rng():
        torch.manual_seed(REAL_TENSOR_SEED)
        real = build_model(spec, device="cpu", dtype=workload.dtype, init_weights=init_weights, **overrides)
        inputs = make_inputs(spec, workload, "cpu")
        with per_token_experts(real):
            return count_fvcore(real, inputs)


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


@dataclass
class _Pass:
    """What one model instance (full depth, or a 1- or 2-layer copy) counted."""

    fvcore: FvcoreCount | None
    fvcore_error: str | None
    forward_flops: int
    training_flops: int | None
    training_error: str | None
    forward: TraceSummary
    training: TraceSummary
    params: ParamCounts
    moe_blocks: int
    config: dict
    real_tensors_for: str | None = None  # the op fake tensors could not run, when real tensors counted


def _count_pass(spec: ModelSpec, workload: Workload, forward_only: bool = False, **overrides: Any) -> _Pass:
    # A process profiling again asks its warm helper for fvcore's count first: it builds the model while this does.
    helper = None if forward_only else fvcore_helper.ask(spec, workload, overrides)
    try:
        counted = _count_with(spec, workload, forward_only, helper, **overrides)
    except BaseException:
        if helper is not None:
            helper.cancel()  # a no-op once collected
        raise
    if helper is not None:
        helper.release()  # a model without convolutions, counted here: the helper's "here" (a no-op once collected)
    return counted


def _count_with(
    spec: ModelSpec, workload: Workload, forward_only: bool, helper: HelperCount | None, **overrides: Any
) -> _Pass:
    net = build_model(spec, device="meta", dtype=workload.dtype, **overrides)
    stored = count_params(net, spec)
    fvcore_count, fvcore_error, pending = None, None, None
    if not forward_only:  # a conv model's fvcore trace runs in a child process meanwhile, on the other core
        with per_token_experts(net):
            try:
                inputs, apart = make_inputs(spec, workload, "meta"), has_convolutions(net)
                if helper is not None and apart:  # in the helper, already under way
                    pending = helper.bind(net, inputs)
                else:
                    pending = CountApart(net, inputs, count_fvcore, apart)
            except Exception as exc:  # one counter failing must not hide the others; the reason is reported
                fvcore_error = error_text(exc)  # "Type: first line", also for an exception without a message
    real_op = None
    try:
        try:
            with FakeTensorMode(allow_non_fake_inputs=True):
                _fake_parameters(net)
                counts = run_counters(net, spec, workload, forward_only, "cpu")
        except Exception as exc:
            real_op = data_dependent_op(exc)
            if real_op is None:
                raise
            counts = count_on_real_tensors(spec, workload, forward_only, real_op, **overrides)
        if pending is not None:
            try:
                fvcore_count = _fvcore_result(pending, net, spec, workload, **overrides)
            except Exception as exc:  # reported as fvcore's reason, as above
                fvcore_error = error_text(exc)
    finally:
        if pending is not None:
            pending.cancel()  # a no-op once collected
    return _Pass(
        fvcore=fvcore_count,
        fvcore_error=fvcore_error,
        forward_flops=counts["forward_flops"],
        training_flops=counts["training_flops"],
        training_error=counts["training_error"],
        forward=counts["forward"],
        training=counts["training"],
        params=replace(stored, as_used=counts["as_used"]),
        moe_blocks=counts["moe_blocks"],
        config=net.config.to_dict(),
        real_tensors_for=real_op,
    )


def _layer_keys(spec: ModelSpec, config: dict) -> tuple[str, ...]:
    """The config fields holding the depth of stacks of identical layers, when depth scaling is exact.

    ALBERT's layers share one group of weights: each layer adds the same work and no parameters, which scaling
    gets exactly (f(2) - f(1) = 0 parameters; tests compare it with full counts). With more than one group the
    layers share them in blocks (the copies would use fewer of them): counted in full."""
    if spec.model_type == "albert" and config.get("num_hidden_groups", 1) != 1:
        return ()
    return LAYER_KEYS.get(spec.model_type, ())


def layer_stack(spec: ModelSpec) -> tuple[dict, tuple[str, ...], int]:
    """The full config, the fields holding the depth of its stack of identical layers, and that depth (0 when there
    is no such stack, or its stacks differ in depth: counted in full). The count and the memory estimate both scale
    by it."""
    config = build_config(spec).to_dict()
    layer_keys = _layer_keys(spec, config)
    depths = {int(config.get(key) or 0) for key in layer_keys}
    return config, layer_keys, depths.pop() if len(depths) == 1 else 0


def _scaled(one: int | None, two: int | None, layers: int) -> int | None:
    return None if one is None or two is None else one + (layers - 1) * (two - one)


def _scale_passes(one: _Pass, two: _Pass, layers: int) -> _Pass:
    """Counts of the full depth from 1- and 2-layer copies: f(L) = f(1) + (L - 1) (f(2) - f(1)).

    Exact when every layer is the same block; the per-op records of the extra layer are repeated."""

    def summary(a: TraceSummary, b: TraceSummary) -> TraceSummary:
        extra = list((Counter(map(_record_key, b.ops)) - Counter(map(_record_key, a.ops))).elements())
        layer_ops = [OpRecord(*key) for key in extra]
        unknown = a.unknown_ops + b.unknown_ops
        return TraceSummary(ops=a.ops + layer_ops * (layers - 1), unknown_ops=unknown)

    fvcore = None
    if one.fvcore is not None and two.fvcore is not None:
        fvcore = FvcoreCount(
            macs=_scaled(one.fvcore.macs, two.fvcore.macs, layers),
            by_operator={
                op: _scaled(one.fvcore.by_operator.get(op, 0), v, layers) for op, v in two.fvcore.by_operator.items()
            },
            skipped_ops=two.fvcore.skipped_ops,
            note=two.fvcore.note or one.fvcore.note,
        )
    return _Pass(
        fvcore=fvcore,
        fvcore_error=one.fvcore_error or two.fvcore_error,
        forward_flops=_scaled(one.forward_flops, two.forward_flops, layers),
        training_flops=_scaled(one.training_flops, two.training_flops, layers),
        training_error=one.training_error or two.training_error,
        forward=summary(one.forward, two.forward),
        training=summary(one.training, two.training),
        params=ParamCounts(
            **{f: _scaled(getattr(one.params, f), getattr(two.params, f), layers) for f in one.params.to_dict()}
        ),
        moe_blocks=two.moe_blocks,
        config=two.config,
        real_tensors_for=one.real_tensors_for or two.real_tensors_for,
    )


def _scaled_count(
    spec: ModelSpec, workload: Workload, forward_only: bool, config: dict, layer_keys: tuple[str, ...], layers: int
) -> _Pass | None:
    """Counts scaled from 1- and 2-layer copies, or None (count at full depth) when transformers rejects a copy
    or a scaled count would be negative (the layers are then not the same block)."""
    try:
        one, two = (
            _count_pass(spec, workload, forward_only, **reduced_depth(config, layer_keys, layers, depth))
            for depth in (1, 2)
        )
    except ModelLoadError:
        return None
    counted = _scale_passes(one, two, layers)
    counts = [counted.forward_flops, counted.training_flops or 0, *counted.params.to_dict().values()]
    return None if any(isinstance(c, int) and c < 0 for c in counts) else counted


def _record_key(r: OpRecord) -> tuple:
    return (r.op, r.flops, r.elementwise_flops, r.bytes_read, r.bytes_written, r.attention)


def _count(
    spec: ModelSpec, workload: Workload, forward_only: bool, depth_scaling: bool | None
) -> tuple[_Pass, dict[str, int], list[str]]:
    """The counts, the full-depth config fields the closed form needs, and notes on the path that counted."""
    how: list[str] = []
    config, layer_keys, layers = layer_stack(spec)
    varying = varying_lists(config, layers) if layers else []
    if depth_scaling is None:
        depth_scaling = layers >= DEPTH_SCALING_MIN_LAYERS and not varying
        if varying and layers >= DEPTH_SCALING_MIN_LAYERS:
            how.append(f"Counted at full depth: its per-layer lists differ between layers ({', '.join(varying)}).")
    if depth_scaling and (not layers or varying):
        why = f"its per-layer lists differ ({', '.join(varying)})" if varying else f"{spec.model_type} is not one"
        raise ValueError(f"{spec.id}: depth scaling needs a stack of identical layers; {why}")
    counted = _scaled_count(spec, workload, forward_only, config, layer_keys, layers) if depth_scaling else None
    if counted is not None:
        how.append(f"Counted on 1- and 2-layer copies and scaled to {layers} identical layers (exact).")
    else:
        if depth_scaling:
            how.append("Counted at full depth: the 1- and 2-layer copies could not be built or scaled.")
            depth_scaling = False
        counted = _count_pass(spec, workload, forward_only)
    if counted.fvcore is not None and counted.fvcore.note:
        how.append(counted.fvcore.note)
    if counted.real_tensors_for:
        how.append(
            f"Counted on real tensors (random weights, seed {REAL_TENSOR_SEED}): fake tensors cannot run "
            f"{counted.real_tensors_for}, which needs values. Where values decide how much work the forward does "
            "(a duration predictor's output length, a detector's proposals), the counts are those of these weights."
        )
    full_depth = dict.fromkeys(layer_keys, layers) if depth_scaling else {}
    return counted, full_depth, how


def _native_square_size(spec: ModelSpec, workload: Workload) -> int | None:
    """The config's own square image size, when a model from outside the catalog failed at another one."""
    if spec.origin == "catalog" or spec.modality not in {"vision", "multimodal"}:
        return None
    native = native_image_size(spec)
    if native is None or native[0] != native[1] or native[0] == workload.image_size:
        return None
    return native[0]


def profile_static(
    model: str | ModelSpec,
    workload: Workload | None = None,
    depth_scaling: bool | None = None,
    forward_only: bool = False,
) -> StaticProfile:
    """Everything countable without running on hardware. Raises on bad input; see ``safe_profile_static``.

    ``depth_scaling`` (default: on for stacks of identical layers) counts 1- and 2-layer copies and
    scales every count (parameters included) to the full depth, exactly: each layer adds the same
    amount, so f(L) = f(1) + (L - 1) (f(2) - f(1)); tests compare it with full-depth counts.
    ``forward_only`` runs just torch's counter and the op trace of one forward pass (what a roofline
    estimate needs): no fvcore, no backward pass."""
    workload = workload or Workload()
    spec = model if isinstance(model, ModelSpec) else resolve(model)
    check_workload(spec, workload)
    workload, fitted = fit_workload(spec, workload)
    if not forward_only:
        fvcore_helper.profile_started()
    notes = ["Built from the configuration with random weights; no weights were loaded or allocated.", *fitted]
    start = time.perf_counter()
    plan = plan_inputs(spec, workload)
    if spec.origin != "catalog":  # the catalog's inputs are the plain ones its notes have always implied
        notes.append(f"Inputs: {plan.description}" + "".join(f"; {note}" for note in plan.notes) + ".")
    try:
        counted, full_depth, how = _count(spec, workload, forward_only, depth_scaling)
    except Exception as exc:
        native = _native_square_size(spec, workload)
        if native is None:
            raise
        reason = " ".join(str(exc).split())[:120]
        notes.append(f"Image size {native}x{native}, the model's own: at {workload.image_size} it failed ({reason}).")
        workload = replace(workload, image_size=native)
        plan = plan_inputs(spec, workload)
        counted, full_depth, how = _count(spec, workload, forward_only, depth_scaling)
    notes.extend(how)
    timings = {"count_s": time.perf_counter() - start}
    params = counted.params
    if counted.moe_blocks:
        notes.append(
            "Sparse MoE: experts counted per token as top-k dense experts (routing-independent); "
            "capacity-based token dropping is not modelled."
        )

    forward_flops = counted.forward_flops
    analytic = analytic_count(spec, workload, {**counted.config, **full_depth})
    by_counter: dict[str, int] = {"torch": forward_flops}
    counter_errors = {"fvcore": counted.fvcore_error} if counted.fvcore_error else {}
    if counted.training_error:
        counter_errors["training"] = counted.training_error
    if counted.fvcore is not None:
        by_counter["fvcore"] = counted.fvcore.flops
    if analytic is not None:
        by_counter["analytic"] = analytic.flops
    else:
        if "fvcore" in by_counter:
            others = "torch and fvcore only"
        else:
            others = f"torch alone (fvcore {'could not count it' if counted.fvcore_error else 'not run'})"
        notes.append(f"No closed-form formula for {spec.model_type}; counted by {others}.")
    if counted.fvcore_error and analytic is not None:
        notes.append("fvcore could not count it; counted by torch and the closed form.")
    if counted.fvcore_error:
        notes.append(f"fvcore's reason: {counted.fvcore_error}")
    summary = counted.forward
    fvcore_ops = counted.fvcore.by_operator if counted.fvcore else {}
    return StaticProfile(
        model=spec.id,
        name=spec.display_name,
        hf_id=spec.hf_id,
        families=list(spec.families),
        workload=workload.for_modality(spec.modality),
        inputs=plan.description,
        params=params,
        flops=forward_flops,
        flops_by_counter=by_counter,
        counter_differences={k: _relative(v, forward_flops) for k, v in by_counter.items() if k != "torch"},
        counter_errors=counter_errors,
        training_flops=counted.training_flops,
        attention_flops=summary.attention_flops,
        elementwise_flops=summary.elementwise_flops,
        memory_traffic_bytes=summary.bytes_total,
        training_memory_traffic_bytes=None if counted.training_error else counted.training.bytes_total,
        uncounted_ops=sorted(set(summary.unknown_ops) | set(counted.training.unknown_ops)),
        fvcore_skipped_ops=counted.fvcore.skipped_ops if counted.fvcore else {},
        analytic_formula=analytic.formula if analytic else None,
        notes=notes + _difference_notes(by_counter, "torch", summary, fvcore_ops),
        timings=timings,
        op_records=summary.ops,
    )


def safe_profile_static(model: str, workload: Workload | None = None) -> StaticProfile:
    """Like profile_static, but a failure becomes an error result for that model (others go on)."""
    try:
        return profile_static(model, workload)
    except Exception as exc:  # reported in the result's `error`, shown beside the model
        return error_profile(model, workload or Workload(), exc)
