"""Report card: every cost indicator with its unit, its source and the setup, as Markdown or LaTeX.

The paper asks publications to report all cost indicators, each with the hardware, dtype, batch size and
sequence length it was taken under, and to say what was measured and what was estimated. This module
turns results (:class:`efficiency.results.Result`, counted and perhaps measured), each with a roofline
:class:`Estimate` where one was made, into such a table. Numbers are formatted by :mod:`efficiency.units`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from efficiency import units
from efficiency.analysis.frontier import pareto_frontier
from efficiency.hardware.detect import environment_fingerprint, package_version
from efficiency.results import Latency, Result

MISSING = "—"
NOISY_MARK = "(noisy)"  # after a timing measured under load or with a wide spread (efficiency.measure.noise)
COUNTED = "counted"
MEASURED = "measured"
ESTIMATED = "estimated"
SOURCE_NOTES = {
    COUNTED: "counted from the model's computation (no hardware involved; exact for the stated input)",
    MEASURED: "measured on the hardware stated in the setup (median over timed repeats, p10-p90 in brackets)",
    ESTIMATED: "estimated with a roofline model of the named chip (not measured)",
}
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "—": "---",
    "µ": r"\textmu{}",
    "×": r"\texttimes{}",
}


@dataclass(frozen=True)
class Cell:
    text: str
    source: str | None  # None: no value


@dataclass(frozen=True)
class Estimate:
    """A roofline estimate of a model's latency on a named chip, shown where nothing was measured."""

    latency_ms: float
    chip: str


@dataclass(frozen=True)
class Row:
    """One model's column: its result and, where one was made, an estimate to fall back on."""

    result: Result
    estimate: Estimate | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _timing(key: str) -> Callable[[Row], Cell]:
    def cell(row: Row) -> Cell:
        latency: Latency | None = getattr(row.result, key)
        if latency is not None:
            p10, p90 = latency.p10, latency.p90
            spread = f" [{units.duration(p10)}–{units.duration(p90)}]" if p10 is not None and p90 is not None else ""
            mark = f" {NOISY_MARK}" if row.result.noisy else ""  # the reason is in the notes below the table
            return Cell(units.duration(latency.median) + spread + mark, MEASURED)
        if key == "latency_ms" and row.estimate is not None:
            return Cell(f"{units.duration(row.estimate.latency_ms)} on {row.estimate.chip}", ESTIMATED)
        return Cell(MISSING, None)

    return cell


def _value(key: str, formatter: Callable[[float], str], source: str) -> Callable[[Row], Cell]:
    def cell(row: Row) -> Cell:
        value = _number(getattr(row.result, key))
        return Cell(MISSING, None) if value is None else Cell(formatter(value), source)

    return cell


def _intensity(row: Row) -> Cell:
    value = _number(row.result.arithmetic_intensity_flops_per_byte)
    return Cell(MISSING, None) if value is None else Cell(f"{value:.3g}", COUNTED)


def _input(row: Row) -> Cell:
    workload = row.result.workload
    batch, seq, image = workload.get("batch_size"), workload.get("seq_len"), workload.get("image_size")
    shape = f"{seq:g} tokens" if _number(seq) is not None else f"{image:g}×{image:g} px" if _number(image) else "?"
    return Cell(f"batch {batch} × {shape}", "setup")


# (label, unit, cell builder, measurable): the indicators the paper asks for, in reading order
INDICATOR_ROWS: list[tuple[str, str, Callable[[Row], Cell], bool]] = [
    ("Input", "items × size", _input, False),
    ("Parameters", "params", _value("params", units.params, COUNTED), False),
    ("Active parameters (per token)", "params", _value("params_active", units.params, COUNTED), False),
    ("FLOPs (forward, 1 MAC = 2 FLOPs)", "FLOPs", _value("flops", units.flops, COUNTED), False),
    ("MACs (forward)", "MACs", _value("macs", lambda v: units.count(v, "MACs"), COUNTED), False),
    ("Training FLOPs (forward + backward)", "FLOPs", _value("training_flops", units.flops, COUNTED), False),
    ("Memory traffic (forward, eager)", "bytes", _value("memory_traffic_bytes", units.nbytes, COUNTED), False),
    ("Arithmetic intensity", "FLOPs/byte", _intensity, False),
    ("Latency, median [p10–p90]", "ms", _timing("latency_ms"), True),
    ("Throughput", "items/s", _value("throughput_per_s", lambda v: units.count(v, "items/s"), MEASURED), True),
    ("Peak memory (inference)", "bytes", _value("peak_memory_bytes", units.nbytes, MEASURED), True),
    ("Training step, median [p10–p90]", "ms", _timing("training_step_ms"), True),
    ("Peak memory (training step)", "bytes", _value("peak_memory_training_bytes", units.nbytes, MEASURED), True),
]


