"""Layouts of single model families the generic rules cannot derive (a second tower, trajectories of actions, ...).

Each layout takes an ``InputContext`` and returns a one-line description of what it planned, or None when the model
is not one of its own (see ``efficiency.models.inputs.special_layouts``).
"""

from __future__ import annotations

import sys
from typing import Any

from torch import nn

from efficiency.models.input_base import (
    FEATURE_FRAMES_PER_SECOND,
    InputContext,
    Layout,
    as_pair,
    find_field,
    sub_config,
)

# LXMERT reads region features of a detector; neither its config nor its modeling code sets how many. Its paper
# (Tan & Bansal 2019) keeps 36 Faster R-CNN objects per image.
LXMERT_REGIONS = 36
# CLVP's feature extractor (ClvpFeatureExtractor: 22.05 kHz, hop 256) sets its frame rate; its config does not.
CLVP_SAMPLING_RATE, CLVP_HOP_LENGTH = 22_050, 256
# BLIP-2's vision tower (Blip2VisionConfig) cuts images into 14 px patches; a Q-Former config alone has no tower.
BLIP2_VISION_PATCH = 14


def no_forward(ctx: InputContext) -> str | None:
    """A class without a forward of its own (Bark runs only through ``generate`` and its sub-models, GLM-Image's VQ-VAE
    only through ``encode``): there is no forward pass to count, refused in one line."""
    if ctx.cls.forward is not nn.Module.forward:
        return None
    entry = next((m for m in ("generate", "encode", "decode") if callable(getattr(ctx.cls, m, None))), None)
    through = f", only {entry}()" if entry else ""
    raise ValueError(f"{ctx.spec.model_type}: {ctx.cls.__name__} has no forward pass of its own to count{through}")


def attention_kernel_missing(ctx: InputContext) -> str | None:
    """MRA's attention exists only as a CUDA kernel that transformers fetches from the Hub (``mra_cuda_kernel``);
    without it its forward returns zeros in place of attention, so there is nothing honest to count: refused in one
    line (a one-off quirk of its modeling module, read from that module)."""
    module = sys.modules.get(ctx.cls.__module__)
    if module is None or not hasattr(module, "mra_cuda_kernel") or module.mra_cuda_kernel is not None:
        return None
    raise ValueError(
        f"{ctx.spec.model_type}: its attention is a CUDA kernel from the Hub (kernels-community/mra), absent here; "
        "without it the output is zeros"
    )


def language_adapters(ctx: InputContext) -> str | None:
    """X-MOD: one language adapter per layer and language (``config.languages``); each item says its language
    (``lang_ids``, the adapter's index), the first one here, as ``set_default_language`` would."""
    languages = find_field(ctx.config, ("languages",))
    if "lang_ids" not in ctx.params or not languages:
        return None
    ctx.shapes["lang_ids"] = ((ctx.batch,), "zeros_ids")  # the model's own default: one id per item
    return f"language {list(languages)[0]}"


def embedded_inputs(ctx: InputContext) -> str | None:
    """Perceiver without a preprocessor: ``inputs`` are already embedded, ``d_model`` wide, one per position."""
    width = find_field(ctx.config, ("d_model",))
    if ctx.main != "inputs" or "inputs" not in ctx.required or not isinstance(width, int):
        return None
    length = ctx.workload.seq_len
    ctx.shapes["inputs"] = ((ctx.batch, length, width), "float")
    return f"embedded inputs {length} x {width}"


def draft_block(ctx: InputContext) -> str | None:
    """A block-diffusion drafter (DFlash): a block of ``block_size`` noised draft embeddings, attending to the target
    model's hidden states of the accepted context, taken at ``target_layer_ids`` and concatenated."""
    if not {"noise_embeds", "context_hidden_states"} <= ctx.required:
        return None
    width = int(find_field(ctx.config, ("hidden_size",)))
    block = int(find_field(ctx.config, ("block_size",)))
    layers = len(find_field(ctx.config, ("target_layer_ids",)) or ())
    length = ctx.workload.seq_len
    ctx.shapes["noise_embeds"] = ((ctx.batch, block, width), "float")
    ctx.shapes["context_hidden_states"] = ((ctx.batch, length, width * layers), "float")
    return f"context {length} tokens x {layers} target layers + draft block {block} tokens"


