"""``python -m efficiency``: everything the dashboard shows, as JSON, CSV or a table.

Bad arguments exit with status 2 and one line on stderr; a model that fails gets its ``error`` and the
others are still printed (exit status 1 when any model failed).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from efficiency import units
from efficiency.specs import DTYPES, MODES, Workload
from efficiency.validation import printable

DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:\d{1,3})?")


class UsageError(Exception):
    """Bad command-line input: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number of seconds above 0")
    return value


def _add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=_positive, default=1, help="items per forward pass (default 1)")
    p.add_argument("--seq-len", type=_positive, default=128, help="tokens per text item (default 128)")
    p.add_argument("--image-size", type=_positive, default=224, help="pixels per side for vision (default 224)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--mode", choices=MODES, default="inference", help="what the measured numbers time")


def _add_output_args(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON array")
    fmt.add_argument("--csv", action="store_true", help="print CSV")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m efficiency", description="Profile models by every cost indicator.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    models = sub.add_parser("models", help="list the offline model catalog")
    _add_output_args(models)

    profile = sub.add_parser("profile", help="profile models (static counters; --metrics all also measures)")
    profile.add_argument("models", nargs="+", metavar="MODEL", help="catalog id or alias, local folder, or Hub id")
    _add_workload_args(profile)
    profile.add_argument("--metrics", choices=("static", "all"), default="static")
    profile.add_argument("--device", default="cpu", help="device to measure on: cpu, cuda:N, mps")
    profile.add_argument("--threads", type=_positive, default=None, help="CPU threads for measurement")
    profile.add_argument("--repeats", type=_positive, default=None, help="minimum timed repeats")
    profile.add_argument("--timeout", type=_seconds, default=600.0, help="seconds per model before it is stopped")
    profile.add_argument("--fresh", action="store_true", help="measure again even if the store has a result")
    profile.add_argument("--db", default=None, help="results store: SQLAlchemy URL or SQLite file path")
    _add_output_args(profile)
    for register in _extensions():
        COMMANDS.update(register(sub))
    return parser


def _extensions() -> list[Callable]:
    """Command groups that live in their own modules (each ``register(sub)`` returns its commands)."""
    from efficiency.cli.cluster import register as cluster
    from efficiency.cli.hardware import register as hardware
    from efficiency.cli.teaching import register as teaching

    return [hardware, teaching, cluster]


def _catalog_rows() -> list[dict[str, Any]]:
    from efficiency.models.catalog import list_models

    return [
        {
            "id": s.id,
            "hf_id": s.hf_id,
            "aliases": list(s.aliases),
            "name": s.display_name,
            "model_type": s.model_type,
            "task": s.task,
            "modality": s.modality,
            "families": list(s.families),
            "published_params": s.published.get("params"),
            "note": s.note,
            "source": s.source,
        }
        for s in list_models()
    ]


def _emit(rows: list[dict[str, Any]], args: argparse.Namespace, table: Callable[[list[dict]], str]) -> None:
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif args.csv:
        print(to_csv(rows), end="")
    else:
        print(table(rows))


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Flat CSV: nested objects become JSON strings in their cell."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()})
    return out.getvalue()


def _models_table(rows: list[dict]) -> str:
    lines = [f"{'id':<44} {'aliases':<18} {'params':>14}  families"]
    for r in rows:
        lines.append(
            f"{r['id']:<44} {','.join(r['aliases'])[:18]:<18} {units.params(r['published_params']):>14}  "
            f"{', '.join(r['families'])}"
        )
    return "\n".join(lines)


def _profile_table(rows: list[dict]) -> str:
    head = f"{'model':<36} {'params':>12} {'FLOPs':>12} {'train FLOPs':>12} {'traffic':>10} {'latency':>10}  notes"
    lines = [head]
    for r in rows:
        if r.get("error"):  # the name and error may echo what was typed: never print its control characters
            lines.append(f"{printable(r['model'], 36):<36} error: {printable(r['error'], None)}")
            continue
        latency = (r.get("latency_ms") or {}).get("median")
        lines.append(
            f"{r['model']:<36} {units.params(r['params']):>12} {units.flops(r['flops']):>12} "
            f"{units.flops(r['training_flops']):>12} {units.nbytes(r['memory_traffic_bytes']):>10} "
            f"{units.ms(latency) if latency else 'not run':>10}  "
            f"{'; '.join(f'{k} {units.percent(v)}' for k, v in r['counter_differences'].items())}"
        )
    w = rows[0]["workload"] if rows else {}
    lines.append(f"workload: {w}; FLOPs count 1 multiply-add as 2; weights random (built from config)")
    return "\n".join(lines)


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="model", file=sys.stderr, disable=total < 2 or not sys.stderr.isatty())


def check_measure_args(args: argparse.Namespace) -> None:
    """Refuse, before any model runs, a device, dtype or thread count that measurement cannot use here."""
    from efficiency.measure import check_device, supported_dtypes

    if not DEVICE_PATTERN.fullmatch(args.device):
        raise UsageError(f"--device {args.device!r}: accepted are cpu, cuda, cuda:N and mps")
    args.device = check_device(args.device)
    accepted = supported_dtypes(args.device)
    if args.dtype not in accepted:
        raise UsageError(
            f"--dtype {args.dtype} is not measured on {args.device}; accepted there: {', '.join(accepted)}"
        )
    cores = os.cpu_count() or 1
    if args.threads is not None and args.threads > cores:
        raise UsageError(f"--threads {args.threads}: this machine has {cores} cores; give 1..{cores}")


def cmd_profile(args: argparse.Namespace) -> int:
    workload = Workload(args.batch_size, args.seq_len, args.image_size, args.dtype, args.mode)
    if args.metrics == "all":
        check_measure_args(args)
        from efficiency.run.jobs import profile_measured

        rows = profile_measured(args.models, workload, args)
    else:
        from efficiency.counters.static import safe_profile_static

        rows = []
        with _progress(len(args.models)) as bar:
            for name in args.models:
                bar.set_description(name)
                rows.append(safe_profile_static(name, workload).to_dict())
                bar.update(1)
    _emit(rows, args, _profile_table)
    return 1 if any(r.get("error") for r in rows) else 0


def cmd_models(args: argparse.Namespace) -> int:
    _emit(_catalog_rows(), args, _models_table)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"models": cmd_models, "profile": cmd_profile}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, ValueError) as exc:
        print(f"error: {printable(exc, 500)}", file=sys.stderr)  # it may echo what was typed: no control chars
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse's --help exits; main returns the status instead
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
