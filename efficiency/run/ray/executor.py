"""Ray executor: the runner's jobs on a Ray cluster whose nodes advertise their hardware as ``hw:<id>``.

Each job becomes a Ray task that asks for one unit of the custom resource ``hw:<hardware id>``, so Ray
places it on a node that has that hardware. On the node the task runs ``LocalExecutor().execute([job])``:
the same forked, time- and memory-limited worker as on one machine, so a model that crashes kills its own
subprocess, never the node's Ray worker. The task writes its result to the shared store when given a store
URL (every node reaches one PostgreSQL database); the driver stores only what the task could not.

Driver side, faults become error results, never exceptions: a node or worker that dies mid-job
(``ray.exceptions.RayError``) is ``error_kind="crash"``; a job still running ``grace_s`` after its own
timeout is cancelled (``ray.cancel(force=True)``) and reads "timed out after N s"; a job whose hardware
no live node offers is ``refused``. Progress events travel node -> a small actor -> the driver's poll.

Ray stays optional: it is imported only inside functions here and in :mod:`efficiency.run.ray.cluster` (connecting,
loopback, listing the cluster's hardware), so importing this module never imports Ray.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from efficiency.hardware.detect import environment_fingerprint
from efficiency.results import Result
from efficiency.run.ray.cluster import connect
from efficiency.run.ray.nodes import RESOURCE_PREFIX
from efficiency.run.runner import DEFAULT_PRELOAD, Job, LocalExecutor, ProgressCallback, error_result, one_line
from efficiency.store.lookup import Wanted
from efficiency.store.store import ResultStore, StoreError

NODE_PRELOAD = tuple(name for name in DEFAULT_PRELOAD if name != "__main__")  # a Ray worker's __main__ is Ray's
FEASIBILITY_CHECK_S = 2.0
logger = logging.getLogger(__name__)


class _ProgressBoard:
    """A Ray actor (wrapped by the executor) that holds the nodes' progress events until the driver polls."""

    def __init__(self) -> None:
        self._events: list[tuple[int, str, float]] = []

    def report(self, index: int, phase: str, fraction: float) -> None:
        self._events.append((index, phase, fraction))

    def flush(self) -> None:
        """Returns once the reports sent before it are held."""

    def drain(self) -> list[tuple[int, str, float]]:
        events, self._events = self._events, []
        return events


_NODE_STORES: dict[str, Any] = {}  # one store (engine, connection pool) per URL per Ray worker process


def _store(url: str) -> ResultStore:
    if url not in _NODE_STORES:
        _NODE_STORES[url] = ResultStore(url)
    return _NODE_STORES[url]


def key_fields(job: Job, env: dict[str, Any]) -> dict[str, Any]:
    """The store key of a job measured under ``env`` (the node's fingerprint, not the driver's)."""
    return {
        "model": job.model,
        "workload": job.workload,
        "metrics": job.metrics,
        "hardware": job.hardware_id,
        "env": env,
    }


def node_task(
    job_dict: dict[str, Any], index: int, board: Any, store_url: str | None, preload: Sequence[str]
) -> dict[str, Any]:
    """Runs on the chosen node: the job in a local isolated worker, then its result into the store.

    Returns an envelope: ``result``, ``env`` (this node's fingerprint), ``stored``, ``store_error``.
    """
    import psutil
    import ray

    context = ray.get_runtime_context()
    job_dict = dict(job_dict)
    if job_dict.get("device", "cpu").startswith("cuda") and ray.get_gpu_ids():
        job_dict["device"] = "cuda:0"  # Ray made only the GPU it assigned visible (CUDA_VISIBLE_DEVICES)
    if job_dict.get("threads") is None:  # Ray sets OMP_NUM_THREADS to the task's num_cpus; the job owns the CPU
        job_dict["threads"] = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
    job = Job(**job_dict)
    env = environment_fingerprint(job.threads)  # before the job starts, so its import is not on the job's clock

    def progress(model: str, phase: str, fraction: float) -> None:
        if phase not in ("finished", "failed"):  # the driver says those when the result reaches it
            board.report.remote(index, phase, fraction)

    ((_, result),) = list(LocalExecutor(preload=preload).execute([job], progress))
    result["ray_node"] = {"node_id": context.get_node_id(), "address": ray.util.get_node_ip_address()}
    if job.hardware and isinstance(result.get("hardware"), dict):
        result["hardware"] = {**result["hardware"], "id": job.hardware_id, "device": job.device}
    envelope = {"result": result, "env": env, "stored": False, "store_error": None}
    if store_url:
        try:
            _store(store_url).put(Result.from_dict(result), key_fields(job, env))
            envelope["stored"] = True
        except StoreError as err:
            envelope["store_error"] = str(err)
    try:
        ray.get(board.flush.remote(), timeout=10)  # one caller's actor calls run in order: all reports are in
    except ray.exceptions.RayError as err:  # the driver is gone or slow: its result still goes back
        logger.warning("could not flush progress to the driver: %s", one_line(err))
    return envelope


