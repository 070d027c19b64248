"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temporary cluster, loopback only.

Use it by importing the fixture into a test module: ``from pg_server import postgres_url``. It yields a
SQLAlchemy URL ``postgresql+psycopg://efficiency@127.0.0.1:PORT/results`` and stops the server afterwards.
Skips, saying why, when the PostgreSQL binaries (``apt-get install postgresql``) or psycopg
(``pip install -r requirements-cluster.txt``) are missing.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (or ``nobody``)
in a temporary folder that user owns. Settings favour speed over durability (no fsync): it is a test.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATABASE = "results"
ROLE = "efficiency"
START_TIMEOUT_S = 60


def find_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, else PATH's, else None."""
    found = sorted(
        (Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    for folder in reversed(found):
        if (folder / "pg_ctl").is_file():
            return folder
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_user() -> pwd.struct_passwd | None:
    """The user to run the server as: None (ourselves) unless we are root, who may not run it."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")
    return None


def _run(command: list[str], user: pwd.struct_passwd | None, **options: Any) -> None:
    as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_S, **as_user, **options)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1 for this test session."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed (pip install -r requirements-cluster.txt)")
    import psycopg

    user = server_user()
    root = Path(tempfile.mkdtemp(prefix="efficiency-pg-"))  # not under pytest's 0700 root-only tmp folders
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if user is not None:
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    started = False
    try:
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "--encoding=UTF8"]
        _run([*initdb, "--locale=C", "--no-sync"], user)
        server_options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
        pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", server_options]
        try:
            _run([*pg_ctl, "-w", "-t", str(START_TIMEOUT_S), "start"], user)
        except RuntimeError as err:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{err}\nserver log:\n{tail}") from err
        started = True
        with psycopg.connect(host="127.0.0.1", port=port, user=ROLE, dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield f"postgresql+psycopg://{ROLE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        shutil.rmtree(root)


def fresh_database(url: str) -> str:
    """A new empty database on the server of ``url`` (one per test), as a URL of the same form."""
    import uuid

    import psycopg
    from sqlalchemy import make_url

    server = make_url(url)
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(
        host=server.host, port=server.port, user=server.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.set(database=name).render_as_string(hide_password=False)
