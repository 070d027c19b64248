"""The Compare page's state in the URL, so that a link reproduces the view.

Every Compare widget has a session-state key; this module fills those keys when a visit to the page
starts (from the URL's query parameters, else from what this session last had, else defaults) and
writes them back to the URL after each run. Values from a URL are data from outside: each is checked
and a bad one is dropped with a warning, never passed on (a warning shows at most ``MAX_SHOWN_CHARS`` of it).

A link Streamlit cannot read whole (more than 1,000 query parameters, or 512 Ki characters) reaches no page:
Streamlit drops the whole query string before the script runs and only logs a warning. :class:`DroppedLinks`
listens for that warning and notes the session, so the visit says the link was not read instead of silently
showing the defaults. What it cannot tell: a link that is the very first request after the server started
(Streamlit drops it before anything of this app is imported), or any link while Streamlit's log level is above
``warning`` (the warning is then never made).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from efficiency.results import DEFAULT_IMPLEMENTATION, IMPLEMENTATIONS
from efficiency.specs import DTYPES, MAX_AUDIO_SECONDS, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_SEQ_LEN, MODES, Workload
from efficiency.ui import cluster
from efficiency.ui.common import catalog_id
from efficiency.validation import printable

RUN_KINDS = ("static", "measured")
METHODS = ("kendall", "spearman")
DEFAULT_MODELS = ("bert-base-uncased", "albert-base-v2", "distilbert-base-uncased")  # their counts disagree
MAX_EXTRA_CHARS = 1000
MEMORY_KEY = "cmp_memory"  # this session's last Compare state, for a visit that comes without a URL
# URL name -> widget key. The picker keys are set at the start of a visit; the chart option keys
# are checked against the options of the data in view by the page (see ``chart_choice``).
PICKERS = {
    "models": "cmp_models",
    "extra": "cmp_extra",
    "batch": "cmp_batch",
    "seq": "cmp_seq",
    "image": "cmp_image",
    "audio": "cmp_audio",
    "dtype": "cmp_dtype",
    "mode": "cmp_mode",
    "run": "cmp_run",
    "device": "cmp_device",
    "threads": "cmp_threads",
    "impl": "cmp_impl",
}
CHART_OPTIONS = {
    "chart": "cmp_chart",
    "method": "cmp_method",
    "x": "cmp_x",
    "y": "cmp_y",
    "size": "cmp_size",
    "color": "cmp_color",
    "ref": "cmp_ref",
    "scale": "cmp_scale",
    "bench": "cmp_bench",  # Quality vs cost: the benchmark and the chip of the estimate panel
    "qchip": "cmp_qchip",
}
INTEGERS = {"batch": (1, MAX_BATCH_SIZE), "seq": (1, MAX_SEQ_LEN), "image": (8, MAX_IMAGE_SIZE)}
QUERY_PARAMS_LOGGER = "streamlit.runtime.state.query_params"  # where Streamlit says it dropped a query string
DROPPED_PREFIX = "Ignoring query string with"
PAGE_PATH = "compare"  # this page's URL path (pages/1_Compare.py), as a browser's request names it
MAX_NOTED_SESSIONS = 256
CHOICES = {"dtype": DTYPES, "mode": MODES, "run": RUN_KINDS}


def defaults(device_ids: Sequence[str], max_threads: int) -> dict[str, Any]:
    base = Workload()
    return {
        "models": list(DEFAULT_MODELS),
        "extra": "",
        "batch": base.batch_size,
        "seq": base.seq_len,
        "image": base.image_size,
        "audio": base.audio_seconds,
        "dtype": base.dtype,
        "mode": base.mode,
        "run": "static",
        "device": device_ids[0],
        "threads": max_threads,
        "impl": [DEFAULT_IMPLEMENTATION],
    }


def _seconds(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and 0.1 <= value <= MAX_AUDIO_SECONDS else None


def _whole(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text.strip())
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None


def parse(
    params: Mapping[str, list[str]], device_ids: Sequence[str], max_threads: int
) -> tuple[dict[str, Any], list[str]]:
    """Checked picker values from query parameters (name -> all its values); warnings name what was dropped."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    if "models" in params:
        ids = [catalog_id(name) for name in params["models"]]
        unknown = [name for name, found in zip(params["models"], ids) if found is None and name]
        if unknown:
            shown = printable(", ".join(unknown))
            warnings.append(f"models not in the catalog, ignored: {shown} (use the free field for others)")
        values["models"] = list(dict.fromkeys(i for i in ids if i))
    if "impl" in params:
        values.update(_implementations(params["impl"], warnings))
    if "extra" in params:
        text = (params["extra"] or [""])[-1]
        if len(text) > MAX_EXTRA_CHARS or any(ord(ch) < 32 for ch in text):
            warnings.append(f"extra: ignored (control characters, or over {MAX_EXTRA_CHARS} characters)")
        else:
            values["extra"] = text
    ranges = {**INTEGERS, "threads": (1, max_threads)}
    for name, (low, high) in ranges.items():
        if name in params:
            value = _whole((params[name] or [""])[-1], low, high)
            if value is None:
                shown = printable(params[name][-1])
                warnings.append(f"{name}: {shown!r} ignored; accepted: a whole number {low}..{high}")
            else:
                values[name] = value
    if "audio" in params:  # seconds of audio per item: a number, not only a whole one
        seconds = _seconds((params["audio"] or [""])[-1])
        if seconds is None:
            shown = printable(params["audio"][-1])
            warnings.append(f"audio: {shown!r} ignored; accepted: seconds from 0.1 to {MAX_AUDIO_SECONDS:g}")
        else:
            values["audio"] = seconds
    for name, accepted in {**CHOICES, "device": tuple(device_ids)}.items():
        if name in params:
            value = (params[name] or [""])[-1]
            if value in accepted:
                values[name] = value
            else:
                warnings.append(f"{name}: {printable(value)!r} ignored; accepted: {printable(', '.join(accepted))}")
    return values, warnings