class RayExecutor:
    """Runs jobs on a Ray cluster, one task per job on a node offering ``hw:<job.hardware_id>``.

    ``address``: "auto" (the cluster started on this machine, e.g. by ``python -m efficiency head``),
    ``HOST:PORT``, ``ray://HOST:10001`` (needs ``ray[client]``), or None for a private local Ray.
    ``node_ip_address``: this machine's address in the cluster; loopback unless the cluster spans a LAN.
    ``store_url``: the shared results store the nodes write to (and the driver, for what they could not).
    ``grace_s``: how long past a job's own timeout the driver waits before it cancels the task.
    ``queue_timeout_s``: how long a job may wait for its hardware to be free (None: as long as it takes).
    """

    def __init__(
        self,
        address: str | None = "auto",
        namespace: str = "efficiency",
        store_url: str | None = None,
        num_cpus: float = 1.0,
        node_ip_address: str | None = "127.0.0.1",
        grace_s: float = 15.0,
        queue_timeout_s: float | None = None,
        poll_interval_s: float = 0.2,
        preload: Sequence[str] = NODE_PRELOAD,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        if num_cpus < 0 or grace_s < 0 or poll_interval_s <= 0:
            raise ValueError("RayExecutor: num_cpus and grace_s must be at least 0, poll_interval_s above 0")
        self.ray, self._started_here = connect(address, namespace, node_ip_address)
        self._task = self.ray.remote(max_retries=0)(node_task)
        self._board_class = self.ray.remote(num_cpus=0, max_restarts=0)(_ProgressBoard)
        self.store_url = store_url
        self.stores_results = store_url is not None  # the Runner need not store what this executor stored
        self.num_cpus = num_cpus
        self.grace_s = grace_s
        self.queue_timeout_s = queue_timeout_s
        self.poll_interval_s = poll_interval_s
        self.preload = tuple(preload)
        self.runtime_env = runtime_env
        self._driver_store: Any = None
        self._driver_env: dict[int | None, dict[str, Any]] = {}

    def memory_available(self, job: Job) -> int | None:
        """Unknown here: the node's own runner watches the memory cap; Ray's monitor guards the node."""
        return None

    def close(self) -> None:
        """Disconnect, if this executor was the one that connected."""
        if self._started_here:
            self.ray.shutdown()
            self._started_here = False

    def offered(self) -> set[str]:
        """The ``hw:*`` resources that live nodes offer now."""
        return {
            name
            for node in self.ray.nodes()
            if node.get("Alive")
            for name in node.get("Resources", {})
            if name.startswith(RESOURCE_PREFIX)
        }

    def _options(self, job: Job) -> dict[str, Any]:
        options: dict[str, Any] = {
            "resources": {RESOURCE_PREFIX + job.hardware_id: 1},
            "num_cpus": self.num_cpus,
            "num_gpus": 1 if job.device.startswith("cuda") else 0,
        }
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        return options

    def _new_board(self) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = self.ray.get_runtime_context().get_node_id()  # the board lives and dies with the driver's node
        return self._board_class.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=True)
        ).remote()

    def execute(self, jobs: Sequence[Job], on_progress: ProgressCallback | None) -> Iterator[tuple[int, dict]]:
        ray = self.ray
        board = self._new_board()
        offered = self.offered()
        running: dict[Any, int] = {}
        started: dict[int, float] = {}
        submitted = time.monotonic()
        try:
            for index, job in enumerate(jobs):
                if RESOURCE_PREFIX + job.hardware_id not in offered:
                    listed = ", ".join(sorted(offered)) or "none"
                    message = (
                        f"no node in the Ray cluster offers {RESOURCE_PREFIX}{job.hardware_id} (offered: {listed})"
                    )
                    yield index, self._finish(job, error_result(job, message, "refused"), None, on_progress)
                    continue
                task = self._task.options(**self._options(job))
                running[task.remote(job.to_dict(), index, board, self.store_url, self.preload)] = index
            last_check = time.monotonic()
            while running:
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=self.poll_interval_s)
                board = self._forward(board, jobs, started, on_progress)
                for ref in ready:
                    index = running.pop(ref)
                    yield index, self._collect(ref, jobs[index], on_progress)
                now = time.monotonic()
                if now - last_check > FEASIBILITY_CHECK_S:
                    offered, last_check = self.offered(), now
                for ref, index in list(running.items()):
                    job = jobs[index]
                    failure = self._overdue(job, started.get(index, None if board else submitted), submitted, now)
                    if failure is None and index not in started and RESOURCE_PREFIX + job.hardware_id not in offered:
                        failure = (f"the node offering {RESOURCE_PREFIX}{job.hardware_id} left the cluster", "crash")
                    if failure is not None:
                        self._cancel(ref)
                        del running[ref]
                        yield index, self._finish(job, error_result(job, *failure), None, on_progress)
        finally:  # the caller stopped early, a callback raised, or all is done: leave nothing running
            for ref in running:
                self._cancel(ref)
            if board is not None:
                ray.kill(board)

    def _overdue(self, job: Job, start: float | None, submitted: float, now: float) -> tuple[str, str] | None:
        if start is not None:
            if now - start > job.timeout_s + self.grace_s:
                return f"timed out after {job.timeout_s:g} s", "timeout"
            return None
        if self.queue_timeout_s is not None and now - submitted > self.queue_timeout_s:
            wanted = RESOURCE_PREFIX + job.hardware_id
            return f"waited {self.queue_timeout_s:g} s for a free node with {wanted} and never started", "timeout"
        return None

    def _cancel(self, ref: Any) -> None:
        try:
            self.ray.cancel(ref, force=True)
        except (self.ray.exceptions.RayError, ValueError) as err:  # already finished, or its node is gone
            logger.warning("could not cancel a Ray task: %s", one_line(err))

    def _forward(
        self, board: Any, jobs: Sequence[Job], started: dict[int, float], on_progress: ProgressCallback | None
    ) -> Any:
        """Pass the nodes' progress events on; returns the board, or None once it is lost."""
        if board is None:
            return None
        try:
            events = self.ray.get(board.drain.remote(), timeout=30)
        except self.ray.exceptions.RayError as err:
            logger.warning("progress from the nodes is lost (%s); jobs are now timed from submission", one_line(err))
            return None
        for index, phase, fraction in events:
            if phase == "started":
                started.setdefault(index, time.monotonic())
            if on_progress is not None:
                on_progress(jobs[index].model, phase, fraction)
        return board

    def _collect(self, ref: Any, job: Job, on_progress: ProgressCallback | None) -> dict[str, Any]:
        """A finished task's result; a task that died becomes this job's error result."""
        errors = self.ray.exceptions
        envelope = None
        try:
            envelope = self.ray.get(ref, timeout=60)
            result = envelope["result"]
        except errors.OutOfMemoryError as err:
            result = error_result(job, f"the node ran out of memory during the job: {one_line(err)}", "memory")
        except errors.RayTaskError as err:
            cause = err.cause if isinstance(err.cause, BaseException) else err
            result = error_result(job, f"the job's Ray task failed on its node: {one_line(cause)}", "exception")
        except errors.RayError as err:  # WorkerCrashedError, NodeDiedError, ObjectLostError, ...
            result = error_result(job, f"node died during the job: {one_line(err)}", "crash")
        return self._finish(job, result, envelope, on_progress)

    def _finish(
        self, job: Job, result: dict[str, Any], envelope: dict[str, Any] | None, on_progress: ProgressCallback | None
    ) -> dict[str, Any]:
        """Store what the node did not, then say "finished" or "failed"."""
        if envelope is not None and envelope.get("stored"):
            result = {**result, "stored_by": "node"}
        elif self.store_url is not None:
            result = self._store_here(job, result, envelope)
        if on_progress is not None:
            on_progress(job.model, "failed" if result.get("error") else "finished", 1.0)
        return result

    def _env_here(self, threads: int | None) -> dict[str, Any]:
        """This (the driver's) machine's fingerprint, computed once per thread count."""
        if threads not in self._driver_env:
            self._driver_env[threads] = environment_fingerprint(threads)
        return self._driver_env[threads]

    def find_stored(self, store: ResultStore, job: Job) -> Result | None:
        """The Runner's reuse lookup for a cluster job: a success stored for this job's hardware id by whichever
        node ran it, with the driver's torch and transformers releases (the rule of :mod:`efficiency.store.lookup`).
        The Runner's own lookup asks for this machine, which a node's result never is."""
        env = self._env_here(None)
        wanted = Wanted(
            model=job.model,
            workload=job.workload,
            measured=job.metrics == "all",
            hardware=job.hardware_id,
            threads=job.threads,
            machine={"torch": env.get("torch"), "transformers": env.get("transformers")},
        )
        return store.lookup(wanted)

    def _store_here(self, job: Job, result: dict[str, Any], envelope: dict[str, Any] | None) -> dict[str, Any]:
        env = envelope.get("env") if envelope else None
        if env is None:  # the node never said: key the error by this machine's software, as the Runner would
            env = self._env_here(job.threads)
        try:
            if self._driver_store is None:
                self._driver_store = ResultStore(self.store_url)
            self._driver_store.put(Result.from_dict(result), key_fields(job, env))
        except StoreError as err:
            node_error = envelope.get("store_error") if envelope else None
            said = f"{err}" + (f" (the node could not store it either: {node_error})" if node_error else "")
            return {**result, "store_error": said}
        return {**result, "stored_by": "driver"}
