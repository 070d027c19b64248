"""Bundled results: the default run of every experiment, measured once on a named machine, shipped as data.

A lecture or a talk must work offline and instantly, so the Story and Experiments pages start from these
numbers and label them "measured on <machine>"; a button re-measures live. The file is written only by
``scripts/regenerate_bundled.py``, which runs the project's own experiments; nothing here is typed in.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from efficiency.experiments import ExperimentResult, get_experiment, result_from_dict

BUNDLE_FILE = Path(__file__).with_name("experiments.json")
FORMAT_VERSION = 1


class BundleError(ValueError):
    """The bundled file is missing, unreadable, or lacks the experiment asked for."""


@lru_cache(maxsize=4)
def _read(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise BundleError(f"no bundled results at {file}; run scripts/regenerate_bundled.py")
    try:
        bundle = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{file.name} is not valid JSON ({exc})") from exc
    if bundle.get("format") != FORMAT_VERSION:
        raise BundleError(f"{file.name}: format {bundle.get('format')!r}, expected {FORMAT_VERSION}")
    return bundle


def load_bundle(path: Path | None = None) -> dict[str, Any]:
    """The whole bundle: ``machine``, ``generated``, and ``experiments`` (name -> stored result)."""
    return _read(str(path or BUNDLE_FILE))


def bundled_names(path: Path | None = None) -> list[str]:
    return list(load_bundle(path)["experiments"])


def bundled_machine(path: Path | None = None) -> dict[str, Any]:
    """CPU model, cores, threads, torch/transformers versions and date of the bundled runs."""
    return dict(load_bundle(path)["machine"])


def load_bundled(name: str, path: Path | None = None) -> ExperimentResult:
    """The bundled default run of one experiment, re-explained from its stored numbers (``bundled=True``)."""
    experiments = load_bundle(path)["experiments"]
    if name not in experiments:
        raise BundleError(f"no bundled run of {name!r}; bundled: {', '.join(experiments)}")
    return result_from_dict(get_experiment(name), experiments[name], bundled=True)


__all__ = ["BUNDLE_FILE", "BundleError", "bundled_machine", "bundled_names", "load_bundle", "load_bundled"]
