"""Streamlit entry point: page config and navigation; the pages live in pages/ and efficiency/ui/home.py.

A page file dropped into pages/ that is not listed in PAGES is added after them, titled from its file name
("3_Hardware.py" -> "Hardware"), so new pages appear without editing this file.
"""

from pathlib import Path

import streamlit as st

from efficiency.ui.common import app_icon, mark_app_ran
from efficiency.ui.home import render as home

HERE = Path(__file__).parent
st.set_page_config(page_title="Efficiency misnomer", page_icon=app_icon(), layout="wide")
mark_app_ran()

PAGES = [
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_Compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/2_Results.py", title="Results", icon=":material/table_view:"),
]
LISTED = {"1_Compare.py", "2_Results.py"}
PAGES += [st.Page(f"pages/{path.name}") for path in sorted((HERE / "pages").glob("*.py")) if path.name not in LISTED]

# Navigation on top: at 1280 px a sidebar would take a quarter of the width the charts and tables need.
st.navigation(PAGES, position="top").run()
