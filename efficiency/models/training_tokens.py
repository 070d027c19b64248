"""Published pre-training token counts of catalog models, each with its source, and user-set figures.

The data lives in ``training_tokens.json`` beside this module: per catalog id the tokens seen in pre-training
(``value``, ``unit: tokens``), the ``source`` URL, ``where`` in it the figure stands, and a ``note`` on what it
leaves out. The lifecycle experiment multiplies it by counted training FLOPs per token; a model without a
published figure takes one a user sets (:func:`user_tokens`), always marked "given by the user".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from efficiency.models.catalog import find

TOKENS_FILE = Path(__file__).with_name("training_tokens.json")
USER_SOURCE = "given by the user"
UNIT = "tokens"


@dataclass(frozen=True)
class TrainingTokens:
    """How many tokens a model saw in pre-training, and where that figure comes from."""

    model: str
    value: float
    source: str
    where: str
    note: str = ""
    unit: str = UNIT

    @property
    def given_by_user(self) -> bool:
        return self.source == USER_SOURCE


def _entry(raw: dict) -> TrainingTokens:
    try:
        figure = TrainingTokens(
            model=raw["model"],
            value=float(raw["value"]),
            unit=raw["unit"],
            source=raw["source"],
            where=raw["where"],
            note=raw.get("note", ""),
        )
    except KeyError as exc:
        raise ValueError(f"training_tokens.json: {raw.get('model', '?')!r} lacks {exc.args[0]!r}") from exc
    if figure.unit != UNIT or not math.isfinite(figure.value) or figure.value <= 0:
        raise ValueError(f"training_tokens.json: {figure.model!r} needs a positive count in {UNIT}")
    return figure


@lru_cache(maxsize=1)
def load_training_tokens() -> tuple[TrainingTokens, ...]:
    """Every bundled figure, in file order."""
    data = json.loads(TOKENS_FILE.read_text(encoding="utf-8"))
    return tuple(_entry(raw) for raw in data["figures"])


def tokens_for(model: str) -> TrainingTokens | None:
    """The published figure of a model named by catalog id, alias or Hub id; None without one."""
    spec = find(model)
    model_id = spec.id if spec is not None else model
    return next((f for f in load_training_tokens() if f.model == model_id), None)


def user_tokens(model: str, value: float) -> TrainingTokens:
    """A figure a person sets (a model without a published one, or a what-if), marked "given by the user"."""
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"training tokens of {model!r}: must be a positive number of tokens, got {value!r}")
    return TrainingTokens(model, value, USER_SOURCE, USER_SOURCE)
