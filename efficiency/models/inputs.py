"""Dummy inputs derived from the model itself: what its class declares, sized by its config and the workload.

The model class (the one ``build_model`` would build) says what it takes: ``main_input_name`` (``input_ids``,
``pixel_values``, ``input_values``, ``input_features``) and the arguments of ``forward`` (decoder inputs,
bounding boxes, a second tower's pixels, ``interpolate_pos_encoding``, ``use_cache``). The config gives the
sizes: vocabulary, positions, image size (int or pair), channels, frames, sampling rate, mel bins, feature
size. Values do not matter for cost, only shapes and dtypes. Tensors are created on ``device`` (``meta`` for
fvcore's trace, ``cpu`` inside FakeTensorMode for the static counters, a real device for measurement).

This module fits the workload to the model, plans the inputs and makes the tensors; what a plan is built from is
in :mod:`efficiency.models.input_base`, and the families the generic rules cannot derive have their own layouts
(``input_layouts_audio``, ``_vision``, ``_video``, ``_other``), tried first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from efficiency.models import input_layouts_audio, input_layouts_other, input_layouts_video, input_layouts_vision
from efficiency.models.input_base import (
    FEATURE_FRAMES_PER_SECOND,
    IMAGE_TOKEN_KEYS,
    InputContext,
    InputPlan,
    Layout,
    audio_inputs,
    companion_inputs,
    find_field,
    fixed_audio_frames,
    forward_parameters,
    image_inputs,
    model_class_for,
    native_image_size,
    patch_grid_inputs,
    series_inputs,
    sub_config,
    text_length,
    trajectory_inputs,
)
from efficiency.models.input_layouts_video import fixed_image_size, inference_session
from efficiency.models.loading import DTYPE_BY_NAME, build_config, max_positions
from efficiency.specs import ModelSpec, Workload

__all__ = ["InputPlan", "fit_workload", "forward_parameters", "make_inputs", "native_image_size", "plan_inputs"]


def special_layouts() -> tuple[Layout, ...]:
    """Layouts for families whose inputs the generic rules below cannot derive (stacked speech frames, image pairs,
    video clips, codec latents, ...), tried in order before them; each returns its description, or None when the
    model is not one of its own."""
    return (
        *input_layouts_audio.LAYOUTS,
        *input_layouts_vision.LAYOUTS,
        *input_layouts_video.LAYOUTS,
        *input_layouts_other.LAYOUTS,
    )


def fit_workload(spec: ModelSpec, workload: Workload) -> tuple[Workload, list[str]]:
    """The workload this model can take, and a note for each change: a text model runs at most at its maximum
    positions; a speech encoder with a fixed window (Whisper's 30 s) gets that window; so does an image model built
    for one image size only (SAM 2's fixed feature maps, SegGPT's canvas)."""
    notes: list[str] = []
    if spec.modality == "text":
        limit = max_positions(spec)
        if limit is not None and 0 < limit < workload.seq_len:
            notes.append(f"Text capped at the model's maximum of {limit} positions (asked {workload.seq_len}).")
            workload = replace(workload, seq_len=limit)
    elif spec.modality == "audio":
        config = build_config(spec)
        main = getattr(model_class_for(spec, config), "main_input_name", "input_values")
        frames = fixed_audio_frames(config, main)
        if frames is not None and round(workload.audio_seconds * FEATURE_FRAMES_PER_SECOND) != frames:
            seconds = frames / FEATURE_FRAMES_PER_SECOND
            notes.append(
                f"Audio {seconds:.1f} s, the window the model's encoder takes (asked {workload.audio_seconds:g} s)."
            )
            workload = replace(workload, audio_seconds=seconds)
    elif spec.modality in {"vision", "multimodal"}:
        config = build_config(spec)
        size = fixed_image_size(config, forward_parameters(model_class_for(spec, config)))
        if size is not None and size != workload.image_size:
            notes.append(f"Image {size}x{size}, the size the model takes (asked {workload.image_size}).")
            workload = replace(workload, image_size=size)
    return workload, notes


def plan_inputs(spec: ModelSpec, workload: Workload) -> InputPlan:
    """What ``make_inputs`` builds for this model and workload (fitted to the model, see ``fit_workload``), and a
    one-line description of it."""
    workload, _ = fit_workload(spec, workload)
    config = build_config(spec)
    cls = model_class_for(spec, config)
    params = forward_parameters(cls)
    main = getattr(cls, "main_input_name", "input_ids")
    batch = workload.batch_size
    notes: list[str] = []
    plan: dict[str, Any] = {"shapes": {}, "flags": {}}
    parts: list[str] = []
    image_tokens = any(find_field(config, (key,)) is not None for key in IMAGE_TOKEN_KEYS)
    required = {name for name, p in params.items() if p.default is p.empty}
    context = InputContext(spec, config, cls, workload, params, required, main, batch, plan["shapes"], plan["flags"])
    special = next((d for d in (layout(context) for layout in special_layouts()) if d is not None), None)
    notes.extend(context.notes)
    if special is not None:
        parts.append(special)
    elif any(name.endswith("grid_thw") for name in required):
        parts.append(patch_grid_inputs(config, workload, params, batch, plan["shapes"]))
    elif main == "past_values":
        parts.append(series_inputs(config, params, batch, plan["shapes"]))
    elif main == "states":
        parts.append(trajectory_inputs(config, workload, batch, plan["shapes"]))
    elif main in {"input_values", "input_features", "audio_mel"}:
        parts.append(audio_inputs(config, main, workload.audio_seconds, batch, plan["shapes"]))
    elif (
        main == "pixel_values"
        or "pixel_values" in required
        or "pixel_values" in params
        and "input_ids" in params
        and not image_tokens
    ):
        parts.append(image_inputs(config, spec, workload, params, batch, plan))
    text_main = main == "input_ids" and ("input_ids" in params or not plan["shapes"])  # not a vision tower's default
    text_main = text_main and "input_ids" not in plan["shapes"] and "inputs_embeds" not in plan["shapes"]
    second_tower = main == "pixel_values" and sub_config(config, "text_config") and "input_ids" not in plan["shapes"]
    if text_main or "input_ids" in params and second_tower:
        length = text_length(config, spec, workload, notes)
        plan["shapes"]["input_ids"] = ((batch, length), "ids")
        if "bbox" in params:  # layout models: one box per token (zeros are valid boxes)
            plan["shapes"]["bbox"] = ((batch, length, 4), "ids")
        parts.insert(0, f"text {length} tokens")
    if image_tokens and "pixel_values" in params and "pixel_values" not in plan["shapes"]:
        notes.append("text-only pass: image tokens need a processor, so the vision tower is not counted")
    if (
        getattr(config, "is_encoder_decoder", False)
        and "decoder_input_ids" in params
        and "decoder_input_ids" not in plan["shapes"]
    ):
        length = workload.seq_len
        limit = find_field(config, ("max_target_positions",))
        if main != "input_ids" and isinstance(limit, int) and 0 < limit < length:
            length = limit
        plan["shapes"]["decoder_input_ids"] = ((batch, length), "ids")
        parts.append(f"{length} decoder tokens")
    speech_mask = {f"{main}_mask"} & set(params) if main in {"input_features", "audio_mel"} else set()
    companion_inputs(required | speech_mask, plan["shapes"], batch, workload.seq_len, parts)
    generative = spec.task in {"causal-lm", "seq2seq-lm"}  # their heads take it, some through **kwargs
    if ("use_cache" in params or generative) and "encoder" not in spec.families:
        plan["flags"]["use_cache"] = False
    missing = sorted(required - set(plan["shapes"]))
    if missing or not plan["shapes"]:
        needs = f"it requires {', '.join(missing)}" if missing else f"its main input is {main!r}"
        raise ValueError(f"{spec.id}: cannot build dummy inputs for {cls.__name__} yet: {needs}")
    return InputPlan(plan["shapes"], plan["flags"], " + ".join(parts), tuple(notes))


def make_inputs(spec: ModelSpec, workload: Workload, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Keyword arguments for ``model(**inputs)``; caches off, so outputs are plain tensors."""
    plan = plan_inputs(spec, workload)
    dtype = DTYPE_BY_NAME[workload.dtype]
    inputs: dict[str, Any] = {}
    for name, (shape, kind) in plan.shapes.items():
        if kind in {"ids", "zeros_ids"}:
            filler = torch.zeros if name == "bbox" or kind == "zeros_ids" else torch.ones
            inputs[name] = filler(shape, dtype=torch.long, device=device)
        elif kind.startswith("span:"):  # ids of one value (base) with a run set to another: image tokens in a prompt
            base, value, start, count = (int(v) for v in kind.removeprefix("span:").split(","))
            inputs[name] = torch.full(shape, base, dtype=torch.long, device=device)
            inputs[name][:, start : start + count] = value
        elif kind.startswith("grid:"):  # a patch grid (frames, height, width) per item: values, not just a shape
            row = [int(v) for v in kind.removeprefix("grid:").split(",")]
            inputs[name] = torch.tensor([row] * shape[0], dtype=torch.long, device=device)
        elif kind.startswith("xy:"):  # each patch's (x, y) on a width x height grid, row by row, per item
            width, height = (int(v) for v in kind.removeprefix("xy:").split(","))
            y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
            inputs[name] = torch.stack([x.flatten(), y.flatten()], -1).expand(shape).to(device).clone()
        elif kind == "bool":  # a per-position mask: every position set
            inputs[name] = torch.ones(shape, dtype=torch.bool, device=device)
        elif kind == "session":  # a video tracker's session object: frames of this shape, one prompted object
            inputs[name] = inference_session(spec, shape, dtype, device)
        elif kind == "ones":  # masks: every value observed
            inputs[name] = torch.ones(shape, dtype=dtype, device=device)
        else:
            inputs[name] = torch.zeros(shape, dtype=dtype, device=device)
    return {**inputs, **plan.flags}


def tokens_per_item(spec: ModelSpec, workload: Workload) -> int | None:
    """Tokens one item carries (for tokens/s); None for vision models."""
    return workload.seq_len if spec.modality == "text" else None