def region_features(ctx: InputContext) -> str | None:
    """LXMERT: text and detector region features (``visual_feats``, ``visual_feat_dim`` wide) with their boxes
    (``visual_pos``, ``visual_pos_dim`` numbers each)."""
    if not {"visual_feats", "visual_pos"} <= set(ctx.params):
        return None
    features = int(find_field(ctx.config, ("visual_feat_dim",)))
    position = int(find_field(ctx.config, ("visual_pos_dim",)))
    ctx.shapes["visual_feats"] = ((ctx.batch, LXMERT_REGIONS, features), "float")
    ctx.shapes["visual_pos"] = ((ctx.batch, LXMERT_REGIONS, position), "float")
    ctx.notes.append(f"{LXMERT_REGIONS} image regions, as its detector keeps (the config sets no count)")
    return f"{LXMERT_REGIONS} image regions x {features} features"


def query_transformer(ctx: InputContext) -> str | None:
    """BLIP-2's Q-Former on its own: query embeddings (the workload's length) cross-attending to the image features
    of a vision tower ``encoder_hidden_size`` wide, one per 14 px patch of the workload's image plus its class token."""
    width = find_field(ctx.config, ("encoder_hidden_size",))
    if "query_embeds" not in ctx.required or "encoder_hidden_states" not in ctx.params or not isinstance(width, int):
        return None
    length, side = ctx.workload.seq_len, ctx.workload.image_size // BLIP2_VISION_PATCH
    ctx.shapes["query_embeds"] = ((ctx.batch, length, int(find_field(ctx.config, ("hidden_size",)))), "float")
    ctx.shapes["encoder_hidden_states"] = ((ctx.batch, side * side + 1, width), "float")
    size = side * BLIP2_VISION_PATCH
    return f"queries {length} + image features of {size}x{size} ({side * side + 1} x {width})"


def _square_image(ctx: InputContext) -> int:
    """The vision tower's image at the workload's size (positions interpolated when that is not the tower's own
    size); returns its side in px."""
    size = ctx.workload.image_size
    channels = int(find_field(ctx.config, ("num_channels",), ("vision_config",)) or 3)
    native = as_pair(find_field(ctx.config, ("image_size",), ("vision_config",)))
    ctx.shapes["pixel_values"] = ((ctx.batch, channels, size, size), "float")
    if native is not None and native != (size, size) and "interpolate_pos_encoding" in ctx.params:
        ctx.flags["interpolate_pos_encoding"] = True
    return size


def query_tokens(ctx: InputContext) -> str | None:
    """BLIP-2 and InstructBLIP: an image whose ``num_query_tokens`` Q-Former outputs the language model reads in
    place of as many image tokens (``image_token_id``) the processor puts before the prompt."""
    queries = find_field(ctx.config, ("num_query_tokens",))
    token = find_field(ctx.config, ("image_token_id", "image_token_index"))
    if not isinstance(queries, int) or token is None or "pixel_values" not in ctx.required:
        return None
    size = _square_image(ctx)
    length = ctx.workload.seq_len
    ctx.shapes["input_ids"] = ((ctx.batch, queries + length), f"span:1,{int(token)},0,{queries}")
    return f"image {size}x{size} ({queries} query tokens) + text {length} tokens"


def latent_image_positions(ctx: InputContext) -> str | None:
    """Kosmos-2: an image resampled to ``latent_query_num`` embeddings that replace as many positions of the prompt,
    marked by ``image_embeds_position_mask`` (as its processor puts them, before the text)."""
    latents = find_field(ctx.config, ("latent_query_num",))
    if not isinstance(latents, int) or "image_embeds_position_mask" not in ctx.params:
        return None
    size = _square_image(ctx)
    length = ctx.workload.seq_len
    ctx.shapes["input_ids"] = ((ctx.batch, latents + length), "ids")
    ctx.shapes["image_embeds_position_mask"] = ((ctx.batch, latents + length), f"span:0,1,0,{latents}")
    return f"image {size}x{size} ({latents} image positions) + text {length} tokens"


