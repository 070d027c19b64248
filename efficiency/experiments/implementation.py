"""The implementation experiment (issue 17): the same model, the same arithmetic, run by different code.

Part one runs one small model under every implementation that runs on this CPU (eager attention, SDPA,
torch.compile, int8 dynamic quantization of the linear layers, ONNX Runtime): parameters and FLOPs stay the same
under the float implementations, the measured latency need not. Part two measures two models whose latency order
may flip under a change of implementation: a CNN, whose convolutions dynamic int8 leaves in float32, and a vision
transformer, nearly all of whose work is linear layers that it runs as int8. The verdict says plainly when no flip
appeared. Each (model, implementation) is one job of the project's runner (an isolated worker, the usual warm-up,
repeat and spread rules); the one-off preparation before the first timed call (compile, quantize, export, open a
session) is reported apart, in ``preparation_s``, and is not in the latency.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from efficiency import units
from efficiency.analysis.claims import Drawn, Fact, Headline, table_drawn
from efficiency.analysis.findings import compare, implementation_claims
from efficiency.analysis.rankings import pair_text
from efficiency.charts.compare import scatter
from efficiency.experiments.base import Analysis, Experiment, Progress, fmt
from efficiency.experiments.comparisons import order
from efficiency.experiments.measure import JOB_TIMEOUT_S, local_hardware, resolve_all, sources_for
from efficiency.experiments.sweeps import THREADS
from efficiency.results import IMPLEMENTATIONS, Result, implementation_label
from efficiency.run.planning import make_job
from efficiency.specs import ModelSpec, Workload

EXTRA_SOURCES = {
    "model_name": "setup",
    "implementation": "setup",
    "every_implementation": "setup",
    "flip_pair": "setup",
    "int8_ops": "counted",
    "preparation_s": "measured",
    "error": "measured",
}
COUNTED = ("params", "flops", "int8_ops", "memory_traffic_bytes")
FLOAT = tuple(name for name in IMPLEMENTATIONS if name != "int8")


# ---- collecting: one runner job per model and implementation -------------------------------------------


def planned(setup: dict[str, Any]) -> list[tuple[str, str]]:
    """(model, implementation) pairs to run, each once: the one model under every implementation, then the pair
    under the implementations that may flip them."""
    pairs = [(setup["model"], name) for name in setup["implementations"]]
    pairs += [(model, name) for model in setup["pair"] for name in setup["pair_implementations"]]
    return list(dict.fromkeys(pairs))


def _run_jobs(jobs: list, setup: dict[str, Any], progress: Progress) -> list[Result]:
    """Each job in the runner's isolated worker (no store: always measured now), or in this process for quick runs
    (tests), where peak memory would include the test process and is therefore dropped."""
    done: list[str] = []

    def on_progress(model: str, phase: str, fraction: float) -> None:
        done.extend([model] if phase in {"finished", "failed", "refused"} else [])
        share = (len(done) + (0.0 if phase in {"finished", "failed", "refused"} else fraction)) / len(jobs)
        progress(min(share, 1.0), f"measuring {model}: {phase}")

    if setup.get("isolated", True):
        from efficiency.run.runner import LocalExecutor, Runner  # lazy: the runner's forkserver starts here only

        return Runner(LocalExecutor()).run(jobs, on_progress=on_progress)
    from efficiency.run.jobs import run_job  # lazy: imports torch

    results = []
    for job in jobs:
        outcome = Result.from_dict(run_job(job.to_dict(), lambda p, f, m=job.model: on_progress(m, p, f)))
        results.append(outcome.with_(peak_memory_bytes=None))
        on_progress(job.model, "finished", 1.0)
    return results


def _row(spec: ModelSpec, workload: Workload, result: Result, setup: dict[str, Any]) -> dict[str, Any]:
    """One flat, unit-named row: the setup, the counts as this implementation runs the model, the measurement."""
    latency = result.latency_ms
    shape = {"seq_len": workload.seq_len} if spec.modality == "text" else {"image_size": workload.image_size}
    label = implementation_label(result.implementation)
    return {
        "model": f"{spec.display_name} ({label})",
        "model_name": spec.display_name,
        "model_id": spec.id,
        "implementation": result.implementation,
        "every_implementation": spec.id == setup["model_id"],
        "flip_pair": spec.id in setup["pair_ids"] and result.implementation in setup["pair_implementations"],
        "hardware": local_hardware(setup["threads"]),
        "dtype": workload.dtype,
        "batch_size": workload.batch_size,
        **shape,
        "measured": bool(result.measured and not result.error),
        **{name: getattr(result, name) for name in COUNTED},
        "latency_ms": latency.median if latency else None,
        "latency_p10_ms": latency.p10 if latency else None,
        "latency_p90_ms": latency.p90 if latency else None,
        "latency_samples": latency.n if latency else None,
        "throughput_per_s": result.throughput_per_s,
        "peak_memory_bytes": result.peak_memory_bytes,
        "preparation_s": sum((result.setup_s or {}).values()) if result.setup_s else None,
        "error": result.error or "",
    }


def collect(setup: dict[str, Any], progress: Progress) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per (model, implementation); a pair that cannot run keeps its row with its one-line error."""
    pairs = planned(setup)
    names = list(dict.fromkeys(model for model, _ in pairs))
    resolved = resolve_all(names)
    ids = {name: spec.id for name, spec in zip(names, resolved)}
    specs = {spec.id: spec for spec in resolved}
    workload = Workload(
        batch_size=setup.get("batch_size", 1),
        seq_len=setup.get("seq_len", 128),
        image_size=setup.get("image_size", 224),
    )
    jobs = [
        make_job(
            ids[model],
            workload.for_modality(specs[ids[model]].modality),
            threads=setup.get("threads"),
            repeats=setup.get("repeats"),
            timeout_s=setup.get("timeout_s", JOB_TIMEOUT_S),
            implementation=name,
        )
        for model, name in pairs
    ]
    known = {**setup, "model_id": ids[setup["model"]], "pair_ids": {ids[m] for m in setup["pair"]}}
    results = _run_jobs(jobs, setup, progress)
    rows = [_row(specs[job.model], workload, result, known) for job, result in zip(jobs, results)]
    data = pd.DataFrame(rows)
    return data, sources_for(data.columns, **EXTRA_SOURCES)


