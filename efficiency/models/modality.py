"""A config's modality and task, from what transformers' own model class for it declares (never from a family list).

The base class (``AutoModel``'s) names its main input: ``pixel_values`` is vision, ``input_values`` (waveform) or
``input_features`` (log-mel, filter banks) is audio; a model taking both token ids and pixels is multimodal.
"""

from __future__ import annotations

import inspect
from functools import lru_cache

TASK_MAPPINGS = {
    "causal-lm": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "seq2seq-lm": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "image-classification": "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",
}
AUDIO_INPUTS = {"input_values", "input_features", "audio_values", "audio_mel"}
IMAGE_TOKEN_KEYS = ("image_token_id", "image_token_index")
PIXEL_INPUTS = ("pixel_values", "pixel_values_videos")  # images; video clips (V-JEPA 2, VideoPrism)


@lru_cache(maxsize=1024)
def _base_class_declares(model_type: str) -> tuple[str, bool, bool] | None:
    """(main input, takes input_ids, takes pixel values) of transformers' base class, or None if it has none. A
    vision tower fed flattened patches and their grid (``grid_thw``) takes pixel values too."""
    import transformers  # lazy: imports torch
    from transformers.models.auto import modeling_auto  # lazy: imports torch

    name = modeling_auto.MODEL_MAPPING_NAMES.get(model_type)
    if isinstance(name, (list, tuple)):
        name = name[0]
    try:
        cls = getattr(transformers, name) if name else None
    except (AttributeError, ImportError):  # a class whose optional dependency is missing
        return None
    if cls is None:
        return None
    params = inspect.signature(cls.forward).parameters
    pixels = any(name in params for name in PIXEL_INPUTS) or any(name.endswith("grid_thw") for name in params)
    main = getattr(cls, "main_input_name", "input_ids")
    if main == "pixel_values" and not pixels and "input_ids" in params:  # a text tower that inherits its family's
        main = "input_ids"  # main input name (SAM 3 LiteText's text encoder)
    return main, "input_ids" in params, pixels


def infer_modality(model_type: str, config: dict, vision_types: set[str]) -> str:
    """``vision``, ``audio``, ``multimodal`` (image and text) or ``text`` (also the answer when unsure)."""
    if model_type in vision_types:
        return "vision"
    declared = _base_class_declares(model_type)
    if declared is None:
        return "text"
    main, takes_ids, takes_pixels = declared
    if main in AUDIO_INPUTS:
        return "audio"
    if takes_ids and takes_pixels:
        return "multimodal"
    if main in PIXEL_INPUTS or takes_pixels and not takes_ids:
        return "vision"
    if "vision_config" in config or any(key in config for key in IMAGE_TOKEN_KEYS):
        return "multimodal"
    return "text"


def supported_task(model_type: str, task: str) -> str:
    """``task`` when transformers has that head for this architecture, else ``base`` (Whisper's
    ``ForConditionalGeneration`` is a speech head, not a text seq2seq one)."""
    if task not in TASK_MAPPINGS:
        return task
    from transformers.models.auto import modeling_auto  # lazy: imports torch

    return task if model_type in getattr(modeling_auto, TASK_MAPPINGS[task]) else "base"
