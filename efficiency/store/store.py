"""Results store: every profile we measured, kept across restarts and shared between processes.

A SQLite file in the user's data directory by default; any SQLAlchemy URL (e.g.
``postgresql+psycopg://...``) so a team can point every node and dashboard at one database. Location
precedence: the explicit argument, then ``EFFICIENCY_DB``, then ``<data_dir>/results.db``.

Why the SQLite settings: WAL lets readers work while one process writes; ``busy_timeout`` (30 s) makes
a second writer wait instead of failing; every write runs in ``BEGIN IMMEDIATE`` so a transaction
takes the write lock before it reads (a deferred read-then-write transaction can fail at once with
"database is locked" whatever the timeout). Together: two processes writing at once lose nothing,
and a writer killed mid-transaction leaves only committed rows.

Failed jobs are stored too (``failed`` column, ``error`` text) so the UI can show them; per key the
table holds at most one successful row and one latest failure. A failure never replaces a success,
a success removes the failure, and reuse (:meth:`ResultStore.lookup`) only returns successes.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine

from efficiency.paths import data_dir
from efficiency.results import Result
from efficiency.store.lookup import Wanted, matches
from efficiency.store.schema import (
    SCHEMA_VERSION,
    WORKLOAD_COLUMNS,
    StoreError,
    _stored_json,
    canonical_json,
    make_key,
    metadata,
    results_table,
    schema_table,
)

SQLITE_BUSY_TIMEOUT_S = 30.0
SCHEMA_LOCK_KEY = 0x5EFF1C  # PostgreSQL advisory lock held while creating or checking the schema
URL_HINT = "a file path or a URL like sqlite:///path/to/results.db or postgresql+psycopg://user@host/db"


def default_location() -> str:
    """``EFFICIENCY_DB`` if set, else ``results.db`` in the data directory."""
    override = os.environ.get("EFFICIENCY_DB", "").strip()
    if override:
        return override

    return str(data_dir() / "results.db")


def _check_sqlite_file(path: Path) -> None:
    if str(path) in ("", ":memory:"):
        return
    if path.is_dir():
        raise StoreError(f"database location {path} is a folder; give a file path such as {path / 'results.db'}")
    if path.exists() and not path.is_file():
        raise StoreError(f"database location {path} is not a regular file")
    if not path.parent.is_dir():
        raise StoreError(f"database location {path}: folder {path.parent} does not exist")
    target = path if path.exists() else path.parent
    if not os.access(target, os.W_OK):
        raise StoreError(f"database location {path}: {target} is not writable")


def resolve_url(location: str | None = None) -> URL:
    """Turn a path or URL into a validated SQLAlchemy URL, or raise a one-line StoreError."""
    text = (location if location is not None else default_location()).strip()
    if not text:
        raise StoreError(f"database location is empty; give {URL_HINT}")
    if "://" not in text:
        path = Path(text).expanduser().resolve()
        _check_sqlite_file(path)
        return URL.create("sqlite", database=str(path))
    try:
        url = sa.make_url(text)
    except (exc.ArgumentError, ValueError) as err:
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)  # never echo a password
        raise StoreError(f"database URL {shown!r} is malformed ({err}); give {URL_HINT}") from err
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database).expanduser().resolve()
        _check_sqlite_file(path)
        url = url.set(database=str(path))
    return url


def _create_engine(url: URL) -> Engine:
    shown = url.render_as_string(hide_password=True)
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True)
        memory = url.database in (None, "", ":memory:")
        engine = sa.create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            poolclass=sa.pool.StaticPool if memory else None,
        )
    except exc.NoSuchModuleError as err:
        raise StoreError(f"database URL {shown}: unknown database kind {url.drivername!r}; give {URL_HINT}") from err
    except ImportError as err:
        raise StoreError(f"database URL {shown}: its driver is not installed ({err}); pip install it") from err

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # Switching a new file to WAL can answer "locked" at once, without the busy handler, while another
        # process opens the same new file: retry within the busy timeout instead of failing the open.
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        while True:
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _utc(value: datetime) -> str:
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


class ResultStore:
    """Profiles by key; see the module docstring for location, concurrency and failure rules."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.location = self.url.render_as_string(hide_password=True)
        self._engine = _create_engine(self.url)
        self._writer = self._engine.execution_options(sqlite_immediate=True)
        self._open_schema()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for readers that want SQL (e.g. pandas.read_sql)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; low-level database errors become one StoreError line."""
        try:
            with self._writer.begin() as conn:
                yield conn
        except exc.IntegrityError:
            raise
        except exc.DBAPIError as err:
            raise StoreError(f"results database {self.location}: {_first_line(err.orig)}") from err

    def _open_schema(self) -> None:
        with self._write() as conn:
            if self.url.get_backend_name() == "postgresql":  # many nodes may open a fresh database at once
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            found = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
            if found is None:
                conn.execute(schema_table.insert().values(version=SCHEMA_VERSION))
                found = SCHEMA_VERSION
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"results database {self.location} has schema version {found}, newer than this program's "
                f"{SCHEMA_VERSION}; upgrade efficiency-dashboard or use another database"
            )

    def put(self, result: Result, key_fields: dict[str, Any]) -> str:
        """Upsert ``result`` under the key of ``key_fields`` (model, workload, metrics, hardware, env; and
        ``implementation``, else the result's own)."""
        missing = [name for name in ("model", "workload", "metrics", "hardware", "env") if name not in key_fields]
        if missing:
            raise StoreError(f"key_fields: missing {', '.join(missing)}")
        implementation = key_fields.get("implementation") or result.implementation
        if result.implementation != implementation:
            raise StoreError(f"result of implementation {result.implementation!r} keyed as {implementation!r}")
        key = make_key(
            key_fields["model"],
            key_fields["workload"],
            key_fields["metrics"],
            key_fields["hardware"],
            key_fields["env"],
            implementation,
        )
        workload = key_fields["workload"] or {}
        measured_on = result.hardware.id if result.hardware is not None else None
        kept = result.with_(reused=None, stored_by=None, store_error=None, store_id=None, created_at=None)
        row = {
            "key": key,
            "failed": bool(result.error),
            "model": str(key_fields["model"]),
            "hardware": str(measured_on or key_fields["hardware"]),
            **{name: workload.get(name) for name in WORKLOAD_COLUMNS},
            "metrics": str(key_fields["metrics"]),
            "created_at": datetime.now(UTC),
            "environment": canonical_json(key_fields["env"]),
            "result": canonical_json(kept.to_dict()),
            "error": str(result.error) if result.error else None,
            "schema_version": SCHEMA_VERSION,
        }
        try:
            self._upsert(row)
        except exc.IntegrityError:
            self._upsert(row)  # a concurrent writer inserted the same key first (not SQLite: it serialises)
        return key

    def _upsert(self, row: dict[str, Any]) -> None:
        table = results_table
        with self._write() as conn:
            same = sa.and_(table.c.key == row["key"], table.c.failed == row["failed"])
            if conn.execute(table.update().where(same).values(**row)).rowcount == 0:
                conn.execute(table.insert().values(**row))
            if not row["failed"]:
                conn.execute(table.delete().where(table.c.key == row["key"], table.c.failed.is_(True)))

    def get(self, key: str) -> Result | None:
        """The result under ``key``: the successful one if there is one, else the latest failure."""
        query = sa.select(results_table.c.result).where(results_table.c.key == key)
        query = query.order_by(results_table.c.failed.asc()).limit(1)
        with self._engine.connect() as conn:
            text = conn.execute(query).scalar()
        return None if text is None else Result.from_dict(_stored_json(text, f"result {key}"))

    def lookup(self, wanted: Wanted) -> Result | None:
        """The newest stored success that stands for ``wanted`` (the rule in :mod:`efficiency.store.lookup`),
        or None. The query narrows by the indexed columns; every candidate is then checked by that rule."""
        table = results_table
        query = sa.select(table.c.id, table.c.created_at, table.c.result).where(
            table.c.model == wanted.model,
            table.c.failed.is_(False),
            *[table.c[name] == wanted.workload.get(name) for name in ("batch_size", "dtype", "mode")],
        )
        if wanted.measured:
            query = query.where(table.c.hardware == wanted.hardware, table.c.metrics == "all")
        query = query.order_by(table.c.created_at.desc(), table.c.id.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        for store_id, created_at, text in rows:
            try:
                result = Result.from_dict(_stored_json(text, f"result {store_id}"))
            except StoreError:  # an unreadable row: measure again rather than fail
                continue
            if matches(result, wanted):
                return result.with_(store_id=store_id, created_at=_utc(created_at))
        return None

    def list(self, model: str | None = None, hardware: str | None = None, limit: int | None = None) -> list[Result]:
        """Stored results, newest first, each with its ``store_id`` and ``created_at`` (UTC ISO); a row whose
        JSON is unreadable comes back as a failure that says so, so it never hides the others."""
        table = results_table
        query = sa.select(table).order_by(table.c.created_at.desc(), table.c.id.desc())
        if model is not None:
            query = query.where(table.c.model == model)
        if hardware is not None:
            query = query.where(table.c.hardware == hardware)
        if limit is not None:
            query = query.limit(int(limit))
        with self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        listed = []
        for row in rows:
            data = _stored_json(row["result"], "result", unreadable={"model": row["model"]})
            data = data if isinstance(data, dict) else {"error": "stored result is not a JSON object"}
            result = Result.from_dict({**data, "model": data.get("model") or row["model"]})
            listed.append(
                result.with_(
                    store_id=row["id"],
                    created_at=_utc(row["created_at"]),
                    error=result.error or row["error"] or None,
                )
            )
        return listed

    def set_quality(self, store_id: int, quality: list[dict[str, Any]]) -> bool:
        """Replace the quality figures the stored result ``store_id`` carries (a visitor's own, typed on Compare,
        kept with the result it was typed against); False when no such row exists. Nothing else changes."""
        table = results_table
        with self._write() as conn:
            text = conn.execute(sa.select(table.c.result).where(table.c.id == int(store_id))).scalar()
            if text is None:
                return False
            data = _stored_json(text, f"result {store_id}")
            data["quality"] = [dict(figure) for figure in quality] or None
            conn.execute(table.update().where(table.c.id == int(store_id)).values(result=canonical_json(data)))
        return True

    def delete(self, ids: Iterable[int]) -> int:
        """Remove rows by id; returns how many went."""
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        with self._write() as conn:
            return conn.execute(results_table.delete().where(results_table.c.id.in_(wanted))).rowcount


def _first_line(error: BaseException | None) -> str:
    text = str(error).strip() if error is not None else ""
    return text.splitlines()[0] if text else type(error).__name__
