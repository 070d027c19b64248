"""Results store schema: the table a profile is kept in, the key it is kept under, and the JSON it is kept as.

The key is a sha256 of what a profile is a pure function of (model, workload, metrics, implementation, hardware and
the software/hardware fingerprint fields that change a number); :class:`efficiency.store.store.ResultStore` reads and
writes rows of ``results_table`` by it (``make_key``, ``flatten``, ``results_table`` and ``StoreError`` are
importable from :mod:`efficiency.store.store` too).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import sqlalchemy as sa

from efficiency.results import DEFAULT_IMPLEMENTATION

SCHEMA_VERSION = 1
ENV_KEY_FIELDS = ("cpu_model", "threads", "gpu_name", "torch", "transformers")
WORKLOAD_COLUMNS = ("batch_size", "seq_len", "image_size", "dtype", "mode")

metadata = sa.MetaData()
schema_table = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))
results_table = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("failed", sa.Boolean, nullable=False, default=False),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("hardware", sa.String(256), nullable=False),
    sa.Column("batch_size", sa.Integer),
    sa.Column("seq_len", sa.Integer),
    sa.Column("image_size", sa.Integer),
    sa.Column("dtype", sa.String(32)),
    sa.Column("mode", sa.String(32)),
    sa.Column("metrics", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.UniqueConstraint("key", "failed", name="uq_results_key_failed"),
    sa.Index("ix_results_model", "model"),
    sa.Index("ix_results_hardware", "hardware"),
)


class StoreError(ValueError):
    """A store that cannot be opened or used, said in one line (bad location, newer schema, ...)."""


def _jsonable(value: Any, where: str = "result") -> Any:
    """Plain JSON types only; NaN/inf become null because PostgreSQL and strict JSON reject them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise StoreError(f"{where}: {type(value).__name__} is not JSON-able; store plain numbers, text, lists, dicts")


def canonical_json(value: Any) -> str:
    """One spelling per value, so equal inputs hash to equal keys."""
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def env_key_subset(env: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint fields that change a number: CPU, threads, GPU, library versions."""
    subset = {name: env.get(name) for name in ENV_KEY_FIELDS}
    if subset["gpu_name"] is None:
        subset["gpu_name"] = env.get("gpu")  # efficiency.hardware.detect names it "gpu"
    return subset


def make_key(
    model: str,
    workload: dict[str, Any],
    metrics: str,
    hardware: str,
    env: dict[str, Any],
    implementation: str = DEFAULT_IMPLEMENTATION,
) -> str:
    """sha256 of what a profile is a pure function of (model, workload, implementation, hardware, software).

    The default implementation (sdpa) leaves the identity as it was before implementations existed, so a row
    stored then keeps its key and a new sdpa result replaces it instead of sitting beside it."""
    identity = {
        "model": model,
        "workload": workload,
        "metrics": metrics,
        "hardware": hardware,
        "env": env_key_subset(env),
    }
    if implementation != DEFAULT_IMPLEMENTATION:
        identity["implementation"] = implementation
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted columns (``latency_ms.median``); lists stay as JSON text."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for name, item in value.items():
            flat.update(flatten(item, f"{prefix}{name}."))
        return flat
    if isinstance(value, list):
        return {prefix[:-1]: json.dumps(value)}
    return {prefix[:-1]: value}


def _stored_json(text: str, what: str, unreadable: dict[str, Any] | None = None) -> Any:
    """A stored JSON column. A row edited or written by another tool into something unreadable must not
    hide every other row: ``unreadable`` (if given) stands in for it, with the reason as its ``error``."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError) as err:
        reason = f"stored {what} is unreadable ({type(err).__name__})"
        if unreadable is None:
            raise StoreError(reason) from err
        return {**unreadable, "error": reason}
