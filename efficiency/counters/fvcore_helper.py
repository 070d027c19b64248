"""fvcore's meta trace of a conv model in a warm helper process, for a process that profiles model after model.

A conv model's fvcore trace runs apart from the profile's own count, on the other core (:class:`CountApart`: a
child forked per count, inheriting the built model). A freshly forked child pays for every page it touches (copy on
write: about 8,400 page faults in MobileNetV2's trace, which takes 0.20 s there against 0.17 s in a process whose
pages are its own). A process that profiles again keeps a helper instead: forked at its second profile, it is sent
each model's spec, workload and overrides as the profile starts, builds the model itself on ``meta`` while the
profile builds its own, and traces it with pages that are already its own. The count is the same either way
(tests and the catalog's profiles compare them).

The isolation is a child's: a trace that fails may leave torch.jit's state behind, so the helper ends after sending
that failure (the next count forks a new one); a crash is one failed count; a helper that sends nothing within the
timeout is killed. A helper serves only the process that forked it (a forked worker forks its own), ends when that
process does, and is replaced after :data:`MAX_USES` counts. A process that profiles once (the dashboard's workers:
one job each) never forks one: its count forks a child as before.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import threading
import time
from typing import Any

import torch

from efficiency.counters.forward import has_convolutions
from efficiency.counters.fvcore_counter import (
    APART_TIMEOUT_S,
    CountApart,
    FvcoreCount,
    TracedApartError,
    _counted,
    _learn,
    _reap,
    count_fvcore,
    error_text,
)
from efficiency.counters.moe import per_token_experts
from efficiency.models.inputs import make_inputs
from efficiency.models.loading import build_model
from efficiency.specs import ModelSpec, Workload

ENABLED = True  # the test suite turns helpers off (a helper forked earlier would not see a test's monkeypatches)
MAX_USES = 100  # counts per helper before a fresh one (what a long trace leaves in memory goes with it)
MAX_HELPERS = 2  # per process: the profiles counted at once (the dashboard counts two); more fork per count
ORPHAN_CHECK_S = 1.0  # how often an idle helper checks that the process it serves is still there
_HEADER = struct.Struct("<Q")

_lock = threading.Lock()
_idle: list[_Helper] = []
_alive: dict[int, int] = {}  # process id -> helpers it has forked and not yet seen end
_profiles: dict[int, int] = {}  # process id -> profiles begun there (``profile_started``)
_pipe_ends: set[int] = set()  # this process's ends of its helpers' pipes: each new helper closes its copies
_without_convolutions: set[str] = set()  # model types a helper found none in: counted in the profile's process


def _send(fd: int, message: object) -> None:
    data = pickle.dumps(message)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes | None:
    """``size`` bytes, or None at end of file; TimeoutError past ``deadline`` (monotonic seconds)."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None = None) -> Any:
    """The next message, or None at end of file (the other side ended)."""
    header = _read_exactly(fd, _HEADER.size, deadline)
    data = None if header is None else _read_exactly(fd, _HEADER.unpack(header)[0], deadline)
    return None if data is None else pickle.loads(data)


def _answer(spec: ModelSpec, workload: Workload, overrides: dict[str, Any]) -> tuple[tuple[str, Any], bool]:
    """The reply to one request, and whether this helper must end after sending it.

    ("count", FvcoreCount) or ("error", one line) as a forked child sends them; ("here", None) for a model without
    convolutions, which the profile counts in its own process; ("unbuilt", one line) when the helper could not build
    what the profile built (the profile then forks a child for it, as without a helper)."""
    try:
        net = build_model(spec, device="meta", dtype=workload.dtype, **overrides)
        if not has_convolutions(net):
            return ("here", None), False
        inputs = make_inputs(spec, workload, "meta")
    except Exception as exc:  # sent to the profile, which counts apart as without a helper
        return ("unbuilt", error_text(exc)), False
    with per_token_experts(net):
        kind, value = _counted(count_fvcore, net, inputs, retry=True)
    # A trace that failed, even one a second trace then counted, may leave torch.jit's state behind: this helper
    # ends after replying.
    return (kind, value), _leaves(kind, value)


def _leaves(kind: str, value: Any) -> bool:
    """Whether the helper ends after this reply: after any trace that failed."""
    return kind == "error" or (kind == "count" and value.first_failure is not None)


def _serve(requests: int, replies: int, owner: int) -> None:
    while True:
        if not select.select([requests], [], [], ORPHAN_CHECK_S)[0]:
            if os.getppid() != owner:  # the process it served has ended
                return
            continue
        request = _receive(requests)
        if request is None:
            return
        reply, leave = _answer(*request)
        _send(replies, reply)
        if leave:
            return


class _Helper:
    """One helper process, with its two pipes."""

    def __init__(self) -> None:
        owner = os.getpid()
        requests, to_helper = os.pipe()  # (read end, write end)
        from_helper, replies = os.pipe()
        pid = os.fork()
        if pid == 0:  # the helper: serve until told to stop, then leave without running any cleanup
            status = 1
            try:
                torch.set_num_threads(1)  # as a forked child (see CountApart): the profile counts on the other core
                for fd in (to_helper, from_helper, *_pipe_ends):  # the other helpers' too: they leave at end of file
                    os.close(fd)
                _serve(requests, replies, owner)
                status = 0
            finally:
                os._exit(status)
        os.close(requests)
        os.close(replies)
        _pipe_ends.update((to_helper, from_helper))
        self.pid, self.owner, self.to_helper, self.from_helper, self.uses = pid, owner, to_helper, from_helper, 0

    def end(self, kill: bool) -> None:
        """Close its pipes (an idle helper leaves at end of file) or kill it; reaped by a thread."""
        if kill:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:  # it had ended already (it is reaped below all the same)
                pass
        self.forget()
        threading.Thread(target=_reaped, args=(self.pid, self.owner), name="fvcore-helper-reaper", daemon=True).start()

    def forget(self) -> None:
        """Close this process's ends of its pipes (a fork of the process that forked the helper holds copies)."""
        for fd in (self.to_helper, self.from_helper):
            _pipe_ends.discard(fd)
            os.close(fd)


