"""The Compare page's state in the URL, so that a link reproduces the view.

Every Compare widget has a session-state key; this module fills those keys when a visit to the page
starts (from the URL's query parameters, else from what this session last had, else defaults) and
writes them back to the URL after each run. Values from a URL are data from outside: each is checked
and a bad one is dropped with a warning, never passed on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st

from efficiency.specs import DTYPES, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_SEQ_LEN, MODES, Workload
from efficiency.ui import cluster
from efficiency.ui.common import catalog_id

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
    "dtype": "cmp_dtype",
    "mode": "cmp_mode",
    "run": "cmp_run",
    "device": "cmp_device",
    "threads": "cmp_threads",
}
CHART_OPTIONS = {
    "chart": "cmp_chart",
    "method": "cmp_method",
    "x": "cmp_x",
    "y": "cmp_y",
    "size": "cmp_size",
    "color": "cmp_color",
    "ref": "cmp_ref",
}
INTEGERS = {"batch": (1, MAX_BATCH_SIZE), "seq": (1, MAX_SEQ_LEN), "image": (8, MAX_IMAGE_SIZE)}
CHOICES = {"dtype": DTYPES, "mode": MODES, "run": RUN_KINDS}


def defaults(device_ids: Sequence[str], max_threads: int) -> dict[str, Any]:
    base = Workload()
    return {
        "models": list(DEFAULT_MODELS),
        "extra": "",
        "batch": base.batch_size,
        "seq": base.seq_len,
        "image": base.image_size,
        "dtype": base.dtype,
        "mode": base.mode,
        "run": "static",
        "device": device_ids[0],
        "threads": max_threads,
    }


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
            warnings.append(f"models not in the catalog, ignored: {', '.join(unknown)} (use the free field for others)")
        values["models"] = list(dict.fromkeys(i for i in ids if i))
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
                warnings.append(f"{name}: {params[name][-1]!r} ignored; accepted: a whole number {low}..{high}")
            else:
                values[name] = value
    for name, accepted in {**CHOICES, "device": tuple(device_ids)}.items():
        if name in params:
            value = (params[name] or [""])[-1]
            if value in accepted:
                values[name] = value
            else:
                warnings.append(f"{name}: {value!r} ignored; accepted: {', '.join(accepted)}")
    return values, warnings


def current_params() -> dict[str, list[str]]:
    return {name: st.query_params.get_all(name) for name in st.query_params}


def start_visit(device_ids: Sequence[str], max_threads: int) -> list[str]:
    """Fill the missing widget keys (a visit just started); returns warnings about dropped URL values.

    A link may name a connected cluster's hardware (``device=cluster:<id>``) besides this machine's devices.
    """
    if all(key in st.session_state for key in PICKERS.values() if key != "cmp_threads"):
        return []
    url = current_params()
    accepted = [*device_ids, *cluster.picker_ids()] if "device" in url else device_ids
    parsed, warnings = parse(url, accepted, max_threads)
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
    models: Sequence[str], workload: Mapping[str, Any], run: str, device: str | None, threads: int | None
) -> dict[str, list[str] | str]:
    """Query parameters that open Compare on these models and this setup (used by the Results page)."""
    in_catalog = [m for m in models if catalog_id(m)]
    others = [m for m in models if not catalog_id(m)]
    params: dict[str, list[str] | str] = {"models": in_catalog or [""], "run": run}
    if others:
        params["extra"] = ", ".join(others)
    for name, field in (("batch", "batch_size"), ("seq", "seq_len"), ("image", "image_size")):
        if workload.get(field) is not None:
            params[name] = str(int(workload[field]))
    for name in ("dtype", "mode"):
        if workload.get(name):
            params[name] = str(workload[name])
    if device:
        params["device"] = device
    if threads:
        params["threads"] = str(int(threads))
    return params
