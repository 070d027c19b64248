"""Isolated runner: each profiling job in its own process, so one bad model cannot take the others down.

Worker model: a ``forkserver`` with torch, transformers (``modeling_utils``, the 5 s import) and our
loading code preloaded. Each job is a fresh fork of that warm server: isolation per job (a crash,
leak or stuck thread dies with its process) for the price of a fork, not of an interpreter start.
The child calls ``os.setsid()`` so a kill takes its whole process group (anything it started too).

Fault containment, all decided in the parent, which never runs model code:
- timeout: wall clock from start; the process group is killed (SIGKILL);
- memory cap: a watchdog in the parent polls the job's resident anonymous memory (RSS minus
  file-backed pages, summed over its process tree) above the worker's starting footprint and kills
  the group over the cap. We do not use ``RLIMIT_AS``: it limits address space, which torch and CUDA
  reserve far beyond what they touch. The child also raises its ``oom_score_adj`` so the kernel's
  OOM killer, if it fires first, takes the job and not the dashboard;
- crash / exit / exception: the exit status or the exception's one-line text becomes the job's
  ``error``; the next job starts as usual;
- a dead parent: each job holds a pidfd of the process that started it and a thread blocked on it
  kills the job's process group when that process dies (Linux), so no job runs on unwatched.

Two consequences of the forkserver: a script that runs jobs needs the ``if __name__ == "__main__":``
guard (the server imports the main module once), and the server never initialises CUDA, so a job on
``cuda:N`` initialises it in its own process, as it must after a fork.

A job that fails yields ``{"model", "workload", "error", "error_kind", "measured": False}``;
``error_kind`` is one of timeout, crash, memory, exception, refused.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import re
import select
import signal
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing import connection
from typing import Any, Protocol

import psutil

from efficiency.hardware.detect import environment_fingerprint
from efficiency.store import ResultStore, StoreError
from efficiency.units import nbytes as format_bytes

DEFAULT_TARGET = "efficiency.jobs:run_job"
DEFAULT_PRELOAD = (
    "__main__",
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "efficiency.loading",
    "efficiency.runner",
)
METRICS = ("static", "all")
TARGET_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
POLL_INTERVAL_S = 0.05
EXIT_GRACE_S = 5.0

ProgressCallback = Callable[[str, str, float], None]
"""``on_progress(model, phase, fraction)`` in the parent: "started" 0.0, the target's own phases, then
"finished" or "failed" 1.0; a job answered without running gets only "reused" or "refused" 1.0."""


@dataclass
class Job:
    """One profile to run: what, how, and the limits it runs under.

    ``workload`` is part of the store key, so pass it normalised (``Workload.for_modality``): a text
    model's workload without an image size. ``target`` is called as ``target(job_dict, progress)``.
    """

    model: str
    workload: dict[str, Any] = field(default_factory=dict)
    metrics: str = "all"
    device: str = "cpu"
    threads: int | None = None
    repeats: int | None = None
    timeout_s: float = 300.0
    memory_cap_bytes: int | None = None
    target: str = DEFAULT_TARGET
    hardware: str | None = None  # hardware id for the store key; None means this machine's ``local-<device>``

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("job model: must be a non-empty string")
        if not isinstance(self.workload, dict):
            raise ValueError(f"job workload of {self.model!r}: must be a mapping")  # noqa: TRY004
        if self.metrics not in METRICS:
            raise ValueError(f"job metrics: {self.metrics!r} is not one of {', '.join(METRICS)}")
        for name in ("threads", "repeats", "memory_cap_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"job {name}: must be a whole number of at least 1, got {value!r}")
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout):
            raise ValueError(f"job timeout_s: must be a number of seconds, got {timeout!r}")
        if timeout <= 0:
            raise ValueError(f"job timeout_s: must be above 0, got {timeout!r}")
        if not isinstance(self.target, str) or not TARGET_PATTERN.match(self.target):
            raise ValueError(f"job target: {self.target!r} is not a 'module:function' path")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hardware_id(self) -> str:
        return self.hardware or f"local-{self.device}"


def error_result(job: Job, message: str, kind: str) -> dict[str, Any]:
    """The result a failed job gets: enough for the UI to name the model, the setup and what happened."""
    return {"model": job.model, "workload": dict(job.workload), "error": message, "error_kind": kind, "measured": False}


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``: what a person needs, without a traceback."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class Executor(Protocol):
    """Where jobs run. The seam for a distributed executor (DESIGN.md, "Scale beyond one machine").

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


def _anon_rss(process: psutil.Process) -> int:
    info = process.memory_info()
    return max(0, info.rss - getattr(info, "shared", 0))


def _resolve_target(path: str) -> Callable[[dict, Callable[[str, float], None]], Any]:
    module_name, _, function_name = path.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    if not callable(function):
        raise TypeError(f"job target {path} is not callable")
    return function


