"""Where the dashboard keeps what it writes: user hardware, calibrations, the results store.

One function so that every writer agrees on the folder, and so that tests (and a shared deployment)
can move all of it at once with the ``EFFICIENCY_DATA_DIR`` environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "efficiency-dashboard"
DATA_DIR_ENV = "EFFICIENCY_DATA_DIR"


def data_dir() -> Path:
    """The data folder, created if missing: ``$EFFICIENCY_DATA_DIR`` if set, else the OS user data dir."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    path = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path
