"""Stored results as a table to browse, and the one export of results, to CSV (a spreadsheet) or JSON.

CSV has one column per field, nested fields dotted (``latency_ms.median``, ``hardware.name``), lists as JSON text;
the identifying columns first, the rest sorted. A CSV is opened in spreadsheets, which run a cell that starts with
``=``, ``+``, ``-`` or ``@`` as a formula: a model name or error message written by someone else could then fetch a
URL or run a command on the reader's machine. Every text cell that starts so (or with a tab or carriage return)
gets a leading ``'``, as OWASP's CSV-injection advice says; numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from efficiency import units
from efficiency.results import Result, implementation_label, results_frame
from efficiency.store.schema import flatten

FORMATS = ("csv", "json")
LEADING = ("store_id", "created_at", "model", "name", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a string starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def rows_csv(rows: Sequence[Mapping[str, Any]], leading: Sequence[str] = ()) -> str:
    """Rows of dicts as CSV text: nested dicts dotted, ``leading`` columns first (those present), the rest sorted,
    every text cell (header included) safe from formula injection."""
    flat = [flatten(dict(row)) for row in rows]
    present = {name for item in flat for name in item}
    first = [name for name in leading if name in present]
    columns = first + sorted(present - set(first))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe_cell(name) for name in columns])
    for item in flat:
        writer.writerow([safe_cell(item.get(name)) for name in columns])
    return buffer.getvalue()


def export(results: Sequence[Result], fmt: str) -> str:
    """Results as ``"csv"`` (flat, formula-safe) or ``"json"`` (each result's dict, as the store and CLI write it)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: accepted are {', '.join(FORMATS)}")
    rows = [result.to_dict() for result in results]
    if fmt == "json":
        return json.dumps(rows, indent=2, sort_keys=True)
    return rows_csv(rows, LEADING)


def workload_text(workload: Mapping[str, Any]) -> str:
    """ "batch 1 · seq 128 · float32 · inference": a stored result's setup in one line."""
    parts = [f"batch {workload.get('batch_size', '?')}"]
    if workload.get("seq_len") is not None:
        parts.append(f"seq {workload['seq_len']}")
    if workload.get("image_size") is not None:
        parts.append(f"image {workload['image_size']} px")
    return " · ".join([*parts, str(workload.get("dtype", "?")), str(workload.get("mode", "?"))])


def stored_table(results: Sequence[Result], display_name: Callable[[str], str]) -> pd.DataFrame:
    """One row per stored result, failures included: when, model, hardware, workload, and the main indicators in
    fixed units (parameters in M, FLOPs in G, latency in ms, peak memory in MiB) so the columns sort as numbers;
    ``Noise`` marks a timing measured under load or with a wide spread, with the reason."""
    import pandas as pd  # lazy: the CLI's CSV export needs no pandas

    rows = []
    for result in results:
        frame = results_frame([result]) if not result.error else None
        values = frame.iloc[0] if frame is not None and len(frame) else {}
        rows.append(
            {
                "id": result.store_id,
                "Stored (UTC)": pd.Timestamp(result.created_at).strftime("%Y-%m-%d %H:%M"),
                "Model": display_name(result.model),
                "Hardware": result.hardware_text() or "none (static count)",  # a failure shows its Error
                "Workload": workload_text(result.workload),
                "Implementation": implementation_label(result.implementation),
                "Parameters": values.get("params", float("nan")) / 1e6,
                "FLOPs": values.get("flops", float("nan")) / 1e9,
                "Latency": values.get("latency_ms", float("nan")),
                "Peak memory": values.get("peak_memory_bytes", float("nan")) / units.MIB,
                "Noise": noise_text(result),
                "Error": result.error or "",
            }
        )
    return pd.DataFrame(rows)


SPREAD_COLUMN = "latency_spread"  # "1.23 s – 1.79 s": the p10-p90 of the latency, formatted with its units
NOISE_COLUMN = "noise"  # "noisy: <reason>" for a result measured under load or with a wide spread, else ""


def noise_text(result: Result) -> str:
    """ "noisy: <reason>" for a result the rule of efficiency.measure.noise marked noisy; "" otherwise."""
    if not result.noisy:
        return ""
    return f"noisy: {(result.noise or {}).get('reason') or 'reason not recorded'}"


def with_spread(frame: pd.DataFrame, results: Sequence[Result]) -> pd.DataFrame:
    """``frame`` (``results_frame(results)``) with the latency's p10-p90 (as text, and in ms as ``latency_p10_ms``
    and ``latency_p90_ms``, which the verdicts read) and the noisy mark of each row's result."""
    by_key = {(r.model, r.implementation): r for r in reversed(results) if not r.error}  # first wins, as the frame
    spreads, marks, lows, highs = [], [], [], []
    for model_id, implementation in zip(frame["model_id"], frame["implementation"]):
        result = by_key.get((model_id, implementation))
        latency = result.latency_ms if result is not None and result.measured else None
        known = latency is not None and latency.p10 is not None and latency.p90 is not None
        spreads.append(f"{units.duration(latency.p10)} – {units.duration(latency.p90)}" if known else "")
        lows.append(latency.p10 if known else float("nan"))
        highs.append(latency.p90 if known else float("nan"))
        marks.append(noise_text(result) if result is not None else "")
    columns = {SPREAD_COLUMN: spreads, NOISE_COLUMN: marks, "latency_p10_ms": lows, "latency_p90_ms": highs}
    return frame.assign(**columns)
