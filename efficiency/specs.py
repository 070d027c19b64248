"""Validated configuration dataclasses: what to profile, under which workload, on which hardware.

Every check raises ``ValueError`` naming the field, so the CLI and the pages can show one clear line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

LOCAL_MODEL_PREFIX = "local:"  # the id of a model known by its config's contents (see models.loading)

MODALITIES = ("text", "vision", "audio", "multimodal")  # multimodal: image and text together
TASKS = ("base", "causal-lm", "seq2seq-lm", "image-classification")
FAMILIES = (
    "dense",
    "parameter-shared",
    "sparse-moe",
    "cnn",
    "vision-transformer",
    "encoder",
    "decoder",
    "encoder-decoder",
)
DTYPES = ("float32", "bfloat16", "float16")
MODES = ("inference", "training")
MAX_BATCH_SIZE = 65_536
MAX_SEQ_LEN = 1_048_576
MAX_IMAGE_SIZE = 4_096
MAX_AUDIO_SECONDS = 3_600.0  # an hour of audio in one item


@dataclass(frozen=True)
class ModelSpec:
    """One model, as the catalog (or a local config.json) describes it."""

    id: str
    model_type: str
    task: str
    modality: str
    config: dict[str, Any]
    name: str = ""
    hf_id: str | None = None
    aliases: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    note: str = ""
    source: str = ""
    published: dict[str, Any] = field(default_factory=dict)
    origin: str = "catalog"  # "catalog", "local", or "hub"
    config_sha256: str | None = None  # a local config's identity: sha256 of its canonical contents (models.loading)

    def __post_init__(self) -> None:
        if not self.id or not isinstance(self.id, str):
            raise ValueError("model id: must be a non-empty string")
        if not self.model_type:
            raise ValueError(f"model_type of {self.id!r}: must be set")
        if self.task not in TASKS:
            raise ValueError(f"task of {self.id!r}: {self.task!r} is not one of {', '.join(TASKS)}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality of {self.id!r}: {self.modality!r} is not one of {', '.join(MODALITIES)}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"families of {self.id!r}: unknown {unknown}; accepted: {', '.join(FAMILIES)}")
        if not isinstance(self.config, dict):
            raise ValueError(f"config of {self.id!r}: must be a mapping")
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "families", tuple(self.families))
        if not self.name:
            object.__setattr__(self, "name", self.id)

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def is_moe(self) -> bool:
        return "sparse-moe" in self.families

    @property
    def is_causal_lm(self) -> bool:
        return self.task == "causal-lm"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        data["families"] = list(self.families)
        return data


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name}: {value} is outside the accepted range {low}..{high}")
    return value


@dataclass(frozen=True)
class Workload:
    """The setup every number is reported with: batch, length, image size or clip length, dtype, mode."""

    batch_size: int = 1
    seq_len: int = 128
    image_size: int = 224
    dtype: str = "float32"
    mode: str = "inference"
    audio_seconds: float = 10.0  # the clip length of a speech model (its sampling rate comes from its config)

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        _check_int("seq_len", self.seq_len, 1, MAX_SEQ_LEN)
        _check_int("image_size", self.image_size, 8, MAX_IMAGE_SIZE)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        seconds = self.audio_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ValueError(f"audio_seconds: must be a number of seconds, got {seconds!r}")
        if not 0.1 <= seconds <= MAX_AUDIO_SECONDS:
            raise ValueError(f"audio_seconds: {seconds:g} is outside the accepted range 0.1..{MAX_AUDIO_SECONDS:g} s")
        object.__setattr__(self, "audio_seconds", float(seconds))

    @property
    def bytes_per_element(self) -> int:
        return 4 if self.dtype == "float32" else 2

    def for_modality(self, modality: str) -> dict[str, Any]:
        """The fields that matter for this modality (a text model has no image size)."""
        shape = {
            "text": {"seq_len": self.seq_len},
            "audio": {"seq_len": self.seq_len, "audio_seconds": self.audio_seconds},  # seq_len: decoder tokens
            "multimodal": {"seq_len": self.seq_len, "image_size": self.image_size},
        }.get(modality, {"image_size": self.image_size})
        return {"batch_size": self.batch_size, **shape, "dtype": self.dtype, "mode": self.mode}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HardwareSpec:
    """A chip's datasheet figures: dense peak FLOP/s per dtype, bandwidth, capacity, power."""

    id: str
    name: str
    kind: str  # "gpu", "tpu", "cpu", "soc", "edge"
    peak_flops: dict[str, float]  # dtype -> FLOP/s (dense)
    memory_bandwidth_bytes_per_s: float
    memory_bytes: float
    tdp_watts: float | None = None
    source: str = ""
    source_note: str = ""
    measured_here: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("hardware id: must be a non-empty string")
        if not self.peak_flops:
            raise ValueError(f"peak_flops of {self.id!r}: at least one dtype is required")
        for dtype, value in self.peak_flops.items():
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"peak_flops[{dtype!r}] of {self.id!r}: must be a positive FLOP/s figure")
        if self.memory_bandwidth_bytes_per_s <= 0:
            raise ValueError(f"memory_bandwidth_bytes_per_s of {self.id!r}: must be positive")
        if self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes of {self.id!r}: must be positive")

    def peak_for(self, dtype: str) -> float:
        """Peak FLOP/s for a dtype, falling back from bf16 to fp16 and to fp32 where a chip lists fewer."""
        order = {
            "float32": ("float32",),
            "bfloat16": ("bfloat16", "float16", "float32"),
            "float16": ("float16", "bfloat16", "float32"),
            "int8": ("int8", "bfloat16", "float16", "float32"),
        }.get(dtype, (dtype,))
        for key in order:
            if key in self.peak_flops:
                return float(self.peak_flops[key])
        raise ValueError(f"hardware {self.id!r} lists no peak FLOP/s for {dtype}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
