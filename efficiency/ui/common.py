"""What every page shares: headers, safe text, the results store, catalog names, cached profiles,
and the conversion of result dicts into the one-row-per-model table that analysis and charts read
(the pickers Compare and Hardware share are in :mod:`efficiency.ui.pickers`).

Why the caching looks like this: a static profile is a pure function of (model, workload, software), so
it is cached with ``st.cache_data`` and a rerun (any widget change) never profiles again; the store and
the device list are process-wide resources (``st.cache_resource``). Nothing heavy is imported at module
import: torch and transformers load inside the functions that need them.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from efficiency.analysis.rankings import available_indicators, setup_line
from efficiency.models import catalog
from efficiency.specs import Workload
from efficiency.store.store import ResultStore, StoreError
from efficiency.validation import printable

STATIC_HARDWARE = "static"  # store hardware id of static counts: they do not depend on hardware
WARM_UP_DELAY_S = 5.0
APP_RAN_KEY = "_efficiency_app_ran"
WEIGHTS_NOTE = "weights random (built from config; no weights loaded)"
FRAME_COLUMNS = (
    "model",
    "model_id",
    "params",
    "params_active",
    "flops",
    "training_flops",
    "memory_traffic_bytes",
    "latency_ms",
    "throughput_per_s",
    "peak_memory_bytes",
    "training_step_ms",
    "measured",
    "hardware",
    "dtype",
    "batch_size",
    "seq_len",
    "image_size",
    "mode",
    "obtained",
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=&\"'^])")


# ---------------------------------------------------------------- text


def escape_md(text: Any) -> str:
    """User or model text, safe inside markdown: no links, images, emphasis, LaTeX or colour directives, and
    every control or invisible character (ANSI, bidi override, zero-width) shown as its escape, never raw."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text, max_chars=None))


def one_line(error: BaseException) -> str:
    """The exception's first line; the type only when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@st.cache_resource(show_spinner=False)
def app_icon() -> Any:
    """The favicon, drawn here: three bars of unequal height (a named icon would be fetched from the web)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for left, top, colour in ((6, 30, "#0072B2"), (25, 8, "#D55E00"), (44, 20, "#009E73")):
        draw.rectangle((left, top, left + 14, 60), fill=colour)
    return image


def mark_app_ran() -> None:
    """Called by app.py: this session has been through the entry point (its layout and navigation)."""
    st.session_state[APP_RAN_KEY] = True


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
    """A model's failure, naming it once (engine messages often start with the id); the page goes on."""
    for prefix in (model, model_id):
        if prefix and message.startswith(f"{prefix}: "):
            message = message[len(prefix) + 2 :]
    st.error(f"**{escape_md(model)}**: {escape_md(message)}", icon=":material/error:")


# ---------------------------------------------------------------- store


@st.cache_resource(show_spinner=False)
def _store_at(location: str) -> ResultStore:
    return ResultStore(location)


def open_store(quiet: bool = False) -> ResultStore | None:
    """The results store this process uses (EFFICIENCY_DB / EFFICIENCY_DATA_DIR), or None with an error shown."""
    from efficiency.store.store import default_location

    try:
        return _store_at(default_location())
    except (StoreError, OSError) as error:
        if not quiet:
            st.error(f"Results store unavailable: {escape_md(one_line(error))}", icon=":material/database:")
        return None


def static_env() -> dict[str, Any]:
    """What a static count depends on besides model and workload: the software, not the machine."""
    from efficiency.hardware.detect import package_version

    return {"torch": package_version("torch"), "transformers": package_version("transformers")}


