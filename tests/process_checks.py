"""Helpers the process tests share: whether a process is gone."""

from __future__ import annotations

import time

import psutil


def gone(pid: int, within_s: float = 5.0) -> bool:
    """Dead or a zombie within ``within_s`` (a container's init may not reap orphans at once)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False
