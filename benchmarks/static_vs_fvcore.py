"""Our whole static profile against fvcore's usual path, for every catalog model (issue #18 item 7).

The peer does what a user of fvcore does: build the model from the same config with transformers, on the CPU,
the usual way (``from_config``: random weights, initialised), then call ``FlopCountAnalysis(model, inputs)
.total()`` on the model's default inputs. Ours is ``profile_static(model)``: parameters, FLOPs by three counters,
training FLOPs, memory traffic, as any process that profiles model after model runs it (a conv model's fvcore trace
in the warm helper of ``efficiency.counters.fvcore_helper`` from the process's second profile on, in a child forked
for it before; the dashboard's workers count once each, so theirs always fork: ``compare_page_load.py`` times that
path). Both run in this one process, alternating, after one untimed warm-up each
(imports, lazy module loading); the script prints the median of ``--repeats`` runs of each, the ratio ours/fvcore
per model and the worst ratio (goal: at most 1.00). After each peer run the heap it freed is handed back to the OS,
untimed (``_give_back_freed_heap``): the peer's GBs of weights would otherwise make our next fork slower; and
each timed call, ours or the peer's, starts after a full garbage collection, also untimed (see ``timed``).

A model whose fp32 weights exceed ``--peer-limit-gb`` is not built for fvcore (its usual path needs the weights in
memory: GPT-3 would need 700 GB); such a row says so and has no ratio. A peer that fails (fvcore cannot trace the
model) is reported with its error, also without a ratio.

    .venv/bin/python benchmarks/static_vs_fvcore.py --models resnet-50 efficientnet-b0 --repeats 3
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import os
import statistics
import time
from typing import Any

import torch
from fvcore.nn import FlopCountAnalysis

from efficiency.counters.static import profile_static
from efficiency.models.catalog import list_models
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model, model_class, resolve
from efficiency.specs import ModelSpec, Workload

PEER_LIMIT_GB = 6.0


class _Keywords(torch.nn.Module):
    """What a fvcore user writes for a model that takes more than one input: positional tensors to keywords."""

    def __init__(self, model: torch.nn.Module, names: list[str], constants: dict[str, Any]) -> None:
        super().__init__()
        self.model, self.names, self.constants = model, names, constants

    def forward(self, *tensors: torch.Tensor):
        return self.model(**dict(zip(self.names, tensors)), **self.constants, return_dict=False)


def ours(spec: ModelSpec) -> int:
    return profile_static(spec).flops


def fvcore_user(spec: ModelSpec) -> int:
    """Build from config on the CPU (random weights, initialised), then FlopCountAnalysis(...).total()."""
    from transformers import AutoConfig  # lazy: as a user would, after the model is chosen

    model = model_class(spec).from_config(AutoConfig.for_model(spec.model_type, **spec.config)).eval()
    inputs = make_inputs(spec, Workload(), "cpu")
    tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    constants = {k: v for k, v in inputs.items() if not isinstance(v, torch.Tensor)}
    wrapped = _Keywords(model, list(tensors), constants)
    analysis = FlopCountAnalysis(wrapped, tuple(tensors.values()))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return int(analysis.total())


def load_text() -> str:
    """The machine's load: on a shared machine both timings move with it (their ratio much less)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"


def timed(fn, *args) -> float:
    """Seconds of one call, started after a full garbage collection (untimed), for ours and the peer alike: a
    collection of every generation walks all of the process's objects (0.25 s at 390,000, more once dozens of
    model types are imported) and otherwise lands in whichever timed call happens to cross Python's threshold."""
    gc.collect()
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _give_back_freed_heap() -> None:
    """Hand the heap freed by the peer back to the OS (glibc's ``malloc_trim``), outside the timed runs.

    The peer builds real fp32 weights (GBs for the larger models); freed, they stay mapped in this process, and every
    later ``fork`` copies their page tables (fvcore's trace of a conv model runs in a forked child): 0.15-0.18 s more
    per fork at 4 GB resident, measured, charged to whichever path forks next. Trimming after each peer run leaves
    this process as ours would find it without the peer beside it. Where there is no glibc, nothing to do."""
    libc_name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(libc_name) if libc_name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def timed_peer(spec: ModelSpec) -> float:
    seconds = timed(fvcore_user, spec)
    _give_back_freed_heap()
    return seconds


def weight_gb(spec: ModelSpec) -> float:
    return sum(p.numel() for p in build_model(spec, device="meta").parameters()) * 4 / 1e9


def compare(spec: ModelSpec, repeats: int, peer_limit_gb: float) -> tuple[float, float | None, str]:
    """Median seconds of ours and of the peer (None when the peer cannot run), and a note."""
    gb = weight_gb(spec)
    peer_ok, note = gb <= peer_limit_gb, ""
    if not peer_ok:
        note = f"fvcore not run: its usual path needs {gb:.1f} GB of fp32 weights (limit {peer_limit_gb:g})"
    ours(spec)  # warm-up: lazy imports, first-use caches
    if peer_ok:
        try:
            fvcore_user(spec)
            _give_back_freed_heap()
        except Exception as exc:  # reported in the row: the peer cannot count this model
            peer_ok, note = False, f"fvcore failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    ours_s, peer_s = [], []
    for _ in range(repeats):
        ours_s.append(timed(ours, spec))
        if peer_ok:
            peer_s.append(timed_peer(spec))
    return statistics.median(ours_s), statistics.median(peer_s) if peer_s else None, note


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="catalog ids or aliases (default: every catalog model)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each, median taken (default 3)")
    parser.add_argument("--peer-limit-gb", type=float, default=PEER_LIMIT_GB, help="largest model fvcore builds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    specs = [resolve(name) for name in args.models] if args.models else list_models()
    print(load_text())
    print(f"{'model':<44} {'ours s':>8} {'fvcore s':>9} {'ours/fvcore':>12}")
    ratios: dict[str, float] = {}
    for spec in specs:
        try:
            ours_s, peer_s, note = compare(spec, args.repeats, args.peer_limit_gb)
        except Exception as exc:  # one model failing must not hide the others; the reason is printed
            print(f"{spec.id:<44} error: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}", flush=True)
            continue
        if peer_s is None:
            print(f"{spec.id:<44} {ours_s:8.2f} {'-':>9} {'-':>12}  {note}", flush=True)
            continue
        ratios[spec.id] = ours_s / peer_s
        print(f"{spec.id:<44} {ours_s:8.2f} {peer_s:9.2f} {ratios[spec.id]:12.2f}", flush=True)
    if ratios:
        worst = max(ratios, key=ratios.get)
        print(f"worst ratio ours/fvcore = {ratios[worst]:.2f} ({worst}); goal <= 1.00; {len(ratios)} models compared")
    print(load_text())


if __name__ == "__main__":
    main()
