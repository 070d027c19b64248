"""What a named experiment is, what one run of it returns, and the verdict every run ends with.

A run keeps its raw numbers (a DataFrame whose column names carry their units) and, per column, how the
number came about: ``measured`` here, ``counted`` from the model, ``estimated`` by a model of a chip, a
``setup`` value, or ``derived`` from other columns. The notice, the verdict and the figure are all computed
from that table, so a bundled run and a live run tell their story with the same code.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency.analysis.rankings import INDICATORS, format_ratio

SOURCES = ("measured", "counted", "estimated", "setup", "derived", "per-row")
"""``per-row``: measured where the row's ``measured`` column is true, else estimated (roofline)."""

Progress = Callable[[float, str], None]
"""``progress(fraction 0..1, what is happening)``, called from the process that runs the experiment."""

# Two values closer than this are "about equal" for a verdict: counts are exact, so 2% is a real
# difference of design; measured times also need their p10-p90 ranges apart (see ``_noise_overlap``).
TOLERANCE = {
    "params": 0.02,
    "params_active": 0.02,
    "flops": 0.05,
    "training_flops": 0.05,
    "memory_traffic_bytes": 0.05,
    "latency_ms": 0.10,
    "throughput_per_s": 0.10,
    "training_step_ms": 0.10,
    "peak_memory_bytes": 0.10,
}
SPREAD = {"latency_ms": "latency", "training_step_ms": "training_step"}
FEW_SAMPLES = 3


def silent(fraction: float, message: str) -> None:
    """The progress callback used when the caller gives none."""


@dataclass(frozen=True)
class Analysis:
    """What a run says in words: the generated "what to notice", the verdict line, and whether it shows the effect."""

    notice: str
    verdict: str
    shows_effect: bool


@dataclass(frozen=True)
class Experiment:
    """A named teaching experiment: a default setup, a quick one for tests, and how to read its numbers.

    ``collect(setup, progress)`` returns the raw table and the source of each column; ``analyse`` and
    ``figure`` only read that table, so bundled results are re-explained with the same code.
    """

    name: str
    title: str
    description: str
    default: dict[str, Any]
    quick: dict[str, Any]
    collect: Callable[[dict[str, Any], Progress], tuple[pd.DataFrame, dict[str, str]]]
    analyse: Callable[[pd.DataFrame], Analysis]
    figure: Callable[[pd.DataFrame, bool], go.Figure]
    measures: str = "latency measured on this CPU"  # one line for lists: what the default run measures

    def setup(self, quick: bool = False) -> dict[str, Any]:
        return dict(self.quick if quick else self.default)

    def run(self, quick: bool = False, progress: Progress | None = None) -> ExperimentResult:
        """Collect the numbers on this machine now, then explain them."""
        progress = progress or silent
        setup = self.setup(quick)
        load_before = load_average()
        started = time.perf_counter()
        data, sources = self.collect(setup, progress)
        elapsed = time.perf_counter() - started
        machine = machine_info(setup.get("threads"), load_before)
        progress(1.0, "done")
        return self.result(data, sources, setup, machine, elapsed, quick=quick)

    def result(
        self,
        data: pd.DataFrame,
        sources: dict[str, str],
        setup: dict[str, Any],
        machine: dict[str, Any],
        elapsed_s: float,
        quick: bool = False,
        bundled: bool = False,
    ) -> ExperimentResult:
        unknown = {c: s for c, s in sources.items() if s not in SOURCES}
        if unknown:
            raise ValueError(f"{self.name}: unknown sources {unknown}; accepted: {', '.join(SOURCES)}")
        analysis = self.analyse(data)
        return ExperimentResult(
            name=self.name,
            title=self.title,
            data=data,
            sources=dict(sources),
            notice=analysis.notice + busy_note(machine, setup, sources),
            verdict=analysis.verdict,
            shows_effect=analysis.shows_effect,
            setup=setup,
            machine=machine,
            elapsed_s=elapsed_s,
            quick=quick,
            bundled=bundled,
            experiment=self,
        )


