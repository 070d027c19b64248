"""What every command group shares: the parser that fails in one line, argument types, the workload and
measurement options, and the output formats (table, ``--json``, ``--csv``).

Bad command-line input raises :class:`UsageError` (one line, exit status 2); the command modules import
these helpers, and ``efficiency.cli.main`` imports the command modules, never the other way round.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

from efficiency.analysis.table import rows_csv
from efficiency.results import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS
from efficiency.specs import DTYPES, MODES, Workload

Command = Callable[[argparse.Namespace], int]
DEVICE_PATTERN = re.compile(r"cpu|mps|cuda(:\d{1,3})?")


class UsageError(Exception):
    """Bad command-line input: one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default prints usage over several lines
        raise UsageError(f"{self.prog}: {message} (see --help)")


def positive(text: str) -> int:
    """A whole number of at least 1 (argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds above 0 (argparse ``type``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number of seconds above 0")
    return value


def add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=positive, default=1, help="items per forward pass (default 1)")
    p.add_argument("--seq-len", type=positive, default=128, help="tokens per text item (default 128)")
    p.add_argument("--image-size", type=positive, default=224, help="pixels per side for vision (default 224)")
    p.add_argument(
        "--audio-seconds",
        type=seconds,
        default=10.0,
        help="clip length for speech models, in seconds (default 10; a model with a fixed window, such as "
        "Whisper's 30 s, uses its window and says so)",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--mode", choices=MODES, default="inference", help="what the measured numbers time")


def workload_from(args: argparse.Namespace) -> Workload:
    """The workload the options of :func:`add_workload_args` describe."""
    return Workload(args.batch_size, args.seq_len, args.image_size, args.dtype, args.mode, args.audio_seconds)


def implementation_list(text: str) -> tuple[str, ...]:
    """Comma-separated implementation names, each once, in order (argparse ``type``)."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",")))
    unknown = [name for name in names if name not in IMPLEMENTATIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{unknown[0]!r} is not one of {', '.join(IMPLEMENTATIONS)}")
    return names


def add_measure_args(p: argparse.ArgumentParser) -> None:
    """``--metrics``, ``--implementation`` and the options of a measured run (device, threads, repeats, timeout,
    store)."""
    p.add_argument("--metrics", choices=("static", "all"), default="static", help="all: also measure here")
    p.add_argument(
        "--implementation",
        type=implementation_list,
        default=(DEFAULT_IMPLEMENTATION,),
        metavar="NAME[,NAME...]",
        help=f"code that runs each model, one result per model and name: {', '.join(IMPLEMENTATIONS)} "
        f"(default {DEFAULT_IMPLEMENTATION}: PyTorch eager with SDPA attention)",
    )
    p.add_argument("--device", default="cpu", help="device to measure on: cpu, cuda:N, mps")
    p.add_argument("--threads", type=positive, default=None, help="CPU threads for measurement")
    p.add_argument("--repeats", type=positive, default=None, help="minimum timed repeats")
    p.add_argument("--timeout", type=seconds, default=600.0, help="seconds per model before it is stopped")
    p.add_argument("--fresh", action="store_true", help="measure again even if the store has a result")
    p.add_argument("--db", default=None, help="results store: SQLAlchemy URL or SQLite file path")


def check_measure_args(args: argparse.Namespace) -> None:
    """Refuse, before any model runs, a device, dtype or thread count that measurement cannot use here."""
    from efficiency.measure import check_device, supported_dtypes  # lazy: imports torch; --help stays fast

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


def add_output_args(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print a JSON array")
    fmt.add_argument("--csv", action="store_true", help="print CSV")


def emit(rows: list[dict[str, Any]], args: argparse.Namespace, table: Callable[[], str]) -> None:
    """Print ``rows`` (the JSON records) as ``--json`` or ``--csv``; by default the command's own ``table()``."""
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif args.csv:
        print(rows_csv(rows, leading=list(rows[0]) if rows else ()), end="")  # one CSV writer, formula-safe
    else:
        print(table())


def progress(total: int) -> tqdm:
    """A per-model progress bar on stderr, shown only on a terminal and for two models or more."""
    return tqdm(total=total, unit="model", file=sys.stderr, disable=total < 2 or not sys.stderr.isatty())
