"""Validators for what a person types or uploads, shared by the CLI and the pages.

Each raises a ``ValueError`` (or a subclass) whose text is one line naming what was wrong and what is
accepted, so every edge can show it as it is. Nothing here imports torch or streamlit.
"""

from __future__ import annotations

import html
import json
import string
import unicodedata
from typing import Any

MAX_UPLOAD_BYTES = 1_000_000  # the same limit as a local config.json (efficiency.models.loading.MAX_CONFIG_BYTES)
MAX_SHOWN_CHARS = 200
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
