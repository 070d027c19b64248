"""CLI commands for hardware: ``hardware list``, ``hardware calibrate`` and ``estimate``.

``register`` adds the subparsers and returns the command functions for the CLI's dispatch table. Estimates are
roofline estimates from one weight-free trace per model, labelled estimated, never measured.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

from efficiency import units
from efficiency.cli.args import Command, add_output_args, add_workload_args, emit, positive, progress, workload_from
from efficiency.hardware import cpu_assumption, get_hardware, load_hardware
from efficiency.specs import HardwareSpec, Workload


def _hardware_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give one or more hardware ids separated by commas, or 'all'")
    return ids


def register(sub: argparse._SubParsersAction) -> dict[str, Command]:
    """Add ``hardware list``, ``hardware calibrate`` and ``estimate`` to a CLI's subparsers."""
    hardware = sub.add_parser("hardware", help="list the hardware catalog, or calibrate this machine")
    actions = hardware.add_subparsers(dest="hardware_command", required=True, parser_class=type(hardware))
    listing = actions.add_parser("list", help="every chip: catalog, user entries, this machine's calibrations")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    calib = actions.add_parser("calibrate", help="measure this machine's matmul FLOP/s and memory bandwidth")
    calib.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    calib.add_argument("--threads", type=positive, default=None, help="CPU threads (default: torch's)")
    calib.add_argument("--fresh", action="store_true", help="measure again even if a cached result exists")
    calib.add_argument("--json", action="store_true", help="print the entry as JSON")

    est = sub.add_parser("estimate", help="roofline estimates of latency, bound and fit on catalog chips")
    est.add_argument("models", nargs="+", metavar="MODEL", help="catalog id or alias, local folder, or Hub id")
    est.add_argument(
        "--hardware", type=_hardware_ids, required=True, metavar="ID[,ID...]", help="hardware ids, or 'all'"
    )
    est.add_argument(
        "--overhead-us",
        type=_overhead_us,
        default=None,
        metavar="US",
        help="per-op overhead in microseconds, 0..1e6 (default: per chip kind)",
    )
    add_workload_args(est)
    add_output_args(est)
    return {"hardware": cmd_hardware, "estimate": cmd_estimate}