def _reaped(pid: int, owner: int) -> None:
    _reap(pid)
    with _lock:
        _alive[owner] = _alive.get(owner, 1) - 1


def profile_started() -> None:
    """Called as each static profile begins: a helper is forked from a process's second profile on."""
    me = os.getpid()
    with _lock:
        _profiles[me] = _profiles.get(me, 0) + 1


def _checkout() -> _Helper | None:
    """An idle helper of this process, a new one (from this process's second profile on, up to MAX_HELPERS), or
    None: count apart as without one."""
    me = os.getpid()
    with _lock:
        while _idle:
            helper = _idle.pop()
            if helper.owner == me:
                return helper
            helper.forget()  # forked by the process this one is a fork of: that process's, never used from here
        if _profiles.get(me, 0) < 2 or _alive.get(me, 0) >= MAX_HELPERS:
            return None
        _alive[me] = _alive.get(me, 0) + 1
    try:
        return _Helper()
    except OSError:  # no fork, no pipes (out of processes or files): count apart as without a helper
        with _lock:
            _alive[me] -= 1
        return None


def _checkin(helper: _Helper) -> None:
    helper.uses += 1
    if helper.uses >= MAX_USES:
        helper.end(kill=False)
        return
    with _lock:
        _idle.append(helper)


class HelperCount:
    """One model's fvcore count asked of a helper as its profile starts; :meth:`bind` gives it the profile's own
    model and inputs once built (a fallback where the helper could not build it), then :meth:`result` and
    :meth:`cancel` as :class:`CountApart`'s. :meth:`release` where the profile counts fvcore itself (no
    convolutions): it collects the helper's "here" and returns the helper."""

    def __init__(self, helper: _Helper, spec: ModelSpec, workload: Workload, overrides: dict[str, Any]) -> None:
        self._helper: _Helper | None = helper
        self._model_type = spec.model_type
        self._net: torch.nn.Module | None = None
        self._inputs: dict[str, Any] | None = None
        _send(helper.to_helper, (spec, workload, overrides))

    def bind(self, net: torch.nn.Module, inputs: dict[str, Any]) -> HelperCount:
        self._net, self._inputs = net, inputs
        return self

    def _reply(self, timeout_s: float) -> tuple[str, Any]:
        helper, self._helper = self._helper, None
        if helper is None:
            raise RuntimeError("this count was already collected or cancelled")
        try:
            reply = _receive(helper.from_helper, time.monotonic() + timeout_s)
        except TimeoutError:
            helper.end(kill=True)
            raise TracedApartError(f"TimeoutError: fvcore's trace did not finish within {timeout_s:.0f} s") from None
        if reply is None:  # it ended without replying: crashed (its exit status is in the reaper's hands)
            helper.end(kill=False)
            raise TracedApartError("RuntimeError: fvcore's trace crashed its helper process")
        if reply[0] == "here":
            _without_convolutions.add(self._model_type)  # not asked again for this type: nothing to gain
        if _leaves(*reply):
            helper.end(kill=False)  # it has left (see _answer)
        else:
            _checkin(helper)
        return reply

    def result(self, timeout_s: float = APART_TIMEOUT_S) -> FvcoreCount:
        kind, value = self._reply(timeout_s)
        if kind == "error":
            raise TracedApartError(value)
        if kind == "count":
            if self._net is not None:
                _learn(self._net, value)  # kept here too, for a count that forks a child instead
            return value
        if self._net is None or self._inputs is None:
            raise RuntimeError(f"the helper sent {kind!r} for a count it was given no model for")
        with per_token_experts(self._net):  # as the profile forks its child: MoE experts counted per token
            return CountApart(self._net, self._inputs).result(timeout_s)

    def release(self, timeout_s: float = APART_TIMEOUT_S) -> None:
        """Collect the helper's reply to a model the profile counted itself, and return the helper."""
        if self._helper is not None:
            self._reply(timeout_s)

    def cancel(self) -> None:
        """A count no longer wanted (the profile failed meanwhile): the helper is killed (it may be mid-trace)."""
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.end(kill=True)


def ask(spec: ModelSpec, workload: Workload, overrides: dict[str, Any]) -> HelperCount | None:
    """fvcore's count of this model asked of a helper now, or None: no helper for this count (a process's first
    profile, a model type a helper found no convolutions in, all helpers busy, no fork here, or the request cannot be
    sent: counted as without one)."""
    if not ENABLED or not hasattr(os, "fork") or spec.model_type in _without_convolutions:
        return None
    helper = _checkout()
    if helper is None:
        return None
    try:
        return HelperCount(helper, spec, workload, overrides)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):  # a broken pipe, a spec pickle refuses
        helper.end(kill=True)  # part of a request may have gone: this helper is done
        return None  # counted apart as without a helper: the same count