def audio_spectrogram_image(ctx: InputContext) -> str | None:
    """CLAP's audio tower: a log-mel spectrogram (100 frames a second, ``num_mel_bins`` wide; 4 crops with fusion)
    folded into a ``spec_size`` square image, so at most ``spec_size x (spec_size // num_mel_bins)`` frames."""
    audio = sub_config(ctx.config, "audio_config")
    spec = find_field(audio, ("spec_size",)) if audio is not None else None
    if not isinstance(spec, int) or "input_features" not in ctx.params or "is_longer" not in ctx.params:
        return None
    mels = int(find_field(audio, ("num_mel_bins",)))
    window = spec * (spec // mels)  # ClapAudioEncoder.reshape_mel2img refuses longer spectrograms
    frames = round(ctx.workload.audio_seconds * FEATURE_FRAMES_PER_SECOND)
    if frames > window:
        frames = window
        ctx.notes.append(
            f"audio {window / FEATURE_FRAMES_PER_SECOND:.2f} s, the longest its audio tower takes "
            f"(asked {ctx.workload.audio_seconds:g} s)"
        )
    crops = 4 if find_field(audio, ("enable_fusion",)) else 1
    ctx.shapes["input_features"] = ((ctx.batch, crops, frames, mels), "float")
    seconds = frames / FEATURE_FRAMES_PER_SECOND
    return f"audio {seconds:.1f} s as {frames} frames x {mels} mel bins"


def conditioning_audio(ctx: InputContext) -> str | None:
    """CLVP: a reference voice as a log-mel spectrogram (``feature_size`` mel bins, at its feature extractor's
    frame rate) conditions the speech decoder beside the text."""
    if "conditioning_encoder_inputs_embeds" not in ctx.params or "input_features" not in ctx.params:
        return None
    mels = int(find_field(ctx.config, ("feature_size",), ("decoder_config",)) or 80)
    frames = max(1, round(ctx.workload.audio_seconds * CLVP_SAMPLING_RATE / CLVP_HOP_LENGTH))
    ctx.shapes["input_features"] = ((ctx.batch, mels, frames), "float")
    return f"audio {ctx.workload.audio_seconds:.1f} s as {mels} mel bins x {frames} frames"


def _vision_tokens(config: Any, asked: int) -> tuple[int, int]:
    """A vision tower's native square size (``asked`` when it has none) and its patch tokens (no class token)."""
    size = (as_pair(find_field(config, ("image_size",), ("vision_config",))) or (asked,))[0]
    patch = int(find_field(config, ("patch_size",), ("vision_config",)))
    return size, (size // patch) ** 2


def action_expert(ctx: InputContext) -> str | None:
    """PI0: a camera image and a prompt through the VLM (its image tokens in the text), then the action expert on the
    state token and ``chunk_size`` noised action steps (``action_embeds``, the expert's width), attending to them."""
    if "action_embeds" not in ctx.required or "pixel_attention_mask" not in ctx.params:
        return None
    vlm, expert = sub_config(ctx.config, "vlm_config"), sub_config(ctx.config, "dit_config")
    steps = int(find_field(ctx.config, ("chunk_size",)))
    size, tokens = _vision_tokens(vlm, ctx.workload.image_size)
    if size != ctx.workload.image_size:
        ctx.notes.append(f"image {size}x{size}, the size its vision tower takes (asked {ctx.workload.image_size})")
    channels = int(find_field(vlm, ("num_channels",), ("vision_config",)) or 3)
    length = ctx.workload.seq_len
    ctx.shapes["pixel_values"] = ((ctx.batch, 1, channels, size, size), "float")
    ctx.shapes["pixel_attention_mask"] = ((ctx.batch, 1), "bool")
    ctx.shapes["input_ids"] = ((ctx.batch, tokens + length), f"span:1,{int(vlm.image_token_id)},0,{tokens}")
    ctx.shapes["action_embeds"] = ((ctx.batch, 1 + steps, int(expert.hidden_size)), "float")
    return f"image {size}x{size} (1 camera, {tokens} tokens) + text {length} tokens + state + {steps} action steps"


LAYOUTS: tuple[Layout, ...] = (
    no_forward,
    attention_kernel_missing,
    language_adapters,
    embedded_inputs,
    draft_block,
    region_features,
    query_transformer,
    query_tokens,
    latent_image_positions,
    audio_spectrogram_image,
    conditioning_audio,
    action_expert,
)