def _overhead_us(text: str) -> float:
    """A per-op overhead in microseconds: finite, 0 to 1 s (a bad value is a usage error: exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of microseconds") from None
    if not math.isfinite(value) or not 0 <= value <= 1e6:
        raise argparse.ArgumentTypeError(f"{text!r}: give a per-op overhead from 0 to 1000000 microseconds")
    return value


def select_hardware(ids: list[str]) -> list[HardwareSpec]:
    """The chips named (``all``: every chip), in the order given; an unknown id raises naming close ids."""
    if any(hardware_id.lower() == "all" for hardware_id in ids):
        return load_hardware()
    chosen = [get_hardware(hardware_id) for hardware_id in ids]
    return list({spec.id: spec for spec in chosen}.values())


def hardware_rows() -> list[dict[str, Any]]:
    """Every chip as a flat record, with its ridge point, the per-op overhead estimates assume and, for a CPU, the
    cores and threads its peak stands for (``cpu_cores``, ``cpu_threads``; None where the entry does not say)."""
    from efficiency.hardware.roofline import overhead_for  # lazy: imports torch and pandas; --help stays fast

    rows = []
    for spec in load_hardware():
        row = spec.to_dict()
        row["ridge_point_float32"] = spec.peak_for("float32") / spec.memory_bandwidth_bytes_per_s
        row["overhead_s"] = overhead_for(spec)
        assumption = cpu_assumption(spec)  # CPU cores behind the peak, also an edge board's (Raspberry Pi)
        if assumption is not None or spec.kind == "cpu":
            row["cpu_cores"] = assumption.cores if assumption else None
            row["cpu_threads"] = assumption.threads if assumption else None
            row["cpu_assumption"] = assumption.describe() if assumption else "not stated by the entry"
        rows.append(row)
    return rows


def _hardware_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'id':<22} {'kind':<5} {'fp32':>13} {'bf16/fp16':>13} {'bandwidth':>11} {'memory':>10} {'TDP':>6}  source"
    ]
    for r in rows:
        peaks = r["peak_flops"]
        half = peaks.get("bfloat16") or peaks.get("float16")
        tdp = f"{r['tdp_watts']:.0f} W" if r["tdp_watts"] else "n/a"
        source = "measured here" if r["measured_here"] else r["source"][:60]
        lines.append(
            f"{r['id']:<22} {r['kind']:<5} {units.flops_per_s(peaks.get('float32')):>13} "
            f"{units.flops_per_s(half):>13} {units.si(r['memory_bandwidth_bytes_per_s'], 'B/s'):>11} "
            f"{units.nbytes(r['memory_bytes']):>10} {tdp:>6}  {source}"
        )
    lines.append("peaks are dense datasheet figures (calibrated entries: achieved); see --json for each source")
    return "\n".join(lines)


def cmd_hardware(args: argparse.Namespace) -> int:
    if args.hardware_command == "list":
        rows = hardware_rows()
        print(json.dumps(rows, indent=2) if args.json else _hardware_table(rows))
        return 0
    from efficiency.hardware.calibrate import calibrate  # lazy: imports torch; --help stays fast

    spec = calibrate(args.device, threads=args.threads, recalibrate=args.fresh)
    if args.json:
        print(json.dumps(spec.to_dict(), indent=2))
    else:
        peaks = ", ".join(f"{dtype} {units.flops_per_s(value)}" for dtype, value in spec.peak_flops.items())
        print(
            f"{spec.id}: {spec.name}\n  achieved matmul: {peaks}\n  copy bandwidth: "
            f"{units.si(spec.memory_bandwidth_bytes_per_s, 'B/s')}\n  {spec.source_note}"
        )
    return 0


def estimate_models(
    models: list[str],
    hardware: list[HardwareSpec],
    workload: Workload,
    overhead_s: float | None = None,
    progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Trace each model once (forward pass, fake tensors, no weights), then estimate it on every chip;
    a model that fails gets an ``error`` row per chip and the others go on."""
    from efficiency.hardware.roofline import estimate_rows, safe_trace_profile  # lazy: imports torch, pandas

    rows: list[dict[str, Any]] = []
    for name in models:
        profile = safe_trace_profile(name, workload)
        rows.extend(estimate_rows(profile, hardware, overhead_s=overhead_s))
        if progress is not None:
            progress(1)
    return rows


def _estimate_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'model':<36} {'hardware':<22} {'latency':>10} {'bound':>8} {'FLOP/B':>8} {'fits':>5} "
        f"{'needs':>10} {'decode/token':>13}"
    ]
    for r in rows:
        if r.get("error"):
            lines.append(f"{r['model']:<36} {r['hardware']:<22} error: {r['error']}")
            continue
        decode = units.duration(r["decode_ms_per_token"]) if r["decode_ms_per_token"] is not None else "-"
        lines.append(
            f"{r['model']:<36} {r['hardware']:<22} {units.duration(r['estimated_latency_ms']):>10} {r['bound']:>8} "
            f"{r['arithmetic_intensity']:>8.1f} {'yes' if r['fits'] else 'NO':>5} "
            f"{units.nbytes(r['memory_needed_bytes']):>10} {decode:>13}"
        )
    workload = next((r["workload"] for r in rows if not r.get("error")), {})
    lines.append(f"estimated (roofline), not measured; workload: {workload}")
    return "\n".join(lines)


def cmd_estimate(args: argparse.Namespace) -> int:
    hardware = select_hardware(args.hardware)
    workload = workload_from(args)
    overhead = None if args.overhead_us is None else args.overhead_us * 1e-6
    with progress(len(args.models)) as bar:
        rows = estimate_models(args.models, hardware, workload, overhead, bar.update)
    emit(rows, args, lambda: _estimate_table(rows))
    return 1 if any(r.get("error") for r in rows) else 0
