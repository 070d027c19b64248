"""Published quality figures of catalog models (ImageNet top-1, MNLI dev, LAMBADA), each with its source.

The data lives in ``quality.json`` beside this module: ``benchmarks`` (unit and direction of each benchmark id)
and ``figures`` (model id, benchmark, value, source URL, the table or section it comes from, the evaluation setup
and the checkpoint it belongs to). A model without a figure is simply not on a quality chart; a user may give
their own figure (:func:`parse_user_figure`), which is always marked "given by the user".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from efficiency.models.catalog import find

QUALITY_FILE = Path(__file__).with_name("quality.json")
USER_SOURCE = "given by the user"


@dataclass(frozen=True)
class Benchmark:
    """A quality measure: its unit and which direction is better (perplexity: lower)."""

    id: str
    name: str
    unit: str
    higher_is_better: bool
    description: str = ""


@dataclass(frozen=True)
class QualityFigure:
    """One model's score on one benchmark, with where it comes from and how it was obtained."""

    model: str
    benchmark: str
    value: float
    unit: str
    higher_is_better: bool
    source: str
    table: str = ""
    setup: str = ""
    checkpoint: str = ""

    @property
    def given_by_user(self) -> bool:
        return self.source == USER_SOURCE

    def to_dict(self) -> dict[str, Any]:
        """The record a result carries (``quality`` in the CLI's JSON)."""
        return {"benchmark": self.benchmark, "value": self.value, "unit": self.unit, "source": self.source}


def _figure(entry: dict[str, Any], known: dict[str, Benchmark]) -> QualityFigure:
    try:
        figure = QualityFigure(
            model=entry["model"],
            benchmark=entry["benchmark"],
            value=float(entry["value"]),
            unit=entry["unit"],
            higher_is_better=bool(entry["higher_is_better"]),
            source=entry["source"],
            table=entry["table"],
            setup=entry["setup"],
            checkpoint=entry.get("checkpoint", ""),
        )
    except KeyError as exc:
        raise ValueError(f"quality.json: a figure of {entry.get('model', '?')!r} lacks {exc.args[0]!r}") from exc
    benchmark = known.get(figure.benchmark)
    if benchmark is None:
        raise ValueError(f"quality.json: {figure.model!r} names the unknown benchmark {figure.benchmark!r}")
    if (figure.unit, figure.higher_is_better) != (benchmark.unit, benchmark.higher_is_better):
        raise ValueError(
            f"quality.json: {figure.model!r} {figure.benchmark}: unit or direction differs from its benchmark"
        )
    return figure


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Benchmark], tuple[QualityFigure, ...]]:
    data = json.loads(QUALITY_FILE.read_text(encoding="utf-8"))
    known = {key: Benchmark(id=key, **value) for key, value in data["benchmarks"].items()}
    return known, tuple(_figure(entry, known) for entry in data["figures"])


def benchmarks() -> dict[str, Benchmark]:
    """Every bundled benchmark by id."""
    return dict(_load()[0])


def load_quality() -> tuple[QualityFigure, ...]:
    """Every bundled figure, in file order."""
    return _load()[1]


def figures_for(model: str) -> list[QualityFigure]:
    """The bundled figures of a model named by catalog id, alias or Hub id (none for a model outside it)."""
    spec = find(model)
    model_id = spec.id if spec is not None else model
    return [figure for figure in load_quality() if figure.model == model_id]


def figure_for(model: str, benchmark: str) -> QualityFigure | None:
    return next((figure for figure in figures_for(model) if figure.benchmark == benchmark), None)


def parse_user_figure(text: str, model: str = "") -> QualityFigure:
    """``BENCHMARK=VALUE`` as typed on the command line, marked "given by the user".

    A bundled benchmark keeps its unit and direction; any other name is taken as higher-is-better with no
    unit, and its setup says so."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise ValueError(f"--quality {text!r}: give BENCHMARK=VALUE, e.g. imagenet-1k-top1=76.1")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"--quality {text!r}: {raw.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"--quality {text!r}: the value must be a finite number")
    known = benchmarks().get(name)
    if known is not None:
        return QualityFigure(model, name, value, known.unit, known.higher_is_better, USER_SOURCE, setup=USER_SOURCE)
    return QualityFigure(
        model, name, value, "", True, USER_SOURCE, setup=f"{USER_SOURCE}; not a bundled benchmark, so higher is better"
    )
