"""A config.json uploaded in the browser, as a model: parsed as data only (size-capped, one JSON object), refused if
its architecture is not part of transformers (an ``auto_map`` naming custom code is dropped, never run), and known
by its contents like a local folder (``local:<hex>``, see :func:`efficiency.models.loading.local_spec`), so the
jobs, the store and a shared link all name it the same way.
"""

from __future__ import annotations

from pathlib import PurePath

from efficiency.models.loading import local_spec, spec_from_config_dict
from efficiency.specs import ModelSpec
from efficiency.validation import check_upload, printable


def spec_from_upload(data: bytes, filename: str) -> ModelSpec:
    """The model an uploaded config.json describes; raises ``ValueError`` (one line) for anything else."""
    stem = PurePath(printable(filename, 60)).stem or "config"
    shown = f"{stem} (uploaded)"
    config = check_upload(data)
    spec = spec_from_config_dict(config, shown, "upload", f"uploaded file {printable(filename, 60)}")
    return local_spec(spec, config, shown)
