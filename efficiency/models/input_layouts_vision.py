"""Vision layouts the generic rules cannot derive (image pairs, patch layouts of OCR and VLM towers, ...).

Each layout takes an ``InputContext`` and returns a one-line description of what it planned, or None when the model
is not one of its own (see ``efficiency.models.inputs.special_layouts``).
"""

from __future__ import annotations

import math
from typing import Any

from efficiency.models.input_base import IMAGE_TOKEN_KEYS, InputContext, Layout, as_pair, find_field

TOWERS = ("vision_config", "backbone_config")


def _patch(ctx: InputContext, default: int = 16) -> int:
    return int((as_pair(find_field(ctx.config, ("patch_size",), TOWERS)) or (default,))[0])


def _channels(ctx: InputContext) -> int:
    return int(find_field(ctx.config, ("num_channels", "in_channels"), TOWERS) or 3)


def _image_tower(ctx: InputContext) -> bool:
    """Pixels are this model's to plan: it takes them and has no image tokens (a VLM's image tokens need a
    processor, and the generic rules plan its text-only pass)."""
    return "pixel_values" in ctx.params and all(find_field(ctx.config, (key,)) is None for key in IMAGE_TOKEN_KEYS)


def _rounded_note(ctx: InputContext, side: int, why: str) -> None:
    """A note when the image the model can take is not the workload's (the description gives the size)."""
    if side != ctx.workload.image_size:
        ctx.notes.append(f"image rounded down to {why} (asked {ctx.workload.image_size} px)")


