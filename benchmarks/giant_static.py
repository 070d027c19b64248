"""`python -m efficiency profile mt-nlg-530b --metrics static --json`: wall time and peak memory.

Goal: under 10 s wall on 2 cores and under 1.5 GB peak resident memory, for the whole command
(interpreter start and imports included). Runs it 3 times as a child process and prints each run's wall
time and the child's peak RSS (ru_maxrss of a fresh process, so each run is measured on its own).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

COMMAND = [sys.executable, "-m", "efficiency", "profile", "mt-nlg-530b", "--metrics", "static", "--json"]
RUNS = 3


def one_run() -> tuple[float, int, dict]:
    """Wall seconds and peak RSS bytes of one child (measured through wait4 on that child alone)."""
    start = time.perf_counter()
    process = subprocess.Popen(COMMAND, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    out = process.stdout.read()
    process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed with status {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss * 1024, json.loads(out)[0]


def main() -> None:
    walls, peaks = [], []
    for run in range(1, RUNS + 1):
        wall, peak, row = one_run()
        walls.append(wall)
        peaks.append(peak)
        print(
            f"run {run}: {wall:.2f} s wall, peak RSS {peak / 1e9:.2f} GB, params {row['params']:,}, "
            f"FLOPs {row['flops']:.4g} (counters {row['flops_by_counter']})"
        )
    print(
        f"median wall {statistics.median(walls):.2f} s (goal < 10 s); max peak RSS {max(peaks) / 1e9:.2f} GB "
        f"(goal < 1.5 GB); load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