# ---- reading the numbers -----------------------------------------------------------------------------------


def _ran(data: pd.DataFrame) -> pd.DataFrame:
    return data[(data["error"].fillna("") == "") & data["latency_ms"].notna()].reset_index(drop=True)


def _one_model(data: pd.DataFrame) -> tuple[list[str], Headline | None]:
    """The sentences about the one model under every implementation, and the "same FLOPs, Nx faster" claim (None
    when its float implementations could not be told apart by latency)."""
    rows = data[data["every_implementation"].astype(bool)]
    if rows.empty:
        return ["The one model measured under every implementation has no result in this run."], None
    name = str(rows["model_name"].iloc[0])
    parts = [f"{name}, by measured latency: {order(rows, 'latency_ms')}."]
    floats = rows[rows["implementation"].isin(FLOAT)]
    if len(floats) >= 2 and floats["flops"].nunique() == 1 and floats["params"].nunique() == 1:
        params, flops = fmt("params", floats["params"].iloc[0]), fmt("flops", floats["flops"].iloc[0])
        parts.append(
            f"Parameters ({params}) and FLOPs ({flops}) are the same under its {len(floats)} float implementations: "
            "the arithmetic does not change, the code does."
        )
    for _, row in rows[rows["int8_ops"].fillna(0) > 0].iterrows():
        parts.append(
            f"Under int8 dynamic its linear layers run {units.count(row['int8_ops'], 'int8 ops')}, "
            f"counted apart from the {fmt('flops', row['flops'])} it still runs in float."
        )
    prepared = rows[rows["preparation_s"].fillna(0) > 0]
    if len(prepared):
        spent = ", ".join(
            f"{implementation_label(r.implementation)} {r.preparation_s:.1f} s" for r in prepared.itertuples()
        )
        parts.append(f"One-off preparation before the first timed call, not in the latency: {spent}.")
    claim = implementation_claims(floats, max_items=1)
    return parts, (claim[0] if claim else None)


