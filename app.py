"""Streamlit entry point: page config and navigation; the pages live in pages/ and efficiency/ui/home.py.

A page file dropped into pages/ that is not listed in PAGES is added after them, titled from its file name
("3_Hardware.py" -> "Hardware"), so new pages appear without editing this file.

A warm first visit: ``streamlit run app.py`` finds the ``st.App`` at the bottom and serves this same file through
it. The server imports this module once when it starts (as ``app``), and the App's lifespan imports what the pages
need (pandas, plotly, scipy, SQLAlchemy, torch, transformers and the dashboard's own modules) before the server
answers, so the first visitor after a start meets a warm process instead of five seconds of imports. Each visit
runs the file as ``__main__``: the navigation. ``EFFICIENCY_WARM_START=0`` leaves the imports to the first visit.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st

import efficiency.ui

HERE = Path(__file__).parent
WARM_ENV = "EFFICIENCY_WARM_START"
# Beyond the dashboard's own UI modules (which import pandas, plotly, scipy, SQLAlchemy): torch, which Compare
# needs for this machine's devices, and the roofline engine (transformers), which the Hardware page needs.
HEAVY_MODULES = ("torch", "efficiency.hardware.roofline")


def warm_modules() -> list[str]:
    """Every module of ``efficiency.ui`` (what the pages import), then the heavy ones they import lazily."""
    return [f"efficiency.ui.{module.name}" for module in pkgutil.iter_modules(efficiency.ui.__path__)] + list(
        HEAVY_MODULES
    )


def warm_imports(modules: list[str]) -> dict[str, float]:
    """Import each module (one thread, in order: nothing else imports meanwhile); seconds per module."""
    seconds = {}
    for name in modules:
        began = time.perf_counter()
        importlib.import_module(name)
        seconds[name] = time.perf_counter() - began
    return seconds


@asynccontextmanager
async def warm_start(_app: Any) -> AsyncIterator[None]:
    """The server's lifespan: warm the imports before the first request is served (unless switched off)."""
    if os.environ.get(WARM_ENV, "1") != "0":
        seconds = await asyncio.to_thread(warm_imports, warm_modules())
        from efficiency.ui.common import freeze_long_lived  # imported by the warm-up just now

        frozen = freeze_long_lived()  # the full collection after each page's run no longer walks what imports made
        slowest = ", ".join(f"{name} {s:.1f} s" for name, s in sorted(seconds.items(), key=lambda i: -i[1])[:3])
        print(
            f"  Warmed {len(seconds)} modules in {sum(seconds.values()):.1f} s ({slowest}); {frozen:,} objects they "
            "made are kept out of garbage collection",
            file=sys.stderr,
        )
    yield


if __name__ == "__main__":  # a visit: this script runs in the visitor's session
    from efficiency.ui.common import app_icon, mark_app_ran
    from efficiency.ui.home import render as home

    st.set_page_config(page_title="Efficiency misnomer", page_icon=app_icon(), layout="wide")
    mark_app_ran()

    PAGES = [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("pages/1_Compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/2_Results.py", title="Results", icon=":material/table_view:"),
    ]
    LISTED = {"1_Compare.py", "2_Results.py"}
    PAGES += [st.Page(f"pages/{p.name}") for p in sorted((HERE / "pages").glob("*.py")) if p.name not in LISTED]

    # Navigation on top: at 1280 px a sidebar would take a quarter of the width the charts and tables need.
    st.navigation(PAGES, position="top").run()
else:  # imported once by `streamlit run app.py` (Streamlit finds this App): the server, with its warm start
    app = st.App(HERE / "app.py", lifespan=warm_start)