def rows_of(results: Sequence[Result], estimates: dict[str, Estimate] | None = None) -> list[Row]:
    """The report's columns: each result with the estimate made for its model, if any."""
    return [Row(result, (estimates or {}).get(result.model)) for result in results]


def make_setup(results: Sequence[Result], threads: int | None = None) -> dict[str, Any]:
    """The setup block of a report: this machine and its software, taken now, plus what the results say."""

    env = environment_fingerprint(threads)
    measured = [r for r in results if r.measured]
    hardware = measured[0].hardware if measured else None
    name = hardware.name if hardware is not None else None
    used = (hardware.threads if hardware is not None else None) or env["threads"]
    return {
        "hardware": f"{name or env['cpu_model']}, {used} thread{'s' if used != 1 else ''}"
        if measured
        else "none (static counts)",
        "device": (hardware.device if hardware is not None else None) or "cpu",
        "software": {
            "torch": env["torch"],
            "transformers": env["transformers"],
            "python": env["python"],
            "efficiency-dashboard": package_version("efficiency-dashboard") or "0.1.0 (source tree)",
        },
        "os": env["os"],
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def _table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body rows (label, unit, source, one cell per model) and notes (errors, per-cell sources)."""
    header = ["Indicator", "Unit", "Source", *[r.result.label or "?" for r in rows]]
    body, notes = [], []
    for label, unit, build, measurable in INDICATOR_ROWS:
        cells = [Cell("failed", None) if r.result.error else build(r) for r in rows]
        sources = sorted({c.source for c in cells if c.source})
        if not sources:  # kept, so the reader sees what this report does not hold
            body.append([label, unit, "not measured" if measurable else "not available", *[c.text for c in cells]])
            continue
        if len(sources) == 1:
            source, texts = sources[0], [c.text for c in cells]
        else:  # mixed: say it in each cell
            source = "per cell"
            texts = [f"{c.text} ({c.source})" if c.source else c.text for c in cells]
        body.append([label, unit, source, *texts])
    for r in rows:
        if r.result.error:
            notes.append(f"{r.result.label}: failed: {r.result.error}")
        elif r.result.noisy:
            reason = (r.result.noise or {}).get("reason") or "reason not recorded"
            notes.append(f"{r.result.label}: timings marked {NOISY_MARK}: {reason}; measure again on a quieter machine")
    return header, body, notes


# (indicator, label, cost of a row and its source or None): the frontier table's costs, in the chart's order
FRONTIER_COSTS: list[tuple[str, str, Callable[[Row], tuple[float | None, str | None]]]] = [
    ("params", "Parameters", lambda r: (_number(r.result.params), COUNTED)),
    ("flops", "FLOPs", lambda r: (_number(r.result.flops), COUNTED)),
    ("memory_traffic_bytes", "Memory traffic", lambda r: (_number(r.result.memory_traffic_bytes), COUNTED)),
    ("latency_ms", "Latency", lambda r: _latency_cost(r)),
    ("peak_memory_bytes", "Peak memory", lambda r: (_number(r.result.peak_memory_bytes), MEASURED)),
]


def _latency_cost(row: Row) -> tuple[float | None, str | None]:
    if row.result.latency_ms is not None:
        return _number(row.result.latency_ms.median), MEASURED
    if row.estimate is not None:
        return _number(row.estimate.latency_ms), ESTIMATED
    return None, None


def _quality_of(row: Row) -> list[dict[str, Any]]:
    """A row's quality figures: those its result carries, else the bundled ones of its model."""
    if row.result.quality:
        return list(row.result.quality)
    from efficiency.models.quality import figures_for  # lazy: reads the quality file only for a report

    return [figure.to_dict() for figure in figures_for(row.result.model)]


def frontier_table(rows: Sequence[Row]) -> list[tuple[str, list[list[str]]]]:
    """Per benchmark that at least two models carry: (title, rows of indicator, source, models on the Pareto
    frontier of quality against that cost, models without that cost). The rules are
    :mod:`efficiency.analysis.frontier`'s (lower cost is better; the benchmark says which quality is)."""
    from efficiency.models.quality import benchmarks  # lazy: as above

    known = benchmarks()
    scores: dict[str, dict[str, float]] = {}
    units_of: dict[str, str] = {}
    for row in rows:
        if row.result.error:
            continue
        for figure in _quality_of(row):
            scores.setdefault(figure["benchmark"], {})[row.result.label] = float(figure["value"])
            units_of[figure["benchmark"]] = figure.get("unit") or ""
    sections = []
    for benchmark, by_model in scores.items():
        if len(by_model) < 2:
            continue
        higher = known[benchmark].higher_is_better if benchmark in known else True
        name = known[benchmark].name if benchmark in known else f"{benchmark} (given by the user)"
        title = f"{name}, {units_of[benchmark] or 'no unit'}, {'higher' if higher else 'lower'} is better"
        body = []
        for indicator, label, cost in FRONTIER_COSTS:
            costs, sources = {}, set()
            for row in rows:
                if row.result.label in by_model:
                    value, source = cost(row)
                    costs[row.result.label] = value
                    if value is not None:
                        sources.add(source)
            frontier = pareto_frontier(costs, by_model, higher, indicator)
            if len(frontier.compared) < 2:
                continue
            source = sources.pop() if len(sources) == 1 else "per model"
            body.append([label, source, ", ".join(frontier.models), ", ".join(frontier.missing) or MISSING])
        if body:
            sections.append((title, body))
    return sections


def _frontier_lines(rows: Sequence[Row]) -> list[str]:
    out = []
    for title, body in frontier_table(rows):
        out += ["", f"**Pareto frontier of quality against cost: {title}**", ""]
        out += [
            "| Cost indicator | Source | On the frontier (cheapest first) | Without this cost |",
            "| --- | --- | --- | --- |",
        ]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in body]
    return out


