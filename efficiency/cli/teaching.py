"""CLI commands for teaching and publishing: ``experiment list|run`` and ``report MODEL ... --format md|latex``.

Kept apart from ``efficiency/cli/main.py``; ``register`` adds the subparsers and returns the command functions for
the CLI's dispatch table. Helpers of ``efficiency.cli.main`` are imported inside functions (``cli`` imports this).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from efficiency.specs import Workload

Command = Callable[[argparse.Namespace], int]
SUMMARY_COLUMNS = (
    "point",
    "model",
    "hardware",
    "params",
    "flops",
    "latency_ms",
    "throughput_per_s",
    "peak_memory_bytes",
    "training_step_ms",
)


def register(sub: argparse._SubParsersAction) -> dict[str, Command]:
    """Add ``experiment`` and ``report`` to a CLI's subparsers."""
    from efficiency.cli.main import _add_workload_args, _positive, _seconds

    experiment = sub.add_parser("experiment", help="named teaching experiments (list, run)")
    actions = experiment.add_subparsers(dest="experiment_command", required=True, parser_class=type(experiment))
    listing = actions.add_parser("list", help="every experiment with its default setup")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    run = actions.add_parser("run", help="run one experiment on this machine and explain its numbers")
    run.add_argument("name", metavar="NAME", help="experiment name (see `experiment list`)")
    run.add_argument("--quick", action="store_true", help="tiny setup (seconds), for a smoke test")
    run.add_argument("--json", action="store_true", help="print the result (numbers, sources, verdict) as JSON")

    report = sub.add_parser("report", help="report card: every indicator with units, sources and setup")
    report.add_argument("models", nargs="+", metavar="MODEL", help="catalog id or alias, local folder, or Hub id")
    report.add_argument("--format", choices=("md", "latex"), default="md", help="Markdown (default) or LaTeX")
    report.add_argument("--metrics", choices=("static", "all"), default="static", help="all: also measure here")
    _add_workload_args(report)
    report.add_argument("--device", default="cpu", help="device to measure on: cpu, cuda:N, mps")
    report.add_argument("--threads", type=_positive, default=None, help="CPU threads for measurement")
    report.add_argument("--repeats", type=_positive, default=None, help="minimum timed repeats")
    report.add_argument("--timeout", type=_seconds, default=600.0, help="seconds per model before it is stopped")
    report.add_argument("--fresh", action="store_true", help="measure again even if the store has a result")
    report.add_argument("--db", default=None, help="results store: SQLAlchemy URL or SQLite file path")
    return {"experiment": cmd_experiment, "report": cmd_report}


def experiment_rows() -> list[dict[str, Any]]:
    from efficiency.experiments import list_experiments

    return [
        {
            "name": e.name,
            "title": e.title,
            "description": e.description,
            "measures": e.measures,
            "default_setup": e.setup(),
        }
        for e in list_experiments()
    ]


def _stderr_progress(fraction: float, message: str) -> None:
    if sys.stderr.isatty():
        print(f"\r[{fraction:4.0%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)


def _summary(result: Any) -> str:
    from efficiency.analysis.rankings import INDICATORS

    columns = [c for c in SUMMARY_COLUMNS if c in result.data.columns and result.data[c].notna().any()]
    if "point" in columns and "model" in columns:
        columns.remove("model")
    table = result.data[columns].copy()
    for column in columns:
        if column in INDICATORS:
            table[column] = [INDICATORS[column].format(v) for v in table[column]]
    sources = ", ".join(f"{c}: {result.sources[c]}" for c in columns if c in INDICATORS)
    return "\n".join(
        [
            f"{result.title}  ({result.elapsed_s:.1f} s on {result.machine_label})",
            table.to_string(index=False),
            f"sources: {sources}",
            "",
            f"What to notice: {result.notice}",
            f"Verdict: {result.verdict}",
        ]
    )


def cmd_experiment(args: argparse.Namespace) -> int:
    from efficiency.experiments import MeasurementError, get_experiment

    if args.experiment_command == "list":
        rows = experiment_rows()
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for row in rows:
                print(f"{row['name']:<22} {row['title']}\n{'':<22} {row['measures']}")
        return 0
    experiment = get_experiment(args.name)
    try:
        result = experiment.run(quick=args.quick, progress=_stderr_progress)
    except MeasurementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else _summary(result))
    return 0


def report_rows(models: list[str], workload: Workload, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Static rows for every model; with ``--metrics all``, measured through the isolated runner and store."""
    if args.metrics == "all":
        from efficiency.cli.main import check_measure_args
        from efficiency.run.jobs import profile_measured

        check_measure_args(args)
        return profile_measured(models, workload, args)
    from efficiency.counters.static import safe_profile_static

    return [safe_profile_static(name, workload).to_dict() for name in models]


def cmd_report(args: argparse.Namespace) -> int:
    from efficiency.analysis.report import make_setup, to_latex, to_markdown

    workload = Workload(args.batch_size, args.seq_len, args.image_size, args.dtype, args.mode)
    rows = report_rows(args.models, workload, args)
    setup = make_setup(rows, args.threads)
    print(to_latex(rows, setup) if args.format == "latex" else to_markdown(rows, setup), end="")
    return 1 if any(r.get("error") for r in rows) else 0
