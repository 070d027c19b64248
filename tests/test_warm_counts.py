"""The dashboard's forkserver warms the counters once (``efficiency.run.warm_counts``, in its preload), so each static
count forked from it starts warm; a warm-up that fails says so and does not stop the forkserver."""

from __future__ import annotations

import importlib
import sys

from efficiency.counters import static


def test_importing_the_warm_up_counts_each_warm_model_once(monkeypatch, capsys):
    counted: list[str] = []
    monkeypatch.setattr(static, "profile_static", counted.append)
    sys.modules.pop("efficiency.run.warm_counts", None)
    module = importlib.import_module("efficiency.run.warm_counts")
    assert counted == list(module.WARM_MODELS) and len(counted) == 2
    assert capsys.readouterr().err == ""
    sys.modules.pop("efficiency.run.warm_counts", None)


def test_the_warm_up_forks_no_fvcore_helper_and_leaves_the_setting_as_it_was(monkeypatch):
    from efficiency.counters import fvcore_helper

    monkeypatch.setattr(fvcore_helper, "ENABLED", True)
    seen: list[bool] = []
    monkeypatch.setattr(static, "profile_static", lambda name: seen.append(fvcore_helper.ENABLED))
    sys.modules.pop("efficiency.run.warm_counts", None)
    importlib.import_module("efficiency.run.warm_counts")
    assert seen == [False, False] and fvcore_helper.ENABLED is True
    sys.modules.pop("efficiency.run.warm_counts", None)


def test_a_failing_warm_up_is_reported_and_the_import_goes_on(monkeypatch, capsys):
    def fails(name: str) -> None:
        raise RuntimeError(f"{name}: no")

    monkeypatch.setattr(static, "profile_static", fails)
    sys.modules.pop("efficiency.run.warm_counts", None)
    importlib.import_module("efficiency.run.warm_counts")  # no exception
    err = capsys.readouterr().err
    assert "warming the counters failed" in err and "RuntimeError: electra-small-discriminator: no" in err
    sys.modules.pop("efficiency.run.warm_counts", None)


def test_the_dashboards_executor_preloads_the_warm_up(monkeypatch):
    from efficiency.ui import runs

    preloads: list[list[str]] = []

    class Recording:
        def __init__(self, preload):
            preloads.append(list(preload))

        def warm_up(self) -> None:
            return None

    monkeypatch.setattr(runs, "LocalExecutor", Recording)
    runs.executor.clear()
    try:
        runs.executor()
    finally:
        runs.executor.clear()
    assert preloads and preloads[0][-1] == "efficiency.run.warm_counts"
    assert set(runs.DEFAULT_PRELOAD) <= set(preloads[0])
