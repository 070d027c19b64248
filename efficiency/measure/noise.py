"""Was a measured number taken on a quiet machine? The load and CPU frequency around a run, and the rule that
marks a result ``noisy`` (with the reason, in words and units).

The record (``Result.noise``) holds: ``load_before`` / ``load_after`` (``os.getloadavg()`` 1-minute average: runnable
threads, all processes), ``cores`` (logical cores), ``others_before_cores`` / ``others_after_cores`` (cores kept
busy by *other* processes during a short sample taken while this job sat idle), ``threads`` (this run's own),
``freq_before_mhz`` / ``freq_after_mhz`` / ``freq_max_mhz`` (``psutil.cpu_freq()``, "unknown" where the system does
not say), ``spread_ratio`` (the worst p90/p10 of the run's latencies) with ``spread_of`` (which one), ``noisy``,
``reason`` and the two bounds the rule used.

The rule (:func:`assess`), two bounds:

- **Load:** noisy when other processes keep more than ``LOAD_FRACTION`` (0.5) of the logical cores busy before
  or after the run: on 2 cores, more than one core's worth. "Other processes" at each end is the larger of the
  idle-time sample and the 1-minute load less this run's own thread count. The load average alone is not the
  rule: it lags a minute, so it counts this run's own threads and those of the job that ran just before it
  (the runner runs measured jobs one after another); a job contributes at most its thread count, hence the
  subtraction. Half the cores is where a shared core starts to show: the timed threads then share cores with
  others for part of the run.
- **Spread:** noisy when p90/p10 of a timing is above ``SPREAD_BOUND`` (1.5): the slow tenth of repeats took more
  than 1.5x the fast tenth. A quiet CPU run of a model keeps it near 1.0-1.2; preemption, frequency changes
  and a busy neighbour widen it.

CPU frequency is recorded, not judged: an idle core reports a low clock and a busy one its boost, and many
virtual machines report one fixed figure (or no maximum), so a difference between the two ends says little alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

LOAD_FRACTION = 0.5  # other processes busy on more than this fraction of the logical cores: noisy
SPREAD_BOUND = 1.5  # p90 / p10 of a timing above this: noisy
SAMPLE_S = 0.5  # seconds of each idle sample of what other processes keep busy
UNKNOWN = "unknown"
# psutil.cpu_times() fields that are busy time on some core (guest time is inside user time on Linux);
# steal is time the hypervisor gave to other machines: busy for someone else, so noise for us.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


@dataclass(frozen=True)
class MachineState:
    """The machine at one instant around a run: 1-min load, cores busy by others, clock (MHz; None unknown)."""

    load_1min: float | None
    others_busy_cores: float | None
    freq_mhz: float | None
    freq_max_mhz: float | None


def busy_cores(before: Mapping[str, float], after: Mapping[str, float], own_cpu_s: float, wall_s: float) -> float:
    """Cores kept busy by other processes over ``wall_s`` seconds: the busy CPU-seconds of every core between two
    ``psutil.cpu_times()`` readings, less ``own_cpu_s`` (this process's), per second of wall time; never below 0."""
    if wall_s <= 0:
        raise ValueError(f"wall_s: must be positive, got {wall_s} s")
    busy_s = sum(after.get(name, 0.0) - before.get(name, 0.0) for name in BUSY_FIELDS)
    return max(0.0, (busy_s - own_cpu_s) / wall_s)


def _frequency() -> tuple[float | None, float | None]:
    """Current and maximum clock in MHz where the system reports them (0 or absent: unknown)."""
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, RuntimeError):  # e.g. no cpufreq in a container: the clock is unknown
        return None, None
    if freq is None:
        return None, None
    return (float(freq.current) or None), (float(freq.max) or None)