def _orders(rows: pd.DataFrame, a: str, b: str) -> dict[str, tuple[str, float, float]]:
    """Per implementation both models ran under: ("a<b" / "b<a" / "equal", a's latency, b's latency) in ms."""
    found = {}
    for name in dict.fromkeys(rows["implementation"]):
        under = rows[rows["implementation"] == name].reset_index(drop=True)
        labels = dict(zip(under["model_name"], under["model"]))
        if a not in labels or b not in labels:
            continue
        verdict = compare(under, "model", labels[a], labels[b], ["latency_ms"])
        if "latency_ms" not in verdict.details:
            continue
        relation = "equal" if verdict.equal else ("a<b" if verdict.a_better else "b<a")
        va, vb = (float(under.loc[under["model_name"] == m, "latency_ms"].iloc[0]) for m in (a, b))
        found[name] = (relation, va, vb)
    return found


def faster_first(name: str, a: str, b: str, order: tuple[str, float, float]) -> tuple[str, Fact]:
    """ "MobileNetV2 is faster than DeiT-Tiny under SDPA (25 vs 36 ms, 1.4x)": the faster model first, its latency
    first; with the fact it states (the models under implementation ``name``)."""
    relation, va, vb = order
    (fast, tf), (slow, ts) = ((a, va), (b, vb)) if relation == "a<b" else ((b, vb), (a, va))
    stated = units.times(ts / tf)
    words = (
        f"{fast} is faster than {slow} under {implementation_label(name)} ({pair_text('latency_ms', tf, ts)}, {stated})"
    )
    return words, Fact(name, "latency_ms", slow, fast, ts, tf, "higher", stated)


def flip(data: pd.DataFrame) -> tuple[str, str, str, str, dict[str, tuple[str, float, float]]] | None:
    """(faster model under ``first``, the other, first implementation, second implementation, every order) of the
    pair whose latency order reverses between two implementations, each order beyond tolerance and p10-p90; None
    without such a reversal."""
    rows = data[data["flip_pair"].astype(bool)]
    names = list(dict.fromkeys(rows["model_name"]))
    if len(names) != 2:
        return None
    a, b = names
    orders = _orders(rows, a, b)
    for first, second in permutations(orders, 2):
        if orders[first][0] == "a<b" and orders[second][0] == "b<a":
            return a, b, first, second, orders
    return None


def _pair_sentence(data: pd.DataFrame) -> str:
    """The pair's latency under each implementation both ran, in words (with whether they could be told apart)."""
    rows = data[data["flip_pair"].astype(bool)]
    names = list(dict.fromkeys(rows["model_name"]))
    if len(names) != 2:
        return "The pair meant to flip has no result for both models in this run."
    a, b = names
    words = {"a<b": f"{a} faster", "b<a": f"{b} faster", "equal": "about equal (within tolerance or p10-p90)"}
    said = [
        f"under {implementation_label(n)} {words[r]} ({a} vs {b}: {pair_text('latency_ms', va, vb)})"
        for n, (r, va, vb) in _orders(rows, a, b).items()
    ]
    return f"{a} and {b} by measured latency: " + "; ".join(said) + "." if said else ""


