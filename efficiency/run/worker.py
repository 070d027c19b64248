"""The worker side of the isolated runner: one job's forked process, and the parent's watch over it.

``_child_main`` runs in the forked worker (contain itself, run the target, send back its result or error);
``_RunningJob`` is that process as the parent sees it (pipe, clock, memory watchdog, kill). The rules they
enforce are in :mod:`efficiency.run.runner`'s docstring.

Every job runs under a memory cap, its own or the machine's default (``default_memory_cap_bytes``: available
memory less a reserve, taken when the job starts), held twice: ``RLIMIT_DATA`` in the child (Linux, CPU jobs),
so an allocation past the cap fails inside the job at once, and the parent's RSS watchdog, which kills the process
group over the cap whatever allocated it. Either way the job ends with one line naming the cap, alone.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from multiprocessing import connection
from typing import Any

import psutil

from efficiency.paths import DATA_DIR_ENV
from efficiency.run.job import Job, ProgressCallback, default_memory_cap_bytes, error_result, one_line
from efficiency.units import nbytes as format_bytes

EXIT_GRACE_S = 5.0
# RLIMIT_DATA room beyond the cap for what counts there but is not the job's data: each thread's stack (8 MiB
# reserved, little touched) and malloc's per-thread arenas as they open.
LIMIT_ROOM_BYTES = 64 * 2**20 + 16 * 2**20 * (os.cpu_count() or 1)
ALLOCATION_FAILURES = ("can't allocate memory", "cannot allocate memory", "bad_alloc", "out of memory")


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


def _vm_data() -> int | None:
    """This process's private writable memory (``VmData``), what ``RLIMIT_DATA`` counts; None if unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _limit_data(cap_bytes: int) -> bool:
    """Cap the worker's data segment at what it holds now plus ``cap_bytes`` (and room for thread stacks), so an
    allocation past the cap fails at once inside the job instead of growing until the watchdog's next look.

    ``RLIMIT_DATA``, not ``RLIMIT_AS``: address space counts every library mapping (a fresh worker holds ~1 GiB
    of it for 0.3 GiB resident; a small job peaks at 1.3 to 3.7 GiB, benchmarks/memory_budget.py) and every
    reservation that never holds memory (64 MiB of malloc arena and 8 MiB of stack per thread: gigabytes on a
    many-core host), so an address-space limit would break normal jobs or need a margin that depends on the core
    count. ``RLIMIT_DATA`` (Linux >= 4.7) counts private writable mappings:
    the heap and anonymous maps, where tensors live. Linux only; elsewhere the RSS watchdog alone holds the cap.
    """
    if not sys.platform.startswith("linux"):
        return False
    import resource

    used = _vm_data()
    if used is None:
        return False
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = used + cap_bytes + LIMIT_ROOM_BYTES
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY and soft <= limit:
        return False  # a stricter limit is already set (ulimit -d): it stays
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return True


def _allocation_failed(err: BaseException) -> bool:
    """An allocation refused (Python's MemoryError, torch's "can't allocate memory"), as the data limit makes it."""
    text = str(err).lower()
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and any(sign in text for sign in ALLOCATION_FAILURES)
    )


def _child_main(
    job: dict[str, Any],
    conn: connection.Connection,
    watcher_pid: int,
    cap_bytes: int,
    environment: dict[str, str | None],
) -> None:
    """Runs in the forked worker: take the parent's environment and the memory cap, report the baseline, run the
    target, send its result or its error."""
    _contain_self(watcher_pid)
    for name, value in environment.items():  # the forkserver's copy dates from its start; the parent's is now
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # CPU jobs only: a GPU runtime maps host memory of its own at start (not measured here, no GPU), so a job on
    # an accelerator keeps the RSS watchdog alone.
    limited = job.get("device", "cpu") == "cpu" and _limit_data(cap_bytes)
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
        if limited and _allocation_failed(err):
            err.__traceback__ = None  # frees the target's frames, and what they allocated, before the report
            conn.send(("memory", f"killed: memory above cap {format_bytes(cap_bytes)} (reached it: {one_line(err)})"))
        else:  # one line; an unexpected error's traceback goes to a log file the line names, never into the result
            conn.send(("error", one_line(err, log_as=str(job.get("model") or "job"))))
    finally:
        conn.close()


_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def _program_main() -> Iterator[None]:
    """While a worker or the forkserver starts: hide a ``__main__`` that is not the program that was started.

    multiprocessing re-runs the parent's ``__main__`` file in each new worker unless its forkserver imported
    that same file. A host that runs scripts in its own process swaps ``__main__`` for each run: Streamlit
    makes every page run ``__main__`` (so does its test harness). A job started from a page would then re-run
    that page outside Streamlit and die before its target ran ("exited with status 1"); and under ``streamlit
    run app.py`` (``sys.argv[0]`` is then app.py itself) the forkserver would run app.py outside Streamlit, which
    fills the server's log with "missing ScriptRunContext" warnings. A ``python script.py`` program keeps its
    main (the forkserver imported it: targets in it and the ``__main__`` guard work as before); a module a host
    made (no loader: Python gives a script's main a loader) or one that is not the program's file is replaced by
    an empty module for the few ms of the start.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    hosted = (
        main is not None
        and getattr(main, "__spec__", None) is None
        and path is not None
        and (
            getattr(main, "__loader__", None) is None
            or os.path.abspath(path) != os.path.abspath(sys.argv[0] if sys.argv and sys.argv[0] else "")
        )
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
        self.cap = job.memory_cap_bytes or default_memory_cap_bytes()  # every job runs under a cap
        reader, writer = ctx.Pipe(duplex=False)
        self.conn = reader
        environment = {DATA_DIR_ENV: os.environ.get(DATA_DIR_ENV)}
        self.process = ctx.Process(
            target=_child_main,
            args=(job.to_dict(), writer, os.getpid(), self.cap, environment),
            name=f"job:{job.model}",
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
                job = self.job
                self.outcome = {
                    "model": job.model,
                    "workload": dict(job.workload),
                    "implementation": job.implementation,
                    **message[1],
                }
            elif kind == "error":
                self.outcome = error_result(self.job, message[1], "exception")
            elif kind == "memory":
                self.outcome = error_result(self.job, message[1], "memory")

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
            cap = self.cap
            used = self._memory_above_baseline()
            if time.monotonic() - self.started > self.job.timeout_s:
                self.outcome = error_result(self.job, f"timed out after {self.job.timeout_s:g} s", "timeout")
            elif used is not None and used > cap:
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
