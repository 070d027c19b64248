"""Video layouts the generic rules cannot derive (clips of frames, video sessions, prompt images, ...).

Each layout takes an ``InputContext`` and returns a one-line description of what it planned, or None when the model
is not one of its own (see ``efficiency.models.inputs.special_layouts``).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

from efficiency.models.input_base import (
    InputContext,
    Layout,
    as_pair,
    find_field,
    model_class_for,
    patch_grid_inputs,
    text_length,
)
from efficiency.models.loading import build_config
from efficiency.specs import ModelSpec

VISION_TOWERS = ("vision_config", "backbone_config")
FRAME_KEYS = ("num_frames", "frames_per_clip")  # VideoPrism, TVP: num_frames; V-JEPA 2: frames_per_clip
CHANNEL_KEYS = ("num_channels", "in_chans", "in_channels")
# InstructBLIP-Video's modeling code ("video has frames=4 always") and processor ("works with 4 frames only")
INSTRUCTBLIP_VIDEO_FRAMES = 4
# VideoLLaMA 3's image processor merges no patches of a still image (its ``merge_size = 1``; videos use 2)
VIDEO_LLAMA_3_IMAGE_MERGE = 1
SESSION_POINTS = 1  # the positive clicks on the tracked object


def fixed_image_size(config: Any, params: dict) -> int | None:
    """The one square image size a model takes, or None when it takes any (``fit_workload`` sets it): SAM 2 and kin
    (their vision neck's ``backbone_feature_sizes`` are fixed, for the prompt encoder's ``image_size``), SegGPT (a
    prompt and an input image stacked on its ``image_size`` canvas, each half its height)."""
    if find_field(config, ("backbone_feature_sizes",), ("vision_config",)) is not None:
        size = as_pair(find_field(config, ("image_size",), ("prompt_encoder_config", "vision_config")))
        return size[0] if size is not None and size[0] == size[1] else None
    if {"prompt_pixel_values", "prompt_masks"} <= set(params):
        canvas = as_pair(find_field(config, ("image_size",)))
        return canvas[1] if canvas is not None and canvas[0] == 2 * canvas[1] else None
    return None


def _channels(ctx: InputContext) -> int:
    return int(find_field(ctx.config, CHANNEL_KEYS, VISION_TOWERS) or 3)


def _frames(ctx: InputContext) -> int | None:
    frames = find_field(ctx.config, FRAME_KEYS, ("vision_config",))
    return int(frames) if isinstance(frames, int) and frames > 0 else None


def _interpolate_if_resized(ctx: InputContext, size: int, keys: tuple[str, ...]) -> None:
    """Ask for interpolated position (or pad) encodings when the frames are not the model's own size."""
    native = as_pair(find_field(ctx.config, keys, VISION_TOWERS))
    if native is not None and native != (size, size) and "interpolate_pos_encoding" in ctx.params:
        ctx.flags["interpolate_pos_encoding"] = True


def _text(ctx: InputContext) -> str:
    """The text tower's ids, at the workload's length capped at the tower's positions."""
    length = text_length(ctx.config, ctx.spec, ctx.workload, ctx.notes)
    ctx.shapes["input_ids"] = ((ctx.batch, length), "ids")
    return f"text {length} tokens"


def video_clip(ctx: InputContext) -> str | None:
    """Clip encoders fed ``pixel_values_videos`` (V-JEPA 2, VideoPrism and its CLIP pair): (batch, frames, channels,
    size, size), the frames the config was trained on (``frames_per_clip``, ``num_frames``)."""
    if ctx.main != "pixel_values_videos" and "pixel_values_videos" not in ctx.required:
        return None
    frames = _frames(ctx)
    if frames is None:
        return None
    size = ctx.workload.image_size
    ctx.shapes["pixel_values_videos"] = ((ctx.batch, frames, _channels(ctx), size, size), "float")
    _interpolate_if_resized(ctx, size, ("image_size", "crop_size"))
    video = f"video {frames} frames of {size}x{size}"
    return f"{_text(ctx)} + {video}" if "input_ids" in ctx.required else video


def padded_frames(ctx: InputContext) -> str | None:
    """TVP: frames framed by a learned visual prompt sized for ``max_img_size``; at another size the prompt's pads
    are interpolated (``interpolate_pos_encoding``). Its text ids come from the generic rules."""
    if "pixel_values" not in ctx.params or find_field(ctx.config, ("max_img_size",)) is None:
        return None
    frames = _frames(ctx)
    if frames is None:
        return None
    size = ctx.workload.image_size
    ctx.shapes["pixel_values"] = ((ctx.batch, frames, _channels(ctx), size, size), "float")
    _interpolate_if_resized(ctx, size, ("max_img_size",))
    return f"video {frames} frames of {size}x{size}"


def query_video(ctx: InputContext) -> str | None:
    """InstructBLIP-Video: (batch, frames, channels, size, size) frames, each summarised by the Q-Former into
    ``num_query_tokens`` outputs that the language model reads in place of as many video tokens
    (``video_token_index``) the processor puts before the prompt, frame after frame."""
    queries = find_field(ctx.config, ("num_query_tokens",))
    token = find_field(ctx.config, ("video_token_index", "video_token_id"))
    if not isinstance(queries, int) or token is None or "qformer_input_ids" not in ctx.required:
        return None
    size, frames = ctx.workload.image_size, INSTRUCTBLIP_VIDEO_FRAMES
    ctx.shapes["pixel_values"] = ((ctx.batch, frames, _channels(ctx), size, size), "float")
    _interpolate_if_resized(ctx, size, ("image_size",))
    length, tokens = ctx.workload.seq_len, queries * frames
    ctx.shapes["input_ids"] = ((ctx.batch, tokens + length), f"span:1,{int(token)},0,{tokens}")
    return f"video {frames} frames of {size}x{size} ({tokens} query tokens) + text {length} tokens"


