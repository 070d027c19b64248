"""Fixtures shared by the runner and fault-injection tests."""

from __future__ import annotations

import pytest

from efficiency.runner import LocalExecutor


@pytest.fixture(scope="module")
def executor() -> LocalExecutor:
    """A warm forkserver executor, started once per test module."""
    executor = LocalExecutor()
    executor.warm_up()
    return executor