def sample_state(sample_s: float = SAMPLE_S) -> MachineState:
    """This machine now, while the calling process is idle: the 1-minute load, what other processes keep busy
    over ``sample_s`` seconds (this process's own CPU time taken out), and the CPU clock."""
    me = psutil.Process()
    own_before, cpu_before, start = me.cpu_times(), psutil.cpu_times(), time.perf_counter()
    time.sleep(sample_s)
    own_after, cpu_after, wall_s = me.cpu_times(), psutil.cpu_times(), time.perf_counter() - start
    own_s = (own_after.user + own_after.system) - (own_before.user + own_before.system)
    others = busy_cores(cpu_before._asdict(), cpu_after._asdict(), own_s, wall_s)
    try:
        load = float(os.getloadavg()[0])
    except OSError:  # getloadavg is absent on some systems: the load is unknown, the sample still counts
        load = None
    current, maximum = _frequency()
    return MachineState(load_1min=load, others_busy_cores=others, freq_mhz=current, freq_max_mhz=maximum)


def spread_ratio(latency: Any) -> float | None:
    """p90 / p10 of a timing (a ``Latency`` or its dict); None without both, or with p10 not above 0 ms."""
    p10 = getattr(latency, "p10", None) if not isinstance(latency, Mapping) else latency.get("p10")
    p90 = getattr(latency, "p90", None) if not isinstance(latency, Mapping) else latency.get("p90")
    if p10 is None or p90 is None or p10 <= 0:
        return None
    return float(p90) / float(p10)


def others_load(state: MachineState, threads: int) -> float | None:
    """Cores' worth of other processes at one end of a run: the larger of the idle sample and the 1-minute load
    less this run's ``threads`` (a run, or the one just before it, adds at most its threads to that average)."""
    signs = [state.others_busy_cores]
    if state.load_1min is not None:
        signs.append(max(0.0, state.load_1min - threads))
    known = [s for s in signs if s is not None]
    return max(known) if known else None


def _mhz(value: float | None) -> float | str:
    return round(value, 1) if value is not None else UNKNOWN


def assess(
    before: MachineState,
    after: MachineState,
    cores: int,
    threads: int,
    timings: Mapping[str, Any],
    load_fraction: float = LOAD_FRACTION,
    spread_bound: float = SPREAD_BOUND,
) -> dict[str, Any]:
    """The ``noise`` record of one run (see the module docstring for the rule and every key). ``timings`` maps
    a timing's name (``latency_ms``, ``training_step_ms``, ...) to its ``Latency`` or dict; absent ones skipped."""
    if cores < 1 or threads < 1:
        raise ValueError(f"cores and threads: must be at least 1, got {cores} cores, {threads} threads")
    limit = load_fraction * cores
    reasons = []
    for end, state in (("before", before), ("after", after)):
        others = others_load(state, threads)
        if others is not None and others > limit:
            load = f"1-min load {state.load_1min:.2f}; " if state.load_1min is not None else ""
            reasons.append(
                f"load by other processes {others:.1f} on {cores} cores {end} the run "
                f"({load}bound {limit:g} = {load_fraction:g} x cores)"
            )
    ratios = {name: r for name, value in timings.items() if (r := spread_ratio(value)) is not None}
    worst = max(ratios, key=ratios.get) if ratios else None
    if worst is not None and ratios[worst] > spread_bound:
        reasons.append(f"{worst} p90/p10 = {ratios[worst]:.2f} (bound {spread_bound:g})")
    return {
        "load_before": before.load_1min,
        "load_after": after.load_1min,
        "cores": cores,
        "threads": threads,
        "others_before_cores": _round(before.others_busy_cores),
        "others_after_cores": _round(after.others_busy_cores),
        "freq_before_mhz": _mhz(before.freq_mhz),
        "freq_after_mhz": _mhz(after.freq_mhz),
        "freq_max_mhz": _mhz(before.freq_max_mhz or after.freq_max_mhz),
        "spread_ratio": round(ratios[worst], 3) if worst is not None else None,
        "spread_of": worst,
        "noisy": bool(reasons),
        "reason": "; ".join(reasons) if reasons else "quiet: load and spread within bounds",
        "load_fraction_bound": load_fraction,
        "spread_ratio_bound": spread_bound,
    }


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