def _setup_lines(rows: Sequence[Row], setup: dict[str, Any], body: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    dtypes = sorted({str(r.result.workload.get("dtype") or r.result.dtype or "float32") for r in rows})
    software = ", ".join(f"{k} {v}" for k, v in (setup.get("software") or {}).items() if v)
    lines = [
        ("Hardware (measured numbers)", str(setup.get("hardware", "not stated"))),
        ("Device", str(setup.get("device", "cpu"))),
        ("dtype", ", ".join(dtypes)),
        ("Batch size and input", "per model, in the Input row"),
        ("Software", software or "not stated"),
        ("Operating system", str(setup.get("os", "not stated"))),
        ("Weights", "random (built from each model's published config; cost does not depend on weight values)"),
        ("Counting", "1 multiply-add = 2 FLOPs; memory traffic = bytes every op reads and writes (eager, unfused)"),
        ("Date", str(setup.get("date", ""))),
    ]
    used = {cell for row in body for cell in row[2:]}
    used_sources = [k for k in SOURCE_NOTES if k in used or any(f"({k})" in cell for cell in used)]
    return lines + [(f"Source: {k}", v) for k, v in SOURCE_NOTES.items() if k in used_sources]


def to_markdown(rows: Sequence[Row], setup: dict[str, Any]) -> str:
    """A GitHub-flavoured Markdown report card: the indicator table, then the setup as a list."""
    header, body, notes = _table(rows)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(header), "| " + " | ".join(["---"] * 3 + ["---:"] * len(rows)) + " |"]
    out += [line(r) for r in body]
    out += _frontier_lines(rows)
    out += ["", "**Setup**", ""]
    out += [f"- {k}: {v}" for k, v in _setup_lines(rows, setup, body)]
    out += [f"- Note: {n}" for n in notes]
    return "\n".join(out) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and a few non-ASCII signs) so any text compiles in a tabular."""
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in text)


def _frontier_latex(rows: Sequence[Row]) -> list[str]:
    out = []
    for title, body in frontier_table(rows):
        out += [
            r"\par\medskip",
            latex_escape(f"Pareto frontier of quality against cost: {title}") + r"\\",
            r"\begin{tabular}{llp{0.4\linewidth}l}",
            r"\hline",
            " & ".join(["Cost indicator", "Source", "On the frontier (cheapest first)", "Without this cost"]) + r" \\",
            r"\hline",
            *[" & ".join(latex_escape(c) for c in line) + r" \\" for line in body],
            r"\hline",
            r"\end{tabular}",
        ]
    return out


def to_latex(rows: Sequence[Row], setup: dict[str, Any]) -> str:
    """A LaTeX ``table`` with two plain ``tabular``s (indicators, setup); ruled with \\hline, no packages."""
    header, body, notes = _table(rows)
    spec = "lll" + "r" * len(rows)

    def line(cells: Sequence[str]) -> str:
        return " & ".join(latex_escape(c) for c in cells) + r" \\"

    out = [
        "% Report card by efficiency-dashboard: plain tabular with \\hline rules; needs no LaTeX package.",
        r"\begin{table}[ht]",
        r"\centering",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\hline",
        line(header),
        r"\hline",
        *[line(r) for r in body],
        r"\hline",
        r"\end{tabular}",
        r"\par\medskip",
        r"\begin{tabular}{lp{0.62\linewidth}}",
        r"\hline",
        *[line([k, v]) for k, v in _setup_lines(rows, setup, body)],
        *[line(["Note", n]) for n in notes],
        r"\hline",
        r"\end{tabular}",
        *_frontier_latex(rows),
        r"\caption{" + latex_escape(f"Cost indicators of {len(rows)} models, with units, sources and setup.") + "}",
        r"\end{table}",
    ]
    return "\n".join(out) + "\n"
