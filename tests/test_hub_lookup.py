"""The Hub check before a config-only fetch: name resolution and connect together end within 3 s, offline.

Every resolver here is a stand-in (`socket.getaddrinfo` patched), so the tests need no network and never
depend on this machine's DNS.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from efficiency.models.catalog import UnknownModelError
from efficiency.models.loading import HUB_CHECK_TIMEOUT_S, HUB_HOST, hub_reachable, resolve

HUB_ID = "someorg/some-model"  # not in the catalog, not a folder: goes to the Hub check
REAL_GETADDRINFO = socket.getaddrinfo
SLACK_S = 0.5  # thread start and scheduling on a busy 2-core machine
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_check(monkeypatch) -> Iterator[None]:
    """No HF_HUB_OFFLINE (that answers before any lookup), and no answer cached from another test."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub_reachable.cache_clear()
    yield
    hub_reachable.cache_clear()


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """Set at teardown, so a stalled stand-in resolver's thread ends with its test instead of 30 s later."""
    event = threading.Event()
    yield event
    event.set()


def resolver(monkeypatch, answer_hub) -> list[float]:
    """Patch `socket.getaddrinfo`: lookups of the Hub go to `answer_hub`, numeric addresses to the real one."""
    asked: list[float] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != HUB_HOST:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        asked.append(time.monotonic())
        return answer_hub(port)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def refuse_connect(monkeypatch) -> list[float]:
    """Patch `socket.create_connection` to fail as a silent network does, recording the timeout it was given."""
    timeouts: list[float] = []

    def create_connection(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return timeouts


def offline_line(started: float) -> tuple[str, float]:
    with pytest.raises(UnknownModelError) as caught:
        resolve(HUB_ID)
    return str(caught.value), time.monotonic() - started


def test_silent_dns_ends_with_the_offline_line_within_3_s(monkeypatch, released):
    """A resolver that does not answer for 30 s (what a dropped DNS packet looks like): 3 s, then 'offline'."""

    def silent(port):
        released.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    asked = resolver(monkeypatch, silent)
    message, elapsed = offline_line(time.monotonic())
    assert len(asked) == 1
    assert HUB_CHECK_TIMEOUT_S - 0.1 <= elapsed < HUB_CHECK_TIMEOUT_S + SLACK_S
    assert f"offline: cannot reach {HUB_HOST}" in message and "\n" not in message


def test_failing_dns_ends_with_the_offline_line_at_once(monkeypatch):
    def failing(port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    asked = resolver(monkeypatch, failing)
    message, elapsed = offline_line(time.monotonic())
    assert len(asked) == 1
    assert elapsed < SLACK_S
    assert f"offline: cannot reach {HUB_HOST}" in message


def test_slow_dns_leaves_the_connect_only_the_rest_of_the_3_s(monkeypatch):
    """Resolution and connect share one deadline: DNS answering after 2.5 s leaves the connect about 0.5 s."""
    slow_s = 2.5

    def slow(port):
        time.sleep(slow_s)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port))]  # TEST-NET-1, never dialled

    resolver(monkeypatch, slow)
    timeouts = refuse_connect(monkeypatch)
    message, elapsed = offline_line(time.monotonic())
    assert len(timeouts) == 1 and 0 < timeouts[0] <= HUB_CHECK_TIMEOUT_S - slow_s + 0.05
    assert elapsed < HUB_CHECK_TIMEOUT_S + SLACK_S
    assert f"offline: cannot reach {HUB_HOST}" in message


def test_each_resolved_address_is_tried_and_one_that_answers_means_reachable(monkeypatch):
    """A dead first address (refused at once) and a live second one: reachable, without a second DNS query."""
    with socket.socket() as dead, socket.socket() as live:
        dead.bind(("127.0.0.1", 0))  # bound, not listening: connecting is refused at once
        live.bind(("127.0.0.1", 0))
        live.listen(1)
        ports = [dead.getsockname()[1], live.getsockname()[1]]
        asked = resolver(
            monkeypatch,
            lambda port: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", each)) for each in ports],
        )
        assert hub_reachable() is True
    assert len(asked) == 1
    assert hub_reachable() is True and len(asked) == 1  # the answer is kept for the process


def test_a_lookup_still_waiting_does_not_hold_the_process_at_exit():
    """The CLI prints the offline line and exits; the resolver thread, still stalled for a minute, is not joined."""
    script = textwrap.dedent(
        """
        import socket, time
        from efficiency.models import loading

        def silent(*args, **kwargs):
            time.sleep(60)

        socket.getaddrinfo = silent
        started = time.monotonic()
        assert loading.hub_reachable() is False
        print(round(time.monotonic() - started, 2))
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=40, check=False
    )
    exited_after = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) < HUB_CHECK_TIMEOUT_S + SLACK_S
    assert exited_after < 30, "the process waited for the stalled resolver"
