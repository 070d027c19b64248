"""Dummy inputs for a model and a workload: token ids for text, pixels for vision.

Tensors are created on ``device`` (``meta`` for fvcore's trace, ``cpu`` inside FakeTensorMode for the
static counters, a real device for measurement). Values do not matter for cost, only shapes and dtypes.
"""

from __future__ import annotations

from typing import Any

import torch

from efficiency.models.loading import DTYPE_BY_NAME
from efficiency.specs import ModelSpec, Workload


def interpolate_positions(spec: ModelSpec, workload: Workload) -> bool:
    """ViT-style models need interpolated position embeddings at a non-native image size."""
    native = spec.config.get("image_size")
    return spec.model_type in {"vit", "deit"} and native is not None and int(native) != workload.image_size


def make_inputs(spec: ModelSpec, workload: Workload, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Keyword arguments for ``model(**inputs)``; caches off, so outputs are plain tensors."""
    batch = workload.batch_size
    if spec.modality == "vision":
        size = workload.image_size
        channels = int(spec.config.get("num_channels", 3))
        pixels = torch.zeros(batch, channels, size, size, dtype=DTYPE_BY_NAME[workload.dtype], device=device)
        inputs: dict[str, Any] = {"pixel_values": pixels}
        if interpolate_positions(spec, workload):
            inputs["interpolate_pos_encoding"] = True
        return inputs
    ids = torch.ones(batch, workload.seq_len, dtype=torch.long, device=device)
    inputs = {"input_ids": ids}
    if spec.task == "seq2seq-lm":
        # The decoder sees as many tokens as the encoder: one forward pass of a seq2seq model.
        inputs["decoder_input_ids"] = torch.ones(batch, workload.seq_len, dtype=torch.long, device=device)
    if spec.task in {"causal-lm", "seq2seq-lm"}:
        inputs["use_cache"] = False
    return inputs


def tokens_per_item(spec: ModelSpec, workload: Workload) -> int | None:
    """Tokens one item carries (for tokens/s); None for vision models."""
    return workload.seq_len if spec.modality == "text" else None
