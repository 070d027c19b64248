"""Our whole static profile of bert-base-uncased (seq 128) against fvcore's FlopCountAnalysis alone.

The peer does what a user of fvcore does: build the model from the same config (random weights, on the
CPU) and call ``FlopCountAnalysis(model, inputs).total()``. Both run in this process, alternating, after
one untimed warm-up each (imports and lazy module loading), 5 timed runs each; the script prints the
medians and the ratio ours/fvcore. A second line times fvcore's analysis alone on an already-built model,
for context (it then excludes building the model, which our profile includes).
"""

from __future__ import annotations

import statistics
import time

import torch
from fvcore.nn import FlopCountAnalysis

from efficiency.counters.static import profile_static
from efficiency.models.loading import build_config, model_class, resolve
from efficiency.specs import Workload

MODEL = "bert-base-uncased"
RUNS = 5


def ours() -> int:
    return profile_static(MODEL, Workload(seq_len=128)).flops


def fvcore_user(prebuilt: torch.nn.Module | None = None) -> int:
    spec = resolve(MODEL)
    model = prebuilt or model_class(spec).from_config(build_config(spec)).eval()
    analysis = FlopCountAnalysis(model, (torch.ones(1, 128, dtype=torch.long),))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return int(analysis.total())


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(2)
    ours()
    fvcore_user()
    ours_s, peer_s = [], []
    for _ in range(RUNS):
        ours_s.append(timed(ours))
        peer_s.append(timed(fvcore_user))
    spec = resolve(MODEL)
    built = model_class(spec).from_config(build_config(spec)).eval()
    analysis_only = [timed(fvcore_user, built) for _ in range(RUNS)]
    o, p, a = statistics.median(ours_s), statistics.median(peer_s), statistics.median(analysis_only)
    print(f"ours (full static profile: 3 counters, training FLOPs, traffic): {[round(x, 3) for x in ours_s]} s")
    print(f"fvcore (build from config + FlopCountAnalysis.total):            {[round(x, 3) for x in peer_s]} s")
    print(f"median ours {o:.3f} s, fvcore {p:.3f} s, ratio ours/fvcore = {o / p:.2f} (goal <= 1.00)")
    print(f"context: fvcore analysis alone on a pre-built model, median {a:.3f} s; ours/that = {o / a:.2f}")


if __name__ == "__main__":
    main()
