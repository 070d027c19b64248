"""Dummy inputs derived from the model itself: what its class declares, sized by its config and the workload.

The model class (the one ``build_model`` would build) says what it takes: ``main_input_name`` (``input_ids``,
``pixel_values``, ``input_values``, ``input_features``) and the arguments of ``forward`` (decoder inputs,
bounding boxes, a second tower's pixels, ``interpolate_pos_encoding``, ``use_cache``). The config gives the
sizes: vocabulary, positions, image size (int or pair), channels, frames, sampling rate, mel bins, feature
size. Values do not matter for cost, only shapes and dtypes. Tensors are created on ``device`` (``meta`` for
fvcore's trace, ``cpu`` inside FakeTensorMode for the static counters, a real device for measurement).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from efficiency.models.loading import DTYPE_BY_NAME, build_config, max_positions, model_class
from efficiency.specs import ModelSpec, Workload

DEFAULT_SAMPLING_RATE = 16_000
FEATURE_FRAMES_PER_SECOND = 100  # log-mel and filter-bank features: one frame per 10 ms
IMAGE_TOKEN_KEYS = ("image_token_id", "image_token_index", "image_token")
POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx")


@dataclass(frozen=True)
class InputPlan:
    """The inputs to build: ``shapes`` maps each tensor argument to (shape, kind), ``flags`` the plain ones."""

    shapes: dict[str, tuple[tuple[int, ...], str]]
    flags: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    notes: tuple[str, ...] = ()


@dataclass
class InputContext:
    """What a layout sees when it plans a model's main inputs: the config, the fitted workload, the class's
    ``forward`` parameters (``required``: those without a default) and its ``main_input_name``. A layout fills
    ``shapes`` (name -> (shape, kind), kinds as ``make_inputs`` builds them), ``flags`` and ``notes``."""

    spec: ModelSpec
    config: Any
    cls: type
    workload: Workload
    params: dict[str, inspect.Parameter]
    required: set[str]
    main: str
    batch: int
    shapes: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Layout = Callable[[InputContext], "str | None"]


def special_layouts() -> tuple[Layout, ...]:
    """Layouts for families whose inputs the generic rules below cannot derive (stacked speech frames, image pairs,
    video clips, codec latents, ...), tried in order before them; each returns its description, or None when the
    model is not one of its own. Imported here, not at the top: they build on this module's helpers."""
    from efficiency.models import (
        input_layouts_audio,
        input_layouts_other,
        input_layouts_video,
        input_layouts_vision,
    )

    return (
        *input_layouts_audio.LAYOUTS,
        *input_layouts_vision.LAYOUTS,
        *input_layouts_video.LAYOUTS,
        *input_layouts_other.LAYOUTS,
    )


