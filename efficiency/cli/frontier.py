"""CLI command ``frontier``: per cost indicator, the models on the quality-versus-cost Pareto frontier.

Quality comes from the bundled, sourced figures (:mod:`efficiency.models.quality`); costs from the static profile
(parameters, FLOPs, memory traffic) and, where the results store holds a measured result for this setup on this
machine, measured latency (never measured here: without a stored result the latency frontier is "not measured").
The frontier rules (direction, ties) are :mod:`efficiency.analysis.frontier`'s and are printed with the result.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from efficiency.analysis.frontier import change_sentence, frontier_changes, frontiers
from efficiency.cli.args import Command, UsageError, add_workload_args, positive, progress, workload_from
from efficiency.models.catalog import find
from efficiency.models.quality import benchmarks, figure_for
from efficiency.specs import Workload
from efficiency.validation import printable

STATIC_INDICATORS = ("params", "flops", "memory_traffic_bytes")
RULES = (
    "lower cost and better quality win; for a lower-is-better benchmark (perplexity) lower quality is better; "
    "a model is on the frontier when no other model costs no more and scores no worse while being strictly better "
    "on one of the two; models with equal cost and equal quality are both on or both off; a model without a "
    "cost for an indicator is left out of that indicator's frontier (listed as missing)"
)


def register(sub: argparse._SubParsersAction) -> dict[str, Command]:
    """Add ``frontier`` to a CLI's subparsers."""
    p = sub.add_parser("frontier", help="models on the quality-versus-cost Pareto frontier, per cost indicator")
    p.add_argument("models", nargs="+", metavar="MODEL", help="catalog ids or aliases (bundled quality figures)")
    p.add_argument("--quality", required=True, metavar="BENCHMARK", help="benchmark id, e.g. imagenet-1k-top1")
    p.add_argument("--device", default="cpu", help="measured latency: device of stored results (default cpu)")
    p.add_argument("--threads", type=positive, default=None, help="measured latency: CPU threads (default any)")
    p.add_argument("--db", default=None, help="results store to read measured latency from")
    add_workload_args(p)
    p.add_argument("--json", action="store_true", help="print a JSON object")
    return {"frontier": cmd_frontier}


def _model_id(name: str) -> str:
    spec = find(name)
    return spec.id if spec is not None else name


def _stored_latency(models: list[str], workload: Workload, args: argparse.Namespace) -> tuple[dict[str, float], str]:
    """Median latency of each model's newest stored measured result for this setup here, and a note."""
    from efficiency.hardware.detect import environment_fingerprint  # lazy: imports torch
    from efficiency.store.lookup import Wanted  # lazy: the store package imports sqlalchemy; --help stays fast
    from efficiency.store.schema import StoreError  # lazy: imports sqlalchemy; --help stays fast
    from efficiency.store.store import ResultStore  # lazy: imports sqlalchemy; --help stays fast

    machine = environment_fingerprint()
    found: dict[str, float] = {}
    try:
        with ResultStore(args.db) as store:
            for model in models:
                wanted = Wanted(
                    model, workload.to_dict(), True, f"local-{args.device}", args.device, args.threads, machine
                )
                result = store.lookup(wanted)
                if result is not None and result.latency_ms is not None:
                    found[model] = result.latency_ms.median
    except StoreError as exc:
        return {}, f"not measured: the results store could not be read ({printable(exc, 200)})"
    if not found:
        return {}, (
            f"not measured: no stored measured result for this setup on local-{args.device}; "
            "run `profile MODEL... --metrics all` first"
        )
    return found, f"measured on local-{args.device} (stored results; median latency)"


def frontier_report(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the command prints, as one JSON-ready dict."""
    known = benchmarks()
    benchmark = known.get(args.quality)
    if benchmark is None:
        raise UsageError(f"--quality {args.quality!r}: unknown benchmark; bundled: {', '.join(known)}")
    workload = workload_from(args)
    models = list(dict.fromkeys(_model_id(name) for name in args.models))
    figures = {m: figure_for(m, benchmark.id) for m in models}
    rated = [m for m in models if figures[m] is not None]
    costs: dict[str, dict[str, float | None]] = {column: {} for column in STATIC_INDICATORS}
    errors: dict[str, str] = {}
    from efficiency.counters.static import safe_profile_static  # lazy: imports torch; --help stays fast

    with progress(len(rated)) as bar:
        for model in rated:
            result = safe_profile_static(model, workload).to_result()
            if result.error:
                errors[model] = result.error
            for column in STATIC_INDICATORS:
                costs[column][model] = getattr(result, column)
            bar.update(1)
    obtained = {column: "counted (static profile)" for column in STATIC_INDICATORS}
    latency, note = _stored_latency(rated, workload, args) if rated else ({}, "not measured: no model has a figure")
    if latency:
        costs["latency_ms"] = dict(latency)
        obtained["latency_ms"] = note
    quality = {m: figures[m].value for m in rated}  # type: ignore[union-attr]
    panels = frontiers(costs, quality, benchmark.higher_is_better)
    changes = frontier_changes(panels)
    return {
        "benchmark": benchmark.id,
        "unit": benchmark.unit,
        "higher_is_better": benchmark.higher_is_better,
        "rules": RULES,
        "workload": workload.to_dict(),
        "quality": {m: {**figures[m].to_dict(), "table": figures[m].table, "setup": figures[m].setup} for m in rated},  # type: ignore[union-attr]
        "without_quality": [m for m in models if figures[m] is None],
        "errors": errors,
        "frontiers": [
            {
                "indicator": f.indicator,
                "obtained": obtained[f.indicator],
                "models": list(f.models),
                "missing": list(f.missing),
            }
            for f in panels
        ],
        "not_measured": {} if latency else {"latency_ms": note},
        "changes": [
            {
                "from": c.before,
                "to": c.after,
                "joined": list(c.joined),
                "left": list(c.left),
                "text": change_sentence(c),
            }
            for c in changes
        ],
    }


def _table(report: dict[str, Any]) -> str:
    lines = [f"{report['benchmark']} ({'higher' if report['higher_is_better'] else 'lower'} is better)"]
    for f in report["frontiers"]:
        lines.append(f"  {f['indicator']:<22} {', '.join(f['models']) or '-'}   [{f['obtained']}]")
    for indicator, note in report["not_measured"].items():
        lines.append(f"  {indicator:<22} {note}")
    lines.extend(f"  {c['text']}" for c in report["changes"])
    if report["without_quality"]:
        lines.append(f"no bundled {report['benchmark']} figure (left out): {', '.join(report['without_quality'])}")
    lines.append(f"rules: {report['rules']}")
    return "\n".join(lines)


def cmd_frontier(args: argparse.Namespace) -> int:
    report = frontier_report(args)
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 1 if report["errors"] else 0
