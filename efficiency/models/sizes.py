"""Sizes a config may declare: a negative depth or a zero width is refused before anything is built or counted.

A config.json may come from anyone. transformers accepts ``num_hidden_layers: -3`` (the model has no layers and
the closed form would report negative FLOPs) and ``hidden_size: 0``; here each such field is refused in one line
that names it. The bounds are far above any published model (widths up to 2^24, so a hostile 10^6-wide GPT still
counts; depth is bounded by ``loading.MAX_LAYERS``).
"""

from __future__ import annotations

from typing import Any

LAYER_FIELDS = (
    "num_hidden_layers",
    "n_layer",
    "n_layers",
    "num_layers",
    "num_decoder_layers",
    "encoder_layers",
    "decoder_layers",
    "depth",  # vision towers of Qwen-VL, GLM-V and kin: blocks in the encoder
)
WIDTH_FIELDS = (
    "hidden_size",
    "n_embd",
    "d_model",
    "dim",
    "embed_dim",
    "intermediate_size",
    "n_inner",
    "d_ff",
    "ffn_dim",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "hidden_dim",
    "num_attention_heads",
    "n_head",
    "num_heads",
    "num_key_value_heads",
    "head_dim",
    "d_kv",
    "vocab_size",
    "max_position_embeddings",
    "n_positions",
    "image_size",
    "patch_size",
    "num_channels",
    "num_mel_bins",
)
MAX_WIDTH = 2**24
SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def size_problem(config: dict[str, Any], max_layers: int, prefix: str = "") -> str | None:
    """The first declared size no model can have, as "config field 'x' ..." (None when all are fine).

    Layer counts must be 0 or more (and at most ``max_layers``); widths, heads, vocabulary, positions and image
    sizes at least 1 and at most 2^24. Values of other types are left to transformers' own validation."""
    for key in LAYER_FIELDS:
        value = config.get(key)
        if _is_number(value) and value < 0:
            return f"config field '{prefix}{key}' must be 0 or more layers, got {value}"
        if _is_number(value) and value > max_layers:
            return (
                f"config declares {prefix}{key}={value}; building more than {max_layers} layers is refused "
                "(the deepest published models have about 1000)"
            )
    for key in WIDTH_FIELDS:
        value = config.get(key)
        sizes = value if isinstance(value, (list, tuple)) and key == "image_size" else [value]
        for size in sizes:
            if _is_number(size) and not 1 <= size <= MAX_WIDTH:
                return f"config field '{prefix}{key}' must be between 1 and {MAX_WIDTH}, got {size}"
    for sub in SUB_CONFIGS:
        if isinstance(config.get(sub), dict):
            problem = size_problem(config[sub], max_layers, f"{prefix}{sub}.")
            if problem:
                return problem
    return None
