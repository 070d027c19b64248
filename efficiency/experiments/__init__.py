"""Named teaching experiments: each one makes one face of the efficiency misnomer appear from real numbers.

``EXPERIMENTS`` maps each name to an :class:`Experiment`; ``run_experiment(name)`` runs its default
setup on this machine (``quick=True``: a tiny setup for tests). Results carry their raw numbers, the source
of every column (measured / counted / estimated), a generated "what to notice", and a verdict line that
says honestly whether this run shows the effect.
"""

from __future__ import annotations

from efficiency.experiments.base import (
    SOURCES,
    Analysis,
    Experiment,
    ExperimentResult,
    Knob,
    Progress,
    result_from_dict,
)
from efficiency.experiments.chips import HARDWARE
from efficiency.experiments.comparisons import (
    CNN_VS_TRANSFORMER,
    PARAMETER_SHARING,
    SPARSE_MOE,
    TRAINING_VS_INFERENCE,
)
from efficiency.experiments.implementation import IMPLEMENTATION
from efficiency.experiments.lifecycle import LIFECYCLE
from efficiency.experiments.measure import MeasurementError
from efficiency.experiments.paper import PAPER_TRANSFORMERS, PAPER_VIT_SCALING
from efficiency.experiments.sweeps import BATCH_SIZE, DEPTH_VS_WIDTH, SEQUENCE_LENGTH
from efficiency.experiments.tokens import TOKEN_COUNT

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        SEQUENCE_LENGTH,
        BATCH_SIZE,
        DEPTH_VS_WIDTH,
        PARAMETER_SHARING,
        SPARSE_MOE,
        TOKEN_COUNT,
        CNN_VS_TRANSFORMER,
        TRAINING_VS_INFERENCE,
        IMPLEMENTATION,
        HARDWARE,
        PAPER_TRANSFORMERS,
        PAPER_VIT_SCALING,
        LIFECYCLE,
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; a ValueError lists the names there are."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment: unknown {name!r}; known: {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def list_experiments() -> list[Experiment]:
    return list(EXPERIMENTS.values())


def run_experiment(name: str, quick: bool = False, progress: Progress | None = None) -> ExperimentResult:
    return get_experiment(name).run(quick=quick, progress=progress)


__all__ = [
    "EXPERIMENTS",
    "SOURCES",
    "Analysis",
    "Experiment",
    "ExperimentResult",
    "Knob",
    "MeasurementError",
    "Progress",
    "get_experiment",
    "list_experiments",
    "result_from_dict",
    "run_experiment",
]