def naflex_patches(ctx: InputContext) -> str | None:
    """SigLIP 2 (NaFlex): the image arrives as flattened patches (batch, patches, channels x patch x patch) with a
    mask over them and each image's patch grid (``spatial_shapes``), which resizes the learned positions."""
    if "spatial_shapes" not in ctx.params or not _image_tower(ctx):
        return None
    patch, channels = _patch(ctx), _channels(ctx)
    side = max(1, ctx.workload.image_size // patch)
    _rounded_note(ctx, side * patch, f"whole {patch} px patches")
    ctx.shapes["pixel_values"] = ((ctx.batch, side * side, channels * patch * patch), "float")
    if "pixel_attention_mask" in ctx.params:
        ctx.shapes["pixel_attention_mask"] = ((ctx.batch, side * side), "ids")
    ctx.shapes["spatial_shapes"] = ((ctx.batch, 2), f"grid:{side},{side}")
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def positioned_patches(ctx: InputContext) -> str | None:
    """Gemma 4's vision tower: flattened patches with their (x, y) grid positions (``pixel_position_ids``), pooled
    by ``pooling_kernel_size`` squared into soft tokens, so the grid is cut to whole pooling windows."""
    if "pixel_position_ids" not in ctx.params or not _image_tower(ctx):
        return None
    patch = _patch(ctx)
    pool = int(find_field(ctx.config, ("pooling_kernel_size",), TOWERS) or 1)
    side = max(pool, ctx.workload.image_size // patch // pool * pool)
    _rounded_note(ctx, side * patch, f"whole {pool}x{pool} pooling windows of {patch} px patches")
    # the patch embedder's input projection takes 3 x patch x patch values (modeling_gemma4: nn.Linear(3 * p**2, ..))
    ctx.shapes["pixel_values"] = ((ctx.batch, side * side, 3 * patch * patch), "float")
    ctx.shapes["pixel_position_ids"] = ((ctx.batch, side * side, 2), f"xy:{side},{side}")
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def merged_patch_tiles(ctx: InputContext) -> str | None:
    """Inkling 2's vision tower: one channels-last tile of merge x merge patches per language-model image token
    (tokens, patch x merge, patch x merge, channels), with the grid counted in those tokens; told apart from the
    Qwen-VL layout by its learned position grid (``posemb_grid_size``)."""
    grid = next((n for n in ctx.required if n.endswith("grid_thw")), None)
    if grid is None or ctx.main != "pixel_values" or find_field(ctx.config, ("posemb_grid_size",), TOWERS) is None:
        return None
    patch, channels = _patch(ctx), _channels(ctx)
    merge = int(find_field(ctx.config, ("spatial_merge_size",), TOWERS) or 1)
    tile = patch * merge
    tokens = max(1, ctx.workload.image_size // tile)
    _rounded_note(ctx, tokens * tile, f"whole {merge}x{merge} merge windows of {patch} px patches")
    ctx.shapes["pixel_values"] = ((ctx.batch * tokens * tokens, tile, tile, channels), "float")
    ctx.shapes[grid] = ((ctx.batch, 3), f"grid:1,{tokens},{tokens}")
    side = tokens * merge
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def packed_patch_strip(ctx: InputContext) -> str | None:
    """MiniCPM-V's SigLIP tower: every image's patches packed side by side into one strip one patch high
    (1, channels, patch, patches x patch), with each image's patch grid (``target_sizes``); a window merger then
    folds ``window_kernel_size`` windows, so the grid is cut to whole windows."""
    if "target_sizes" not in ctx.params or ctx.main != "pixel_values":
        return None
    patch, channels = _patch(ctx), _channels(ctx)
    window = max(as_pair(find_field(ctx.config, ("window_kernel_size",), TOWERS)) or (1,))
    side = max(window, ctx.workload.image_size // patch // window * window)
    _rounded_note(ctx, side * patch, f"whole {window}x{window} merge windows of {patch} px patches")
    ctx.shapes["pixel_values"] = ((1, channels, patch, ctx.batch * side * side * patch), "float")
    ctx.shapes["target_sizes"] = ((ctx.batch, 2), f"grid:{side},{side}")
    return f"image {side * patch}x{side * patch} as {side}x{side} patches of {patch} px"


def image_pair(ctx: InputContext) -> str | None:
    """Keypoint matchers (LightGlue, EfficientLoFTR, SuperGlue: transformers' keypoint-matching task) take the two
    images to match stacked on a second axis: (batch, 2, channels, height, width)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES

    if ctx.spec.model_type not in MODEL_FOR_KEYPOINT_MATCHING_MAPPING_NAMES or ctx.main != "pixel_values":
        return None
    if find_field(ctx.config, ("keypoint_detector_config",)) is not None:  # LightGlue, SuperGlue: SuperPoint first
        raise ValueError(
            f"{ctx.spec.id}: cannot be profiled statically: its matcher attends over the keypoints its detector "
            "finds, a number only real images and trained weights decide"
        )
    size = ctx.workload.image_size
    ctx.shapes["pixel_values"] = ((ctx.batch, 2, _channels(ctx), size, size), "float")
    return f"image pair 2 x {size}x{size}"


def fixed_text_line(ctx: InputContext) -> str | None:
    """MGP-STR reads text lines of the one size it is configured for (32x128 by default): its patch embedding
    rejects any other, and it has no ``interpolate_pos_encoding``. A one-off: other models configured for a
    non-square image (YOLOS, SegGPT) resize their positions, so the check is on the type."""
    native = as_pair(find_field(ctx.config, ("image_size",), TOWERS))
    if ctx.spec.model_type != "mgp-str" or native is None or ctx.main != "pixel_values":
        return None
    height, width = native
    ctx.shapes["pixel_values"] = ((ctx.batch, _channels(ctx), height, width), "float")
    ctx.notes.append(f"image of the one size the model reads (asked {ctx.workload.image_size} px)")
    return f"image {height}x{width}"


def scaled_patch_pyramid(ctx: InputContext) -> str | None:
    """Depth Pro cuts the image, scaled by each of ``scaled_images_ratios``, into ``patch_size`` patches: the
    smallest scale must still hold one patch, so the image is at least patch_size / min(ratios) (1536 px)."""
    ratios = find_field(ctx.config, ("scaled_images_ratios",))
    patch = as_pair(find_field(ctx.config, ("patch_size",)))
    if not ratios or patch is None or ctx.main != "pixel_values":
        return None
    smallest = math.ceil(max(patch) / min(ratios))
    size = max(ctx.workload.image_size, smallest)
    if size != ctx.workload.image_size:
        ctx.notes.append(
            f"image raised to the smallest whose {min(ratios):g} scale holds a {max(patch)} px patch "
            f"(asked {ctx.workload.image_size} px)"
        )
    ctx.shapes["pixel_values"] = ((ctx.batch, _channels(ctx), size, size), "float")
    return f"image {size}x{size}"


def windowed_detector(ctx: InputContext) -> str | None:
    """LW-DETR and RF-DETR: a ViT backbone attending in a grid of windows (``num_windows_side``, or RF-DETR's
    ``num_windows`` per side), so the patch grid is cut to whole windows; its two-stage decoder then picks
    ``num_queries`` proposals from the feature levels' positions, so the image must give at least that many."""
    backbone = find_field(ctx.config, ("backbone_config",))
    queries = find_field(ctx.config, ("num_queries",))
    windows = find_field(backbone, ("num_windows_side", "num_windows")) if backbone is not None else None
    if not windows or not queries or ctx.main != "pixel_values":
        return None
    scales = find_field(ctx.config, ("projector_scale_factors",))
    scales = list(scales) if scales is not None else [1.0] * int(find_field(ctx.config, ("num_feature_levels",)) or 0)
    if not scales:
        raise ValueError(
            f"{ctx.spec.id}: cannot be profiled: its config has no feature levels (projector_scale_factors is "
            "empty), so the detector has no features to decode"
        )
    patch = int((as_pair(find_field(backbone, ("patch_size",))) or (16,))[0])
    windows = int(windows)
    units = max(1, ctx.workload.image_size // (patch * windows))
    while sum(int(units * windows * scale) ** 2 for scale in scales) < queries:
        units += 1
    size = units * windows * patch
    if size != ctx.workload.image_size:
        ctx.notes.append(
            f"image fitted to whole {windows}x{windows} windows of {patch} px patches, with at least {queries} "
            f"positions for its {queries} queries (asked {ctx.workload.image_size} px)"
        )
    ctx.shapes["pixel_values"] = ((ctx.batch, _channels(ctx), size, size), "float")
    return f"image {size}x{size}"


def _maps_taken(config: Any, backbone: Any) -> tuple[str, int] | None:
    """How many backbone feature maps the part after the backbone takes, where its config says: PP-OCR's detection
    neck one per ``layer_list_out_channels``, UVDoc's head the concatenation of every bridge stage
    (``stage_configs``)."""
    if isinstance(getattr(config, "layer_list_out_channels", None), (list, tuple)):
        return "neck", len(config.layer_list_out_channels)
    stages = getattr(backbone, "stage_configs", None)
    if getattr(config, "bridge_connector", None) and isinstance(stages, (list, tuple)):
        return "head", len(stages)
    return None


def backbone_outputs_checked(ctx: InputContext) -> str | None:
    """Not a layout: a model whose backbone outputs fewer feature maps than its neck or head takes cannot run at
    all (transformers' default configs of PP-OCRv6 small det and UVDoc keep only the last stage); say so in one
    line rather than fail in a convolution. Returns None otherwise, so the other layouts plan the inputs."""
    backbone = find_field(ctx.config, ("backbone_config",))
    outputs = getattr(backbone, "out_features", None)
    taken = _maps_taken(ctx.config, backbone) if backbone is not None else None
    if taken is None or not isinstance(outputs, list) or len(outputs) >= taken[1]:
        return None
    raise ValueError(
        f"{ctx.spec.id}: cannot be profiled: the config does not run: its {taken[0]} takes {taken[1]} feature maps, "
        f"its backbone outputs {len(outputs)} ({', '.join(outputs)})"
    )


LAYOUTS: tuple[Layout, ...] = (
    backbone_outputs_checked,
    image_pair,
    naflex_patches,
    positioned_patches,
    merged_patch_tiles,
    packed_patch_strip,
    fixed_text_line,
    scaled_patch_pyramid,
    windowed_detector,
)