def _implementations(names: Sequence[str], warnings: list[str]) -> dict[str, list[str]]:
    """The link's implementations (``impl``, several allowed), each known one once; an unknown one is dropped with a
    warning, and a link left with none keeps the default."""
    unknown = [name for name in names if name not in IMPLEMENTATIONS]
    if unknown:
        shown = printable(", ".join(unknown))
        warnings.append(f"impl: {shown!r} ignored; accepted: {', '.join(IMPLEMENTATIONS)}")
    known = list(dict.fromkeys(name for name in names if name in IMPLEMENTATIONS))
    return {"impl": known} if known else {}


def current_params() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in st.query_params}


def start_visit(device_ids: Sequence[str], max_threads: int) -> list[str]:
    """Fill the missing widget keys (a visit just started); returns warnings about dropped URL values.

    A link may name a connected cluster's hardware (``device=cluster:<id>``) besides this machine's devices.
    The pickers' values are kept through runs that do not draw them (folded after a run): Streamlit drops the state
    of a widget a run does not draw, and the next run would take them, and the chart options, back from the URL.
    """
    for key in PICKERS.values():
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    if all(key in st.session_state for key in PICKERS.values() if key != "cmp_threads"):
        return []
    url = current_params()
    accepted = [*device_ids, *cluster.picker_ids()] if "device" in url else device_ids
    parsed, warnings = parse(url, accepted, max_threads)
    dropped = dropped_link()
    if dropped:
        warnings.insert(0, f"this link could not be read whole ({dropped}); showing the defaults")
    remembered = {} if any(name in url for name in PICKERS) else st.session_state.get(MEMORY_KEY, {})
    values = {**defaults(device_ids, max_threads), **remembered, **parsed}
    for name, key in PICKERS.items():
        if key not in st.session_state:
            st.session_state[key] = values[name]
    for name, key in CHART_OPTIONS.items():
        if name in url and url[name]:
            st.session_state[key] = url[name][-1]  # checked against the chart's options before use
    return warnings


