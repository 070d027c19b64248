"""What dummy inputs are built from: the model class's declared inputs and its config's sizes, for
:mod:`efficiency.models.inputs` and the family layouts beside it (``input_layouts_*``).

The model class (the one ``build_model`` would build) says what it takes: ``main_input_name`` (``input_ids``,
``pixel_values``, ``input_values``, ``input_features``) and the arguments of ``forward``. The config gives the
sizes: vocabulary, positions, image size (int or pair), channels, frames, sampling rate, mel bins, feature
size. Each ``*_inputs`` function plans one family's main inputs (shapes and kinds, no tensors).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from efficiency.models.loading import build_config, model_class
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


def forward_parameters(cls: type) -> dict[str, inspect.Parameter]:
    params = inspect.signature(cls.forward).parameters
    return {n: p for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def model_class_for(spec: ModelSpec, config: Any) -> type:
    """The class ``from_config`` builds (a mapping entry may list several, e.g. Funnel's; the first is built)."""
    found = model_class(spec)._model_mapping[type(config)]
    return found[0] if isinstance(found, (list, tuple)) else found


def sub_config(config: Any, name: str) -> Any:
    return getattr(config, name, None)


def find_field(config: Any, keys: tuple[str, ...], towers: tuple[str, ...] = ()) -> Any:
    """The first of ``keys`` set on the config or on one of its sub-configs (``vision_config``, ...)."""
    for source in (config, *(sub_config(config, t) for t in towers)):
        if source is None:
            continue
        for key in keys:
            value = getattr(source, key, None)
            if value is not None:
                return value
    return None


def as_pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def native_image_size(spec: ModelSpec) -> tuple[int, int] | None:
    """The image size the model was configured for (``image_size`` or ``input_size``, int or pair)."""
    return as_pair(find_field(build_config(spec), ("image_size", "input_size"), ("vision_config", "backbone_config")))


def text_length(config: Any, spec: ModelSpec, workload: Workload, notes: list[str]) -> int:
    """The workload's length; a second tower (CLIP's 77-position text encoder) is capped at its maximum."""
    if spec.modality == "text":
        return workload.seq_len  # fit_workload has already capped it at the model's positions
    limit = find_field(config, POSITION_KEYS, ("text_config",))
    if isinstance(limit, int) and 0 < limit < workload.seq_len:
        notes.append(f"text capped at the model's maximum of {limit} positions (asked {workload.seq_len})")
        return limit
    return workload.seq_len


def fixed_audio_frames(config: Any, main: str) -> int | None:
    """The feature frames a speech model's encoder requires (Whisper: 2 x max_source_positions = 3000, 30 s; AST:
    ``max_length``), or None when it takes any length."""
    if main == "input_values":
        spectrogram = find_field(config, ("num_mel_bins",))
        length = find_field(config, ("max_length",))
        return int(length) if isinstance(spectrogram, int) and isinstance(length, int) else None
    mels = find_field(config, ("num_mel_bins",), ("audio_config", "encoder_config"))
    source = find_field(config, ("max_source_positions",), ("audio_config", "encoder_config"))
    return 2 * source if isinstance(mels, int) and isinstance(source, int) else None


def audio_inputs(config: Any, main: str, seconds: float, batch: int, shapes: dict) -> str:
    """Raw waveform (``input_values``) or features (``input_features``), sized from the config and the clip length
    (``fit_workload`` has already set it to a length the encoder requires)."""
    rate = find_field(config, ("sampling_rate", "sample_rate")) or DEFAULT_SAMPLING_RATE
    frames = max(1, round(seconds * FEATURE_FRAMES_PER_SECOND))
    spectrogram = find_field(config, ("num_mel_bins",)) if main == "input_values" else None
    if isinstance(spectrogram, int):  # AST: a spectrogram of frames x mel bins
        shapes[main] = ((batch, frames, spectrogram), "float")
        return f"audio {seconds:.1f} s as {frames} frames x {spectrogram} mel bins"
    if main == "input_values":
        samples = round(seconds * rate)
        channels = find_field(config, ("audio_channels",))
        shape = (batch, int(channels), samples) if isinstance(channels, int) else (batch, samples)
        shapes[main] = (shape, "float")
        return f"audio {seconds:.1f} s at {rate / 1000:g} kHz"
    mels = find_field(config, ("num_mel_bins",), ("audio_config", "encoder_config"))
    if isinstance(mels, int) and fixed_audio_frames(config, main):  # Whisper-like: (batch, mel bins, frames)
        shapes[main] = ((batch, mels, frames), "float")
        return f"audio {seconds:.1f} s as {mels} mel bins x {frames} frames"
    per_channel = find_field(config, ("input_feat_per_channel",))
    width = per_channel * (find_field(config, ("input_channels",)) or 1) if per_channel else None
    keys = ("input_dim", "input_feat_size", "feature_size", "num_mel_bins", "n_mels")  # input width before mel count
    width = int(width or find_field(config, keys, ("audio_config", "encoder_config")) or 80)
    shapes[main] = ((batch, frames, width), "float")
    return f"audio {seconds:.1f} s as {frames} frames x {width} features"


def image_inputs(config: Any, spec: ModelSpec, workload: Workload, params: dict, batch: int, plan: dict) -> str:
    size = workload.image_size
    native = as_pair(find_field(config, ("image_size", "input_size"), ("vision_config", "backbone_config")))
    channels = find_field(config, ("num_channels",), ("vision_config", "backbone_config")) or 3
    frames = find_field(config, ("num_frames",), ("vision_config",))
    shape = (batch, int(channels), size, size)
    if isinstance(frames, int) and frames > 0:  # video: (batch, frames, channels, height, width)
        shape = (batch, frames, int(channels), size, size)
    plan["shapes"]["pixel_values"] = (shape, "float")
    absolute = find_field(config, ("use_absolute_embeddings",), ("vision_config",)) is not False  # Swin's are optional
    if native is not None and native != (size, size) and "interpolate_pos_encoding" in params and absolute:
        plan["flags"]["interpolate_pos_encoding"] = True
    video = f"video {frames} frames of " if len(shape) == 5 else "image "
    return f"{video}{size}x{size}"


def series_inputs(config: Any, params: dict, batch: int, shapes: dict) -> str:
    """A forecasting model's history (``past_values``), sized by its own context: lagged transformers
    (Time Series Transformer, Informer, Autoformer) see ``context_length + max(lags)`` steps with time features,
    an observed-mask, static features and the future window; patch models (PatchTST, PatchTSMixer) and TimesFM see
    ``context_length`` steps per channel."""
    context = int(find_field(config, ("context_length",)) or 0)
    lags = find_field(config, ("lags_sequence",))
    channels = find_field(config, ("input_size",))
    if lags:  # lagged: past window = context + largest lag, shaped (batch, steps) for one variate
        steps, future = context + max(lags), int(find_field(config, ("prediction_length",)) or 0)
        variate = () if channels in (None, 1) else (int(channels),)
        time_features = int(find_field(config, ("num_time_features",)) or 0)
        shapes["past_values"] = ((batch, steps, *variate), "float")
        shapes["past_observed_mask"] = ((batch, steps, *variate), "ones")
        shapes["past_time_features"] = ((batch, steps, time_features), "float")
        for name, size, kind in (
            ("static_categorical_features", find_field(config, ("num_static_categorical_features",)), "ids"),
            ("static_real_features", find_field(config, ("num_static_real_features",)), "float"),
        ):
            if size and name in params:
                shapes[name] = ((batch, int(size)), kind)
        if future and "future_values" in params:
            shapes["future_values"] = ((batch, future, *variate), "float")
            shapes["future_time_features"] = ((batch, future, time_features), "float")
        variates = int(channels or 1)
        return f"series {steps} past steps + {future} future steps x {variates} variate{'s' * (variates != 1)}"
    channels = int(find_field(config, ("num_input_channels",)) or 1)
    if "past_values_padding" in params:  # TimesFM: (batch, steps) with a padding mask and a frequency class
        shapes["past_values"] = ((batch, context), "float")
        shapes["past_values_padding"] = ((batch, context), "ids")
        shapes["freq"] = ((batch, 1), "ids")
        return f"series {context} steps"
    shapes["past_values"] = ((batch, context, channels), "float")
    return f"series {context} steps x {channels} channel{'s' * (channels != 1)}"


def patch_grid_inputs(config: Any, workload: Workload, params: dict, batch: int, shapes: dict) -> str:
    """A vision encoder fed flattened patches and their grid (``grid_thw``: Qwen-VL, GLM-V and kin): an image of the
    workload's size cut into patches (rounded down to whole merge windows), each patch flattened over channels and
    the temporal patch (an image is one frame repeated)."""
    towers = ("vision_config",)
    patch = int(find_field(config, ("patch_size",), towers) or 14)
    # the merge window: Qwen-VL's spatial_merge_size, Muse's merge_size, MoonViT's (Kimi) merge_kernel_size pair
    kernel = as_pair(find_field(config, ("merge_kernel_size",), towers))
    merge = max(kernel) if kernel else int(find_field(config, ("spatial_merge_size", "merge_size"), towers) or 1)
    temporal = int(find_field(config, ("temporal_patch_size", "patch_temporal"), towers) or 1)
    channels = int(find_field(config, ("in_channels", "in_chans", "num_channels"), towers) or 3)
    side = max(merge, workload.image_size // patch // merge * merge)
    name = next(n for n in ("hidden_states", "pixel_values") if n in params)
    grid = next(n for n in params if n.endswith("grid_thw"))  # grid_thw, image_grid_thw
    shape = (batch * side * side, channels * temporal * patch * patch)
    if kernel:  # MoonViT embeds each patch with a Conv2d: one (channels, patch, patch) image per patch
        shape = (batch * side * side, channels, patch, patch)
    shapes[name] = (shape, "float")
    shapes[grid] = ((batch, 3), f"grid:1,{side},{side}")
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def trajectory_inputs(config: Any, workload: Workload, batch: int, shapes: dict) -> str:
    """Decision Transformer: (return, state, action) per step, three tokens each, within the GPT-2 positions."""
    positions = int(find_field(config, ("n_positions", "max_position_embeddings")) or 3 * workload.seq_len)
    steps = max(1, min(workload.seq_len, positions // 3))
    shapes["states"] = ((batch, steps, int(find_field(config, ("state_dim",)) or 1)), "float")
    shapes["actions"] = ((batch, steps, int(find_field(config, ("act_dim",)) or 1)), "float")
    shapes["rewards"] = ((batch, steps, 1), "float")
    shapes["returns_to_go"] = ((batch, steps, 1), "float")
    shapes["timesteps"] = ((batch, steps), "zeros_ids")
    shapes["attention_mask"] = ((batch, steps), "ids")
    return f"trajectory {steps} steps (3 tokens each)"


def companion_inputs(wanted: set[str], shapes: dict, batch: int, length: int, parts: list[str]) -> None:
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
