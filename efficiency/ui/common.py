"""What every page shares: headers, safe text, the results store, catalog names and where static profiles are
stored (results become the table that analysis and charts read in :func:`efficiency.results.results_frame`;
the pickers Compare and Hardware share are in :mod:`efficiency.ui.pickers`; static profiles are counted, in a
worker process, by :func:`efficiency.ui.runs.static_profile`).

Why the caching looks like this: a static profile is a pure function of (model, workload, software), so
it is cached with ``st.cache_data`` (in :mod:`efficiency.ui.runs`) and a rerun (any widget change) never
profiles again; the store and the device list are process-wide resources (``st.cache_resource``). Nothing
heavy is imported at module import: torch and transformers load inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
import streamlit as st

from efficiency.analysis.rankings import available_indicators, setup_line
from efficiency.hardware.detect import local_devices, package_version
from efficiency.models import catalog
from efficiency.results import Result
from efficiency.specs import LOCAL_MODEL_PREFIX
from efficiency.store.store import ResultStore, StoreError, default_location
from efficiency.units import nbytes
from efficiency.validation import MAX_ERROR_CHARS, MAX_SHOWN_CHARS, display_safe, error_line, printable

STATIC_HARDWARE = "static"  # store hardware id of static counts: they do not depend on hardware
WARM_UP_DELAY_S = 5.0
MAX_MESSAGE_CHARS = MAX_ERROR_CHARS + 300  # an error line and the path of the log file that holds its traceback
APP_RAN_KEY = "_efficiency_app_ran"
WEIGHTS_NOTE = "weights random (built from config; no weights loaded)"


# ---------------------------------------------------------------- text


def escape_md(text: Any) -> str:
    """User or model text, safe inside markdown: no links, images, emphasis, LaTeX or colour directives, and
    every control or invisible character (ANSI, bidi override, zero-width) shown as its escape, never raw."""
    return display_safe(text, max_chars=None)


def one_line(error: BaseException) -> str:
    """The line a page shows for ``error``, by the engine's rule (:func:`efficiency.validation.error_line`): a
    deliberate error's first line or ``Type: first line`` of anything else, escaped, cut; never a traceback."""
    return error_line(error)


@st.cache_resource(show_spinner=False)
def app_icon() -> Any:
    """The favicon, drawn here: three bars of unequal height (a named icon would be fetched from the web)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for left, top, colour in ((6, 30, "#0072B2"), (25, 8, "#D55E00"), (44, 20, "#009E73")):
        draw.rectangle((left, top, left + 14, 60), fill=colour)
    return image


# Streamlit's default puts 8 rem (128 px at 1280x800, under the 60 px top navigation) above every page's title: an
# empty band that pushes each page's first chart down. 4.5 rem clears the navigation bar with a small gap.
PAGE_TOP_PADDING = "4.5rem"
PAGE_STYLE = (
    f'<style>div[data-testid="stMainBlockContainer"].block-container {{ padding-top: {PAGE_TOP_PADDING}; }}</style>'
)


def mark_app_ran() -> None:
    """Called by app.py on every run of every page: this session has been through the entry point (its layout and
    navigation), and the page gets the shared style (style-only HTML takes no room on the page)."""
    st.session_state[APP_RAN_KEY] = True
    st.html(PAGE_STYLE)


def through_app() -> None:
    """Make a deep link that is the first request after start still get app.py's layout and navigation.

    Streamlit runs in "pages/ folder" mode until app.py calls ``st.navigation``; a first request for /Compare
    therefore runs this page alone (narrow, a sidebar of file names). Leave that mode and rerun: the rerun goes
    through app.py to the same page (same url path), once per session at most.
    """
    if st.session_state.get(APP_RAN_KEY):
        return
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without this internal: nothing to fix
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.session_state[APP_RAN_KEY] = True  # never loop, whatever the rerun finds
        st.rerun()


def page_header(title: str, lead: str) -> None:
    through_app()
    st.title(title)
    st.caption(lead)


def show_error(model: str, message: str, model_id: str | None = None) -> None:
    """A model's failure, naming it once (engine messages often start with the id); the page goes on. The name is
    cut to ``MAX_SHOWN_CHARS`` and the message to ``MAX_MESSAGE_CHARS`` (a stored error may predate the rule)."""
    for prefix in (model, model_id):
        if prefix and message.startswith(f"{prefix}: "):
            message = message[len(prefix) + 2 :]
    shown = escape_md(printable(model, MAX_SHOWN_CHARS))
    st.error(f"**{shown}**: {escape_md(printable(message, MAX_MESSAGE_CHARS))}", icon=":material/error:")


# ---------------------------------------------------------------- store


@st.cache_resource(show_spinner=False)
def _store_at(location: str) -> ResultStore:
    return ResultStore(location)


def open_store(quiet: bool = False) -> ResultStore | None:
    """The results store this process uses (EFFICIENCY_DB / EFFICIENCY_DATA_DIR), or None with an error shown."""

    try:
        return _store_at(default_location())
    except (StoreError, OSError) as error:
        if not quiet:
            st.error(f"Results store unavailable: {escape_md(one_line(error))}", icon=":material/database:")
        return None


def static_env() -> dict[str, Any]:
    """What a static count depends on besides model and workload: the software, not the machine."""

    return {"torch": package_version("torch"), "transformers": package_version("transformers")}


def save_static(store: ResultStore | None, result: Result) -> str | None:
    """Keep a static profile in the store (Results page, shared links); returns an error line or None."""
    if store is None or result.error:
        return None
    key = {
        "model": result.model,
        "workload": result.workload,
        "metrics": "static",
        "hardware": STATIC_HARDWARE,
        "env": static_env(),
    }
    try:
        store.put(result, key)
    except (StoreError, ValueError, TypeError) as error:
        return f"not stored: {one_line(error)}"
    return None


# ---------------------------------------------------------------- catalog


def catalog_id(name: str) -> str | None:
    """The catalog id for an id, alias or Hub id; None when the catalog does not hold it."""
    spec = catalog.find(name) if isinstance(name, str) and name.strip() else None
    return spec.id if spec else None


@st.cache_data(show_spinner=False, max_entries=512)
def display_name(model_id: str) -> str:
    """The catalog's name; for a config known by its contents (``local:<hex>``), the name it was picked under."""
    spec = catalog.find(model_id)
    if spec is not None:
        return spec.display_name
    if model_id.startswith(LOCAL_MODEL_PREFIX):
        from efficiency.models.loading import resolve  # lazy: imports torch

        try:
            return resolve(model_id).name or model_id
        except ValueError:  # its kept copy is gone or altered: the id is all there is to show
            return model_id
    return model_id