def image_sequence(ctx: InputContext) -> str | None:
    """IDEFICS: interleaved images as (batch, images, channels, size, size) with an ``image_attention_mask`` saying
    which images each text position sees (one image, seen by every token)."""
    interleaved = "image_encoder_embeddings" in ctx.params  # IDEFICS's own: FLAVA has an image_attention_mask too
    if not interleaved or "image_attention_mask" not in ctx.params or "pixel_values" not in ctx.params:
        return None
    if ctx.main != "input_ids":
        return None
    size = ctx.workload.image_size
    length = text_length(ctx.config, ctx.spec, ctx.workload, [])  # the generic rules plan the ids themselves
    ctx.shapes["pixel_values"] = ((ctx.batch, 1, _channels(ctx), size, size), "float")
    ctx.shapes["image_attention_mask"] = ((ctx.batch, length, 1), "ids")
    _interpolate_if_resized(ctx, size, ("image_size",))
    return f"1 image {size}x{size}"


def merged_patches(ctx: InputContext) -> str | None:
    """VideoLLaMA 3's vision tower: flattened patches with their grid and a merge size per image."""
    if "merge_sizes" not in ctx.required or not any(n.endswith("grid_thw") for n in ctx.required):
        return None
    described = patch_grid_inputs(ctx.config, ctx.workload, ctx.params, ctx.batch, ctx.shapes)
    ctx.shapes["merge_sizes"] = ((ctx.batch,), "ids")  # ones: VIDEO_LLAMA_3_IMAGE_MERGE
    return described


def prompted_image(ctx: InputContext) -> str | None:
    """SegGPT: the input image below a prompt image, and the prompt's mask, each half of the model's fixed canvas
    (``image_size``, height x width, prompt above input)."""
    if not {"prompt_pixel_values", "prompt_masks"} <= ctx.required:
        return None
    canvas = as_pair(find_field(ctx.config, ("image_size",)))
    if canvas is None:
        return None
    height, width = canvas[0] // 2, canvas[1]
    for name in ("pixel_values", "prompt_pixel_values", "prompt_masks"):
        ctx.shapes[name] = ((ctx.batch, _channels(ctx), height, width), "float")
    return f"image {height}x{width} + prompt image and mask {height}x{width}"


def inherited_text_main(ctx: InputContext) -> str | None:
    """A text tower whose class inherits ``main_input_name = "pixel_values"`` from its family's base class (SAM 3
    LiteText's text encoder) but takes only token ids."""
    if ctx.main != "pixel_values" or "pixel_values" in ctx.params or "input_ids" not in ctx.params:
        return None
    return _text(ctx)


def _session_class(cls: type) -> type:
    """The inference session class a tracker's ``forward`` is annotated with (``Sam2VideoInferenceSession``, ...)."""
    annotation = inspect.signature(cls.forward).parameters["inference_session"].annotation
    return getattr(sys.modules[cls.__module__], annotation) if isinstance(annotation, str) else annotation


def inference_session(spec: ModelSpec, shape: tuple[int, ...], dtype: torch.dtype, device: Any) -> Any:
    """A tracker's session built without its processor, as the processor's ``init_video_session`` and
    ``add_inputs_to_inference_session`` build it: the video's frames, and object 1 prompted by one positive point
    on the first frame (``point_coords`` (1, 1, points, 2), ``point_labels`` (1, 1, points))."""
    session = _session_class(model_class_for(spec, build_config(spec)))(
        video=torch.zeros(shape, dtype=dtype, device=device),
        video_height=shape[-2],
        video_width=shape[-1],
        inference_device=device,
        inference_state_device=device,
        video_storage_device=device,
        dtype=dtype,
    )
    obj_idx = session.obj_id_to_idx(1)
    points = {
        "point_coords": torch.zeros((1, 1, SESSION_POINTS, 2), dtype=dtype, device=device),
        "point_labels": torch.ones((1, 1, SESSION_POINTS), dtype=torch.int32, device=device),
    }
    session.add_point_inputs(obj_idx, 0, points)
    session.obj_with_new_inputs = [1]
    return session


def video_session(ctx: InputContext) -> str | None:
    """Video trackers (SAM 2 Video, EdgeTAM Video, SAM 3 Tracker Video) take a session, not tensors: one forward
    segments one frame for every object the session tracks. Planned: a one-frame video at the model's image size
    and one object prompted by a point on it (the conditioning frame: masks from the prompt, then the memory
    encoder; later frames would also attend to the memories). A session keeps what a forward computed (features,
    masks), so each count builds its own; a second forward on the same session would reuse them."""
    if "inference_session" not in ctx.required:
        return None
    if not hasattr(_session_class(ctx.cls), "add_point_inputs"):  # SAM 3 Video: objects found, not prompted
        raise ValueError(
            f"{ctx.spec.id}: {ctx.cls.__name__} is not profiled: it tracks as many objects as its text prompts "
            "find in real frames (profile sam3, sam3_tracker_video)"
        )
    size = ctx.workload.image_size
    ctx.shapes["inference_session"] = ((1, _channels(ctx), size, size), "session")
    ctx.flags["frame_idx"] = 0
    return f"video frame {size}x{size} with 1 object prompted by {SESSION_POINTS} point"


LAYOUTS: tuple[Layout, ...] = (
    video_clip,
    padded_frames,
    query_video,
    image_sequence,
    merged_patches,
    prompted_image,
    inherited_text_main,
    video_session,
)