def chart_choice(key: str, options: Sequence[Any], default: Any) -> None:
    """Before a chart option widget is drawn: keep its value only if the data in view offers it."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def picker_values() -> dict[str, Any]:
    return {name: st.session_state.get(key) for name, key in PICKERS.items()}


def write_url() -> None:
    """Put the pickers and chart options into the URL (only when they changed), and remember them."""
    values = picker_values()
    st.session_state[MEMORY_KEY] = values
    wanted: dict[str, list[str]] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        wanted[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    for name, key in CHART_OPTIONS.items():
        if st.session_state.get(key) not in (None, ""):
            wanted[name] = [str(st.session_state[key])]
    if current_params() != wanted:
        st.query_params.from_dict(wanted)


def compare_link_params(
    models: Sequence[str],
    workload: Mapping[str, Any],
    run: str,
    device: str | None,
    threads: int | None,
    implementations: Sequence[str] = (),
) -> dict[str, list[str] | str]:
    """Query parameters that open Compare on these models and this setup (used by the Results page); the
    implementations of measured results (none given: the page's default)."""
    in_catalog = [m for m in models if catalog_id(m)]
    others = [m for m in models if not catalog_id(m)]
    params: dict[str, list[str] | str] = {"models": in_catalog or [""], "run": run}
    if others:
        params["extra"] = ", ".join(others)
    for name, field in (("batch", "batch_size"), ("seq", "seq_len"), ("image", "image_size")):
        if workload.get(field) is not None:
            params[name] = str(int(workload[field]))
    if workload.get("audio_seconds") is not None:
        params["audio"] = f"{float(workload['audio_seconds']):g}"
    for name in ("dtype", "mode"):
        if workload.get(name):
            params[name] = str(workload[name])
    if device:
        params["device"] = device
    if threads:
        params["threads"] = str(int(threads))
    if implementations:
        params["impl"] = list(dict.fromkeys(implementations))
    return params


# ---------------------------------------------------------------- a link Streamlit dropped


class DroppedLinks(logging.Handler):
    """Notes which session's query string Streamlit dropped, from the warning it logs when it does (then,
    before the script runs, nothing of the link is left: ``st.query_params`` is empty, ``st.context.url`` has no
    query, and the WebSocket's headers carry no Referer).

    The warning is logged in the thread that handles the browser's message: the session is the ``AppSession``
    whose ``request_rerun`` logs it (found on the stack, with the page the browser asked for), or, where the
    drop happens inside a script run (Streamlit's test harness), that run's session.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.noted_lock = threading.Lock()
        self.noted: OrderedDict[str, tuple[str, str | None]] = OrderedDict()  # session id -> (what, page)

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if not str(record.msg).startswith(DROPPED_PREFIX) or len(args) < 2:
            return
        unit = "parameters" if "parameter" in str(record.msg) else "characters"
        found = _session_dropping()
        if found is None:
            return
        session, page = found
        with self.noted_lock:
            self.noted[session] = (f"{args[0]} {unit}; the limit is {args[1]}", page)
            self.noted.move_to_end(session)
            while len(self.noted) > MAX_NOTED_SESSIONS:
                self.noted.popitem(last=False)

    def take(self, session: str) -> tuple[str, str | None] | None:
        with self.noted_lock:
            return self.noted.pop(session, None)


def _script_ctx() -> Any:
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:  # a Streamlit without this internal: nothing is noted
        return None
    return get_script_run_ctx(suppress_warning=True)


def _session_dropping(depth: int = 40) -> tuple[str, str | None] | None:
    """(session id, page name or None for this run's page) of the session whose query string is being dropped."""
    ctx = _script_ctx()
    if ctx is not None:
        return str(ctx.session_id), None
    frame = sys._getframe(1)
    while frame is not None and depth > 0:
        session = frame.f_locals.get("self")
        if type(session).__name__ == "AppSession" and isinstance(getattr(session, "id", None), str):
            page = getattr(frame.f_locals.get("client_state"), "page_name", None)
            return session.id, page if isinstance(page, str) else ""
        frame, depth = frame.f_back, depth - 1
    return None


def watch_dropped_links() -> DroppedLinks:
    """The one watcher on Streamlit's query-string logger, added once per process (kept across module reloads)."""
    logger = logging.getLogger(QUERY_PARAMS_LOGGER)
    for handler in logger.handlers:
        if type(handler).__name__ == DroppedLinks.__name__ and hasattr(handler, "take"):
            return handler  # type: ignore[return-value]
    handler = DroppedLinks()
    logger.addHandler(handler)
    return handler


def dropped_link() -> str | None:
    """What Streamlit dropped of this session's link to this page ("1001 parameters; the limit is 1000"), once;
    None when nothing was dropped (or it cannot be told, see the module's docstring)."""
    ctx = _script_ctx()
    if ctx is None:
        return None
    noted = watch_dropped_links().take(str(ctx.session_id))
    if noted is None:
        return None
    what, page = noted
    return what if for_this_page(page) else None


def for_this_page(page: str | None) -> bool:
    """Whether a drop noted for ``page`` (the browser's page name; None: noted during this very run) was a link
    to this page, and not one to another page of the session before it came here."""
    return page is None or page.strip("/").lower().endswith(PAGE_PATH)


watch_dropped_links()  # at import: every later request is watched, from any session
