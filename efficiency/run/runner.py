"""Isolated runner: each profiling job in its own process, so one bad model cannot take the others down.

Worker model: a ``forkserver`` with torch, transformers (``modeling_utils``, the 5 s import), our loading code and
the static counters preloaded. Each job is a fresh fork of that warm server: isolation per job (a crash,
leak or stuck thread dies with its process) for the price of a fork, not of an interpreter start.
The child calls ``os.setsid()`` so a kill takes its whole process group (anything it started too).

Fault containment, all decided in the parent, which never runs model code:
- timeout: wall clock from start; the process group is killed (SIGKILL);
- memory cap: every job runs under one, its own or the default (the memory available when it starts, less a
  reserve: :func:`efficiency.run.job.default_memory_cap_bytes`). A CPU job's worker sets ``RLIMIT_DATA`` to
  its starting data size plus the cap, so an allocation past it fails inside the job; and a watchdog in the
  parent polls the job's resident anonymous memory (RSS minus file-backed pages, summed over its process tree)
  above the worker's starting footprint and kills the group over the cap. Not ``RLIMIT_AS``: torch and CUDA
  reserve address space far beyond what they touch. The child also raises its ``oom_score_adj`` so the
  kernel's OOM killer, if it fires first, takes the job and not the dashboard. Before any of that, the Runner
  refuses a job whose estimated peak (:mod:`efficiency.run.budget`) does not fit;
- crash / exit / exception: the exit status or the exception's one-line text becomes the job's
  ``error``; the next job starts as usual;
- a dead parent: each job holds a pidfd of the process that started it and a thread blocked on it
  kills the job's process group when that process dies (Linux), so no job runs on unwatched.

Two consequences of the forkserver: a script that runs jobs needs the ``if __name__ == "__main__":``
guard (the server imports the main module once), and the server never initialises CUDA, so a job on
``cuda:N`` initialises it in its own process, as it must after a fork.

Executors move results as plain dicts (the wire form: what a forked worker or a Ray node sends back); the
Runner returns typed :class:`efficiency.results.Result` objects. A job that fails has ``error`` and
``error_kind``, one of timeout, crash, memory, exception, refused.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing import connection
from typing import Any, Protocol

import psutil

from efficiency.hardware.detect import environment_fingerprint
from efficiency.results import Result
from efficiency.run.job import Job, ProgressCallback, error_result, one_line, usable_memory
from efficiency.run.worker import _program_main, _RunningJob
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, StoreError
from efficiency.units import nbytes as format_bytes

DEFAULT_PRELOAD = (
    "__main__",
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "efficiency.models.loading",
    "efficiency.counters.static",  # a static count's code (fvcore, torch's flop counter, fake tensors): 0.1 s a job
    "efficiency.run.runner",
)
POLL_INTERVAL_S = 0.05


REUSE_NOISY_ENV = "EFFICIENCY_REUSE_NOISY"


def reuse_noisy() -> bool:
    """Whether a stored result marked noisy may stand for a fresh run: no, unless ``EFFICIENCY_REUSE_NOISY=1`` (a
    shared machine where every run is noisy, or the test suite, which checks the reuse logic, not the machine)."""
    return os.environ.get(REUSE_NOISY_ENV) == "1"


class Executor(Protocol):
    """Where jobs run. The seam for a distributed executor (README, "Measuring on many machines").

    ``execute`` yields ``(index into jobs, result)`` as each job finishes, in any order, exactly once
    per job; a job's failure is an error result (see ``error_result``), never an exception. It calls
    ``on_progress(model, phase, fraction)`` from the caller's process. ``memory_available`` says how
    many bytes a job could use where it would run (None: unknown, no check). A Ray executor can run
    ``LocalExecutor().execute([job], ...)`` inside its task, so the node isolates the job the same way.

    Optional, for an executor whose results are measured and kept elsewhere (the Ray executor): a result it
    stored itself carries ``stored_by``, and the Runner does not store it again; ``find_stored(store, job)``
    replaces the Runner's reuse lookup, which keys by this machine's fingerprint.
    """

    def execute(self, jobs: Sequence[Job], on_progress: ProgressCallback | None) -> Iterator[tuple[int, dict]]: ...

    def memory_available(self, job: Job) -> int | None: ...


class LocalExecutor:
    """Runs jobs on this machine, ``max_workers`` at a time (1 by default: timings must not share cores)."""

    def __init__(
        self, max_workers: int = 1, preload: Sequence[str] = DEFAULT_PRELOAD, poll_interval_s: float = POLL_INTERVAL_S
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers: must be at least 1, got {max_workers}")
        self.max_workers = max_workers
        self.poll_interval_s = poll_interval_s
        self._ctx = multiprocessing.get_context("forkserver")
        # One forkserver per Python process: the first executor to start it decides what is preloaded.
        self._ctx.set_forkserver_preload(list(preload))

    def warm_up(self) -> None:
        """Start the forkserver now (it imports the preload in the background) so the first job need not wait."""
        from multiprocessing import forkserver

        with _program_main():
            forkserver.ensure_running()

    def memory_available(self, job: Job) -> int | None:
        return psutil.virtual_memory().available

    def execute(self, jobs: Sequence[Job], on_progress: ProgressCallback | None) -> Iterator[tuple[int, dict]]:
        pending = deque(enumerate(jobs))
        running: dict[int, _RunningJob] = {}
        try:
            while pending or running:
                while pending and len(running) < self.max_workers:
                    index, job = pending.popleft()
                    try:
                        running[index] = _RunningJob(self._ctx, job)
                    except Exception as err:  # noqa: BLE001 - e.g. a workload that cannot be pickled
                        yield index, error_result(job, f"could not start its worker: {one_line(err)}", "crash")
                        continue
                    if on_progress is not None:
                        on_progress(job.model, "started", 0.0)
                connection.wait([w for run in running.values() for w in run.waitables()], self.poll_interval_s)
                for index in list(running):
                    outcome = running[index].step(on_progress)
                    if outcome is not None:
                        del running[index]
                        if on_progress is not None:
                            on_progress(outcome["model"], "failed" if outcome.get("error") else "finished", 1.0)
                        yield index, outcome
        finally:  # the caller stopped early or a callback raised: leave no job running
            for run in running.values():
                run.kill()


class Runner:
    """Runs jobs through an executor: reuses stored results, refuses what cannot fit, stores what arrives."""

    def __init__(
        self,
        executor: Executor | None = None,
        store: ResultStore | None = None,
        estimator: Callable[[Job], int] | None = None,
    ) -> None:
        self.executor = executor if executor is not None else LocalExecutor()
        self.store = store
        self.estimator = estimator
        self._fingerprints: dict[int | None, dict[str, Any]] = {}

    def key_fields(self, job: Job) -> dict[str, Any]:
        """What the store keys a job by; the software/hardware part comes from this machine."""
        if job.threads not in self._fingerprints:
            self._fingerprints[job.threads] = environment_fingerprint(job.threads)
        return {
            "model": job.model,
            "workload": job.workload,
            "metrics": job.metrics,
            "hardware": job.hardware_id,
            "env": self._fingerprints[job.threads],
            "implementation": job.implementation,
        }

    def refusal(self, job: Job) -> dict[str, Any] | None:
        """An error result if the estimate says the job cannot fit; measured jobs only (static runs weight-free).

        The limit is what a job may use where it would run (the executor's available memory less the reserve
        every default cap keeps, ``usable_memory``), or the job's own cap when lower. The message names the
        estimate (with its parts when the estimator gives them, see :mod:`efficiency.run.budget`) and the limit,
        and offers the static profile in words the CLI and the pages share (it names no command-line flag)."""
        if self.estimator is None or job.metrics == "static":
            return None
        try:
            estimate = self.estimator(job)
            needed = int(estimate)
        except ValueError as err:  # the model cannot take this workload (ModelLoadError): that is the reason
            return error_result(job, one_line(err), "refused")
        except Exception as err:  # noqa: BLE001 - a failed estimate refuses this job, visibly
            return error_result(job, f"memory estimate failed: {one_line(err)}", "refused")
        available = self.executor.memory_available(job)
        limits = [] if available is None else [(usable_memory(available), "available")]
        if job.memory_cap_bytes is not None:
            limits.append((job.memory_cap_bytes, "cap"))
        if not limits:
            return None
        limit, kind = min(limits)
        if needed <= limit:
            return None
        parts = getattr(estimate, "parts", None)
        detail = f" (estimated: {parts()})" if callable(parts) else ""
        said = f"{format_bytes(limit)} available" if kind == "available" else f"cap {format_bytes(limit)}"
        message = f"needs ~{format_bytes(needed)}{detail}, {said}; the static profile (counts only) still works"
        return error_result(job, message, "refused")

    def run(
        self, jobs: Iterable[Job], on_progress: ProgressCallback | None = None, fresh: bool = False
    ) -> list[Result]:
        """One result per job, in job order. Stored results are reused (marked ``reused``) unless ``fresh``; one
        marked noisy (``Result.noisy``) is not: that job runs again."""
        jobs = list(jobs)
        results: list[Result | None] = [None] * len(jobs)
        keys = [self.key_fields(job) for job in jobs] if self.store is not None else [None] * len(jobs)
        to_run: list[int] = []
        for index, job in enumerate(jobs):
            found = None if fresh else self._stored(job, keys[index])
            if found is not None:
                results[index] = found.with_(reused=True)
                if on_progress is not None:
                    on_progress(job.model, "reused", 1.0)
                continue
            refused = self.refusal(job)
            if refused is None:
                to_run.append(index)
                continue
            results[index] = self._save(Result.from_dict(refused), keys[index])
            if on_progress is not None:
                on_progress(job.model, "refused", 1.0)
        for position, wire in self.executor.execute([jobs[i] for i in to_run], on_progress):
            index = to_run[position]
            result = Result.from_dict(wire)
            results[index] = result if self._executor_stored(result) else self._save(result, keys[index])
        return [
            result
            if result is not None
            else Result.from_dict(error_result(job, "the executor returned no result", "crash"))
            for job, result in zip(jobs, results)
        ]

    def wanted(self, job: Job, key_fields: dict[str, Any]) -> Wanted:
        """What a stored result must be to stand for ``job`` on this machine (see :mod:`efficiency.store.lookup`)."""
        env = key_fields["env"]
        return Wanted(
            model=job.model,
            workload=job.workload,
            measured=job.metrics == "all",
            hardware=job.hardware_id,
            device=job.device,
            threads=job.threads if job.threads is not None else env.get("threads"),
            machine=env,
            implementation=job.implementation,
            noisy_ok=reuse_noisy(),  # a result measured under load is measured again, unless asked otherwise
        )

    def _stored(self, job: Job, key_fields: dict[str, Any] | None) -> Result | None:
        """A stored result to reuse: the executor's lookup where it has one (its results are keyed by the
        machine that ran them, not this one), else the store's lookup for this machine."""
        if self.store is None or key_fields is None:
            return None
        find_stored = getattr(self.executor, "find_stored", None)
        if find_stored is None:
            return self.store.lookup(self.wanted(job, key_fields))
        found = find_stored(self.store, job)
        # An executor's own lookup may not know implementations (never reuse another implementation's numbers)
        # nor noise (a result measured under load is measured again).
        if found is None or found.implementation != job.implementation:
            return None
        return None if found.noisy and not reuse_noisy() else found

    def _executor_stored(self, result: Result) -> bool:
        """The executor kept this result itself (or tried, and says why it could not): storing it again here
        would add a second row keyed by this machine's fingerprint."""
        return bool(result.stored_by) or (
            bool(getattr(self.executor, "stores_results", False)) and result.store_error is not None
        )

    def _save(self, result: Result, key_fields: dict[str, Any] | None) -> Result:
        """Store as soon as it arrives; a store failure is shown on the result, and the run goes on."""
        if self.store is None or key_fields is None:
            return result
        try:
            self.store.put(result, key_fields)
        except StoreError as err:
            return result.with_(store_error=str(err))
        return result