def analyse(data: pd.DataFrame) -> Analysis:
    """What the run shows: the one model's speeds at the same FLOPs, and whether the pair's order flipped."""
    ran = _ran(data)
    parts, claim = _one_model(ran)
    parts.append(_pair_sentence(ran))
    for row in data[data["error"].fillna("") != ""].itertuples():
        parts.append(f"{row.model} did not run: {row.error}.")
    flipped = flip(ran)
    pieces = [claim.text.rstrip(".")] if claim else []
    facts = claim.facts if claim else ()
    if flipped:
        a, b, first, second, orders = flipped
        (one, fact_one), (two, fact_two) = (faster_first(n, a, b, orders[n]) for n in (first, second))
        pieces.append(f"{one}, yet {two}")
        facts += (fact_one, fact_two)
    if not pieces:
        line = "Not shown in this run: no implementation moved a latency beyond its p10-p90, nor flipped an order."
        return Analysis(" ".join(p for p in parts if p), line, False)
    pieces += [] if flipped else ["the pair's order did not flip"]
    line = "; ".join(pieces) + ": the implementations disagree"
    return Analysis(" ".join(p for p in parts if p), line + ".", True, facts)


def drawn(data: pd.DataFrame) -> Drawn:
    """What the chart and table show: each row's indicators by its label ("DeiT-Tiny (SDPA)"), and each model's
    latency under each implementation (the pair's sentence compares models within one implementation)."""
    return {**table_drawn(data), **table_drawn(data, category="implementation", names=("model_name",))}


def figure(data: pd.DataFrame, presentation: bool) -> go.Figure:
    """FLOPs against measured latency, one colour per model: the implementations of one model share its FLOPs
    (int8 moves its linear work out of them) and spread along the latency axis."""
    rows = _ran(data)
    fig = scatter(rows, "flops", "latency_ms", color="model_name", presentation=presentation)
    caption = f"{fig.layout.meta['caption']} One colour: one model under different implementations, the float ones "
    caption += "at the same FLOPs."
    if (rows["implementation"] == "int8").any():
        caption += " Int8 dynamic sits left of them: its linear work is counted as int8 operations, not FLOPs."
    fig.update_layout(meta={**fig.layout.meta, "caption": caption})
    return fig


def story_rows(data: pd.DataFrame) -> pd.DataFrame:
    """The Story's rows: the one model under its float implementations, which share their FLOPs, so that a
    sentence comparing two of them compares the same arithmetic (int8's work is not FLOPs)."""
    rows = _ran(data)
    return rows[rows["every_implementation"].astype(bool) & rows["implementation"].isin(FLOAT)].reset_index(drop=True)


IMPLEMENTATION = Experiment(
    name="implementation",
    title="Implementations: the same model, the same FLOPs, different code",
    description=(
        "DeiT-Tiny under eager, SDPA, torch.compile, int8 dynamic and ONNX Runtime; then MobileNetV2 and "
        "DeiT-Tiny under SDPA and int8 (a CNN's convolutions stay float, a transformer's linear layers go int8): "
        "does their latency order flip?"
    ),
    default={
        "model": "facebook/deit-tiny-patch16-224",
        "implementations": list(IMPLEMENTATIONS),
        "pair": ["google/mobilenet_v2_1.0_224", "facebook/deit-tiny-patch16-224"],
        "pair_implementations": ["sdpa", "int8"],
        "image_size": 224,
        "batch_size": 1,
        "threads": THREADS,
        "timeout_s": 600.0,
    },
    quick={
        "model": "facebook/deit-tiny-patch16-224",
        "implementations": ["eager", "sdpa", "int8"],
        "pair": ["google/mobilenet_v2_1.0_224", "facebook/deit-tiny-patch16-224"],
        "pair_implementations": ["sdpa", "int8"],
        "image_size": 32,
        "batch_size": 1,
        "threads": THREADS,
        "repeats": 1,
        "isolated": False,
    },
    collect=collect,
    analyse=analyse,
    figure=figure,
    measures="latency of each model under each implementation, measured on this CPU",
    drawn=drawn,
)