def save_static(store: ResultStore | None, result: dict[str, Any]) -> str | None:
    """Keep a static profile in the store (Results page, shared links); returns an error line or None."""
    if store is None or result.get("error"):
        return None
    key = {
        "model": result["model"],
        "workload": result["workload"],
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


def display_name(model_id: str) -> str:
    spec = catalog.find(model_id)
    return spec.display_name if spec else model_id


# ---------------------------------------------------------------- hardware


@st.cache_resource(show_spinner=False)
def detected_devices() -> list[dict[str, Any]]:
    """This machine's devices (CPU first); imports torch, once per process."""
    from efficiency.hardware.detect import local_devices

    return local_devices()


def device_label(device: dict[str, Any]) -> str:
    """Short enough for a narrow select box; the full name is in ``device_help``."""
    if device["kind"] == "cpu":
        return f"CPU · {device['usable_cpus']} cores"
    return f"{device['id']} · {device['name']}"


def device_help(devices: Iterable[dict[str, Any]]) -> str:
    from efficiency.units import nbytes

    return "Detected here: " + "; ".join(f"{d['id']}: {d['name']} ({nbytes(d.get('memory_bytes'))})" for d in devices)


# ---------------------------------------------------------------- profiling


@st.cache_resource(show_spinner=False)
def engine_lock() -> threading.Lock:
    """Static profiles run in this process under torch dispatch modes: one at a time, whichever session asks."""
    return threading.Lock()


def _warm_engine() -> None:
    with engine_lock():
        from efficiency.models.loading import build_model, resolve

        build_model(resolve("electra-small-discriminator"), device="meta")  # imports the modeling code once


@st.cache_resource(show_spinner=False)
def warm_engine_in_background(delay_s: float = WARM_UP_DELAY_S) -> threading.Timer:
    """Import torch and transformers' modeling code while the person picks models (saves ~5 s on the first Run).

    Delayed, because an import holds the GIL: started at once it would slow the server sending this very page."""
    timer = threading.Timer(delay_s, _warm_engine)
    timer.name, timer.daemon = "warm-static-engine", True
    timer.start()
    return timer


def _local_stamp(name: str) -> float | None:
    """A local folder's config.json time, so an edited config is profiled again; None for everything else."""
    if catalog.find(name) is not None:
        return None
    config = Path(name).expanduser() / "config.json"
    try:
        return config.stat().st_mtime
    except (OSError, ValueError):
        return None


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_static(name: str, workload_items: tuple, stamp: float | None) -> dict[str, Any]:
    """``stamp`` only keys the cache (a local config edited since); the fields a model ignores keep defaults."""
    from efficiency.counters.static import profile_static

    with engine_lock():
        return profile_static(name, Workload(**dict(workload_items))).to_dict()


def static_profile(name: str, workload: Workload) -> dict[str, Any]:
    """The static profile as a result dict, or its error; cached per model and the workload fields it uses."""
    spec = catalog.find(name)
    fields = workload.for_modality(spec.modality) if spec else workload.to_dict()
    try:
        return _cached_static(name, tuple(sorted(fields.items())), _local_stamp(name))
    except Exception as error:  # noqa: BLE001 - any failure is this model's error; the page goes on
        return {"model": name, "workload": fields, "error": one_line(error), "measured": False}


# ---------------------------------------------------------------- results -> table


def _number(value: Any) -> float:
    if isinstance(value, dict):
        value = value.get("median")
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def unwrap(row: dict[str, Any]) -> dict[str, Any]:
    """A result dict from either a store row (``{"result": {...}, "id": ...}``) or a profile/runner result."""
    if isinstance(row.get("result"), dict):
        result = {**row["result"], "store_id": row.get("id"), "created_at": row.get("created_at")}
        result.setdefault("model", row.get("model"))
        if row.get("error") and not result.get("error"):
            result["error"] = row["error"]
        return result
    return dict(row)


def hardware_text(result: dict[str, Any]) -> str | None:
    """ "AMD EPYC (cpu, 2 threads)" for a measured result; None for static counts (no hardware involved)."""
    hardware = result.get("hardware")
    if not result.get("measured"):
        return None
    if isinstance(hardware, dict):
        name = hardware.get("name") or hardware.get("id") or "unknown hardware"
        device, threads = hardware.get("device", ""), hardware.get("threads")
        detail = ", ".join(str(p) for p in (device, f"{threads} threads" if threads else "") if p)
        return f"{name} ({detail})" if detail else str(name)
    return str(hardware) if hardware else None


def results_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per model (first wins), raw values, in the column contract of ``analysis`` and ``charts``.

    Failed results are left out (see :func:`result_errors`); latency and training step are medians in ms;
    in training mode ``peak_memory_bytes`` is the training step's peak.
    """
    records, seen_ids, seen_names = [], set(), set()
    for row in rows:
        result = unwrap(row)
        model_id = str(result.get("model") or "")
        if not model_id or result.get("error") or model_id in seen_ids:
            continue
        seen_ids.add(model_id)
        name = str(result.get("name") or display_name(model_id))
        name = model_id if name in seen_names else name
        seen_names.add(name)
        workload = result.get("workload") or {}
        mode = workload.get("mode", "inference")
        peak = result.get("peak_memory_training_bytes") if mode == "training" else None
        measured = bool(result.get("measured"))
        records.append(
            {
                "model": name,
                "model_id": model_id,
                **{c: _number(result.get(c)) for c in ("params", "params_active", "flops", "training_flops")},
                "memory_traffic_bytes": _number(result.get("memory_traffic_bytes")),
                "latency_ms": _number(result.get("latency_ms")),
                "throughput_per_s": _number(result.get("throughput_per_s")),
                "peak_memory_bytes": _number(peak if peak is not None else result.get("peak_memory_bytes")),
                "training_step_ms": _number(result.get("training_step_ms")),
                "measured": measured,
                "hardware": hardware_text(result),
                "dtype": workload.get("dtype"),
                "batch_size": workload.get("batch_size"),
                "seq_len": workload.get("seq_len"),
                "image_size": workload.get("image_size"),
                "mode": mode,
                "obtained": f"measured on {hardware_text(result)}" if measured else "counted (static)",
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
    for column in ("batch_size", "seq_len", "image_size"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame


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
