"""Latency across hardware as tables: estimates (roofline) and measurements, one row per model x hardware.

The table has the columns :func:`estimate_table` builds from :func:`efficiency.hardware.roofline.estimate_rows`:
``model`` (display name), ``model_id``, ``hardware`` (chip id), ``estimated_latency_ms``, ``fits``, ``bound``,
``arithmetic_intensity``, ``attainable_flops_per_s`` and the setup columns (``dtype``, ``batch_size``, ``seq_len``,
``image_size``); ``latency_ms`` and ``obtained`` ("estimated" / "measured") let :func:`with_measured` add measured
rows. :mod:`efficiency.charts.hardware` draws it; the Hardware page shows it through :func:`latency_rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from efficiency import units
from efficiency.hardware import cpu_assumption, load_catalog
from efficiency.specs import HardwareSpec

ESTIMATED = "estimated"
MEASURED = "measured"
LATENCY = "estimated_latency_ms"
SETUP_FIELDS = ("dtype", "batch_size", "seq_len", "image_size")


# ---------------------------------------------------------------- table


def estimate_table(rows: Iterable[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Estimate rows (``Estimate.to_dict`` or error rows) -> one flat row per model x chip.

    ``model_id`` keeps the id; ``model`` becomes the display name from ``names`` where given. The workload
    dict is spread into the setup columns; error rows keep their ``error`` and NaN numbers.
    """
    records = []
    for row in rows:
        record = {k: v for k, v in row.items() if k != "workload"}
        workload = row.get("workload") or {}
        for name in SETUP_FIELDS:
            record.setdefault(name, workload.get(name))
        record["model_id"] = str(row.get("model"))
        record["model"] = (names or {}).get(record["model_id"], record["model_id"])
        record["estimated"] = True
        record["obtained"] = ESTIMATED
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in (LATENCY, "arithmetic_intensity", "attainable_flops_per_s", "peak_flops_per_s"):
        if column not in frame.columns:
            frame[column] = np.nan
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame["latency_ms"] = frame[LATENCY]
    if "error" not in frame.columns:
        frame["error"] = None
    return frame


