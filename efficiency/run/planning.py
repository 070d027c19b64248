"""The one job planner: model names as a person typed them, a workload and the hardware to run on, in; the jobs
to run and the models that cannot run (each with its one-line reason), out. The CLI, the pages and the
experiments plan through it, so a name resolves, a workload normalises and a default applies the same way
everywhere. Each model gets one job per implementation asked for (``efficiency.results.IMPLEMENTATIONS``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from efficiency.results import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS, Result
from efficiency.run.job import DEFAULT_TIMEOUT_S, Job, one_line
from efficiency.specs import Workload


@dataclass(frozen=True)
class Target:
    """Where a job runs: a torch ``device`` here, or cluster ``hardware`` (a Ray ``hw:`` id) and its device."""

    device: str = "cpu"
    hardware: str | None = None

    @property
    def label(self) -> str:
        return self.hardware or f"local-{self.device}"


@dataclass
class Plan:
    """Per target, (name as typed, job) for every model that resolved; per name, the failure of one that did not."""

    jobs: dict[Target, list[tuple[str, Job]]] = field(default_factory=dict)
    failures: dict[str, Result] = field(default_factory=dict)
    model_ids: dict[str, str] = field(default_factory=dict)  # name as typed -> the model id its jobs carry


def plan_jobs(
    names: Sequence[str],
    workload: Workload,
    targets: Sequence[Target] = (Target(),),
    *,
    metrics: str = "all",
    threads: int | None = None,
    repeats: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    implementations: Sequence[str] = (DEFAULT_IMPLEMENTATION,),
) -> Plan:
    """One job per resolved model, implementation and target (a model or implementation named twice runs once),
    model by model; threads apply to this machine's devices only (a cluster node uses its own). A name that does
    not resolve fails alone."""
    from efficiency.models.loading import resolve  # lazy: imports torch; the CLI's --help stays fast

    implementations = check_implementations(implementations)
    plan = Plan(jobs={target: [] for target in targets})
    for name in names:
        try:
            spec = resolve(name)
        except ValueError as error:
            plan.failures[name] = Result.failure(name, workload.to_dict(), one_line(error), "refused")
            continue
        plan.model_ids[name] = spec.id
        fields = workload.for_modality(spec.modality)
        for target, jobs in plan.jobs.items():
            for implementation in implementations:
                if any((job.model, job.implementation) == (spec.id, implementation) for _, job in jobs):
                    continue
                job = make_job(
                    spec.id,
                    fields,
                    target,
                    metrics=metrics,
                    threads=threads,
                    repeats=repeats,
                    timeout_s=timeout_s,
                    implementation=implementation,
                )
                jobs.append((name, job))
    return plan


def check_implementations(names: Sequence[str]) -> tuple[str, ...]:
    """The implementations asked for, in order, each once; a ValueError naming an unknown one and the accepted."""
    if isinstance(names, str) or not names:
        raise ValueError(f"implementations: give a list of one or more of {', '.join(IMPLEMENTATIONS)}")
    unknown = [name for name in names if name not in IMPLEMENTATIONS]
    if unknown:
        raise ValueError(f"implementation {unknown[0]!r} is unknown; accepted: {', '.join(IMPLEMENTATIONS)}")
    return tuple(dict.fromkeys(names))


def make_job(
    model: str,
    workload: dict[str, Any],
    where: Target = Target(),
    *,
    metrics: str = "all",
    threads: int | None = None,
    repeats: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    implementation: str = DEFAULT_IMPLEMENTATION,
    job_class: type[Job] = Job,
    **extra: Any,
) -> Job:
    """One job for a resolved model: the single place a Job is made (``job_class`` and ``extra`` for a job type
    with more fields, such as an experiment's points). ``repeats`` None means the measurement's own minimum
    (:data:`efficiency.measure.INFERENCE_MIN_REPEATS`, ``TRAINING_MIN_REPEATS``)."""
    return job_class(
        model=model,
        workload=workload,
        metrics=metrics,
        device=where.device,
        threads=None if where.hardware else threads,
        repeats=repeats,
        timeout_s=timeout_s,
        hardware=where.hardware,
        implementation=implementation,
        **extra,
    )
