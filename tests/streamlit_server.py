"""The dashboard as people run it, for tests that talk to a real server: `streamlit run app.py` on a free loopback
port, headless, with `.streamlit/config.toml` applied and its own empty results store.

Import the helpers into a test module: ``from streamlit_server import start_server, stop_server, wait_healthy``.
Needs no browser; `tests/test_browser.py` drives Chromium against the same server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 45


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit not healthy at {url} after {timeout_s} s")


def start_server(
    data_dir: Path, log_path: Path, script: str = "app.py", extra_args: Sequence[str] = ()
) -> tuple[subprocess.Popen, str]:
    """The dashboard as people run it, on loopback, with its own empty results store; `extra_args` are more
    `streamlit run` flags (they override `.streamlit/config.toml`)."""
    port = free_port()
    env = {**os.environ, "EFFICIENCY_DATA_DIR": str(data_dir)}
    env.pop("EFFICIENCY_DB", None)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true", *extra_args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(data_dir: Path, log_path: Path) -> Iterator[str]:
    """A started, healthy dashboard's URL for the length of the block, stopped after it."""
    process, url = start_server(data_dir, log_path)
    try:
        wait_healthy(url, process, STARTUP_TIMEOUT_S)
        yield url
    finally:
        stop_server(process)


def settled(page, timeout_s: float = 60) -> None:
    """Wait until the script run is over: no element is marked stale any more (``page``: a Playwright page)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.locator('[data-stale="true"]').count() == 0:
            return
        time.sleep(0.05)
    raise TimeoutError("the page still shows stale elements")
