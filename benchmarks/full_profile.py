"""Full profile (static + inference latency + training step) of five models through the isolated runner.

Goal: all five in under 90 s on 2 CPU cores. Prints the time per model and per phase, and the total,
which includes starting the warm worker pool. Uses a temporary results store (nothing is reused).
Usage: python benchmarks/full_profile.py [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from efficiency import units
from efficiency.models.loading import resolve
from efficiency.run.jobs import estimate_job_memory
from efficiency.run.runner import Job, LocalExecutor, Runner
from efficiency.specs import Workload
from efficiency.store.store import ResultStore

MODELS = [
    "bert-base-uncased",
    "distilbert-base-uncased",
    "albert-base-v2",
    "gpt2",
    "google/vit-base-patch16-224",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    workload = Workload(mode="training")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        store = ResultStore(f"{folder}/results.db")
        jobs = [
            Job(model=m, workload=workload.for_modality(resolve(m).modality), metrics="all", threads=args.threads)
            for m in MODELS
        ]
        results = Runner(LocalExecutor(), store=store, estimator=estimate_job_memory).run(jobs)
    total = time.perf_counter() - start
    for result in results:
        if result.get("error"):
            print(f"{result['model']:<32} ERROR {result['error']}")
            continue
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in result["timings_s"].items())
        print(
            f"{result['model']:<32} latency {units.duration(result['latency_ms']['median']):>9}  "
            f"train step {units.duration(result['training_step_ms']['median']):>9}  "
            f"({phases}; total {sum(result['timings_s'].values()):.1f} s)"
        )
    print(f"all five: {total:.1f} s wall, including starting the worker (goal < 90 s)")


if __name__ == "__main__":
    main()
