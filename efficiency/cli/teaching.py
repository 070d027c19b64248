"""CLI commands for teaching and publishing: ``experiment list|run`` and ``report MODEL ... --format md|latex``.

``register`` adds the subparsers and returns the command functions for the CLI's dispatch table. A report's rows
are the ``profile`` command's (static, or measured with ``--metrics all``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from efficiency.analysis.report import make_setup, rows_of, to_latex, to_markdown
from efficiency.cli.args import Command, add_measure_args, add_workload_args, workload_from
from efficiency.cli.profile import profile_results

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
    experiment = sub.add_parser("experiment", help="named teaching experiments (list, run)")
    actions = experiment.add_subparsers(dest="experiment_command", required=True, parser_class=type(experiment))
    listing = actions.add_parser("list", help="every experiment with its default setup")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    run = actions.add_parser("run", help="run one experiment on this machine and explain its numbers")
    run.add_argument("name", metavar="NAME", help="experiment name (see `experiment list`)")
    run.add_argument("--quick", action="store_true", help="tiny setup (seconds), for a smoke test")
    run.add_argument("--json", action="store_true", help="print the result (numbers, sources, verdict) as JSON")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one setting of the setup (VALUE as JSON), e.g. --set retrain_every_requests=1e9 or "
        "--set 'training_tokens={\"EleutherAI/pythia-1b\": 1e12}'; repeatable",
    )

    report = sub.add_parser("report", help="report card: every indicator with units, sources and setup")
    report.add_argument("models", nargs="+", metavar="MODEL", help="catalog id or alias, local folder, or Hub id")
    report.add_argument("--format", choices=("md", "latex"), default="md", help="Markdown (default) or LaTeX")
    add_workload_args(report)
    add_measure_args(report)
    return {"experiment": cmd_experiment, "report": cmd_report}


def experiment_rows() -> list[dict[str, Any]]:
    from efficiency.experiments import list_experiments  # lazy: imports pandas; --help stays fast

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
    from efficiency.analysis.rankings import INDICATORS  # lazy: imports pandas; --help stays fast

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
    from efficiency.experiments import MeasurementError, get_experiment  # lazy: imports pandas; --help stays fast

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
        overrides = settings(args.set)
        result = experiment.run(quick=args.quick, progress=_stderr_progress, overrides=overrides)
    except (MeasurementError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2, default=str) if args.json else _summary(result))
    return 0


def settings(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict, each VALUE read as JSON (a number, a string, an object); one clear line on
    a malformed pair."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--set {key}: {text!r} is not a JSON value ({exc.msg})") from exc
    return out


def cmd_report(args: argparse.Namespace) -> int:
    results = profile_results(args.models, workload_from(args), args)
    rows = rows_of(results)
    setup = make_setup(results, args.threads)
    print(to_latex(rows, setup) if args.format == "latex" else to_markdown(rows, setup), end="")
    return 1 if any(result.error for result in results) else 0