@dataclass
class ExperimentResult:
    """One run: raw numbers, their sources, and the words and chart computed from them."""

    name: str
    title: str
    data: pd.DataFrame
    sources: dict[str, str]
    notice: str
    verdict: str
    shows_effect: bool
    setup: dict[str, Any]
    machine: dict[str, Any]
    elapsed_s: float
    quick: bool = False
    bundled: bool = False
    experiment: Experiment | None = field(default=None, repr=False)

    def chart(self, presentation: bool = False) -> go.Figure:
        """The figure for this run; ``presentation`` uses fonts readable from the back of a room."""
        if self.experiment is None:
            raise ValueError(f"{self.name}: this result has no experiment attached to draw it")
        return self.experiment.figure(self.data, presentation)

    @property
    def figure(self) -> go.Figure:
        return self.chart(False)

    @property
    def machine_label(self) -> str:
        """ "AMD EPYC, 2 threads, torch 2.13.0" for "measured on ..." labels."""
        return machine_label(self.machine)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the table as column lists (NaN as null), no figure (it is rebuilt from the table)."""
        table = {c: [_plain(v) for v in self.data[c].tolist()] for c in self.data.columns}
        return {
            "name": self.name,
            "title": self.title,
            "columns": list(self.data.columns),
            "data": table,
            "sources": self.sources,
            "notice": self.notice,
            "verdict": self.verdict,
            "shows_effect": self.shows_effect,
            "setup": self.setup,
            "machine": self.machine,
            "elapsed_s": round(self.elapsed_s, 2),
            "quick": self.quick,
        }


def result_from_dict(experiment: Experiment, record: dict[str, Any], bundled: bool = True) -> ExperimentResult:
    """Rebuild a result from ``to_dict`` output; notice and verdict are re-derived from the stored numbers."""
    data = pd.DataFrame({c: record["data"][c] for c in record["columns"]}, columns=record["columns"])
    return experiment.result(
        data,
        record["sources"],
        record["setup"],
        record["machine"],
        float(record["elapsed_s"]),
        quick=bool(record.get("quick", False)),
        bundled=bundled,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value


def busy_note(machine: dict[str, Any], setup: dict[str, Any], sources: dict[str, str]) -> str:
    """A warning when other work already loaded the CPUs a timed run needed: its timings are noisy."""
    load = machine.get("load_average_1m_start")
    cpus = machine.get("usable_cpus") or machine.get("logical_cores") or 1
    threads = setup.get("threads") or cpus
    if load is None or not any(s in ("measured", "per-row") for s in sources.values()):
        return ""
    if load <= max(0.5, cpus - threads + 0.5):
        return ""
    return (
        f" Note: other work was running when this run started (load average {load:.1f} on {cpus} CPUs for "
        f"{threads} measuring thread{'s' if threads != 1 else ''}), so its timings are noisy."
    )


def load_average() -> float | None:
    """The 1-minute load average: a busy machine makes timings noisy, so every run records it."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_info(threads: int | None, load_before: float | None = None) -> dict[str, Any]:
    """The machine and software behind measured numbers, the date, and the load during the run."""
    from efficiency.hardware.detect import environment_fingerprint

    env = environment_fingerprint(threads)
    return {
        **env,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1m_start": load_before,
        "load_average_1m_end": load_average(),
    }


def machine_label(machine: dict[str, Any]) -> str:
    parts = [str(machine.get("cpu_model") or "unknown CPU")]
    if machine.get("threads"):
        parts.append(f"{machine['threads']} thread{'s' if machine['threads'] != 1 else ''}")
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']}")
    return ", ".join(parts)


# ---- verdicts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairVerdict:
    """How two rows compare under each indicator, with "about equal" allowed (tolerance and noise)."""

    a: str
    b: str
    a_better: list[str]
    b_better: list[str]
    equal: list[str]
    details: dict[str, str]
    strength: float = 0.0  # spread of log cost ratios across indicators: how strongly they disagree

    @property
    def disagrees(self) -> bool:
        """Opposite orders, or one indicator calling them equal while another tells them clearly apart."""
        return bool(self.a_better and self.b_better) or bool(self.equal and (self.a_better or self.b_better))

    def line(self) -> str:
        def names(columns: list[str]) -> str:
            return ", ".join(f"{INDICATORS[c].phrase} {self.details[c]}" for c in columns)

        parts = []
        if self.a_better:
            parts.append(f"{names(self.a_better)} ranked {self.a} < {self.b}")
        if self.b_better:
            parts.append(f"{names(self.b_better)} ranked {self.b} < {self.a}")
        if self.equal:
            parts.append(f"{names(self.equal)} about equal")
        if not parts:
            return f"not shown in this run: no indicator has values for both {self.a} and {self.b}"
        outcome = "disagreement" if self.disagrees else "no disagreement in this run"
        return f"{'; '.join(parts)}: {outcome}"


def _noise_overlap(data: pd.DataFrame, a: int, b: int, column: str) -> bool:
    """True when two measured times' p10-p90 ranges overlap: the run cannot tell them apart."""
    prefix = SPREAD.get(column)
    low, high = f"{prefix}_p10_ms", f"{prefix}_p90_ms"
    if prefix is None or low not in data.columns or high not in data.columns:
        return False
    ranges = [(data.loc[i, low], data.loc[i, high]) for i in (a, b)]
    if any(pd.isna(x) for pair in ranges for x in pair):
        return False
    return ranges[0][0] <= ranges[1][1] and ranges[1][0] <= ranges[0][1]


