"""CLI commands ``models`` (the offline catalog) and ``profile`` (static counters; ``--metrics all`` also measures).

A model that fails gets its ``error`` and the others are still printed (exit status 1 when any model failed).
The JSON keys of ``profile --json`` are a public interface (``tests/test_cli_golden.py`` holds them still).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from efficiency import units
from efficiency.cli.args import (
    Command,
    UsageError,
    add_measure_args,
    add_output_args,
    add_workload_args,
    check_measure_args,
    emit,
    progress,
    workload_from,
)
from efficiency.models.catalog import list_models
from efficiency.models.quality import figures_for, parse_user_figure
from efficiency.results import DEFAULT_IMPLEMENTATION
from efficiency.specs import Workload
from efficiency.validation import printable

if TYPE_CHECKING:
    from efficiency.results import Result


def register(sub: argparse._SubParsersAction) -> dict[str, Command]:
    """Add ``models`` and ``profile`` to a CLI's subparsers."""
    models = sub.add_parser("models", help="list the offline model catalog")
    add_output_args(models)

    profile = sub.add_parser("profile", help="profile models (static counters; --metrics all also measures)")
    profile.add_argument("models", nargs="+", metavar="MODEL", help="catalog id or alias, local folder, or Hub id")
    add_workload_args(profile)
    add_measure_args(profile)
    profile.add_argument(
        "--quality",
        action="append",
        default=[],
        metavar="BENCHMARK=VALUE",
        help="your own quality figure for the one MODEL given, marked 'given by the user' (repeatable)",
    )
    add_output_args(profile)
    return {"models": cmd_models, "profile": cmd_profile}


def profile_results(models: Sequence[str], workload: Workload, args: argparse.Namespace) -> list[Result]:
    """One result per model and implementation, in order: static counts; with ``--metrics all``, measured through
    the isolated runner and the results store."""
    implementations = getattr(args, "implementation", None) or (DEFAULT_IMPLEMENTATION,)
    if args.metrics == "all":
        check_measure_args(args)
        from efficiency.run.jobs import profile_measured  # lazy: imports pandas and sqlalchemy; --help stays fast

        return profile_measured(
            models,
            workload,
            device=args.device,
            threads=args.threads,
            repeats=args.repeats,
            timeout_s=args.timeout,
            db=args.db,
            fresh=args.fresh,
            implementations=implementations,
        )
    from efficiency.counters.static import safe_profile_static  # lazy: imports torch; --help stays fast

    results = []
    with progress(len(models)) as bar:
        for name in models:
            bar.set_description(name)
            static = safe_profile_static(name, workload).to_result()
            results.extend(_as_implemented(static, name, workload, implementations, args.device))
            bar.update(1)
    return results


def _as_implemented(
    static: Result, name: str, workload: Workload, implementations: Sequence[str], device: str
) -> list[Result]:
    """The static result as each implementation runs it (the default alone: the result as counted)."""
    if tuple(implementations) == (DEFAULT_IMPLEMENTATION,):
        return [static]
    from efficiency.measure.implementation_counts import static_results  # lazy: imports torch; --help stays fast
    from efficiency.models.loading import resolve  # lazy: as above

    spec = None if static.error else resolve(name)
    if spec is None:
        return [static.with_(implementation=implementation) for implementation in implementations]
    return static_results(static, spec, workload, implementations, device)


def catalog_rows() -> list[dict[str, Any]]:
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


def _models_table(rows: list[dict]) -> str:
    lines = [f"{'id':<44} {'aliases':<18} {'params':>14}  families"]
    for r in rows:
        lines.append(
            f"{r['id']:<44} {','.join(r['aliases'])[:18]:<18} {units.params(r['published_params']):>14}  "
            f"{', '.join(r['families'])}"
        )
    return "\n".join(lines)


def _row_label(result: Result) -> str:
    """The model, and the implementation when it is not the default one."""
    shown = result.implementation != DEFAULT_IMPLEMENTATION
    return f"{result.label} [{result.implementation}]" if shown else result.label


def _profile_table(results: list[Result]) -> str:
    head = f"{'model':<36} {'params':>12} {'FLOPs':>12} {'train FLOPs':>12} {'traffic':>10} {'latency':>10}  notes"
    lines = [head]
    for r in results:
        if r.error:  # the name and error may echo what was typed: never print its control characters
            lines.append(f"{printable(_row_label(r), 36):<36} error: {printable(r.error, None)}")
            continue
        latency = r.latency_ms.median if r.latency_ms else None
        lines.append(
            f"{printable(_row_label(r), 36):<36} {units.params(r.params):>12} {units.flops(r.flops):>12} "
            f"{units.flops(r.training_flops):>12} {units.nbytes(r.memory_traffic_bytes):>10} "
            f"{units.duration(latency) if latency else 'not run':>10}  "
            f"{'; '.join(f'{k} {units.percent(v)}' for k, v in r.counter_differences.items())}"
        )
    w = results[0].workload if results else {}
    lines.append(f"workload: {w}; FLOPs count 1 multiply-add as 2; weights random (built from config)")
    return "\n".join(lines)


def with_quality(results: list[Result], given: Sequence[str]) -> list[Result]:
    """Each result with its model's bundled quality figures and the user's own (``--quality``: one model)."""
    user = [parse_user_figure(text) for text in given]
    out = []
    for result in results:
        figures = [figure.to_dict() for figure in (*figures_for(result.model), *user)]
        out.append(result.with_(quality=figures) if figures else result)
    return out


def cmd_profile(args: argparse.Namespace) -> int:
    for text in args.quality:  # a malformed figure is refused before any model runs
        parse_user_figure(text)
    if args.quality and len(args.models) != 1:
        raise UsageError("--quality BENCHMARK=VALUE: give exactly one MODEL, the one the figure belongs to")
    results = with_quality(profile_results(args.models, workload_from(args), args), args.quality)
    emit([result.to_dict() for result in results], args, lambda: _profile_table(results))
    return 1 if any(result.error for result in results) else 0


def cmd_models(args: argparse.Namespace) -> int:
    rows = catalog_rows()
    emit(rows, args, lambda: _models_table(rows))
    return 0
