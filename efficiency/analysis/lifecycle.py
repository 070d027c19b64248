"""Lifecycle cost: training a model once (or again and again) against serving it many requests.

Which cost matters depends on how a model is used (Dehghani et al., "The Efficiency Misnomer", ICLR 2022): a model
trained once and served to many users is paid for mostly per request; one retrained often, per training. Here
every model is a straight line in the number of requests served, R:

    cumulative cost(R) = trainings(R) x cost of one training + R x cost of one request
    trainings(R)       = 1 + R / K     (K = requests served between two retrainings; no K: trained once)

``1 + R / K`` is the amortised count: it equals the staircase ``1 + floor(R / K)`` at every multiple of K and
charges each request its share of the next retraining in between, which keeps every line straight and the
crossing of two lines exact. The cost is in one unit per line (FLOPs, or estimated seconds on a chip); the
functions here are pure arithmetic on given numbers, so a test can check them on numbers made by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from efficiency.units import significant

SECONDS = (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60))
COUNT_SUFFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))  # B for billion, as the catalog writes "1B"


@dataclass(frozen=True)
class Lifecycle:
    """One model's cost over its life, in one unit: one training, one request, and how often it is retrained."""

    name: str
    training: float  # the cost of one training run (FLOPs, or seconds on a chip)
    per_request: float  # the cost of serving one request, same unit
    retrain_every: float | None = None  # requests served between two trainings; None: trained once

    def __post_init__(self) -> None:
        for field, value in (("training", self.training), ("per_request", self.per_request)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{self.name}: {field} must be a finite cost >= 0, got {value!r}")
        if self.retrain_every is not None and not (math.isfinite(self.retrain_every) and self.retrain_every > 0):
            raise ValueError(f"{self.name}: retrain_every must be a positive number of requests or None")

    @property
    def slope(self) -> float:
        """What each further request adds: its own cost and, when retrained, its share of the next training."""
        return self.per_request + (self.training / self.retrain_every if self.retrain_every else 0.0)

    def trainings(self, requests: float | np.ndarray) -> float | np.ndarray:
        """Trainings paid for after ``requests`` requests: 1, or 1 + R / K when retrained every K requests."""
        requests = np.asarray(requests, dtype=float)
        return 1 + requests / self.retrain_every if self.retrain_every else np.ones_like(requests)

    def cost(self, requests: float | np.ndarray) -> float | np.ndarray:
        """Cumulative cost after ``requests`` requests served (the training before the first one included)."""
        return self.training + np.asarray(requests, dtype=float) * self.slope


def flip(a: Lifecycle, b: Lifecycle) -> float | None:
    """The request count where ``a`` and ``b`` cost the same and their order changes; None when it never does.

    Two straight lines cross once at most: R = (training_b - training_a) / (slope_a - slope_b). A crossing at
    R <= 0 (or parallel lines) means one model is ahead (or level) at every request count served."""
    gap = a.slope - b.slope
    if gap == 0:
        return None
    requests = (b.training - a.training) / gap
    return requests if requests > 0 and math.isfinite(requests) else None


def cheaper(a: Lifecycle, b: Lifecycle, requests: float) -> str | None:
    """The name of the cheaper of the two after ``requests`` requests; None when they cost the same."""
    cost_a, cost_b = float(a.cost(requests)), float(b.cost(requests))
    return None if cost_a == cost_b else a.name if cost_a < cost_b else b.name


def per_token(flops: float, tokens: int) -> float:
    """FLOPs of a counted pass divided by the tokens it processed (batch x sequence length)."""
    if tokens <= 0:
        raise ValueError(f"tokens: a counted pass processes at least one token, got {tokens}")
    return flops / tokens


def training_seconds(
    step_forward_ms: float, step_forward_flops: float, step_training_flops: float, step_tokens: int, tokens: float
) -> float:
    """Estimated seconds of a whole training on one chip, from the estimated forward latency of one training step.

    The roofline estimator traces forward ops only; forward + backward is taken to run at the forward pass's
    estimated FLOP rate, so a step takes ``forward time x training FLOPs / forward FLOPs``; the training takes
    that per token (``step_tokens`` per step) times the tokens it sees."""
    if step_forward_flops <= 0:
        raise ValueError("step_forward_flops: the forward pass must have counted FLOPs")
    step_s = step_forward_ms / 1e3 * step_training_flops / step_forward_flops
    return per_token(step_s, step_tokens) * tokens


# ---- words -----------------------------------------------------------------------------------------


def count_words(value: float) -> str:
    """A request count for sentences: "18.3 B", "2.5 M", "850" (B for billion)."""
    for factor, suffix in COUNT_SUFFIXES:
        if abs(value) >= factor:
            return f"{significant(value / factor)} {suffix}"
    return significant(value)


def tick_label(value: float) -> str:
    """An axis tick of requests: "1", "1k", "1M", "1B", "1T"."""
    return count_words(value).replace(" ", "")


def long_duration(seconds: float) -> str:
    """A chip time for sentences and ticks: "12 s", "4.2 min", "3.1 h", "235 days", "1.2 years"."""
    for unit, size in SECONDS:
        if seconds >= size:
            number = significant(seconds / size)
            return f"{number} {unit.removesuffix('s') if number == '1' and unit != 'min' else unit}"
    return f"{significant(seconds)} s"


# ---- a run's table as lines ------------------------------------------------------------------------

PANELS = ("flops", "time")  # cumulative counted FLOPs; cumulative estimated seconds on the run's chip
TRAINING_COLUMN = {"flops": "training_run_flops", "time": "training_time_s"}
REQUEST_COLUMN = {"flops": "flops", "time": "request_time_ms"}
REQUEST_SCALE = {"flops": 1.0, "time": 1e-3}  # the request column's unit -> the panel's (ms -> s)
RETRAIN_COLUMN = "retrain_every_requests"


def retrain_every(data: pd.DataFrame) -> float | None:
    """Requests between retrainings set for the run (one value for every row); None: trained once only."""
    if RETRAIN_COLUMN not in data.columns:
        return None
    values = pd.to_numeric(data[RETRAIN_COLUMN], errors="coerce").dropna().unique()
    if len(values) > 1:
        raise ValueError(f"{RETRAIN_COLUMN}: one value per run, got {sorted(values)}")
    return float(values[0]) if len(values) else None


def lines(data: pd.DataFrame, panel: str, retrained: bool = False) -> list[Lifecycle]:
    """One line per model row, in FLOPs (``panel="flops"``) or estimated seconds (``"time"``); ``retrained``: with
    the run's retraining interval (empty when the run set none)."""
    every = retrain_every(data) if retrained else None
    if retrained and every is None:
        return []
    return [
        Lifecycle(
            str(row["model"]),
            float(row[TRAINING_COLUMN[panel]]),
            float(row[REQUEST_COLUMN[panel]]) * REQUEST_SCALE[panel],
            every,
        )
        for row in data.to_dict("records")
    ]


def flips(models: list[Lifecycle]) -> list[tuple[Lifecycle, Lifecycle, float]]:
    """Every pair whose order changes with the requests served, earliest first: ``(a, b, R)``, where ``a`` costs
    more at the start (its training) and less from R requests on."""
    found = []
    for i, first in enumerate(models):
        for second in models[i + 1 :]:
            requests = flip(first, second)
            if requests is not None:
                a, b = (first, second) if first.training > second.training else (second, first)
                found.append((a, b, requests))
    return sorted(found, key=lambda f: f[2])
