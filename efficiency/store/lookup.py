"""The one rule for "does a stored result belong to this setup", used by the runner (reuse unless fresh), the
Ray executor (reuse by hardware id) and the pages (which result a view shows).

A result matches when its model, workload and implementation (a result stored before implementations existed
is sdpa) are the view's, it is of the wanted kind (counted or measured),
it was measured on the wanted hardware id, on this very machine for a ``local-<device>`` id (same CPU model and
core count, or the same GPU: a shared store also holds other machines' ``local-cpu`` results), with the wanted
thread count on a CPU, and with the same torch and transformers releases where both sides know them (a local
build tag such as ``+cpu`` is ignored, so a CPU-only dashboard can reuse what a CUDA node stored). A result marked
noisy (measured under load or with a wide spread: ``Result.noisy``) matches only where ``Wanted.noisy_ok``: the
pages show it, with its mark; a run never reuses it, it measures again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from efficiency.results import DEFAULT_IMPLEMENTATION, Result

SOFTWARE_FIELDS = ("torch", "transformers")
SHAPE_FIELDS = ("seq_len", "image_size", "audio_seconds")
SETUP_FIELDS = ("batch_size", "dtype", "mode")


@dataclass(frozen=True)
class Wanted:
    """What a result must be to stand for a setup. ``workload`` is the normalised workload dict; ``machine``
    is this machine's fingerprint (``cpu_model``, ``logical_cores``, ``gpu``, ``torch``, ``transformers``)."""

    model: str
    workload: dict[str, Any]
    measured: bool
    hardware: str | None = None  # the hardware id a measured result must carry
    device: str | None = None  # for local hardware: the device ("cpu", "cuda:0") it must have run on
    threads: int | None = None  # on a CPU, the thread count it must have used (None: any)
    machine: dict[str, Any] = field(default_factory=dict)
    implementation: str = DEFAULT_IMPLEMENTATION  # the code that ran it (efficiency.results.IMPLEMENTATIONS)
    noisy_ok: bool = True  # False (the runner's reuse): a result marked noisy does not stand for the setup

    @property
    def local(self) -> bool:
        return bool(self.hardware) and str(self.hardware).startswith("local-")


def release(version: Any) -> str:
    """``2.13.0+cu126`` -> ``2.13.0``: the release, without the local build tag."""
    return str(version).split("+", 1)[0]


def same_software(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """True unless a library's release differs where both environments name it."""
    for name in SOFTWARE_FIELDS:
        a, b = have.get(name), want.get(name)
        if a is not None and b is not None and release(a) != release(b):
            return False
    return True


def same_workload(used: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Every field the result used equals the wanted one, and the wanted fields it lacks are only the shape of
    another modality (a text model has no image size; a view's workload names both)."""
    if not used or any(k not in used for k in SETUP_FIELDS):
        return False
    if any(wanted.get(k) != v for k, v in used.items()):
        return False
    return all(k in SHAPE_FIELDS for k in wanted.keys() - used.keys())


def same_machine(environment: dict[str, Any], machine: dict[str, Any], device: str | None) -> bool:
    """A ``local-<device>`` result is this machine's: same GPU model on a GPU, same CPU model and cores on a CPU."""
    if device and not device.startswith("cpu"):
        return bool(environment.get("gpu")) and environment.get("gpu") == machine.get("gpu")
    if environment.get("cpu_model") != machine.get("cpu_model"):
        return False
    cores = environment.get("logical_cores")
    return cores is None or machine.get("logical_cores") is None or cores == machine.get("logical_cores")


def matches(result: Result, wanted: Wanted) -> bool:
    """Whether ``result`` stands for the setup ``wanted`` describes (see the module docstring)."""
    if result.error or result.model != wanted.model or result.measured != wanted.measured:
        return False
    if result.noisy and not wanted.noisy_ok:
        return False
    if result.implementation != wanted.implementation:
        return False
    if not same_workload(result.workload, wanted.workload):
        return False
    hardware = result.hardware
    environment = hardware.environment if hardware is not None else {}
    if not same_software(environment, wanted.machine):
        return False
    if not wanted.measured:
        return True
    if hardware is None or hardware.id != wanted.hardware:
        return False
    if wanted.local:
        if hardware.device != wanted.device or not same_machine(environment, wanted.machine, wanted.device):
            return False
    on_cpu = (hardware.device or "cpu").startswith("cpu")
    return wanted.threads is None or not on_cpu or hardware.threads == wanted.threads
