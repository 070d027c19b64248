"""Roofline estimates against measured latency on this CPU: ratio per model, Spearman, median ratio.

The estimate uses the calibrated "local-cpu" entry (achieved matmul FLOP/s and copy bandwidth at the same
thread count), never a per-model constant. Latency is measured on the real model (random weights) under
``torch.inference_mode``: 3 warm-ups, then the median of at least 10 runs and 1 s.
Usage: PYTHONPATH=. python benchmarks/roofline_validation.py [--threads 2] [--cached-calibration] [MODEL ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from scipy.stats import spearmanr

from efficiency.counters.static import profile_static
from efficiency.hardware.calibrate import calibrate
from efficiency.hardware.roofline import estimate
from efficiency.measure.timing import gc_paused
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model, resolve
from efficiency.specs import Workload

DEFAULT_MODELS = (
    "bert-base-uncased",
    "distilbert-base-uncased",
    "albert-base-v2",
    "electra-small-discriminator",
    "gpt2",
    "facebook/opt-125m",
    "google/vit-base-patch16-224",
    "facebook/deit-tiny-patch16-224",
    "microsoft/resnet-18",
    "google/mobilenet_v2_1.0_224",
    "t5-small",
)


def measure_round_robin(
    model_ids: list[str], workload: Workload, min_repeats: int, min_time_s: float
) -> dict[str, list[float]]:
    """Per model, latency samples (s) taken in turns: one call of each model per round.

    Our 2 cores are shared with other jobs; taking turns spreads their load evenly over the models, so the
    ranking stays fair even when absolute times are inflated. 3 warm-up calls per model come first.
    """
    calls = {}
    for model_id in model_ids:
        spec = resolve(model_id)
        model = build_model(spec, device="cpu", dtype=workload.dtype)
        inputs = make_inputs(spec, workload, "cpu")
        calls[model_id] = lambda m=model, x=inputs: m(**x)
    samples: dict[str, list[float]] = {model_id: [] for model_id in model_ids}
    with torch.inference_mode(), gc_paused():
        for call in calls.values():
            for _ in range(3):
                call()
        while any(len(s) < min_repeats or sum(s) < min_time_s for s in samples.values()):
            for model_id, call in calls.items():
                s = samples[model_id]
                if len(s) >= min_repeats and sum(s) >= min_time_s:
                    continue
                began = time.perf_counter()
                call()
                s.append(time.perf_counter() - began)
    return samples


def _summary(label: str, estimated: list[float], measured: list[float]) -> tuple[float, float]:
    rho = float(spearmanr(estimated, measured).statistic)
    median_ratio = statistics.median(e / m for e, m in zip(estimated, measured, strict=True))
    print(
        f"vs {label:<7}: Spearman {rho:.3f} (target >= 0.8); median ratio estimated/measured {median_ratio:.2f} "
        "(target 0.5..2)"
    )
    return rho, median_ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(DEFAULT_MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cached-calibration",
        action="store_true",
        help="use the cached local-cpu entry instead of calibrating now, under the same load as the timings",
    )
    parser.add_argument("--overhead-us", type=float, default=None, help="per-op overhead (default: the CPU kind's)")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    torch.set_num_threads(args.threads)
    hw = calibrate("cpu", threads=args.threads, recalibrate=not args.cached_calibration)
    print(
        f"hardware {hw.id}: {hw.name}; fp32 {hw.peak_for('float32') / 1e9:.1f} GFLOP/s, "
        f"copy {hw.memory_bandwidth_bytes_per_s / 1e9:.1f} GB/s; load average {os.getloadavg()[0]:.1f}"
    )
    workload = Workload(batch_size=1, seq_len=128, image_size=224, dtype="float32")
    overhead = None if args.overhead_us is None else args.overhead_us * 1e-6
    estimates = {m: estimate(profile_static(m, workload), hw, overhead_s=overhead) for m in args.models}
    samples = measure_round_robin(list(args.models), workload, min_repeats=10, min_time_s=1.0)

    print(
        f"\n{'model':<32} {'ops':>4} {'bound':>7} {'compute':>8} {'memory':>7} {'overhd':>6} "
        f"{'estimated':>9} {'median':>8} {'ratio':>5} {'min':>8} {'ratio':>5} {'n':>3}"
    )
    medians, minima = [], []
    for model_id, result in estimates.items():
        med, low = statistics.median(samples[model_id]) * 1e3, min(samples[model_id]) * 1e3
        medians.append(med)
        minima.append(low)
        est = result.estimated_latency_ms
        print(
            f"{model_id:<32} {result.ops:>4} {result.bound:>7} {result.compute_time_ms:>8.2f} "
            f"{result.memory_time_ms:>7.2f} {result.overhead_ms:>6.2f} {est:>9.2f} {med:>8.2f} {est / med:>5.2f} "
            f"{low:>8.2f} {est / low:>5.2f} {len(samples[model_id]):>3}"
        )
    estimated = [r.estimated_latency_ms for r in estimates.values()]
    print(f"\n{len(estimates)} models, {time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.1f}")
    rho, ratio = _summary("median", estimated, medians)
    _summary("min", estimated, minima)
    return 0 if rho >= 0.8 and 0.5 <= ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
