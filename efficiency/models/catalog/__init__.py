"""Offline model catalog: the published configuration values of each model, with their sources.

The data lives in ``*.json`` files beside this module, one list of entries per file. Ids and aliases
resolve case-insensitively.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from pathlib import Path

from efficiency.specs import ModelSpec

CATALOG_DIR = Path(__file__).parent


class UnknownModelError(ValueError):
    """An id that is neither in the catalog, nor a local folder, nor reachable on the Hub."""


def _entry_to_spec(entry: dict, path: Path) -> ModelSpec:
    try:
        return ModelSpec(
            id=entry["id"],
            hf_id=entry.get("hf_id"),
            aliases=tuple(entry.get("aliases", ())),
            name=entry.get("name", ""),
            model_type=entry["model_type"],
            task=entry["task"],
            modality=entry["modality"],
            families=tuple(entry.get("families", ())),
            config=dict(entry["config"]),
            note=entry.get("note", ""),
            source=entry.get("source", ""),
            published=dict(entry.get("published", {})),
        )
    except KeyError as exc:
        raise ValueError(f"{path.name}: entry {entry.get('id', '?')!r} lacks the field {exc.args[0]!r}") from exc


@lru_cache(maxsize=1)
def load_catalog() -> tuple[ModelSpec, ...]:
    """Every catalog entry, in file order; ids and aliases are checked to be unique."""
    specs: list[ModelSpec] = []
    seen: dict[str, str] = {}
    for path in sorted(CATALOG_DIR.glob("*.json")):
        for entry in json.loads(path.read_text(encoding="utf-8")):
            spec = _entry_to_spec(entry, path)
            for key in (spec.id, *spec.aliases, *([spec.hf_id] if spec.hf_id else [])):
                owner = seen.get(key.lower())
                if owner is not None and owner != spec.id:
                    raise ValueError(f"catalog: {key!r} names both {owner!r} and {spec.id!r}")
                seen[key.lower()] = spec.id
            specs.append(spec)
    return tuple(specs)


@lru_cache(maxsize=1)
def _index() -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in load_catalog():
        for key in (spec.id, *spec.aliases, *([spec.hf_id] if spec.hf_id else [])):
            index[key.lower()] = spec
    return index


def find(name: str) -> ModelSpec | None:
    """The catalog entry for an id, Hub id or alias, or None."""
    return _index().get(name.strip().lower())


def closest(name: str, n: int = 3) -> list[str]:
    """Catalog ids that look like ``name``, for 'did you mean' messages."""
    keys = list(_index())
    hits = difflib.get_close_matches(name.strip().lower(), keys, n=n, cutoff=0.5)
    return list(dict.fromkeys(_index()[k].id for k in hits))


def list_models() -> list[ModelSpec]:
    return list(load_catalog())
