"""A profiling job as the runner takes it: what to run, how, the limits it runs under, and the result it gets
if it fails.

Kept apart from the process plumbing (:mod:`efficiency.run.worker`) and the executors (:mod:`efficiency.run.runner`,
which re-exports ``Job``, ``error_result`` and ``one_line``) so each reads on its own; validation errors name
the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from efficiency.results import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS
from efficiency.validation import error_line

DEFAULT_TARGET = "efficiency.run.jobs:run_job"
DEFAULT_TIMEOUT_S = 300.0
METRICS = ("static", "all")
TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

# The default memory cap: what is available when a job starts, less a reserve for the system and the dashboard
# (a tenth of it, at least 1 GiB): "available" already leaves out what other programs use, which a fraction of
# the total would not (on a shared machine the total is not ours to take). Never below a floor a small job needs.
MEMORY_RESERVE_FRACTION = 0.10
MEMORY_RESERVE_MIN_BYTES = 2**30
MEMORY_CAP_FLOOR_BYTES = 256 * 2**20

ProgressCallback = Callable[[str, str, float], None]
"""``on_progress(model, phase, fraction)`` in the parent: "started" 0.0, the target's own phases, then
"finished" or "failed" 1.0; a job answered without running gets only "reused" or "refused" 1.0."""


@dataclass
class Job:
    """One profile to run: what, how, and the limits it runs under.

    ``workload`` is part of the store key, so pass it normalised (``Workload.for_modality``): a text
    model's workload without an image size. ``target`` is called as ``target(job_dict, progress)``.
    ``memory_cap_bytes`` None means the default cap of the machine the job runs on (``default_memory_cap_bytes``,
    taken when it starts): every job runs under a cap.
    """

    model: str
    workload: dict[str, Any] = field(default_factory=dict)
    metrics: str = "all"
    device: str = "cpu"
    threads: int | None = None
    repeats: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_cap_bytes: int | None = None
    target: str = DEFAULT_TARGET
    hardware: str | None = None  # hardware id for the store key; None means this machine's ``local-<device>``
    implementation: str = DEFAULT_IMPLEMENTATION  # the code that runs the model; part of the store key

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("job model: must be a non-empty string")
        if not isinstance(self.workload, dict):
            raise ValueError(f"job workload of {self.model!r}: must be a mapping")  # noqa: TRY004
        if self.metrics not in METRICS:
            raise ValueError(f"job metrics: {self.metrics!r} is not one of {', '.join(METRICS)}")
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"job implementation: {self.implementation!r} is not one of {', '.join(IMPLEMENTATIONS)}")
        for name in ("threads", "repeats", "memory_cap_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"job {name}: must be a whole number of at least 1, got {value!r}")
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
            raise ValueError(f"job timeout_s: must be a number of seconds, got {timeout!r}")
        if timeout <= 0:
            raise ValueError(f"job timeout_s: must be above 0, got {timeout!r}")
        if not isinstance(self.target, str) or not TARGET_PATTERN.match(self.target):
            raise ValueError(f"job target: {self.target!r} is not a 'module:function' path")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hardware_id(self) -> str:
        return self.hardware or f"local-{self.device}"


def usable_memory(available: int) -> int:
    """What a job may use of ``available`` bytes: all but the reserve, and at least the floor."""
    reserve = max(MEMORY_RESERVE_MIN_BYTES, int(available * MEMORY_RESERVE_FRACTION))
    return max(MEMORY_CAP_FLOOR_BYTES, available - reserve)


def default_memory_cap_bytes() -> int:
    """The cap of a job that names none: this machine's available memory now, less the reserve."""
    return usable_memory(psutil.virtual_memory().available)


def error_result(job: Job, message: str, kind: str) -> dict[str, Any]:
    """The result a failed job gets: enough for the UI to name the model, the setup and what happened."""
    return {
        "model": job.model,
        "workload": dict(job.workload),
        "implementation": job.implementation,
        "error": message,
        "error_kind": kind,
        "measured": False,
    }


def one_line(error: BaseException, log_as: str | None = None) -> str:
    """``Type: first line of the message`` (a deliberate error's line alone), cut, without a traceback: the one rule,
    :func:`efficiency.validation.error_line`; with ``log_as``, an unexpected error's traceback goes to a log file
    that the line names."""
    return error_line(error, log_as)
