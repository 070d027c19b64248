"""Reduced-depth copies of a config: every depth field and every per-layer list cut to the same depth.

Depth-scaled counting builds 1- and 2-layer copies; a config that lists something per layer (``layer_types``,
per-layer window sizes, ...) must get lists of the copy's length, or transformers rejects it. Scaling is exact
only when every layer is the same block, so a per-layer list whose entries differ means: count at full depth.
"""

from __future__ import annotations

from typing import Any

from efficiency.models.sizes import LAYER_FIELDS


def per_layer_lists(config: dict[str, Any], layers: int) -> dict[str, list]:
    """The config's lists with one entry per layer (length equal to the depth; a depth of 1 says nothing)."""
    if layers < 2:
        return {}
    return {key: value for key, value in config.items() if isinstance(value, list) and len(value) == layers}


def _layer_index(key: Any) -> int | None:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    return int(key) if isinstance(key, str) and key.isdigit() else None


def per_layer_dicts(config: dict[str, Any], layers: int) -> dict[str, dict]:
    """The config's mappings keyed by layer index (``per_layer_config: {5: ..., 11: ...}``): settings of some layers."""
    if layers < 2:
        return {}
    return {
        key: value
        for key, value in config.items()
        if "layer" in key  # not id2label, whose keys are class indices
        and isinstance(value, dict)
        and value
        and all((index := _layer_index(k)) is not None and 0 <= index < layers for k in value)
    }


def varying_lists(config: dict[str, Any], layers: int) -> list[str]:
    """Per-layer lists whose entries are not all equal, and per-layer mappings (some layers set apart): layers
    differ, so depth scaling would not be exact."""
    lists = [key for key, value in per_layer_lists(config, layers).items() if any(v != value[0] for v in value)]
    return lists + list(per_layer_dicts(config, layers))


def reduced_depth(config: dict[str, Any], layer_keys: tuple[str, ...], layers: int, depth: int) -> dict[str, Any]:
    """Overrides for a ``depth``-layer copy: each of ``layer_keys`` set to it, each per-layer list cut to it, each
    per-layer mapping kept for the layers the copy has."""
    lists = {key: value[:depth] for key, value in per_layer_lists(config, layers).items()}
    mappings = {
        key: {k: v for k, v in value.items() if _layer_index(k) < depth}
        for key, value in per_layer_dicts(config, layers).items()
    }
    return {**dict.fromkeys(layer_keys, depth), **lists, **mappings}


BACKBONE_STAGE_KEYS = ("stage_names", "out_features", "out_indices")
KV_SHARED_KEY = "num_kv_shared_layers"  # Gemma 3n: its last layers take keys and values from earlier ones
SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "encoder_config", "decoder_config", "backbone_config")


def _prefix_with_every_kind(config: dict[str, Any], layers: int) -> int:
    """The shortest prefix of the per-layer lists that holds every kind of layer they name (five sliding-window
    layers then a full one: 6), so a cut copy still has each kind transformers checks for."""
    needed = 0
    for values in per_layer_lists(config, layers).values():
        seen: list = []
        for index, value in enumerate(values):
            if value not in seen:
                seen.append(value)
                needed = max(needed, index + 1)
    return needed


def shallow_config(config: dict[str, Any], depth: int) -> dict[str, Any]:
    """``config`` with each depth field above ``depth`` cut to it and its per-layer lists with it, sub-configs
    included: a quick copy of an architecture (the coverage benchmark and the tests build these)."""
    out = dict(config)
    for key in LAYER_FIELDS:
        layers = out.get(key)
        if isinstance(layers, int) and not isinstance(layers, bool) and layers > depth:
            prefix = _prefix_with_every_kind(config, layers)
            kept = max(depth, prefix)  # e.g. keep one full-attention layer
            shared = config.get(KV_SHARED_KEY) if key == "num_hidden_layers" else None
            if isinstance(shared, int) and shared > 0:  # the last layers reuse the keys and values of earlier ones:
                kept = min(layers, kept + 1)  # keep one of them, after a layer of every kind to borrow from
                out[KV_SHARED_KEY] = min(shared, max(0, kept - prefix))
            out.update({**reduced_depth(config, (key,), layers, kept)})
            # named per layer; transformers derives them again. Only when stages were cut: a backbone kept whole
            # (Swin's four stages under Mask2Former) keeps the stages it outputs.
            for derived in BACKBONE_STAGE_KEYS if kept < layers else ():
                out.pop(derived, None)
    for sub in SUB_CONFIGS:
        if isinstance(out.get(sub), dict):
            out[sub] = shallow_config(out[sub], depth)
    return out
