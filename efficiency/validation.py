"""Validators for what a person types or uploads, shared by the CLI and the pages.

Each raises a ``ValueError`` (or a subclass) whose text is one line naming what was wrong and what is
accepted, so every edge can show it as it is. Nothing here imports torch or streamlit.

:func:`error_line` is the one rule for the ``error`` a result or a message carries: one line, control characters
escaped, cut; an unexpected error's traceback goes to a log file in the data folder that the line names.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import string
import traceback
import unicodedata
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from efficiency.paths import data_dir

MAX_UPLOAD_BYTES = 1_000_000  # the same limit as a local config.json (efficiency.models.loading.MAX_CONFIG_BYTES)
MAX_SHOWN_CHARS = 200  # of a value a person gave, echoed in a message
MAX_ERROR_CHARS = 500  # of an error line: its words around any bad value in it (itself cut to MAX_SHOWN_CHARS)
LOG_FOLDER = "logs"  # under the data folder: one file per traceback, named in the error line
MAX_LOG_FILES = 200  # the newest are kept; a flood of failures cannot fill the disk
_LOG_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Control characters, format characters (bidi overrides, zero-width), surrogates, private use, unassigned,
# line and paragraph separators: none belongs in a model name, and a terminal or page may act on them.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# CommonMark lets any ASCII punctuation be backslash-escaped with the same rendering. '&' and ';' are left
# for the HTML entities made first; '$' matters too (Streamlit renders $...$ as LaTeX).
MARKDOWN_SPECIALS = frozenset(string.punctuation) - {"&", ";"}


class InputError(ValueError):
    """Input a person gave that cannot be used, said in one line."""


def printable(text: Any, max_chars: int | None = MAX_SHOWN_CHARS) -> str:
    """``text`` with every control or invisible character shown as its escape (``\\x1b``, ``\\u202e``),
    cut to ``max_chars`` with an ellipsis: safe to print to a terminal or a log."""
    text = str(text)
    shown = "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in UNPRINTABLE_CATEGORIES else ch
        for ch in text
    )
    if max_chars is not None and len(shown) > max_chars:
        shown = shown[: max_chars - 1] + "…"
    return shown


def is_deliberate(error: BaseException) -> bool:
    """An error this program raised on purpose: one of its own classes (``ModelLoadError``, ``StoreError``,
    ``RayUnavailableError``, ...), or a ``ValueError`` its own code raised. Its text is a line written for a person
    (the rule above), so it is shown as it is, without a type or a traceback. Anything else (a bug, a library's
    error, an allocation failure) is unexpected."""
    if type(error).__module__.partition(".")[0] == "efficiency":
        return True
    if not isinstance(error, ValueError):
        return False
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).partition(".")[0] == "efficiency"


def _first_line(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still gets its line
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def error_line(error: BaseException, log_as: str | None = None) -> str:
    """The one line that stands for ``error`` in a result's ``error`` or a message.

    A deliberate error (:func:`is_deliberate`) is its first line; any other is ``Type: first line``. Control characters
    are escaped and the line is cut to ``MAX_ERROR_CHARS`` (:func:`printable`). With ``log_as`` (a job's or
    model's name), an unexpected error's traceback is written to ``<data folder>/logs/<log_as>-<time>.log``
    (:func:`log_traceback`) and the line ends with ``(traceback: <that path>)``; never a traceback in the line.
    """
    first, deliberate = _first_line(error), is_deliberate(error)
    if first:
        line = printable(first if deliberate else f"{type(error).__name__}: {first}", MAX_ERROR_CHARS)
    else:
        line = type(error).__name__
    if log_as is None or error.__traceback__ is None or deliberate:
        return line
    path = log_traceback(log_as, _format_traceback(error, error.__traceback__))
    return f"{line} (traceback: {path})" if path is not None else line


def _format_traceback(error: BaseException, tb: TracebackType) -> str:
    return "".join(traceback.format_exception(type(error), error, tb))


def log_traceback(name: str, text: str) -> Path | None:
    """Write ``text`` to a new ``<data folder>/logs/<name>-<time>.log`` (its control characters escaped), keep
    the newest ``MAX_LOG_FILES`` there; the file's path, or None when it cannot be written (the error line then
    goes without it)."""
    stem = _LOG_NAME_UNSAFE.sub("_", printable(name, None)).strip("._")[:80] or "job"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    try:
        folder = data_dir() / LOG_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}-{stamp}-{os.getpid()}.log"
        with open(path, "x", encoding="utf-8") as log:
            log.write(f"{printable(name, None)} at {stamp}\n")
            log.write("\n".join(printable(line, None) for line in text.splitlines()) + "\n")
        _prune(folder)
    except (OSError, ValueError):
        return None
    return path


def _prune(folder: Path) -> None:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    logs = sorted(folder.glob("*.log"), key=mtime, reverse=True)
    for old in logs[MAX_LOG_FILES:]:
        with contextlib.suppress(OSError):  # another process pruned it first
            old.unlink()


def display_safe(text: Any, max_chars: int | None = MAX_SHOWN_CHARS) -> str:
    """User text for a Markdown context (``st.markdown``, ``st.error``, ``st.caption``): control characters
    escaped, HTML made inert (``<`` becomes ``&lt;``) and Markdown punctuation backslash-escaped, so it
    renders as exactly the characters typed and never as markup, a link, an image or LaTeX."""
    shown = html.escape(printable(text, max_chars), quote=False)
    return "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in shown)


def check_upload(data: bytes | bytearray | memoryview | None, max_bytes: int = MAX_UPLOAD_BYTES) -> dict[str, Any]:
    """An uploaded config file, parsed as data only: at most ``max_bytes``, UTF-8 JSON, one JSON object."""
    if data is None or len(data) == 0:
        raise InputError(f"upload is empty; give a config.json file (a JSON object, at most {max_bytes} bytes)")
    if len(data) > max_bytes:
        raise InputError(f"upload is {len(data)} bytes; the limit is {max_bytes} (a config.json is a few kB)")
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"upload is not UTF-8 text (byte {exc.start}); give a config.json file") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise InputError(f"upload is not valid JSON ({str(exc).splitlines()[0]}); give a config.json file") from exc
    except RecursionError as exc:
        raise InputError("upload is nested too deeply to be a model config; give a config.json file") from exc
    if not isinstance(value, dict):
        raise InputError(f"upload must hold a JSON object (a config.json), not a JSON {type(value).__name__}")
    return value