def _contain_self(watcher_pid: int) -> None:
    """In the worker: own process group (killed as one), first for the OOM killer, dies with its watcher."""
    os.setsid()
    if not sys.platform.startswith("linux"):
        return
    oom_score = f"/proc/{os.getpid()}/oom_score_adj"
    if os.access(oom_score, os.W_OK):
        with open(oom_score, "w") as oom:
            oom.write("1000")
    watcher = os.pidfd_open(watcher_pid)  # raises if the watcher is already gone: then the job must not run

    def die_with_watcher() -> None:
        select.select([watcher], [], [])  # readable once the watcher has exited
        os.killpg(os.getpid(), signal.SIGKILL)

    threading.Thread(target=die_with_watcher, name="die-with-watcher", daemon=True).start()


def _child_main(job: dict[str, Any], conn: connection.Connection, watcher_pid: int) -> None:
    """Runs in the forked worker: report the baseline, run the target, send its result or its error."""
    _contain_self(watcher_pid)
    conn.send(("ready", _anon_rss(psutil.Process())))

    def progress(phase: str, fraction: float) -> None:
        conn.send(("progress", str(phase), float(fraction)))

    try:
        if job.get("threads"):
            import torch

            torch.set_num_threads(int(job["threads"]))
        result = _resolve_target(job["target"])(job, progress)
        if not isinstance(result, dict):
            raise TypeError(f"job target returned {type(result).__name__}; it must return a dict")
        conn.send(("result", result))
    except BaseException as err:  # noqa: BLE001 - every failure becomes this job's error result
        conn.send(("error", one_line(err), traceback.format_exc()))
    finally:
        conn.close()


_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def _program_main() -> Iterator[None]:
    """While a worker or the forkserver starts: hide a ``__main__`` that is not the program that was started.

    multiprocessing re-runs the parent's ``__main__`` file in each new worker unless its forkserver imported
    that same file. A host that runs scripts in its own process swaps ``__main__`` for each run: Streamlit
    makes every page run ``__main__`` (so does its test harness). A job started from a page would then re-run
    that page outside Streamlit and die before its target ran ("exited with status 1"). A ``python
    script.py`` program keeps its main (the forkserver imported it: targets in it and the ``__main__`` guard
    work as before); a swapped-in one is replaced by an empty module for the few ms of the start.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    hosted = (
        main is not None
        and getattr(main, "__spec__", None) is None
        and path is not None
        and os.path.abspath(path) != os.path.abspath(sys.argv[0] if sys.argv and sys.argv[0] else "")
    )
    if not hosted:
        yield
        return
    with _MAIN_SWAP:
        sys.modules["__main__"] = types.ModuleType("__main__")  # no file, no spec: workers keep their own main
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _RunningJob:
    """One job's process as the parent sees it: its pipe, its clock, its memory watchdog."""

    def __init__(self, ctx: multiprocessing.context.BaseContext, job: Job) -> None:
        self.job = job
        reader, writer = ctx.Pipe(duplex=False)
        self.conn = reader
        self.process = ctx.Process(
            target=_child_main, args=(job.to_dict(), writer, os.getpid()), name=f"job:{job.model}"
        )
        with _program_main():
            self.process.start()
        writer.close()  # only the child writes; closing ours makes its death read as EOF
        self.started = time.monotonic()
        self.watch: psutil.Process | None = None
        self.baseline: int | None = None
        self.outcome: dict[str, Any] | None = None

    def waitables(self) -> list[Any]:
        return [self.process.sentinel] + ([] if self.conn.closed else [self.conn])

    def _drain(self, on_progress: ProgressCallback | None) -> None:
        while not self.conn.closed and self.conn.poll():
            try:
                message = self.conn.recv()
            except EOFError:  # the child closed its end (finished or died); its exit status tells which
                self.conn.close()
                break
            kind = message[0]
            if kind == "ready":
                self.baseline = int(message[1])
            elif kind == "progress" and on_progress is not None:
                on_progress(self.job.model, message[1], message[2])
            elif kind == "result":
                self.outcome = {"model": self.job.model, "workload": dict(self.job.workload), **message[1]}
            elif kind == "error":
                self.outcome = error_result(self.job, message[1], "exception")
                self.outcome["traceback"] = message[2]

    def _memory_above_baseline(self) -> int | None:
        if self.baseline is None:
            return None
        try:
            self.watch = self.watch or psutil.Process(self.process.pid)
            tree = [self.watch, *self.watch.children(recursive=True)]
            return _anon_rss(self.watch) - self.baseline + sum(_anon_rss(p) for p in tree[1:])
        except psutil.NoSuchProcess:  # it just exited; the exit check reports it on the next step
            return None

    def step(self, on_progress: ProgressCallback | None) -> dict[str, Any] | None:
        """Advance the watch by one poll; the job's final result once it has one, else None."""
        self._drain(on_progress)
        if self.outcome is None and self.process.exitcode is not None:
            self._drain(on_progress)  # messages sent just before the exit
            if self.outcome is None:
                self.outcome = error_result(self.job, _exit_message(self.process.exitcode), "crash")
        if self.outcome is None:
            cap = self.job.memory_cap_bytes
            used = self._memory_above_baseline() if cap is not None else None
            if time.monotonic() - self.started > self.job.timeout_s:
                self.outcome = error_result(self.job, f"timed out after {self.job.timeout_s:g} s", "timeout")
            elif cap is not None and used is not None and used > cap:
                message = f"killed: memory above cap {format_bytes(cap)} (reached {format_bytes(used)})"
                self.outcome = error_result(self.job, message, "memory")
            else:
                return None
            self.kill()
        self.finish()
        return self.outcome

    def finish(self) -> None:
        """Let a finished child exit, then end whatever is left of its process group."""
        self.process.join(EXIT_GRACE_S)
        self.kill()
        self.conn.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # no group left (ended, or setsid not reached yet)
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.exitcode is None:  # never signal a pid the forkserver has already reaped
            self.process.kill()
        self.process.join()