def with_measured(estimates: pd.DataFrame, measured: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The estimate table with measured rows first: one per model x measured hardware.

    Each measured row: ``model_id``, ``model`` (display name), ``hardware`` (its column, e.g. "test-a
    (measured)"), ``latency_ms`` (a number or ``{"median": ...}``), ``how`` (where and on what it was
    measured) and ``workload``. Its ``estimated_latency_ms`` stays empty: no number changes kind.
    """
    records = []
    for row in measured:
        latency = row.get("latency_ms")
        latency = latency.get("median") if isinstance(latency, Mapping) else latency
        workload = row.get("workload") or {}
        records.append(
            {
                "model_id": str(row.get("model_id")),
                "model": str(row.get("model") or row.get("model_id")),
                "hardware": str(row.get("hardware")),
                "latency_ms": pd.to_numeric(latency, errors="coerce"),
                "how": row.get("how"),
                "threads": row.get("threads"),
                "obtained": MEASURED,
                "estimated": False,
                "error": None,
                **{name: workload.get(name) for name in SETUP_FIELDS},
            }
        )
    if not records:
        return estimates
    if estimates.empty:
        return pd.DataFrame.from_records(records)
    return pd.concat([pd.DataFrame.from_records(records), estimates], ignore_index=True)


def with_assumptions(table: pd.DataFrame, chips: Sequence[HardwareSpec]) -> pd.DataFrame:
    """The estimate table with what each CPU chip's figure assumes: ``cpu_threads`` (threads), ``cpu_cores``
    (datasheet: every core) and ``assumes`` in words; empty for accelerators (their figures are the chip's)."""
    facts = {hw.id: cpu_assumption(hw) for hw in chips}
    hardware = table["hardware"] if "hardware" in table.columns else pd.Series(dtype=object)
    return table.assign(
        cpu_threads=hardware.map(lambda chip: facts[chip].threads if facts.get(chip) else None),
        cpu_cores=hardware.map(lambda chip: facts[chip].cores if facts.get(chip) else None),
        assumes=hardware.map(lambda chip: facts[chip].describe() if facts.get(chip) else None),
    )


def cpu_figures_note(df: pd.DataFrame) -> str | None:
    """The sentence that goes beside estimates on CPUs and latencies measured here: how many cores and threads
    each stands for, so that a small board "faster" than a big server reads as what it is (every core at peak
    against the threads a run used). None when no CPU estimate is shown."""
    data = drawable_rows(df)
    estimated = data[(data["obtained"] == ESTIMATED) & data.get("assumes", pd.Series(index=data.index)).notna()]
    if estimated.empty:
        return None
    chips = estimated.drop_duplicates("hardware")
    parts = [f"{chip_name(row.hardware)}: {row.assumes}" for row in chips.itertuples()]
    note = "CPU figures stand for " + "; ".join(parts) + "."
    ran = data.loc[data["obtained"] == MEASURED, "threads"] if "threads" in data.columns else []
    threads = sorted({int(t) for t in ran if pd.notna(t)})
    if threads:
        counts = " or ".join(str(t) for t in threads)
        note += f" Measured latencies ran with {counts} thread{'' if threads == [1] else 's'}."
    return note


def _latency(df: pd.DataFrame) -> pd.Series:
    """Each row's latency in ms, estimated or measured (tables built before ``latency_ms`` have estimates only)."""
    return pd.to_numeric(df["latency_ms"] if "latency_ms" in df.columns else df[LATENCY], errors="coerce")


def drawable_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a usable latency (error rows are reported by the page, not drawn)."""
    data = df[_latency(df) > 0].assign(latency_ms=_latency(df))
    if "error" in data.columns:
        data = data[data["error"].isna()]
    return data


def obtained_by_cell(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(model, hardware) -> "measured" / "estimated"; a table without ``obtained`` is all estimates."""
    if "obtained" not in df.columns:
        return {}
    return {(str(r.model), str(r.hardware)): str(r.obtained) for r in df.itertuples() if isinstance(r.obtained, str)}


def unique_order(values: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values))


def latency_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """Models (rows, input order) x hardware (columns, input order) of latency in ms, estimated or measured."""
    data = drawable_rows(df)
    matrix = data.pivot_table(index="model", columns="hardware", values="latency_ms", aggfunc="first")
    return matrix.reindex(index=unique_order(data["model"]), columns=unique_order(data["hardware"]))


def hardware_ranks(df: pd.DataFrame) -> pd.DataFrame:
    """Rank of each model (rows) on each hardware (columns) by latency; 1 = fastest."""
    return latency_matrix(df).rank(axis=0, method="min")


def latency_flips(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every (model pair, hardware pair) whose order by latency reverses, most striking first.

    Each flip: ``model_a`` faster than ``model_b`` on ``chip_a`` and slower on ``chip_b``, with the four
    latencies and ``how`` ("estimated", "measured" or "measured and estimated"); "striking" = the product of
    the two speed ratios.
    """
    matrix = latency_matrix(df)
    obtained = obtained_by_cell(df)
    flips = []
    for a, b in combinations(matrix.index, 2):
        for chip_1, chip_2 in combinations(matrix.columns, 2):
            a1, b1, a2, b2 = (matrix.loc[m, c] for m, c in ((a, chip_1), (b, chip_1), (a, chip_2), (b, chip_2)))
            if any(pd.isna(v) for v in (a1, b1, a2, b2)) or (a1 - b1) * (a2 - b2) >= 0:
                continue
            fast, slow = (a, b) if a1 < b1 else (b, a)
            lat = {(a, chip_1): a1, (b, chip_1): b1, (a, chip_2): a2, (b, chip_2): b2}
            flips.append(
                {
                    "model_a": fast,
                    "model_b": slow,
                    "chip_a": chip_1,
                    "chip_b": chip_2,
                    "a_on_chip_a_ms": lat[(fast, chip_1)],
                    "b_on_chip_a_ms": lat[(slow, chip_1)],
                    "a_on_chip_b_ms": lat[(fast, chip_2)],
                    "b_on_chip_b_ms": lat[(slow, chip_2)],
                    "strength": (lat[(slow, chip_1)] / lat[(fast, chip_1)])
                    * (lat[(fast, chip_2)] / lat[(slow, chip_2)]),
                    "how": how_text({obtained.get(cell, ESTIMATED) for cell in lat}),
                }
            )
    return sorted(flips, key=lambda flip: -flip["strength"])


def how_text(kinds: set[str]) -> str:
    """ "measured", "estimated" or "measured and estimated"."""
    return " and ".join(sorted(kinds, reverse=True)) if kinds else ESTIMATED  # "measured and estimated"


def chip_name(chip: str) -> str:
    """A chip's catalog name for axes and sentences ("NVIDIA T4" for ``t4``); any other column (a user's chip, a
    measured one, "This CPU (measured)") keeps its own label. Only the shipped catalog is read: a broken user or
    calibration file is reported where it is loaded, not here."""
    return next((spec.name for spec in load_catalog() if spec.id == chip), chip)


def describe_latency_flip(flip: Mapping[str, Any]) -> str:
    """ "On NVIDIA H100 SXM, A is faster than B (0.56 ms vs 1.53 ms); on Raspberry Pi 5, B is faster (18.5 ms vs
    76.2 ms), estimated." """
    a_there, b_there = units.duration(flip["a_on_chip_a_ms"]), units.duration(flip["b_on_chip_a_ms"])
    b_here, a_here = units.duration(flip["b_on_chip_b_ms"]), units.duration(flip["a_on_chip_b_ms"])
    chip_a, chip_b, how = chip_name(flip["chip_a"]), chip_name(flip["chip_b"]), flip.get("how", ESTIMATED)
    return (
        f"On {chip_a}, {flip['model_a']} is faster than {flip['model_b']} ({a_there} vs {b_there}); "
        f"on {chip_b}, {flip['model_b']} is faster ({b_here} vs {a_here}), {how}."
    )


