"""Counts two small catalog models once, on import: the dashboard's forkserver imports this module with its
preload (``efficiency.ui.runs.executor``), so every static count forked from it later starts with the counters'
first-use work done (torch's dispatch and fake-tensor paths, torch.jit and fvcore, first calls of the tracer) instead
of paying it again in each fresh worker. Measured on forks of a process that had imported the same modules (2 cores;
BERT-base, ALBERT-xxlarge, GPT-2, ViT-B/16, ResNet-50): each count 0.33-0.51 s cold, 0.25-0.36 s after this
warm-up, which itself takes about 0.6 s, once, in the forkserver's background start. Only speed changes: every
count is made from scratch in its worker as before.

A warm-up that fails does not stop the forkserver: the reason is written to stderr and workers start cold."""

from __future__ import annotations

import sys
import time

WARM_MODELS = ("electra-small-discriminator", "resnet-18")  # a transformer encoder and a CNN: both counting paths


def warm() -> float:
    """Profile each of ``WARM_MODELS`` once; seconds taken. Without fvcore's warm helper (``efficiency.counters.
    fvcore_helper``): the forkserver forks workers that count once each, and a helper of its own would idle."""
    from efficiency.counters import fvcore_helper  # lazy: importing this module is what runs the warm-up
    from efficiency.counters.static import profile_static  # lazy: the same

    began, enabled = time.perf_counter(), fvcore_helper.ENABLED
    fvcore_helper.ENABLED = False
    try:
        for name in WARM_MODELS:
            profile_static(name)
    finally:
        fvcore_helper.ENABLED = enabled
    return time.perf_counter() - began


try:
    warm()
except Exception as exc:  # noqa: BLE001 - the forkserver must start anyway; the reason is written out
    print(f"efficiency: warming the counters failed, workers start cold ({type(exc).__name__}: {exc})", file=sys.stderr)