# ---------------------------------------------------------------- hardware


@st.cache_resource(show_spinner=False)
def detected_devices() -> list[dict[str, Any]]:
    """This machine's devices (CPU first); imports torch, once per process."""

    return local_devices()


def device_label(device: dict[str, Any]) -> str:
    """Short enough for a narrow select box; the full name is in ``device_help``."""
    if device["kind"] == "cpu":
        return f"CPU · {device['usable_cpus']} cores"
    return f"{device['id']} · {device['name']}"


def device_help(devices: Iterable[dict[str, Any]]) -> str:
    return "Detected here: " + "; ".join(f"{d['id']}: {d['name']} ({nbytes(d.get('memory_bytes'))})" for d in devices)


# ---------------------------------------------------------------- profiling


STATIC_SLOTS = 2  # static counts at once: each in its own worker process, on its own core of a 2-core machine


class EngineLock:
    """Who may use this machine's cores now, whichever session asks. ``with lock:`` is exclusive: a measurement (its
    timings must not share the cores) and the engine's warm-up (an import that must not meet another). ``with
    lock.shared():`` admits up to ``slots`` static counts at once: they time nothing, and each runs in a worker."""

    def __init__(self, slots: int = STATIC_SLOTS) -> None:
        self.slots = slots
        self._changed = threading.Condition()
        self._counting = 0
        self._exclusive = False

    def __enter__(self) -> EngineLock:
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive and self._counting == 0)
            self._exclusive = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._exclusive = False
            self._changed.notify_all()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive and self._counting < self.slots)
            self._counting += 1
        try:
            yield
        finally:
            with self._changed:
                self._counting -= 1
                self._changed.notify_all()


@st.cache_resource(show_spinner=False)
def engine_lock() -> EngineLock:
    """The process's one :class:`EngineLock`."""
    return EngineLock()


def _warm_engine(lock: EngineLock) -> None:
    """Runs in the warm-up timer's thread, which has no script context: it touches nothing of Streamlit (the lock
    comes from the script thread that started the timer)."""
    with lock:
        from efficiency.models.loading import build_model, resolve  # lazy: imports torch

        build_model(resolve("electra-small-discriminator"), device="meta")  # imports the modeling code once
    if gc.get_freeze_count():  # a server that froze its imports at start (app.py) freezes these too; a test does not
        freeze_long_lived()  # what those imports made lives as long as the server


def freeze_long_lived() -> int:
    """Move every object alive now out of the garbage collector's reach for good (``gc.freeze``); how many it has
    frozen in all. The server calls it once its imports are done (``app.py``'s warm start) and after the engine's
    warm-up. Streamlit collects every generation after each script run (``runner.postScriptGC``): with torch,
    transformers, pandas and plotly imported that walked about a million objects, 0.4-0.5 s per run on 2 cores,
    holding the GIL while the run's last messages waited to be sent. What imports made lives as long as the process,
    so walking it found nothing; frozen, it is walked no more (a collection after a run: about 0.02 s). A session's
    objects alive at that moment are frozen too: should they become garbage in a reference cycle, they stay, a cost
    paid once and bounded by what was alive then."""
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource(show_spinner=False)
def warm_engine_in_background(delay_s: float = WARM_UP_DELAY_S) -> threading.Timer:
    """Import torch and transformers' modeling code while the person picks models (saves ~5 s on the first Run).

    Delayed, because an import holds the GIL: started at once it would slow the server sending this very page."""
    timer = threading.Timer(delay_s, _warm_engine, args=(engine_lock(),))
    timer.name, timer.daemon = "warm-static-engine", True
    timer.start()
    return timer


# ---------------------------------------------------------------- the table


def chart_indicators(df: pd.DataFrame) -> list[str]:
    """The indicators worth an axis: active parameters only when some model is sparse; training ones in training."""
    columns = available_indicators(df)
    if "params_active" in columns and (df["params_active"].fillna(df["params"]) == df["params"]).all():
        columns.remove("params_active")
    if not (df.get("mode", pd.Series(dtype=str)) == "training").any():
        columns = [c for c in columns if c not in ("training_flops", "training_step_ms")]
    return columns


def setup_text(df: pd.DataFrame) -> str:
    """The line that goes with every number: hardware, dtype, batch, lengths, mode, and that weights are random."""
    modes = "/".join(sorted({str(m) for m in df.get("mode", pd.Series(dtype=str)).dropna()})) or "inference"
    hardware = "" if df["measured"].any() else "no hardware: static counts · "
    return f"Setup: {hardware}{setup_line(df)} · {modes} · {WEIGHTS_NOTE}"