# ---------------------------------------------------------------- the Hardware page's tables


def latency_rows(both: pd.DataFrame, chips: Sequence[HardwareSpec]) -> pd.DataFrame:
    """The latency table as shown: one row per model x hardware, latency in ms, attainable in TFLOP/s, memory
    needed in GiB, and in words how each latency was obtained (measured where, or estimated from what)."""
    calibrated = {hw.id for hw in chips if hw.measured_here}
    names = {hw.id: hw.name for hw in chips}  # the picked chips' names (a user's chip too), not their ids

    def column(name: str) -> pd.Series:
        return both[name] if name in both.columns else pd.Series([None] * len(both), index=both.index)

    def how_estimated(chip_id: str) -> str:
        return f"estimated (roofline on {'peaks measured here' if chip_id in calibrated else 'datasheet figures'})"

    def threads_text(row: Any) -> str | None:
        if row.obtained == ESTIMATED:
            return row.assumes if isinstance(row.assumes, str) else None
        return f"{int(row.threads)} thread{'' if int(row.threads) == 1 else 's'}, as run" if row.threads > 0 else None

    estimated = both["obtained"] == ESTIMATED
    facts = both.assign(assumes=column("assumes"), threads=pd.to_numeric(column("threads")).fillna(0))
    return pd.DataFrame(
        {
            "Model": both["model"],
            "Hardware": both["hardware"].map(lambda chip: names.get(chip) or chip_name(chip)),
            "Latency": both["latency_ms"],
            "How obtained": column("how").where(~estimated, both["hardware"].map(how_estimated)),
            "Cores and threads": [threads_text(row) for row in facts.itertuples()],
            "estimated": estimated,
            "Bound": column("bound"),
            "Fits": column("fits").astype("boolean"),
            "Arithmetic intensity": pd.to_numeric(column("arithmetic_intensity")),
            "Attainable": pd.to_numeric(column("attainable_flops_per_s")) / 1e12,
            "Memory needed": pd.to_numeric(column("memory_needed_bytes")) / units.GIB,
        }
    )


def chip_sources(chips: Sequence[HardwareSpec], dtype: str) -> pd.DataFrame:
    """Where each chip's figures come from: peak at ``dtype`` (TFLOP/s), bandwidth (GB/s, decimal as datasheets
    state it), memory (GiB), and the datasheet link or note."""
    assumptions = [cpu_assumption(hw) for hw in chips]
    return pd.DataFrame(
        {
            "Chip": [hw.id for hw in chips],
            "Name": [hw.name for hw in chips],
            "Cores and threads": [a.describe() if a else None for a in assumptions],
            "Peak (TFLOP/s)": [hw.peak_for(dtype) / 1e12 for hw in chips],
            "Bandwidth (GB/s)": [hw.memory_bandwidth_bytes_per_s / 1e9 for hw in chips],
            "Memory (GiB)": [hw.memory_bytes / units.GIB for hw in chips],
            "Source": [hw.source if hw.source.startswith("https://") else None for hw in chips],
            "What it says": [hw.source_note or ("measured here" if hw.measured_here else "") for hw in chips],
        }
    )


def user_chip(
    chip_id: str,
    name: str,
    kind: str,
    source: str,
    fp32_tflops: float,
    half_tflops: float,
    bandwidth_gb_per_s: float,
    memory_gib: float,
) -> HardwareSpec:
    """A chip from a person's datasheet figures, in the units datasheets give (TFLOP/s, GB/s, GiB).

    Raises ValueError naming what is missing or wrong; bf16 and fp16 share ``half_tflops``."""
    chip_id, source = chip_id.strip().lower(), source.strip()
    if not chip_id or not source:
        raise ValueError("id and source are required: every chip must say where its figures come from")
    return HardwareSpec(
        id=chip_id,
        name=name.strip() or chip_id,
        kind=kind,
        peak_flops={"float32": fp32_tflops * 1e12, "bfloat16": half_tflops * 1e12, "float16": half_tflops * 1e12},
        memory_bandwidth_bytes_per_s=bandwidth_gb_per_s * 1e9,
        memory_bytes=memory_gib * units.GIB,
        source=source,
        source_note="added by a user in the dashboard",
    )
