"""Regenerate efficiency/experiments/bundled/experiments.json: the default run of every experiment on this machine.

    .venv/bin/python scripts/regenerate_bundled.py            # all experiments (a few minutes on 2 cores)
    .venv/bin/python scripts/regenerate_bundled.py --only hardware batch-size   # replace some, keep the rest

Prints each experiment's wall time, verdict, and the load average before and after it: timings taken while
other work runs on the machine are noisy, and the file records that load next to every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from efficiency.experiments import EXPERIMENTS, get_experiment
    from efficiency.experiments.base import load_average, machine_info
    from efficiency.experiments.bundled import BUNDLE_FILE, FORMAT_VERSION

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="experiments to (re)run; others are kept")
    parser.add_argument("--output", type=Path, default=BUNDLE_FILE, help="where to write (default: the bundle)")
    parser.add_argument("--quick", action="store_true", help="tiny setups (to try the script; never for the bundle)")
    args = parser.parse_args(argv)
    if args.quick and args.output.resolve() == BUNDLE_FILE.resolve():
        parser.error("--quick runs are smoke tests; give --output so they do not replace the bundle")
    names = args.only or list(EXPERIMENTS)
    for name in names:
        get_experiment(name)  # unknown names fail before anything runs

    stored: dict = {}
    kept_machine = None
    if args.only and args.output.is_file():
        old = json.loads(args.output.read_text(encoding="utf-8"))
        stored = old.get("experiments", {})
        # the file's machine record stands for the runs it keeps; each run carries its own machine and date
        kept_machine = old.get("machine")
    started, first_load = time.perf_counter(), load_average()
    for name in names:
        load = load_average()
        print(f"{name}: running (load average {load:.2f})", flush=True)
        result = get_experiment(name).run(quick=args.quick)
        stored[name] = result.to_dict()
        print(
            f"{name}: {result.elapsed_s:.1f} s, load {load:.2f} -> {load_average():.2f}\n  verdict: {result.verdict}",
            flush=True,
        )
    threads = max((r["setup"].get("threads") or 0 for r in stored.values()), default=None) or None
    bundle = {
        "format": FORMAT_VERSION,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "generated_by": "scripts/regenerate_bundled.py (efficiency.experiments, default setups)",
        "machine": kept_machine or {**machine_info(threads, first_load), "usable_cpus": len(os.sched_getaffinity(0))},
        "total_s": round(sum(r.get("elapsed_s") or 0 for r in stored.values()), 1),  # every run kept, not just this one
        "experiments": {n: stored[n] for n in EXPERIMENTS if n in stored},
    }
    args.output.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({size / 1e3:.0f} kB) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