def compare(data: pd.DataFrame, label: str, a: str, b: str, indicators: Sequence[str]) -> PairVerdict:
    """Compare rows ``a`` and ``b`` (matched on column ``label``) under each indicator with values for both."""
    rows = {str(v): i for i, v in zip(data.index, data[label])}
    missing = [x for x in (a, b) if x not in rows]
    if missing:
        raise ValueError(f"compare: {missing} not among {list(rows)}")
    ia, ib = rows[a], rows[b]
    a_better, b_better, equal, details = [], [], [], {}
    logs = []
    for column in indicators:
        if column not in data.columns:
            continue
        va, vb = data.loc[ia, column], data.loc[ib, column]
        if pd.isna(va) or pd.isna(vb) or va <= 0 or vb <= 0:
            continue
        ind = INDICATORS[column]
        cost = va / vb if ind.lower_is_better else vb / va  # > 1: a costs more
        if max(cost, 1 / cost) - 1 <= TOLERANCE.get(column, 0.05) or _noise_overlap(data, ia, ib, column):
            equal.append(column)
            details[column] = f"({pair_text(column, va, vb)})"
            logs.append(0.0)
            continue
        first, second = (vb, va) if cost > 1 else (va, vb)  # in the order the line ranks them
        details[column] = f"({pair_text(column, first, second)}, {times(max(va, vb) / min(va, vb))})"
        (b_better if cost > 1 else a_better).append(column)
        logs.append(math.log(cost))
    return PairVerdict(a, b, a_better, b_better, equal, details, max(logs) - min(logs) if logs else 0.0)


def strongest(
    data: pd.DataFrame, label: str, indicators: Sequence[str], needs: Sequence[str] = ()
) -> PairVerdict | None:
    """The most telling disagreeing pair of rows (see ``_rank``); ``needs``: one of these indicators must take
    part in the disagreement (e.g. a measured one). None when no pair disagrees."""
    best: PairVerdict | None = None
    for a, b in combinations([str(v) for v in data[label]], 2):
        verdict = compare(data, label, a, b, indicators)
        if not verdict.disagrees:
            continue
        if needs and not set(needs) & set(verdict.a_better + verdict.b_better + verdict.equal):
            continue
        if best is None or _rank(verdict) > _rank(best):
            best = verdict
    return best


def _rank(verdict: PairVerdict) -> tuple[bool, float]:
    """Opposite orders beat "equal by one, apart by another"; then the wider spread of cost ratios wins."""
    return bool(verdict.a_better and verdict.b_better), verdict.strength


def verdict_line(verdict: PairVerdict | None, fallback: str, data: pd.DataFrame | None = None) -> tuple[str, bool]:
    """The verdict sentence and whether the run shows the misnomer; honest when it does not, and when the
    timings behind it rest on fewer than ``FEW_SAMPLES`` timed runs (``latency_samples`` in ``data``)."""
    if verdict is None or not verdict.disagrees:
        return f"Not shown in this run: {fallback}", False
    line = verdict.line()
    timed = [c for c in ("latency_ms", "throughput_per_s") if c in verdict.a_better + verdict.b_better + verdict.equal]
    if data is not None and timed and "latency_samples" in data.columns:
        fewest = data["latency_samples"].min()
        if pd.notna(fewest) and fewest < FEW_SAMPLES:
            line += f" (latency from as few as {fewest:g} timed run(s): noisy)"
    return line, True


def pair_text(column: str, a: float, b: float) -> str:
    """ "13.5 vs 13.6 M params": the unit once when both values share it."""
    a_text, b_text = fmt(column, a), fmt(column, b)
    a_head, _, a_unit = a_text.rpartition(" ")
    if a_head and b_text.endswith(" " + a_unit):
        return f"{a_head} vs {b_text}"
    return f"{a_text} vs {b_text}"


def times(value: float) -> str:
    """A ratio for sentences: "3.4x", and "1.00x" (not "1x") when two values are within 5%."""
    if value is None or pd.isna(value) or not math.isfinite(value):
        return "n/a"
    return f"{value:.2f}x" if abs(value - 1) < 0.05 else format_ratio(value)


def ratio(new: float, old: float) -> str:
    return times(new / old) if old and not pd.isna(old) and not pd.isna(new) else "n/a"


def grew(new: float, old: float) -> str:
    """ "grew 2.6x" or "fell to 0.4x": a sentence must not say a value grew when it shrank."""
    if not old or pd.isna(old) or pd.isna(new):
        return "could not be compared"
    return f"grew {times(new / old)}" if new >= old else f"fell to {times(new / old)}"


def fmt(column: str, value: float) -> str:
    return INDICATORS[column].format(value)