def _exit_message(exitcode: int) -> str:
    if exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else "unknown"
        hint = "; the system may have run out of memory" if -exitcode == signal.SIGKILL else ""
        return f"crashed (signal {-exitcode}, {name}{hint})"
    return f"worker exited with status {exitcode} before returning a result"


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
        }

    def refusal(self, job: Job) -> dict[str, Any] | None:
        """An error result if the estimate says the job cannot fit; measured jobs only (static runs weight-free)."""
        if self.estimator is None or job.metrics == "static":
            return None
        try:
            needed = int(self.estimator(job))
        except Exception as err:  # noqa: BLE001 - a failed estimate refuses this job, visibly
            return error_result(job, f"memory estimate failed: {one_line(err)}", "refused")
        available = self.executor.memory_available(job)
        limits = [] if available is None else [(available, f"{format_bytes(available)} available")]
        if job.memory_cap_bytes is not None:
            limits.append((job.memory_cap_bytes, f"cap {format_bytes(job.memory_cap_bytes)}"))
        if not limits:
            return None
        limit, said = min(limits)
        if needed <= limit:
            return None
        message = f"needs ~{format_bytes(needed)}, {said}; run with --metrics static for the static profile"
        return error_result(job, message, "refused")

    def run(self, jobs: Iterable[Job], on_progress: ProgressCallback | None = None, fresh: bool = False) -> list[dict]:
        """One result per job, in job order. Stored results are reused (marked ``reused``) unless ``fresh``."""
        jobs = list(jobs)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        keys = [self.key_fields(job) for job in jobs] if self.store is not None else [None] * len(jobs)
        to_run: list[int] = []
        for index, job in enumerate(jobs):
            found = None if fresh else self._stored(job, keys[index])
            if found is not None:
                results[index] = {**found, "reused": True}
                if on_progress is not None:
                    on_progress(job.model, "reused", 1.0)
                continue
            refused = self.refusal(job)
            if refused is None:
                to_run.append(index)
                continue
            results[index] = self._save(refused, keys[index])
            if on_progress is not None:
                on_progress(job.model, "refused", 1.0)
        for position, result in self.executor.execute([jobs[i] for i in to_run], on_progress):
            index = to_run[position]
            results[index] = result if self._executor_stored(result) else self._save(result, keys[index])
        return [
            result if result is not None else error_result(job, "the executor returned no result", "crash")
            for job, result in zip(jobs, results)
        ]

    def _stored(self, job: Job, key_fields: dict[str, Any] | None) -> dict[str, Any] | None:
        """A stored result to reuse: the executor's lookup where it has one (its results are keyed by the
        machine that ran them, not this one), else the exact key from this machine's fingerprint."""
        if self.store is None or key_fields is None:
            return None
        find_stored = getattr(self.executor, "find_stored", None)
        return find_stored(self.store, job) if find_stored is not None else self.store.find(**key_fields)

    def _executor_stored(self, result: dict[str, Any]) -> bool:
        """The executor kept this result itself (or tried, and says why it could not): storing it again here
        would add a second row keyed by this machine's fingerprint."""
        return bool(result.get("stored_by")) or (
            bool(getattr(self.executor, "stores_results", False)) and "store_error" in result
        )

    def _save(self, result: dict[str, Any], key_fields: dict[str, Any] | None) -> dict[str, Any]:
        """Store as soon as it arrives; a store failure is shown on the result, and the run goes on."""
        if self.store is None or key_fields is None:
            return result
        try:
            self.store.put(result, key_fields)
        except StoreError as err:
            return {**result, "store_error": str(err)}
        return result