def forward_parameters(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.forward).parameters
    return {n: p for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _model_class_for(spec: ModelSpec, config: Any) -> type:
    """The class ``from_config`` builds (a mapping entry may list several, e.g. Funnel's; the first is built)."""
    found = model_class(spec)._model_mapping[type(config)]
    return found[0] if isinstance(found, (list, tuple)) else found


def _sub(config: Any, name: str) -> Any:
    return getattr(config, name, None)


def _find(config: Any, keys: tuple[str, ...], towers: tuple[str, ...] = ()) -> Any:
    """The first of ``keys`` set on the config or on one of its sub-configs (``vision_config``, ...)."""
    for source in (config, *(_sub(config, t) for t in towers)):
        if source is None:
            continue
        for key in keys:
            value = getattr(source, key, None)
            if value is not None:
                return value
    return None


def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def native_image_size(spec: ModelSpec) -> tuple[int, int] | None:
    """The image size the model was configured for (``image_size`` or ``input_size``, int or pair)."""
    return _pair(_find(build_config(spec), ("image_size", "input_size"), ("vision_config", "backbone_config")))


def _text_length(config: Any, spec: ModelSpec, workload: Workload, notes: list[str]) -> int:
    """The workload's length; a second tower (CLIP's 77-position text encoder) is capped at its maximum."""
    if spec.modality == "text":
        return workload.seq_len  # fit_workload has already capped it at the model's positions
    limit = _find(config, POSITION_KEYS, ("text_config",))
    if isinstance(limit, int) and 0 < limit < workload.seq_len:
        notes.append(f"text capped at the model's maximum of {limit} positions (asked {workload.seq_len})")
        return limit
    return workload.seq_len


def fixed_audio_frames(config: Any, main: str) -> int | None:
    """The feature frames a speech model's encoder requires (Whisper: 2 x max_source_positions = 3000, 30 s; AST:
    ``max_length``), or None when it takes any length."""
    if main == "input_values":
        spectrogram = _find(config, ("num_mel_bins",))
        length = _find(config, ("max_length",))
        return int(length) if isinstance(spectrogram, int) and isinstance(length, int) else None
    mels = _find(config, ("num_mel_bins",), ("audio_config", "encoder_config"))
    source = _find(config, ("max_source_positions",), ("audio_config", "encoder_config"))
    return 2 * source if isinstance(mels, int) and isinstance(source, int) else None


def _audio(config: Any, main: str, seconds: float, batch: int, shapes: dict) -> str:
    """Raw waveform (``input_values``) or features (``input_features``), sized from the config and the clip length
    (``fit_workload`` has already set it to a length the encoder requires)."""
    rate = _find(config, ("sampling_rate", "sample_rate")) or DEFAULT_SAMPLING_RATE
    frames = max(1, round(seconds * FEATURE_FRAMES_PER_SECOND))
    spectrogram = _find(config, ("num_mel_bins",)) if main == "input_values" else None
    if isinstance(spectrogram, int):  # AST: a spectrogram of frames x mel bins
        shapes[main] = ((batch, frames, spectrogram), "float")
        return f"audio {seconds:.1f} s as {frames} frames x {spectrogram} mel bins"
    if main == "input_values":
        samples = round(seconds * rate)
        channels = _find(config, ("audio_channels",))
        shape = (batch, int(channels), samples) if isinstance(channels, int) else (batch, samples)
        shapes[main] = (shape, "float")
        return f"audio {seconds:.1f} s at {rate / 1000:g} kHz"
    mels = _find(config, ("num_mel_bins",), ("audio_config", "encoder_config"))
    if isinstance(mels, int) and fixed_audio_frames(config, main):  # Whisper-like: (batch, mel bins, frames)
        shapes[main] = ((batch, mels, frames), "float")
        return f"audio {seconds:.1f} s as {mels} mel bins x {frames} frames"
    per_channel = _find(config, ("input_feat_per_channel",))
    width = per_channel * (_find(config, ("input_channels",)) or 1) if per_channel else None
    keys = ("input_dim", "input_feat_size", "feature_size", "num_mel_bins", "n_mels")  # input width before mel count
    width = int(width or _find(config, keys, ("audio_config", "encoder_config")) or 80)
    shapes[main] = ((batch, frames, width), "float")
    return f"audio {seconds:.1f} s as {frames} frames x {width} features"


def fit_workload(spec: ModelSpec, workload: Workload) -> tuple[Workload, list[str]]:
    """The workload this model can take, and a note for each change: a text model runs at most at its maximum
    positions; a speech encoder with a fixed window (Whisper's 30 s) gets that window."""
    notes: list[str] = []
    if spec.modality == "text":
        limit = max_positions(spec)
        if limit is not None and 0 < limit < workload.seq_len:
            notes.append(f"Text capped at the model's maximum of {limit} positions (asked {workload.seq_len}).")
            workload = replace(workload, seq_len=limit)
    elif spec.modality == "audio":
        config = build_config(spec)
        main = getattr(_model_class_for(spec, config), "main_input_name", "input_values")
        frames = fixed_audio_frames(config, main)
        if frames is not None and round(workload.audio_seconds * FEATURE_FRAMES_PER_SECOND) != frames:
            seconds = frames / FEATURE_FRAMES_PER_SECOND
            notes.append(
                f"Audio {seconds:.1f} s, the window the model's encoder takes (asked {workload.audio_seconds:g} s)."
            )
            workload = replace(workload, audio_seconds=seconds)
    return workload, notes


def _image(config: Any, spec: ModelSpec, workload: Workload, params: dict, batch: int, plan: dict) -> str:
    size = workload.image_size
    native = _pair(_find(config, ("image_size", "input_size"), ("vision_config", "backbone_config")))
    channels = _find(config, ("num_channels",), ("vision_config", "backbone_config")) or 3
    frames = _find(config, ("num_frames",), ("vision_config",))
    shape = (batch, int(channels), size, size)
    if isinstance(frames, int) and frames > 0:  # video: (batch, frames, channels, height, width)
        shape = (batch, frames, int(channels), size, size)
    plan["shapes"]["pixel_values"] = (shape, "float")
    absolute = _find(config, ("use_absolute_embeddings",), ("vision_config",)) is not False  # Swin's are optional
    if native is not None and native != (size, size) and "interpolate_pos_encoding" in params and absolute:
        plan["flags"]["interpolate_pos_encoding"] = True
    video = f"video {frames} frames of " if len(shape) == 5 else "image "
    return f"{video}{size}x{size}"


def _series(config: Any, params: dict, batch: int, shapes: dict) -> str:
    """A forecasting model's history (``past_values``), sized by its own context: lagged transformers
    (Time Series Transformer, Informer, Autoformer) see ``context_length + max(lags)`` steps with time features,
    an observed-mask, static features and the future window; patch models (PatchTST, PatchTSMixer) and TimesFM see
    ``context_length`` steps per channel."""
    context = int(_find(config, ("context_length",)) or 0)
    lags = _find(config, ("lags_sequence",))
    channels = _find(config, ("input_size",))
    if lags:  # lagged: past window = context + largest lag, shaped (batch, steps) for one variate
        steps, future = context + max(lags), int(_find(config, ("prediction_length",)) or 0)
        variate = () if channels in (None, 1) else (int(channels),)
        time_features = int(_find(config, ("num_time_features",)) or 0)
        shapes["past_values"] = ((batch, steps, *variate), "float")
        shapes["past_observed_mask"] = ((batch, steps, *variate), "ones")
        shapes["past_time_features"] = ((batch, steps, time_features), "float")
        for name, size, kind in (
            ("static_categorical_features", _find(config, ("num_static_categorical_features",)), "ids"),
            ("static_real_features", _find(config, ("num_static_real_features",)), "float"),
        ):
            if size and name in params:
                shapes[name] = ((batch, int(size)), kind)
        if future and "future_values" in params:
            shapes["future_values"] = ((batch, future, *variate), "float")
            shapes["future_time_features"] = ((batch, future, time_features), "float")
        variates = int(channels or 1)
        return f"series {steps} past steps + {future} future steps x {variates} variate{'s' * (variates != 1)}"
    channels = int(_find(config, ("num_input_channels",)) or 1)
    if "past_values_padding" in params:  # TimesFM: (batch, steps) with a padding mask and a frequency class
        shapes["past_values"] = ((batch, context), "float")
        shapes["past_values_padding"] = ((batch, context), "ids")
        shapes["freq"] = ((batch, 1), "ids")
        return f"series {context} steps"
    shapes["past_values"] = ((batch, context, channels), "float")
    return f"series {context} steps x {channels} channel{'s' * (channels != 1)}"


def _patch_grid(config: Any, workload: Workload, params: dict, batch: int, shapes: dict) -> str:
    """A vision encoder fed flattened patches and their grid (``grid_thw``: Qwen-VL, GLM-V and kin): an image of the
    workload's size cut into patches (rounded down to whole merge windows), each patch flattened over channels and
    the temporal patch (an image is one frame repeated)."""
    towers = ("vision_config",)
    patch = int(_find(config, ("patch_size",), towers) or 14)
    merge = int(_find(config, ("spatial_merge_size",), towers) or 1)
    temporal = int(_find(config, ("temporal_patch_size",), towers) or 1)
    channels = int(_find(config, ("in_channels", "in_chans", "num_channels"), towers) or 3)
    side = max(merge, workload.image_size // patch // merge * merge)
    name = next(n for n in ("hidden_states", "pixel_values") if n in params)
    grid = next(n for n in params if n.endswith("grid_thw"))  # grid_thw, image_grid_thw
    shapes[name] = ((batch * side * side, channels * temporal * patch * patch), "float")
    shapes[grid] = ((batch, 3), f"grid:1,{side},{side}")
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def _trajectory(config: Any, workload: Workload, batch: int, shapes: dict) -> str:
    """Decision Transformer: (return, state, action) per step, three tokens each, within the GPT-2 positions."""
    positions = int(_find(config, ("n_positions", "max_position_embeddings")) or 3 * workload.seq_len)
    steps = max(1, min(workload.seq_len, positions // 3))
    shapes["states"] = ((batch, steps, int(_find(config, ("state_dim",)) or 1)), "float")
    shapes["actions"] = ((batch, steps, int(_find(config, ("act_dim",)) or 1)), "float")
    shapes["rewards"] = ((batch, steps, 1), "float")
    shapes["returns_to_go"] = ((batch, steps, 1), "float")
    shapes["timesteps"] = ((batch, steps), "zeros_ids")
    shapes["attention_mask"] = ((batch, steps), "ids")
    return f"trajectory {steps} steps (3 tokens each)"


def _companions(wanted: set[str], shapes: dict, batch: int, length: int, parts: list[str]) -> None:
    """Arguments that go with inputs already planned: a mask per input (``input_features_mask``, ``audio_mel_mask``:
    a boolean per position, shaped like its input without the feature axis) and a second tower's token ids
    (``qformer_input_ids``)."""
    for name in sorted(wanted - set(shapes)):
        if name.endswith("_mask"):
            source = shapes.get(name.removesuffix("_mask"))
            if source is not None:
                shape = source[0]
                shapes[name] = ((shape[0], shape[1]) if len(shape) > 2 else shape, "bool")
        elif name.endswith("input_ids"):
            shapes[name] = ((batch, length), "ids")
            parts.append(f"{length} {name.removesuffix('_input_ids').replace('_', ' ')} tokens")


def plan_inputs(spec: ModelSpec, workload: Workload) -> InputPlan:
    """What ``make_inputs`` builds for this model and workload (fitted to the model, see ``fit_workload``), and a
    one-line description of it."""
    workload, _ = fit_workload(spec, workload)
    config = build_config(spec)
    cls = _model_class_for(spec, config)
    params = forward_parameters(cls)
    main = getattr(cls, "main_input_name", "input_ids")
    batch = workload.batch_size
    notes: list[str] = []
    plan: dict[str, Any] = {"shapes": {}, "flags": {}}
    parts: list[str] = []
    image_tokens = any(_find(config, (key,)) is not None for key in IMAGE_TOKEN_KEYS)
    required = {name for name, p in params.items() if p.default is p.empty}
    context = InputContext(spec, config, cls, workload, params, required, main, batch, plan["shapes"], plan["flags"])
    special = next((d for d in (layout(context) for layout in special_layouts()) if d is not None), None)
    notes.extend(context.notes)
    if special is not None:
        parts.append(special)
    elif any(name.endswith("grid_thw") for name in required):
        parts.append(_patch_grid(config, workload, params, batch, plan["shapes"]))
    elif main == "past_values":
        parts.append(_series(config, params, batch, plan["shapes"]))
    elif main == "states":
        parts.append(_trajectory(config, workload, batch, plan["shapes"]))
    elif main in {"input_values", "input_features", "audio_mel"}:
        parts.append(_audio(config, main, workload.audio_seconds, batch, plan["shapes"]))
    elif (
        main == "pixel_values"
        or "pixel_values" in required
        or "pixel_values" in params
        and "input_ids" in params
        and not image_tokens
    ):
        parts.append(_image(config, spec, workload, params, batch, plan))
    text_main = main == "input_ids" and ("input_ids" in params or not plan["shapes"])  # not a vision tower's default
    text_main = text_main and "input_ids" not in plan["shapes"] and "inputs_embeds" not in plan["shapes"]
    if text_main or "input_ids" in params and main == "pixel_values" and _sub(config, "text_config"):
        length = _text_length(config, spec, workload, notes)
        plan["shapes"]["input_ids"] = ((batch, length), "ids")
        if "bbox" in params:  # layout models: one box per token (zeros are valid boxes)
            plan["shapes"]["bbox"] = ((batch, length, 4), "ids")
        parts.insert(0, f"text {length} tokens")
    if image_tokens and "pixel_values" in params:
        notes.append("text-only pass: image tokens need a processor, so the vision tower is not counted")
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        length = workload.seq_len
        limit = _find(config, ("max_target_positions",))
        if main != "input_ids" and isinstance(limit, int) and 0 < limit < length:
            length = limit
        plan["shapes"]["decoder_input_ids"] = ((batch, length), "ids")
        parts.append(f"{length} decoder tokens")
    speech_mask = {f"{main}_mask"} & set(params) if main in {"input_features", "audio_mel"} else set()
    _companions(required | speech_mask, plan["shapes"], batch, workload.seq_len, parts)
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
        elif kind.startswith("grid:"):  # a patch grid (frames, height, width) per item: values, not just a shape
            row = [int(v) for v in kind.removeprefix("grid:").split(",")]
            inputs[name] = torch.tensor([row] * shape[0], dtype=torch.long, device=device)
        elif kind == "bool":  # a per-position mask: every position set
            inputs[name] = torch.ones(shape, dtype=torch.bool, device=device)
        elif kind == "ones":  # masks: every value observed
            inputs[name] = torch.ones(shape, dtype=dtype, device=device)
        else:
            inputs[name] = torch.zeros(shape, dtype=dtype, device=device)
    return {**inputs, **plan.flags}


def tokens_per_item(spec: ModelSpec, workload: Workload) -> int | None:
    """Tokens one item carries (for tokens/s); None for vision models."""
    return workload.seq_len if spec.modality == "text" else None
