"""Static counters against published figures and against each other, for every catalog entry.

Prints, per model: parameters vs the published figure, forward FLOPs by each counter and their
differences, published GMACs x 2 for vision models at 224 px, and the time the profile took. A
parameter gap over 1% is then told apart by whether the count still rounds to the published figure
(e.g. "1.1B" stands for anything from 1.05B to 1.15B: 1.07B is that figure, to the digits given).
Usage: python benchmarks/static_accuracy.py [MODEL ...]   (default: the whole catalog)
"""

from __future__ import annotations

import sys
import time

from efficiency.counters.static import safe_profile_static
from efficiency.models.catalog import list_models
from efficiency.specs import Workload


def main(names: list[str]) -> int:
    specs = [s for s in list_models() if not names or s.id in names or set(s.aliases) & set(names)]
    worst: dict[str, float] = {"params": 0.0, "vision": 0.0, "counters": 0.0}
    failures = 0
    over: list[tuple[str, float, bool]] = []  # params more than 1% off: (model, gap, rounds to the figure)
    print(
        f"{'model':<40} {'params':>14} {'vs pub':>7} {'GFLOPs':>10} {'fvcore':>7} {'analytic':>8} "
        f"{'vs pub GMACx2':>13} {'time':>6}"
    )
    for spec in specs:
        start = time.perf_counter()
        result = safe_profile_static(spec.id, Workload()).to_result().to_dict()  # the CLI's JSON record
        elapsed = time.perf_counter() - start
        if result["error"]:
            failures += 1
            print(f"{spec.id:<40} ERROR {result['error']}")
            continue
        published = spec.published.get("params")
        p_ratio = result["params"] / published - 1 if published else float("nan")
        diffs = result["counter_differences"]
        gmacs = spec.published.get("gmacs_224")
        v_ratio = result["flops"] / (2e9 * gmacs) - 1 if gmacs else None
        worst["params"] = max(worst["params"], abs(p_ratio))
        if abs(p_ratio) > 0.01:
            half_unit = spec.published.get("params_precision", 0) / 2
            over.append((spec.id, p_ratio, abs(result["params"] - published) <= half_unit))
        worst["counters"] = max([worst["counters"], *(abs(v) for v in diffs.values())])
        if v_ratio is not None:
            worst["vision"] = max(worst["vision"], abs(v_ratio))
        print(
            f"{spec.id:<40} {result['params']:>14,} {p_ratio:>+7.2%} {result['flops'] / 1e9:>10.2f} "
            f"{diffs.get('fvcore', float('nan')):>+7.2%} {diffs.get('analytic', float('nan')):>+8.2%} "
            f"{'' if v_ratio is None else f'{v_ratio:+.2%}':>13} {elapsed:>5.1f}s"
            + (f"  uncounted: {result['uncounted_ops']}" if result["uncounted_ops"] else "")
            + (f"  counter errors: {result['counter_errors']}" if result["counter_errors"] else "")
        )
    print(
        f"\n{len(specs)} models, {failures} failed; worst |params - published| {worst['params']:.2%}; "
        f"worst |vision FLOPs - published| {worst['vision']:.2%}; worst counter disagreement {worst['counters']:.2%}"
    )
    rounded = [f"{model} {gap:+.2%}" for model, gap, rounds in over if rounds]
    off = [f"{model} {gap:+.2%}" for model, gap, rounds in over if not rounds]
    print(
        f"params more than 1% from the published figure: {len(over)}; "
        f"of them rounding to it at the digits published: {', '.join(rounded) or 'none'}; "
        f"not: {', '.join(off) or 'none'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
