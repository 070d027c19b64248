"""The static profile the counters fill in, and its conversion to the engine's typed :class:`Result`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from efficiency.counters.params import ParamCounts, weight_bytes
from efficiency.results import Result
from efficiency.specs import Workload
from efficiency.validation import error_line


@dataclass
class StaticProfile:
    """Static cost indicators of one model at one workload. FLOPs: 1 multiply-add = 2 FLOPs."""

    model: str
    workload: dict[str, Any]
    name: str = ""
    hf_id: str | None = None
    families: list[str] = field(default_factory=list)
    inputs: str = ""  # the dummy inputs counted: "text 128 tokens", "audio 10.0 s at 16 kHz", "image 224x224"
    params: ParamCounts | None = None
    flops: int | None = None  # reconciled forward FLOPs: torch's counter with the CPU SDPA gap filled
    flops_by_counter: dict[str, int] = field(default_factory=dict)
    counter_differences: dict[str, float] = field(default_factory=dict)  # relative to the headline
    counter_errors: dict[str, str] = field(default_factory=dict)
    training_flops: int | None = None  # forward + backward, as counted (not assumed 3x)
    attention_flops: int | None = None  # the part of `flops` in attention scores and context
    elementwise_flops: int | None = None  # norms, softmax, activations, adds: a convention, kept apart
    memory_traffic_bytes: int | None = None  # bytes each op reads and writes, eager, at the dtype
    training_memory_traffic_bytes: int | None = None
    uncounted_ops: list[str] = field(default_factory=list)  # arithmetic ops no counter counted
    fvcore_skipped_ops: dict[str, int] = field(default_factory=dict)
    analytic_formula: str | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    op_records: list[Any] = field(default_factory=list, repr=False)

    @property
    def macs(self) -> int | None:
        return None if self.flops is None else self.flops // 2

    @property
    def arithmetic_intensity(self) -> float | None:
        """FLOPs per byte of memory traffic: where the model sits on a roofline."""
        if not self.flops or not self.memory_traffic_bytes:
            return None
        return self.flops / self.memory_traffic_bytes

    def to_result(self) -> Result:
        """The typed result the rest of the engine reads (see :mod:`efficiency.results`)."""
        p = self.params
        return Result(
            model=self.model,
            workload=dict(self.workload),
            name=self.name,
            hf_id=self.hf_id,
            families=list(self.families),
            inputs=self.inputs,
            params=p.total if p else None,
            params_active=p.active if p else None,
            params_trainable=p.trainable if p else None,
            params_embedding=p.embedding if p else None,
            params_non_embedding=p.non_embedding if p else None,
            params_as_used=p.as_used if p else None,
            flops=self.flops,
            macs=self.macs,
            flops_by_counter=dict(self.flops_by_counter),
            counter_differences=dict(self.counter_differences),
            counter_errors=dict(self.counter_errors),
            training_flops=self.training_flops,
            attention_flops=self.attention_flops,
            elementwise_flops=self.elementwise_flops,
            memory_traffic_bytes=self.memory_traffic_bytes,
            training_memory_traffic_bytes=self.training_memory_traffic_bytes,
            arithmetic_intensity_flops_per_byte=self.arithmetic_intensity,
            weight_bytes=weight_bytes(p.total) if p else None,
            uncounted_ops=list(self.uncounted_ops),
            fvcore_skipped_ops=dict(self.fvcore_skipped_ops),
            analytic_formula=self.analytic_formula,
            notes=list(self.notes),
            timings_s=dict(self.timings),
            error=self.error,
        )


def error_profile(model: str, workload: Workload, exc: BaseException) -> StaticProfile:
    """A model that could not be counted: its ``error`` is one line (:func:`efficiency.validation.error_line`: a
    deliberate error's text, else ``Type: first line`` with the traceback in a log file that the line names)."""
    return StaticProfile(model=str(model), workload=workload.to_dict(), error=error_line(exc, log_as=str(model)))
