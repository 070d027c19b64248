"""Roofline estimates for the whole model catalog on every hardware entry, and the rank flips they show.

One forward trace per model (``trace_profile``: the slow part, about a second each; ``--full`` uses the
complete ``profile_static`` instead) is reused for every chip (microseconds each).
Prints the wall time (split into profiling and estimating, with the slowest profiles), then the model pairs
whose estimated latency order differs between two chips, strongest first: the paper's point that a
"faster model" is only faster on some hardware.
Usage: PYTHONPATH=. python benchmarks/estimate_catalog.py [--full] [--examples 8] [--batch-size 1 --seq-len 128]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

import pandas as pd

from efficiency.counters.static import safe_profile_static
from efficiency.hardware import load_hardware
from efficiency.hardware.roofline import estimate_many, safe_trace_profile
from efficiency.models.catalog import list_models
from efficiency.specs import Workload


def rank_flips(frame: pd.DataFrame) -> pd.DataFrame:
    """Every (model pair, chip pair) whose latency order differs, with how decisive the flip is.

    ``strength`` is the smaller of the two log latency ratios: a flip where one chip barely separates the
    models is weak; one where each chip clearly prefers a different model is strong.
    """
    table = frame.pivot(index="model", columns="hardware", values="estimated_latency_ms").dropna()
    log_latency = table.apply(lambda column: column.map(math.log))
    rows = []
    for chip_a, chip_b in itertools.combinations(table.columns, 2):
        a, b = log_latency[chip_a], log_latency[chip_b]
        for first, second in itertools.combinations(table.index, 2):
            gap_a, gap_b = a[first] - a[second], b[first] - b[second]
            if gap_a * gap_b < 0:
                rows.append(
                    {
                        "model_1": first,
                        "model_2": second,
                        "chip_a": chip_a,
                        "chip_b": chip_b,
                        "strength": min(abs(gap_a), abs(gap_b)),
                    }
                )
    return pd.DataFrame(rows, columns=["model_1", "model_2", "chip_a", "chip_b", "strength"])


def _diverse(flips: pd.DataFrame, count: int, per_model: int = 2) -> pd.DataFrame:
    """The strongest flips, skipping any whose models were already shown ``per_model`` times."""
    shown: dict[str, int] = {}
    kept = []
    for index, flip in flips.iterrows():
        if shown.get(flip.model_1, 0) >= per_model or shown.get(flip.model_2, 0) >= per_model:
            continue
        kept.append(index)
        for model in (flip.model_1, flip.model_2):
            shown[model] = shown.get(model, 0) + 1
        if len(kept) == count:
            break
    return flips.loc[kept]


def _print_flip(lookup: pd.DataFrame, flip) -> None:
    print(f"- {flip.model_1} vs {flip.model_2}:")
    for chip in (flip.chip_a, flip.chip_b):
        one, two = lookup.loc[(flip.model_1, chip)], lookup.loc[(flip.model_2, chip)]
        faster = flip.model_1 if one.estimated_latency_ms < two.estimated_latency_ms else flip.model_2
        print(
            f"    {chip:<22} {one.estimated_latency_ms:9.3f} ms ({one.bound}) vs "
            f"{two.estimated_latency_ms:9.3f} ms ({two.bound}) -> {faster} faster"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--full", action="store_true", help="profile_static (fvcore, backward) instead of the trace")
    args = parser.parse_args(argv)

    workload = Workload(batch_size=args.batch_size, seq_len=args.seq_len)
    hardware = load_hardware()
    profile_fn = safe_profile_static if args.full else safe_trace_profile
    began = time.perf_counter()
    profiles, seconds = [], {}
    for spec in list_models():
        start = time.perf_counter()
        profiles.append(profile_fn(spec.id, workload))
        seconds[spec.id] = time.perf_counter() - start
    profiled = time.perf_counter()
    frame = estimate_many(profiles, hardware)
    done = time.perf_counter()

    failed = [p for p in profiles if p.error]
    print(f"{len(profiles)} models x {len(hardware)} chips = {len(frame)} estimates; {len(failed)} models failed")
    for profile in failed:
        print(f"  {profile.model}: {profile.error}")
    print(
        f"wall time {done - began:.1f} s: static profiles {profiled - began:.1f} s "
        f"({(profiled - began) / len(profiles):.2f} s per model), estimates {1e3 * (done - profiled):.0f} ms "
        f"({1e6 * (done - profiled) / max(len(frame), 1):.0f} us per estimate)"
    )
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:5]
    print("slowest profiles: " + ", ".join(f"{model} {s:.1f} s" for model, s in slowest))

    good = frame[frame["error"].isna()] if "error" in frame else frame
    flips = rank_flips(good).sort_values("strength", ascending=False)
    strongest = flips.drop_duplicates(["model_1", "model_2"])
    print(
        f"\n{len(flips)} (model pair, chip pair) rank flips over {len(strongest)} model pairs; "
        "the strongest flip of each of the top model pairs:"
    )
    lookup = good.set_index(["model", "hardware"])
    bound = lookup["bound"]
    mixed = strongest[
        [
            bound[(f.model_1, f.chip_a)] != bound[(f.model_2, f.chip_a)]
            or bound[(f.model_1, f.chip_b)] != bound[(f.model_2, f.chip_b)]
            for f in strongest.itertuples()
        ]
    ]
    for title, chosen in (
        ("strongest (each model in at most two examples)", _diverse(strongest, args.examples)),
        ("a memory-bound model against a compute-bound one", mixed.head(3)),
    ):
        print(f"\n{title}:")
        for flip in chosen.itertuples():
            _print_flip(lookup, flip)
    return 0 if len(flips) else 1


if __name__ == "__main__":
    sys.exit(main())
