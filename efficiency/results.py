"""One profile result, typed, from the engine to every edge (CLI JSON, store, pages, experiments, report).

Fields carry their units in their names and hold raw numbers (counts, bytes, FLOPs, milliseconds); formatting
happens at the edge (:mod:`efficiency.units`). :meth:`Result.to_dict` and :meth:`Result.from_dict` are the one
serialisation: the CLI's JSON keys (a public interface) and the store's JSON are this dict. :func:`results_frame`
turns results into the table that analysis and charts read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from efficiency.specs import LOCAL_MODEL_PREFIX

if TYPE_CHECKING:
    import pandas as pd

WEIGHTS_NOTE = "random (built from config; no weights loaded)"
# The code that runs a model (efficiency.measure.implementations): attention kernel, int8 linear layers, compiler,
# runtime. "sdpa" (PyTorch eager with SDPA attention) is what every result used before the axis existed.
IMPLEMENTATIONS = ("eager", "sdpa", "compile", "int8", "onnxruntime")
DEFAULT_IMPLEMENTATION = "sdpa"
# How a person reads each implementation where models are named ("BERT-base (uncased) (torch.compile)").
IMPLEMENTATION_LABELS = {
    "eager": "eager",
    "sdpa": "SDPA",
    "compile": "torch.compile",
    "int8": "int8 dynamic",
    "onnxruntime": "ONNX Runtime",
}
FRAME_COLUMNS = (
    "model",
    "model_id",
    "params",
    "params_active",
    "flops",
    "training_flops",
    "memory_traffic_bytes",
    "latency_ms",
    "throughput_per_s",
    "peak_memory_bytes",
    "training_step_ms",
    "measured",
    "hardware",
    "dtype",
    "batch_size",
    "seq_len",
    "image_size",
    "mode",
    "obtained",
    "implementation",
)


@dataclass(frozen=True)
class Latency:
    """A timing distribution over repeated runs, in milliseconds: the median and its spread."""

    median: float
    p10: float | None = None
    p90: float | None = None
    iqr: float | None = None
    std: float | None = None
    n: int | None = None

    @classmethod
    def from_value(cls, value: Any) -> Latency | None:
        """A stored ``{"median": ..}`` mapping (or a bare number from an older row); None when absent."""
        if isinstance(value, Latency) or value is None:
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in value.items() if k in known}) if "median" in value else None
        return cls(median=float(value))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class MeasuredOn:
    """The hardware a measured number comes from: a hardware id and what this machine detected."""

    id: str
    device: str | None = None
    name: str | None = None
    threads: int | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_value(cls, value: Any) -> MeasuredOn | None:
        if isinstance(value, MeasuredOn) or value is None:
            return value
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            data = {k: v for k, v in value.items() if k in known}
            data.setdefault("id", str(value.get("id") or value.get("name") or "unknown"))
            return cls(**data)
        return cls(id=str(value), name=str(value))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        """ "AMD EPYC (cpu, 2 threads)": the hardware line that goes with a measured number."""
        name = self.name or self.id or "unknown hardware"
        detail = ", ".join(
            str(p)
            for p in (self.device or "", f"{self.threads} thread{'s' * (self.threads != 1)}" if self.threads else "")
            if p
        )
        return f"{name} ({detail})" if detail else str(name)


# Fields written to the JSON even when empty: a static profile always states every counted indicator.
_ALWAYS = (
    "model",
    "name",
    "hf_id",
    "families",
    "workload",
    "inputs",
    "implementation",
    "params",
    "params_active",
    "params_trainable",
    "params_embedding",
    "params_non_embedding",
    "params_as_used",
    "flops",
    "macs",
    "flops_by_counter",
    "counter_differences",
    "counter_errors",
    "training_flops",
    "attention_flops",
    "elementwise_flops",
    "memory_traffic_bytes",
    "training_memory_traffic_bytes",
    "arithmetic_intensity_flops_per_byte",
    "weight_bytes",
    "uncounted_ops",
    "fvcore_skipped_ops",
    "analytic_formula",
    "weights",
    "measured",
    "notes",
    "timings_s",
    "error",
)
_LATENCIES = ("latency_ms", "ttft_ms", "decode_ms_per_token", "training_step_ms")


@dataclass
class Result:
    """Every cost indicator of one model at one setup, counted and (when ``measured``) timed.

    FLOPs count 1 multiply-add as 2; ``macs`` is the separate field. Static fields are counted on a weight-free
    build; measured fields come from a run on ``hardware``. ``error`` set means this model failed (the other
    fields say how far it got); ``error_kind`` says how ("crash", "timeout", "refused", ...).
    """

    model: str
    name: str = ""
    hf_id: str | None = None
    families: list[str] = field(default_factory=list)
    workload: dict[str, Any] = field(default_factory=dict)
    inputs: str = ""  # the dummy inputs built from the model: "text 128 tokens", "audio 10.0 s at 16 kHz"
    implementation: str = DEFAULT_IMPLEMENTATION  # one of IMPLEMENTATIONS; a result stored without it is sdpa
    # counted (static)
    params: int | None = None
    params_active: int | None = None
    params_trainable: int | None = None
    params_embedding: int | None = None
    params_non_embedding: int | None = None
    params_as_used: int | None = None
    flops: int | None = None
    macs: int | None = None
    flops_by_counter: dict[str, int] = field(default_factory=dict)
    counter_differences: dict[str, float] = field(default_factory=dict)
    counter_errors: dict[str, str] = field(default_factory=dict)
    training_flops: int | None = None
    attention_flops: int | None = None
    elementwise_flops: int | None = None
    memory_traffic_bytes: int | None = None
    training_memory_traffic_bytes: int | None = None
    arithmetic_intensity_flops_per_byte: float | None = None
    weight_bytes: int | None = None
    int8_ops: int | None = None  # int8 implementation: its int8 multiply-adds x 2, kept out of ``flops``
    uncounted_ops: list[str] = field(default_factory=list)
    fvcore_skipped_ops: dict[str, int] = field(default_factory=dict)
    analytic_formula: str | None = None
    weights: str = WEIGHTS_NOTE
    notes: list[str] = field(default_factory=list)
    # published quality figures ({benchmark, value, unit, source}); in the JSON only for models that have one
    quality: list[dict[str, Any]] | None = None
    # measured
    measured: bool = False
    hardware: MeasuredOn | None = None
    device: str | None = None
    threads: int | None = None
    dtype: str | None = None
    memory_baseline_note: str | None = None
    latency_ms: Latency | None = None
    throughput_per_s: float | None = None
    tokens_per_s: float | None = None
    achieved_flops_per_s: float | None = None
    peak_memory_bytes: int | None = None
    memory_breakdown: dict[str, Any] | None = None
    ttft_ms: Latency | None = None
    decode_ms_per_token: Latency | None = None
    decode_tokens_per_s: float | None = None
    generation_prompt_tokens: int | None = None
    generation_new_tokens: int | None = None
    generation_batch_size: int | None = None
    training_step_ms: Latency | None = None
    training_samples_per_s: float | None = None
    training_tokens_per_s: float | None = None
    peak_memory_training_bytes: int | None = None
    memory_breakdown_training: dict[str, Any] | None = None
    ray_node: dict[str, Any] | None = None
    setup_s: dict[str, float] | None = None  # one-off seconds before steady state: compile, export, quantize
    # the machine around a measured run and the verdict on it (efficiency.measure.noise); absent for static counts
    noise: dict[str, Any] | None = None
    # how it was obtained
    timings_s: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    reused: bool | None = None
    stored_by: str | None = None
    store_error: str | None = None
    store_id: int | None = None
    created_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer or older program, kept as they were

    @classmethod
    def failure(cls, model: str, workload: dict[str, Any], message: str, kind: str | None = None) -> Result:
        """The result of a model that could not be profiled: its name, its setup and one line saying why."""
        return cls(model=str(model), workload=dict(workload or {}), error=message, error_kind=kind)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """The inverse of :meth:`to_dict`; unknown keys are kept in ``extra`` so nothing stored is lost."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        values["model"] = str(data.get("model") or "")
        for name in _LATENCIES:
            values[name] = Latency.from_value(values.get(name))
        values["hardware"] = MeasuredOn.from_value(values.get("hardware"))
        for name in ("families", "uncounted_ops", "notes"):
            values[name] = list(values.get(name) or [])
        for name in ("workload", "flops_by_counter", "counter_differences", "counter_errors", "fvcore_skipped_ops"):
            values[name] = dict(values.get(name) or {})
        values["timings_s"] = dict(values.get("timings_s") or {})
        values["measured"] = bool(values.get("measured"))
        values["name"] = str(values.get("name") or "")
        values["weights"] = str(values.get("weights") or WEIGHTS_NOTE)
        values["implementation"] = str(values.get("implementation") or DEFAULT_IMPLEMENTATION)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; the counted fields always, measured and run fields when they hold something."""
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name not in _ALWAYS:
                continue
            data[f.name] = value.to_dict() if isinstance(value, (Latency, MeasuredOn)) else value
        return {**self.extra, **data}

    def with_(self, **changes: Any) -> Result:
        """A copy with ``changes`` (e.g. ``reused=True``), leaving this one as it was."""
        return replace(self, **changes)

    @property
    def label(self) -> str:
        """How a person knows the model in a table: its id, or for a config known by its contents its name."""
        return (self.name or self.model) if self.model.startswith(LOCAL_MODEL_PREFIX) else self.model

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def noisy(self) -> bool:
        """Measured under load or with a wide spread (``noise["noisy"]``, the rule in efficiency.measure.noise)."""
        return bool((self.noise or {}).get("noisy"))

    @property
    def mode(self) -> str:
        return str(self.workload.get("mode") or "inference")

    @property
    def peak_memory_for_mode_bytes(self) -> int | None:
        """The peak that belongs to the workload's mode: a training step's peak in training."""
        if self.mode == "training" and self.peak_memory_training_bytes is not None:
            return self.peak_memory_training_bytes
        return self.peak_memory_bytes

    def hardware_text(self) -> str | None:
        """Where a measured number comes from; None for static counts (no hardware involved)."""
        return self.hardware.describe() if self.measured and self.hardware is not None else None


def _number(value: Any) -> float:
    if isinstance(value, Latency):
        value = value.median
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def implementation_label(name: str) -> str:
    """ "torch.compile": an implementation as a person reads it (an unknown one as it is named)."""
    return IMPLEMENTATION_LABELS.get(name, name)


def results_frame(results: Iterable[Result]) -> pd.DataFrame:
    """One row per model and implementation (first wins), raw values, in the column contract of ``analysis`` and
    ``charts``.

    Failed results are left out; latency and training step are medians in ms; in training mode
    ``peak_memory_bytes`` is the training step's peak. Where the rows hold more than one implementation, each row's
    ``model`` is "<model> (<implementation label>)", so every table, chart and legend tells the rows apart.
    """
    import pandas as pd  # lazy: ~0.5 s to import, and the CLI and the workers never draw a table

    kept = [result for result in results if result.model and not result.error]
    several = len({result.implementation for result in kept}) > 1
    records, seen_keys, seen_names = [], set(), set()
    for result in kept:
        model_id = result.model
        if (model_id, result.implementation) in seen_keys:
            continue
        seen_keys.add((model_id, result.implementation))
        name = result.name or model_id
        name = model_id if (name, result.implementation) in seen_names else name
        seen_names.add((name, result.implementation))
        if several:
            name = f"{name} ({implementation_label(result.implementation)})"
        hardware = result.hardware_text()
        records.append(
            {
                "model": name,
                "model_id": model_id,
                **{c: _number(getattr(result, c)) for c in ("params", "params_active", "flops", "training_flops")},
                "memory_traffic_bytes": _number(result.memory_traffic_bytes),
                "latency_ms": _number(result.latency_ms),
                "throughput_per_s": _number(result.throughput_per_s),
                "peak_memory_bytes": _number(result.peak_memory_for_mode_bytes),
                "training_step_ms": _number(result.training_step_ms),
                "measured": result.measured,
                "hardware": hardware,
                "dtype": result.workload.get("dtype"),
                "batch_size": result.workload.get("batch_size"),
                "seq_len": result.workload.get("seq_len"),
                "image_size": result.workload.get("image_size"),
                "mode": result.mode,
                "obtained": f"measured on {hardware}" if result.measured else "counted (static)",
                "implementation": result.implementation,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
    for column in ("batch_size", "seq_len", "image_size"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame
