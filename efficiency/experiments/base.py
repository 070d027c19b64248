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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import Drawn, Fact, Headline, check, table_drawn
from efficiency.analysis.findings import Verdict
from efficiency.analysis.rankings import INDICATORS
from efficiency.hardware.detect import environment_fingerprint

SOURCES = ("measured", "counted", "estimated", "setup", "derived", "per-row")
"""``per-row``: measured where the row's ``measured`` column is true, else estimated (roofline)."""

Progress = Callable[[float, str], None]
"""``progress(fraction 0..1, what is happening)``, called from the process that runs the experiment."""

FEW_SAMPLES = 3


def silent(fraction: float, message: str) -> None:
    """The progress callback used when the caller gives none."""


@dataclass(frozen=True)
class Analysis:
    """What a run says in words: the generated "what to notice", the verdict line, and whether it shows the effect."""

    notice: str
    verdict: str
    shows_effect: bool
    claims: tuple[Fact, ...] = ()  # every comparison the verdict states, checked against the run's table


@dataclass(frozen=True)
class Knob:
    """A setting a person may change before a live run (the Experiments page shows it, the CLI takes it as
    ``--set KEY=VALUE``): a number, or with ``per_model`` one number per model of the setup (``{model: value}``,
    prefilled by ``default_for(model)``)."""

    key: str
    label: str
    help: str
    minimum: float = 0.0
    per_model: bool = False
    default_for: Callable[[str], float | None] | None = None


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
    drawn: Callable[[pd.DataFrame], Drawn] = table_drawn  # the values its chart draws, for the verdict's claims
    knobs: tuple[Knob, ...] = ()  # settings a person may change before a live run

    def with_overrides(self, setup: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
        """``setup`` with a person's settings: only keys the setup has (a typo fails, naming the keys there are)."""
        unknown = sorted(set(overrides or {}) - set(setup))
        if unknown:
            raise ValueError(f"{self.name}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(setup)}")
        return {**setup, **(overrides or {})}

    def setup(self, quick: bool = False) -> dict[str, Any]:
        return dict(self.quick if quick else self.default)

    def run(
        self, quick: bool = False, progress: Progress | None = None, overrides: dict[str, Any] | None = None
    ) -> ExperimentResult:
        """Collect the numbers on this machine now (the default or quick setup, with ``overrides``), then explain
        them."""
        progress = progress or silent
        setup = self.with_overrides(self.setup(quick), overrides)
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
            claims=Headline(analysis.verdict, analysis.claims, shown=analysis.shows_effect),
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
    claims: Headline | None = field(default=None, repr=False)  # the verdict with the facts it states

    def contradictions(self) -> list[str]:
        """Every way the verdict disagrees with the values the run's chart is drawn from (empty: it holds)."""
        if self.experiment is None or self.claims is None:
            raise ValueError(f"{self.name}: this result has no experiment or claims attached to check")
        return check(self.claims, self.experiment.drawn(self.data))

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


def verdict_analysis(notice: str, verdict: Verdict | None, fallback: str, data: pd.DataFrame | None = None) -> Analysis:
    """The run's analysis from its notice and verdict: the sentence, whether the run shows the misnomer, and the
    facts the sentence states. Honest when it does not show it, and when the timings behind it rest on fewer
    than ``FEW_SAMPLES`` timed runs (``latency_samples`` in ``data``)."""
    if verdict is None or not verdict.disagrees:
        return Analysis(notice, f"Not shown in this run: {fallback}.", False)
    noise = ""
    timed = [c for c in ("latency_ms", "throughput_per_s") if c in verdict.a_better + verdict.b_better + verdict.equal]
    if data is not None and timed and "latency_samples" in data.columns:
        fewest = data["latency_samples"].min()
        if pd.notna(fewest) and fewest < FEW_SAMPLES:
            noise = f" (latency from as few as {fewest:g} timed run(s): noisy)"
    return Analysis(notice, verdict.sentence(noise), True, verdict.facts())


def ratio(new: float, old: float) -> str:
    return units.times(new / old) if old and not pd.isna(old) and not pd.isna(new) else "n/a"


def grew(new: float, old: float) -> str:
    """ "grew 2.6x" or "fell to 0.4x": a sentence must not say a value grew when it shrank."""
    if not old or pd.isna(old) or pd.isna(new):
        return "could not be compared"
    return f"grew {units.times(new / old)}" if new >= old else f"fell to {units.times(new / old)}"


def fmt(column: str, value: float) -> str:
    return INDICATORS[column].format(value)
